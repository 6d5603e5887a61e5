"""``ionet chat join``: a terminal chat client over TCP or UDP.

Incoming messages never garble the line being typed: the prompt is
prompt_toolkit's, and ``patch_stdout`` prints arrivals above it and redraws
the half-typed line below.  ``/quit``, Ctrl-C and Ctrl-D leave cleanly (the
server sends the others a leave notice).  When standard input is not a
terminal, lines are read plainly, so the client can be scripted.

The connection classes (:class:`TcpChatClient`, :class:`UdpChatClient`)
know nothing of terminals: each runs a reader thread that hands every
server object to a callback, and ``send(obj)`` sends one object.  The UDP
client does its half of the datagram protocol (:mod:`ionet.chat.udp`):
numbers its datagrams and retransmits them until acknowledged, puts the
server's datagrams back in order, drops duplicates, reports lost ones, and
sends the heartbeat.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from ionet.chat.room import DEFAULT_ROOM
from ionet.chat.session import Session
from ionet.chat.udp import GAP_TIMEOUT, HEARTBEAT_INTERVAL, parse_datagram
from ionet.core.errors import UserError

__all__ = ["TcpChatClient", "UdpChatClient", "format_event", "parse_input", "run_terminal"]

Obj = dict[str, Any]
OnEvent = Callable[[Obj], None]

#: Seconds between keep-alive pings on TCP (servers close idle connections).
TCP_KEEPALIVE = 60.0
#: Seconds before an unacknowledged datagram is sent again, and how often.
RETRANSMIT_AFTER = 0.3
MAX_TRIES = 10


def _dumps(obj: Obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def format_event(obj: Obj) -> str | None:
    """How a server object reads on the terminal (None: nothing to show)."""
    kind = obj.get("type")
    if kind == "welcome":
        return f"* welcome, {obj['name']}: you are in {obj['room']} (/who, /msg NAME text, /join #room, /quit)"
    if kind == "joined":
        return f"* {obj['name']} joined the chat"
    if kind == "left":
        reason = f" ({obj['reason']})" if obj.get("reason") else ""
        return f"* {obj['name']} left the chat{reason}"
    if kind == "message":
        return f"{obj['from']}: {obj['text']}"
    if kind == "private":
        return f"[private] {obj['from']}: {obj['text']}"
    if kind == "announce":
        return f"管理员消息: {obj['text']}"
    if kind == "who":
        return f"* in {obj['room']}: {', '.join(obj['names'])}"
    if kind == "error":
        return f"! {obj['message']}"
    if kind == "lost":
        return f"! {obj['count']} message(s) lost on the way"
    return None


def parse_input(text: str) -> Obj | None:
    """A typed line as a client object (None: an unknown /command)."""
    if text.startswith("/") and not text.startswith("//"):
        return Session.parse_command(text)
    return {"type": "say", "text": text}


class TcpChatClient:
    """A chat connection over TCP: JSON lines."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise UserError(f"cannot connect to the chat at {host}:{port}: {exc}") from None
        self.sock.settimeout(None)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.closed = False

    def start(self, on_event: OnEvent, on_close: Callable[[], None]) -> None:
        def read() -> None:
            reader = self.sock.makefile("rb")
            try:
                for line in reader:
                    if line.strip():
                        on_event(json.loads(line))
            except (OSError, ValueError):
                pass
            finally:
                reader.close()
                on_close()

        def keep_alive() -> None:  # the server closes connections idle for minutes
            while not self._stop.wait(TCP_KEEPALIVE):
                try:
                    self.send({"type": "ping"})
                except OSError:
                    return

        self._thread = threading.Thread(target=read, name="chat-reader", daemon=True)
        self._thread.start()
        threading.Thread(target=keep_alive, name="chat-ping", daemon=True).start()

    def send(self, obj: Obj) -> None:
        with self._lock:
            if not self.closed:
                self.sock.sendall(_dumps(obj) + b"\n")

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self._stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(2)
        self.sock.close()


class UdpChatClient:
    """A chat session over UDP (see :mod:`ionet.chat.udp` for the datagrams)."""

    def __init__(self, host: str, port: int, heartbeat: float = HEARTBEAT_INTERVAL) -> None:
        try:
            info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
            self.sock = socket.socket(info[0], socket.SOCK_DGRAM)
            self.sock.connect(info[4])
        except OSError as exc:
            raise UserError(f"cannot reach the chat at {host}:{port}: {exc}") from None
        self.sock.settimeout(0.1)
        self.heartbeat = heartbeat
        self._lock = threading.Lock()
        self._seq = 0
        self.unacked: dict[int, list[Any]] = {}  # seq -> [data, last sent, tries]
        self.expected = 1  # the server's next SEQ
        self.early: dict[int, Obj] = {}
        self.gap_since: float | None = None
        self.duplicates = 0
        self.lost = 0
        self._thread: threading.Thread | None = None
        self.closed = False

    def start(self, on_event: OnEvent, on_close: Callable[[], None]) -> None:
        self._thread = threading.Thread(target=self._run, args=(on_event, on_close),
                                        name="chat-udp", daemon=True)
        self._thread.start()

    def send(self, obj: Obj) -> None:
        with self._lock:
            if self.closed:
                return
            self._seq += 1
            data = b"%d %s" % (self._seq, _dumps(obj))
            self.unacked[self._seq] = [data, time.monotonic(), 1]
        self._sendraw(data)

    def _sendraw(self, data: bytes) -> None:
        try:
            self.sock.send(data)
        except OSError:
            pass  # retransmitted later, or the reader reports the failure

    def _run(self, on_event: OnEvent, on_close: Callable[[], None]) -> None:
        last_ping = time.monotonic()
        try:
            while not self.closed:
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    data = b""
                except ConnectionRefusedError:
                    on_event({"type": "error", "code": "unreachable",
                              "message": "the chat server is not answering"})
                    return
                except OSError:
                    return
                if data:
                    self._datagram(data, on_event)
                now = time.monotonic()
                self._retransmit(now, on_event)
                if self.gap_since is not None and now - self.gap_since > GAP_TIMEOUT:
                    self._skip_gap(on_event)
                if now - last_ping >= self.heartbeat:
                    last_ping = now
                    self._sendraw(b'0 {"type":"ping"}')
        finally:
            on_close()

    def _datagram(self, data: bytes, on_event: OnEvent) -> None:
        try:
            seq, payload = parse_datagram(data)
            obj = json.loads(payload)
        except ValueError:
            return
        if seq == 0:
            if obj.get("type") == "ack":
                with self._lock:
                    self.unacked.pop(obj.get("seq"), None)
            elif obj.get("type") != "ok":
                on_event(obj)
            return
        if seq < self.expected or seq in self.early:
            self.duplicates += 1
            return
        if seq > self.expected:
            self.early[seq] = obj
            if self.gap_since is None:
                self.gap_since = time.monotonic()
            return
        on_event(obj)
        self.expected += 1
        self._drain(on_event)

    def _drain(self, on_event: OnEvent) -> None:
        while self.expected in self.early:
            on_event(self.early.pop(self.expected))
            self.expected += 1
        self.gap_since = time.monotonic() if self.early else None

    def _skip_gap(self, on_event: OnEvent) -> None:
        first = min(self.early)
        missing = first - self.expected
        self.lost += missing
        on_event({"type": "lost", "count": missing})
        self.expected = first
        self._drain(on_event)

    def _retransmit(self, now: float, on_event: OnEvent) -> None:
        again = []
        with self._lock:
            for seq, entry in list(self.unacked.items()):
                if now - entry[1] >= RETRANSMIT_AFTER:
                    if entry[2] >= MAX_TRIES:
                        del self.unacked[seq]
                        on_event({"type": "error", "code": "not_delivered",
                                  "message": "a message could not be delivered"})
                        continue
                    entry[1], entry[2] = now, entry[2] + 1
                    again.append(entry[0])
        for data in again:
            self._sendraw(data)

    def close(self) -> None:
        """Wait a moment for pending acks (the leave), then stop."""
        deadline = time.monotonic() + 1.0
        while self.unacked and time.monotonic() < deadline and not self.closed:
            time.sleep(0.02)
        self.closed = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2)
        self.sock.close()


# -- the terminal ---------------------------------------------------------------------


def run_terminal(client: TcpChatClient | UdpChatClient, name: str, room: str = DEFAULT_ROOM,
                 stdin: IO[str] | None = None, out: IO[str] | None = None) -> int:
    """Chat on the terminal until /quit, Ctrl-C, Ctrl-D or the server closes.

    Returns the exit status: 0 after a clean leave, 1 if the join failed or
    the connection was lost.
    """
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    welcomed = threading.Event()
    gone = threading.Event()
    left = threading.Event()
    failed: list[str] = []
    app_holder: list[Any] = []

    def show(text: str) -> None:
        print(text, file=out, flush=True)

    def on_event(obj: Obj) -> None:
        if obj.get("type") == "welcome":
            welcomed.set()
        elif obj.get("type") == "error" and not welcomed.is_set():
            failed.append(str(obj.get("message")))
            welcomed.set()
        elif obj.get("type") == "left" and obj.get("name") == name and not obj.get("reason"):
            left.set()
            return
        elif obj.get("type") == "error" and obj.get("code") in ("timed_out", "unreachable",
                                                                 "shutting_down"):
            gone.set()
        text = format_event(obj)
        if text is not None:
            show(text)
        if obj.get("type") == "welcome":  # the room's last messages
            for item in obj.get("history") or []:
                if (line := format_event(item)) is not None:
                    show(line)
        if gone.is_set():
            _interrupt(app_holder)

    def on_close() -> None:
        gone.set()
        welcomed.set()
        _interrupt(app_holder)

    interactive = stdin.isatty() and out.isatty()
    status = 0
    context: Any = None
    try:
        if interactive:
            from prompt_toolkit.patch_stdout import patch_stdout

            context = patch_stdout(raw=True)
            context.__enter__()
        client.start(on_event, on_close)
        client.send({"type": "join", "name": name, "room": room})
        if not welcomed.wait(10) or failed or gone.is_set():
            show("! could not join" + (f": {failed[0]}" if failed else ""))
            return 1
        lines = _prompt_lines(name, app_holder) if interactive else _plain_lines(stdin)
        for line in lines:
            if gone.is_set():
                break
            if not line.strip():
                continue
            obj = parse_input(line)
            if obj is None:
                show("! commands: /who, /msg NAME text, /join #room, /quit")
                continue
            if obj["type"] == "leave":
                break
            client.send(obj)
        if gone.is_set():
            show("* disconnected")
            status = 1
    except KeyboardInterrupt:
        pass
    finally:
        if not gone.is_set():
            try:
                client.send({"type": "leave"})
            except OSError:
                pass
            left.wait(2)
        client.close()
        if context is not None:
            context.__exit__(None, None, None)
    return status


def _interrupt(app_holder: list[Any]) -> None:
    """End a running prompt from another thread (the server went away)."""
    if app_holder:
        app = app_holder[0]
        if app.is_running and app.loop is not None:
            app.loop.call_soon_threadsafe(lambda: app.exit(exception=EOFError()))


def _prompt_lines(name: str, app_holder: list[Any]) -> Any:
    from prompt_toolkit import PromptSession

    session: PromptSession[str] = PromptSession()
    app_holder.append(session.app)
    while True:
        try:
            yield session.prompt(f"{name}> ")
        except EOFError:
            return


def _plain_lines(stdin: IO[str]) -> Any:
    for line in stdin:
        yield line.rstrip("\n")
