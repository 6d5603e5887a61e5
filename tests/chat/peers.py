"""Test clients for the chat's three front doors, over real sockets.

Each reads server objects in the background of its socket and offers
``send(obj)`` and ``expect(type, **fields)``: the next object of that type
whose fields match, within a timeout (objects skipped on the way are kept
in ``seen``).  Every socket operation has a timeout.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

IO_TIMEOUT = 10.0
Obj = dict[str, Any]


def _brief(objs: list[Obj]) -> str:
    """The last few objects seen, shortened, for an assertion message."""
    shown = [repr(o)[:160] for o in objs[-6:]]
    return f"{len(objs)} objects, the last: [{', '.join(shown)}]"


class Peer:
    """What every test client does; subclasses read and write their framing."""

    def __init__(self) -> None:
        self.inbox: list[Obj] = []
        self.seen: list[Obj] = []

    def _read_some(self, timeout: float) -> None:
        raise NotImplementedError

    def next(self, timeout: float = IO_TIMEOUT) -> Obj:
        deadline = time.monotonic() + timeout
        while not self.inbox:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self}: nothing arrived in {timeout}s; seen {_brief(self.seen)}")
            self._read_some(remaining)
        obj = self.inbox.pop(0)
        self.seen.append(obj)
        return obj

    def expect(self, kind: str, timeout: float = IO_TIMEOUT, **fields: Any) -> Obj:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self}: no {kind} {fields} in {timeout}s; seen {_brief(self.seen)}")
            try:
                obj = self.next(remaining)
            except AssertionError:
                raise AssertionError(f"{self}: no {kind} {fields} in {timeout}s; "
                                     f"seen {_brief(self.seen)}") from None
            if obj.get("type") == kind and all(obj.get(k) == v for k, v in fields.items()):
                return obj

    def quiet(self, seconds: float) -> list[Obj]:
        """Everything that arrives within ``seconds`` (to check nothing more came)."""
        deadline = time.monotonic() + seconds
        got = []
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                self._read_some(remaining)
            except TimeoutError:
                break
            got.extend(self.inbox)
            self.seen.extend(self.inbox)
            self.inbox.clear()
        return got

    def join(self, name: str, room: str | None = None) -> Obj:
        obj: Obj = {"type": "join", "name": name}
        if room:
            obj["room"] = room
        self.send(obj)
        return self.expect("welcome", name=name)

    def send(self, obj: Obj) -> None:
        raise NotImplementedError

    def say(self, text: str) -> None:
        self.send({"type": "say", "text": text})

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class TcpPeer(Peer):
    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__()
        self.sock = socket.create_connection(address, timeout=IO_TIMEOUT)
        self.buffer = b""
        self.eof = False

    def __repr__(self) -> str:
        return "TcpPeer"

    def send(self, obj: Obj) -> None:
        self.sendraw(json.dumps(obj).encode() + b"\n")

    def sendraw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read_some(self, timeout: float) -> None:
        if self.eof:
            raise AssertionError(f"connection closed; seen {_brief(self.seen)}")
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return
        if not chunk:
            self.eof = True
            return
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        self.inbox.extend(json.loads(line) for line in lines if line.strip())

    def closed_by_server(self, timeout: float = IO_TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            try:
                self._read_some(deadline - time.monotonic())
            except ConnectionResetError:
                return True
        return self.eof

    def reset(self) -> None:
        """Vanish with a TCP reset (SO_LINGER 0), no goodbye."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


class UdpPeer(Peer):
    """Sends ``SEQ JSON`` datagrams; keeps acks apart in ``acks``."""

    def __init__(self, address: tuple[str, int], start: int = 1) -> None:
        super().__init__()
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(address)
        self.seq = start - 1
        self.acks: list[int] = []
        self.server_seqs: list[int] = []

    def __repr__(self) -> str:
        return "UdpPeer"

    def send(self, obj: Obj) -> None:
        self.seq += 1
        self.sendraw(b"%d %s" % (self.seq, json.dumps(obj).encode()))

    def sendraw(self, data: bytes) -> None:
        self.sock.send(data)

    def _read_some(self, timeout: float) -> None:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return
        head, _, payload = data.partition(b" ")
        obj = json.loads(payload)
        if obj.get("type") == "ack":
            self.acks.append(obj["seq"])
            return
        if int(head):
            self.server_seqs.append(int(head))
        self.inbox.append(obj)

    def close(self) -> None:
        self.sock.close()


class WsPeer(Peer):
    """A WebSocket client (wsproto) for ``/chat/ws``."""

    def __init__(self, address: tuple[str, int], path: str = "/chat/ws") -> None:
        super().__init__()
        self.sock = socket.create_connection(address, timeout=IO_TIMEOUT)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host=f"{address[0]}:{address[1]}", target=path)))
        self.accepted = False
        self.closed_by = None
        deadline = time.monotonic() + IO_TIMEOUT
        while not self.accepted:
            if time.monotonic() > deadline:
                raise AssertionError("no WebSocket handshake")
            self._read_some(deadline - time.monotonic())

    def __repr__(self) -> str:
        return "WsPeer"

    def send(self, obj: Obj) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=json.dumps(obj))))

    def _read_some(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return
        self.ws.receive_data(data or None)
        if not data:
            raise AssertionError(f"connection closed; seen {_brief(self.seen)}")
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self.accepted = True
            elif isinstance(event, TextMessage):
                self.inbox.append(json.loads(event.data))
            elif isinstance(event, CloseConnection):
                self.closed_by = event.code

    def close(self) -> None:
        self.sock.close()
