"""Chat fan-out: ionet's chat (TCP front door) beside ngircd, in one run.

Run it as ``python bench/chat.py`` (``--help`` for options; ``--quick`` for a
short run).  Needs Debian's ``ngircd`` for the comparison.

One room, one sender, N receivers (50 and 500).  Two modes:

* **flood**: the sender writes as fast as the server reads it, for a few
  seconds;
* **paced**: the sender writes 500 messages a second.

Reported per server, mode and room size (the median of ``--runs`` runs,
servers interleaved A B A B as shared/BENCH.md asks): deliveries per second
(messages received, summed over receivers, over the time from the first
send to the last delivery), p50 / p99 delivery latency, messages lost
(sent x receivers - delivered) and receivers the server dropped.

Fairness (shared/BENCH.md, IRC section):

* ngircd throttles ordinary users, so its sender is an IRC operator with
  user mode ``+F``; ionet's sender authenticates as the chat's
  administrator, which likewise lifts the rate limit.  Receivers are
  ordinary members on both.
* ngircd's listen backlog is 10: receivers connect 20 at a time, each
  batch registered before the next.  ``MaxConnectionsIP = 0`` lets them
  all come from 127.0.0.1; ``PingTimeout`` is long enough never to fire.
* The server runs on core 0, the sender and the receivers on core 1; both
  servers log nothing per message.
* Latency: each message carries the sender's ``time.monotonic_ns()``
  (CLOCK_MONOTONIC, one clock for every process on the machine); a receiver
  samples the oldest complete message of each ``recv`` (the one that
  waited longest), so the figure is conservative.  Counting is exact.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import select
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOM = "#bench"
CONNECT_BATCH = 20
IO_TIMEOUT = 30.0
#: Seconds without a delivery after which the rest counts as lost.
QUIET = 5.0


# -- the two protocols, as the clients speak them ---------------------------------------


class Speaker:
    """How one server's clients register, send, and recognise a message."""

    name: str
    marker: bytes  # occurs once in every delivered chat message

    def receiver_stages(self, index: int) -> list[tuple[bytes, bytes]]:
        """What a receiver sends to register, stage by stage, and the reply
        that ends each stage."""
        raise NotImplementedError

    def register_sender(self, sock: socket.socket) -> None:
        raise NotImplementedError

    def message(self, seq: int, stamp: int) -> bytes:
        raise NotImplementedError

    def stamp(self, line: bytes) -> int:
        raise NotImplementedError


def _read_until(sock: socket.socket, needle: bytes, buffer: bytearray,
                timeout: float = IO_TIMEOUT) -> None:
    """Read (blocking, with a deadline) until ``needle`` has arrived; keep the rest."""
    deadline = time.monotonic() + timeout
    while needle not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"waited {timeout}s for {needle!r}; got {bytes(buffer[-300:])!r}")
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed while waiting for {needle!r}: {bytes(buffer[-300:])!r}")
        buffer += chunk
    del buffer[: buffer.index(needle) + len(needle)]


class IrcSpeaker(Speaker):
    name = "ngircd"
    marker = b" PRIVMSG "

    def receiver_stages(self, index: int) -> list[tuple[bytes, bytes]]:
        # ngircd holds each new client's first commands for about a second
        # (its penalty after registration), so receivers register in parallel.
        nick = f"r{index}"
        return [(f"NICK {nick}\r\nUSER {nick} 0 * :bench\r\n".encode(), b" 001 "),
                (f"JOIN {ROOM}\r\n".encode(), f" 366 {nick} {ROOM} ".encode())]

    def register_sender(self, sock: socket.socket) -> None:
        buffer = bytearray()
        sock.sendall(b"NICK sender\r\nUSER sender 0 * :bench\r\n")
        _read_until(sock, b" 001 ", buffer)
        sock.sendall(b"OPER bench bench\r\n")
        _read_until(sock, b" 381 ", buffer)  # you are now an IRC operator
        sock.sendall(b"MODE sender +F\r\n")
        _read_until(sock, b"+F", buffer)
        sock.sendall(f"JOIN {ROOM}\r\n".encode())
        _read_until(sock, f" 366 sender {ROOM} ".encode(), buffer)

    def message(self, seq: int, stamp: int) -> bytes:
        return b"PRIVMSG #bench :%d %d\r\n" % (seq, stamp)

    def stamp(self, line: bytes) -> int:
        return int(line.rstrip().rsplit(b" ", 1)[1])


class IonetSpeaker(Speaker):
    name = "ionet"
    marker = b'{"type":"message"'

    def __init__(self, token: str) -> None:
        self.token = token

    def receiver_stages(self, index: int) -> list[tuple[bytes, bytes]]:
        return [(b'{"type":"join","name":"r%d","room":"%s"}\n' % (index, ROOM.encode()),
                 b'"type":"welcome"')]

    def register_sender(self, sock: socket.socket) -> None:
        buffer = bytearray()
        sock.sendall(b'{"type":"auth","token":"%s"}\n' % self.token.encode())
        _read_until(sock, b'"what":"auth"', buffer)
        sock.sendall(b'{"type":"join","name":"sender","room":"%s"}\n' % ROOM.encode())
        _read_until(sock, b'"type":"welcome"', buffer)

    def message(self, seq: int, stamp: int) -> bytes:
        return b'{"type":"say","text":"%d %d"}\n' % (seq, stamp)

    def stamp(self, line: bytes) -> int:
        start = line.index(b'"text":"') + 8
        return int(line[start: line.index(b'"', start)].split(b" ")[1])


# -- the servers ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pin(pid: int, core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        try:
            os.sched_setaffinity(pid, {core})
        except OSError:
            pass


class Server:
    """A server process under test: start, address, stop."""

    speaker: Speaker
    proc: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                # Nobody listening can still "connect": a socket whose ephemeral
                # port is the target port opens onto itself.
                if probe.getsockname() != probe.getpeername():
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} is not listening on {port}")


NGIRCD_CONF = """\
[Global]
Name = bench.ionet.test
Info = ionet chat benchmark
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = "bench"
PidFile = {folder}/ngircd.pid
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
PingTimeout = 3600
PongTimeout = 3600
[Options]
DNS = no
Ident = no
PAM = no
[Operator]
Name = bench
Password = bench
"""


class Ngircd(Server):
    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        conf = folder / "ngircd.conf"
        conf.write_text(NGIRCD_CONF.format(port=self.port, folder=folder))
        self.proc = subprocess.Popen(["ngircd", "--nodaemon", "--config", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _pin(self.proc.pid, 0)
        _wait_listening(self.port, self.proc, "ngircd")
        self.speaker = IrcSpeaker()


class Ionet(Server):
    def __init__(self, folder: Path, engine: str) -> None:
        from ionet.core.testing import ServerProcess

        self.process = ServerProcess(
            ["--log-level", "warning", "chat", "serve", "--engine", engine, "--port", "0",
             "--http-port", "-1", "--no-udp", "--data-dir", str(folder),
             "--idle-timeout", "0", "--first-bytes-timeout", "0"])
        self.process.start()  # returns once the server announced its port
        assert self.process.proc is not None
        self.proc = self.process.proc
        _pin(self.proc.pid, 0)
        self.port = self.process.address("tcp")[1]
        token = (folder / "chat-admin-token").read_text().strip()
        self.speaker = IonetSpeaker(token)

    def stop(self) -> None:
        self.process.stop()


# -- one measurement -------------------------------------------------------------------------


@dataclass
class Result:
    server: str
    mode: str
    members: int
    sent: int = 0
    delivered: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    dropped: int = 0

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    @property
    def lost(self) -> int:
        return self.sent * self.members - self.delivered

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(p / 100 * len(data)))]


def _sender(port: int, speaker: Speaker, mode: str, rate: float, duration: float,
            conn: Any) -> None:
    """The sending client, in a process of its own: register, wait for "go", send."""
    _pin(0, 1)
    sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    speaker.register_sender(sock)
    # Swallow whatever the server sends the sender meanwhile (joins, numerics).
    sock.setblocking(False)
    conn.send("ready")
    conn.recv()  # go
    start = time.monotonic()
    sent = 0
    end = start + duration
    sock.setblocking(True)
    sock.settimeout(IO_TIMEOUT)
    monotonic_ns = time.monotonic_ns
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if mode == "flood":
            stamp = monotonic_ns()
            batch = b"".join(speaker.message(sent + i, stamp) for i in range(64))
            sock.sendall(batch)
            sent += 64
        else:
            due = int((now - start) * rate) + 1
            if due > sent:
                stamp = monotonic_ns()
                sock.sendall(b"".join(speaker.message(n, stamp) for n in range(sent, due)))
                sent = due
            time.sleep(max(0.0, start + sent / rate - time.monotonic()))
        _drain(sock)
    conn.send((start, sent))
    conn.recv()  # keep the connection open until the receivers are done
    sock.close()


def _drain(sock: socket.socket) -> None:
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
    except (BlockingIOError, InterruptedError):
        pass
    except OSError:
        pass
    sock.setblocking(True)


def _connect_receivers(port: int, speaker: Speaker, members: int) -> list[socket.socket]:
    """Connect (a batch at a time: ngircd's backlog is 10), then register
    everyone in parallel, stage by stage."""
    socks: list[socket.socket] = []
    for first in range(0, members, CONNECT_BATCH):
        batch = [socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
                 for _ in range(first, min(members, first + CONNECT_BATCH))]
        socks.extend(batch)
    buffers = [bytearray() for _ in socks]
    stages = [speaker.receiver_stages(index) for index in range(members)]
    for stage in range(len(stages[0])):
        for index, sock in enumerate(socks):
            sock.sendall(stages[index][stage][0])
        for index, sock in enumerate(socks):
            _read_until(sock, stages[index][stage][1], buffers[index])
    return socks


def _quiet(socks: list[socket.socket], seconds: float = 0.3) -> None:
    """Read and discard until nothing arrives for ``seconds`` (join notices)."""
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    while True:
        events = selector.select(seconds)
        if not events:
            break
        for key, _ in events:
            try:
                key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
            except (BlockingIOError, ConnectionError):
                pass
    selector.close()


def measure(server: Server, mode: str, members: int, rate: float, duration: float) -> Result:
    """One run: connect, send for ``duration`` seconds, count until quiet."""
    speaker = server.speaker
    result = Result(speaker.name, mode, members)
    receivers = _connect_receivers(server.port, speaker, members)
    here, there = multiprocessing.get_context("fork").Pipe()
    sender = multiprocessing.get_context("fork").Process(
        target=_sender, args=(server.port, speaker, mode, rate, duration, there), daemon=True)
    sender.start()
    if not here.poll(IO_TIMEOUT):
        raise TimeoutError("the sender did not register")
    here.recv()
    _quiet(receivers)

    # The receiving loop is the load generator's bottleneck (a quarter of a
    # million messages a second on one core), so it is plain: epoll on raw
    # descriptors, os.read, byte counting, one timestamp parsed per read.
    poller = select.epoll()
    fds = {sock.fileno(): sock for sock in receivers}
    tails = {fd: b"" for fd in fds}
    for fd in fds:
        poller.register(fd, select.EPOLLIN)
    pipe_fd = here.fileno()
    poller.register(pipe_fd, select.EPOLLIN)
    marker, stamp_of = speaker.marker, speaker.stamp
    latencies = result.latencies_ms
    read, monotonic_ns, monotonic = os.read, time.monotonic_ns, time.monotonic
    delivered = 0
    alive = len(receivers)
    last_delivery = monotonic()
    started: float | None = None
    expected: int | None = None
    here.send("go")
    while alive:
        if expected is not None and delivered >= expected:
            break
        events = poller.poll(0.5)
        if not events:
            if expected is None and not sender.is_alive():
                raise RuntimeError("the sender failed (see its traceback above)")
            if expected is not None and monotonic() - last_delivery > QUIET:
                break  # nothing more is coming
            continue
        now_ns = monotonic_ns()
        for fd, _mask in events:
            if fd == pipe_fd:
                started, result.sent = here.recv()
                expected = result.sent * members
                poller.unregister(pipe_fd)
                continue
            try:
                data = read(fd, 1 << 20)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                poller.unregister(fd)
                alive -= 1
                result.dropped += 1
                continue
            tail = tails[fd]
            chunk = tail + data if tail else data
            end = chunk.rfind(b"\n") + 1
            tails[fd] = chunk[end:]
            count = chunk.count(marker, 0, end)
            if count:
                delivered += count
                first = chunk.index(marker)
                try:
                    line_end = chunk.index(b"\n", first)
                    latencies.append((now_ns - stamp_of(chunk[first:line_end])) / 1e6)
                except (ValueError, IndexError):
                    pass
        last_delivery = monotonic()
    finished = last_delivery
    if expected is None:
        started, result.sent = here.recv()
    here.send("done")
    sender.join(10)
    poller.close()
    for sock in receivers:
        sock.close()
    result.delivered = delivered
    result.seconds = max(1e-9, finished - (started or finished))
    return result


# -- the report -------------------------------------------------------------------------------


def _median(results: list[Result], attr: Callable[[Result], float]) -> float:
    return statistics.median(attr(r) for r in results)


def report(all_results: list[Result]) -> str:
    """A markdown table: one row per (mode, members, server), medians of the runs."""
    rows = ["| mode | members | server | deliveries/s | p50 ms | p99 ms | lost | dropped |",
            "|---|---:|---|---:|---:|---:|---:|---:|"]
    keys = sorted({(r.mode, r.members, r.server) for r in all_results},
                  key=lambda k: (k[0], k[1], k[2] != "ionet"))
    for mode, members, server in keys:
        runs = [r for r in all_results if (r.mode, r.members, r.server) == (mode, members, server)]
        rows.append(
            f"| {mode} | {members} | {server} | {_median(runs, lambda r: r.rate):,.0f} "
            f"| {_median(runs, lambda r: r.percentile(50)):.1f} "
            f"| {_median(runs, lambda r: r.percentile(99)):.1f} "
            f"| {_median(runs, lambda r: r.lost):,.0f} | {_median(runs, lambda r: r.dropped):.0f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ionet bench chat", description="Chat fan-out: ionet beside ngircd.",
        epilog="Prints a markdown table; each row the median of --runs runs.")
    parser.add_argument("--members", default="50,500", help="room sizes (default: %(default)s)")
    parser.add_argument("--modes", default="flood,paced", help="(default: %(default)s)")
    parser.add_argument("--rate", type=float, default=500.0,
                        help="paced mode: messages per second (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=5.0,
                        help="paced mode: seconds of sending per run (default: %(default)s)")
    parser.add_argument("--flood-duration", type=float, default=2.0,
                        help="flood mode: seconds of sending per run; delivering what "
                             "the kernel buffered takes longer (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="(default: %(default)s)")
    parser.add_argument("--servers", default="ionet,ngircd", help="(default: %(default)s)")
    parser.add_argument("--engine", default="epoll", help="ionet's engine (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="one run of 2 s each")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.duration, args.flood_duration = 1, 2.0, 1.0
    servers = args.servers.split(",")
    if "ngircd" in servers and shutil.which("ngircd") is None:
        print("ngircd is not installed (apt-get install ngircd): measuring ionet alone",
              file=sys.stderr)
        servers.remove("ngircd")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    _pin(0, 1)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="ionet-bench-chat-") as tmp:
        for run in range(args.runs):
            for members in (int(m) for m in args.members.split(",")):
                for mode in args.modes.split(","):
                    for name in servers:  # interleaved: A B A B
                        folder = Path(tmp) / f"{name}-{run}-{members}-{mode}"
                        folder.mkdir()
                        server: Server = Ngircd(folder) if name == "ngircd" \
                            else Ionet(folder, args.engine)
                        try:
                            duration = args.flood_duration if mode == "flood" else args.duration
                            result = measure(server, mode, members, args.rate, duration)
                        finally:
                            server.stop()
                        results.append(result)
                        print(f"run {run + 1}: {mode:5} {members:4} {name:6} "
                              f"{result.rate:12,.0f} deliveries/s  p50 {result.percentile(50):7.1f} ms"
                              f"  p99 {result.percentile(99):7.1f} ms  lost {result.lost:,}"
                              f"  dropped {result.dropped}", file=sys.stderr, flush=True)
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
