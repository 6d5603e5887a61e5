"""The chat's TCP front door: one JSON object per line, each way.

Framing is :class:`ionet.core.framing.LineFramer` (``\\n``-terminated UTF-8
lines, at most 16 KiB by default); the objects are those listed in
:mod:`ionet.chat.messages`.  A session, as ``nc 127.0.0.1 8889`` shows it
(``>`` from the client, ``<`` from the server)::

    > {"type": "join", "name": "ann"}
    < {"type":"welcome","name":"ann","room":"#lobby","history":[]}
    < {"type":"joined","name":"bob","room":"#lobby"}
    < {"type":"message","from":"bob","room":"#lobby","text":"hi ann","time":1718000000.123}
    > {"type": "say", "text": "hello bob"}            (bob gets it; ann does not)
    > {"type": "msg", "to": "bob", "text": "psst"}
    > {"type": "who"}
    < {"type":"who","room":"#lobby","names":["ann","bob"]}
    < {"type":"announce","text":"maintenance at noon","time":1718000100.5}
    > {"type": "leave"}
    < {"type":"left","name":"ann","room":"#lobby"}   (then the server closes)

Mistakes never cost the connection: a line that is not a JSON object, an
unknown type, a taken name, a line over the limit, a message over the text
limit or the rate limit each get ``{"type": "error", "code", "message"}``
and the conversation goes on.  A connection that closes or resets leaves
the chat with one ``left`` notice to the room.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ionet.chat import messages
from ionet.chat.session import SOFT, Session, StreamSink
from ionet.core.errors import FrameTooLarge
from ionet.core.framing import LineFramer
from ionet.core.protocol import Protocol, TimerHandle, Transport

if TYPE_CHECKING:
    from ionet.chat.service import ChatService

__all__ = ["ChatProtocol", "MAX_LINES_PER_TURN"]

#: Lines of one connection handled before the room is written (see ``_turn``).
MAX_LINES_PER_TURN = 256
#: A turn also ends after this share of the sink cap (see ``_turn``).
TURN_SHARE_OF_CAP = 4
#: A turn of this many lines (or SOFT bytes) makes the next one check the
#: room's congestion.
CHECK_AFTER = 16
#: Seconds between looks at a congested room.
CONGESTION_RECHECK = 0.005


class ChatProtocol(Protocol):
    """A chat client over TCP (or TLS): JSON lines."""

    def __init__(self, service: ChatService) -> None:
        self.service = service
        self.framer = LineFramer(max_line=service.max_line)
        self.session: Session | None = None
        self._waiting = False  # reading paused: lines wait in the framer
        self._checking = False  # the last turn was big: look at the room first
        self._next_turn: TimerHandle | None = None
        self._turn_bytes = max(1, service.sink_cap // TURN_SHARE_OF_CAP)

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        self.transport = transport
        sink = StreamSink(transport, self.service.lobby.lock, cap=self.service.sink_cap,
                          flusher=self.service.flusher(transport))
        self.sink = sink
        self.session = session = Session(self.service, sink, transport, "tcp", self._close)
        sink.on_overflow = session.overflowed

    def _close(self) -> None:
        self.sink.flush()
        self.sink.dead = True
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.framer.append(data)
        if not self._waiting:
            self._turn()

    def _turn(self) -> None:
        """Handle up to MAX_LINES_PER_TURN lines; the rest wait for the next turn.

        A flooding sender's one ``recv`` can hold 5,000 lines, which would put
        half a megabyte in every receiver's queue at once.  Taken a few
        hundred at a time, with the room written in between, the queues stay
        small; and while most of the room is behind (``Lobby.congested``),
        the sender waits, unread, instead of everyone being dropped.  (One
        slow receiver among several never makes the room wait: it is dropped
        at its cap; see ``Session.congested`` for a room of two.)

        A turn also stops at a quarter of the sink cap in bytes: 256 lines of
        4 KB are a whole megabyte, so a receiver found not behind (at most
        ``SOFT`` bytes waiting) before such a turn could be past its cap, and
        dropped, after it, before the congestion check had a chance.
        """
        session = self.session
        transport = self.transport
        assert session is not None and transport is not None
        self._next_turn = None
        if session.closed:
            return
        if self._checking and session.congested():
            self._wait(transport)
            self._next_turn = transport.call_later(CONGESTION_RECHECK, self._turn)
            return
        framer = self.framer
        lines: list[bytes] = []
        size = 0
        while not session.closed and len(lines) < MAX_LINES_PER_TURN \
                and size < self._turn_bytes:
            try:
                line = framer.next_line()
            except FrameTooLarge as exc:
                session.receive_many(lines)
                lines = []
                session.reply(messages.error("too_large", str(exc)))
                continue
            if line is None:
                break
            if line.strip():
                lines.append(line)
                size += len(line)
        session.receive_many(lines)
        if session.closed:
            return
        # Only a sender of many lines (or bytes) at once is checked: a room's
        # worth of sinks is too much to look at for every single message.
        self._checking = len(lines) >= CHECK_AFTER or size >= SOFT
        if len(lines) >= MAX_LINES_PER_TURN or size >= self._turn_bytes:
            self._wait(transport)
            self._next_turn = transport.call_later(0, self._turn)
        elif self._waiting:
            self._waiting = False
            transport.resume_reading()

    def _wait(self, transport: Transport) -> None:
        if not self._waiting:
            self._waiting = True
            transport.pause_reading()

    def eof_received(self) -> bool | None:
        # A half-close means the client is done: leave, send what is queued,
        # and let the transport close once it is flushed.
        if self.session is not None:
            self.session.disconnected()
            self.sink.flush()
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._next_turn is not None:
            self._next_turn.cancel()
        if self.session is not None:
            self.session.disconnected()
            self.session.detach()

    def server_stopping(self) -> None:
        if self.session is not None:
            self.session.server_stopping()
