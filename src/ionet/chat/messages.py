"""The chat's messages: JSON objects, encoded once and shared by every receiver.

Every front door (TCP, UDP, WebSocket) carries the same JSON objects; only
the envelope differs (a line, a datagram with a sequence number, a WebSocket
text frame).  Text is UTF-8 and never escaped to ``\\uXXXX``, so "管理员"
stays three characters on the wire.

Client to server::

    {"type": "join", "name": N, "room": "#lobby"}   enter (room optional, default #lobby);
                                                    when already in, "room" moves you
    {"type": "say", "text": T}                      to everyone else in your room
    {"type": "msg", "to": N, "text": T}             a private message
    {"type": "who"}                                 who is in your room
    {"type": "leave"}                               leave (the server then closes TCP/WS)
    {"type": "ping"}                                keep-alive (UDP heartbeat; TCP idle timeout)
    {"type": "auth", "token": K}                    become the administrator (token in the data folder)
    {"type": "announce", "text": T}                 administrator only: to every room

A ``say`` whose text starts with ``/`` is a command, as typed in a client:
``/who``, ``/msg NAME text``, ``/join #room``, ``/quit``; ``//text`` says
``/text``.

Server to client::

    {"type": "welcome", "name", "room", "history": [message objects]}
    {"type": "joined", "name", "room"}               someone joined your room
    {"type": "message", "from", "room", "text", "time"}
    {"type": "private", "from", "text", "time"}
    {"type": "left", "name", "room"}                 (+ "reason" when dropped: "timed out", "too slow")
    {"type": "announce", "text", "time"}             the administrator: shown as "管理员消息: text"
    {"type": "who", "room", "names": [...]}
    {"type": "ok", "what": "auth" | "announce" | "ping"}
    {"type": "error", "code", "message"}             the connection stays open

``time`` is seconds since the Unix epoch (a float, millisecond precision).
A sender does not get its own ``message`` back.

Why "encode once": a message to 500 members is serialised by ``json.dumps``
one time, and the 500 receivers share the same ``bytes`` object (the
WebSocket frame, built on first use, likewise).  ngircd does the same in C;
encoding per receiver would multiply the server's work by the room size.
"""

from __future__ import annotations

import json
import struct
import time
from typing import Any

__all__ = [
    "Batch", "Encoded", "encode", "decode", "ws_text_frame", "now",
    "welcome", "joined", "message", "private", "left", "announce", "who", "ok", "error",
]

Obj = dict[str, Any]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def now(wall: float | None = None) -> float:
    """A message time: epoch seconds rounded to milliseconds."""
    return round(time.time() if wall is None else wall, 3)


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked, final WebSocket text frame (RFC 6455 section 5.2).

    Server frames are never masked and we negotiate no extensions, so the
    frame is the same bytes for every receiver and can be built once.
    """
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


class Encoded:
    """One server-to-client object, serialised once.

    Attributes:
        obj: the object (do not mutate it once encoded).
        line: the JSON text, UTF-8, with a trailing newline: a TCP line, a
            UDP payload (after the sequence number).
    """

    __slots__ = ("obj", "line", "_ws")

    def __init__(self, obj: Obj) -> None:
        self.obj = obj
        self.line = (_dumps(obj) + "\n").encode()
        self._ws: bytes | None = None

    @property
    def ws(self) -> bytes:
        """The WebSocket text frame carrying this object (built on first use)."""
        frame = self._ws
        if frame is None:
            frame = self._ws = ws_text_frame(self.line[:-1])
        return frame

    @property
    def type(self) -> str:
        return str(self.obj["type"])

    @property
    def parts(self) -> tuple[Encoded, ...]:
        """The objects this carries: itself (see :class:`Batch`)."""
        return (self,)

    def __repr__(self) -> str:
        return f"Encoded({self.obj!r})"


class Batch(Encoded):
    """Several messages from one sender, delivered as one: their bytes joined once.

    A flooding sender's ``recv`` holds hundreds of lines; sent as a batch,
    each receiver gets one queue entry for all of them instead of one each,
    and every receiver shares the joined bytes.  Stream doors send ``line``
    (or ``ws``) as is; the UDP door sends each of ``parts`` as a datagram.
    """

    __slots__ = ("_parts",)

    def __init__(self, parts: list[Encoded]) -> None:
        self._parts = tuple(parts)
        self.obj = parts[-1].obj
        self.line = b"".join(p.line for p in parts)
        self._ws = None

    @property
    def ws(self) -> bytes:
        frame = self._ws
        if frame is None:
            frame = self._ws = b"".join(p.ws for p in self._parts)
        return frame

    @property
    def parts(self) -> tuple[Encoded, ...]:
        return self._parts

    def __repr__(self) -> str:
        return f"Batch({len(self._parts)} messages)"


def encode(obj: Obj) -> Encoded:
    return Encoded(obj)


def decode(data: bytes | str) -> Obj:
    """Parse one client object.

    Raises:
        ValueError: not JSON, not an object, or without a string ``type``
            (the message says which).
    """
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a JSON object: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    if not isinstance(obj.get("type"), str):
        raise ValueError('the object needs a string "type"')
    return obj


# -- constructors for the server's objects ------------------------------------


def welcome(name: str, room: str, history: list[Obj]) -> Encoded:
    return Encoded({"type": "welcome", "name": name, "room": room, "history": history})


def joined(name: str, room: str) -> Encoded:
    return Encoded({"type": "joined", "name": name, "room": room})


def message_obj(sender: str, room: str, text: str, when: float) -> Obj:
    return {"type": "message", "from": sender, "room": room, "text": text, "time": when}


def message(sender: str, room: str, text: str, when: float) -> Encoded:
    return Encoded(message_obj(sender, room, text, when))


def private(sender: str, text: str, when: float) -> Encoded:
    return Encoded({"type": "private", "from": sender, "text": text, "time": when})


def left(name: str, room: str, reason: str | None = None) -> Encoded:
    obj: Obj = {"type": "left", "name": name, "room": room}
    if reason:
        obj["reason"] = reason
    return Encoded(obj)


def announce(text: str, when: float) -> Encoded:
    return Encoded({"type": "announce", "text": text, "time": when})


def who(room: str, names: list[str]) -> Encoded:
    return Encoded({"type": "who", "room": room, "names": names})


def ok(what: str) -> Encoded:
    return Encoded({"type": "ok", "what": what})


def error(code: str, text: str) -> Encoded:
    return Encoded({"type": "error", "code": code, "message": text})
