"""The chat's WebSocket front door (RFC 6455), with wsproto: the same JSON objects.

Each WebSocket text message carries one object of :mod:`ionet.chat.messages`,
as a TCP line does.  :class:`WebSocketChatProtocol` starts from the raw bytes
of the HTTP request (request line, headers, blank line, and whatever
followed), so it can take over a connection from any HTTP server::

    ws = service.websocket_protocol()
    transport.set_protocol(ws)
    ws.connection_made(transport)
    ws.data_received(request_head + rest)    # wsproto answers 101 Switching Protocols

wsproto (sans-IO, like h11) does the handshake, decodes the client's masked
frames, and answers pings and the closing handshake.  The server's data frames
bypass it: they are unmasked and we negotiate no extension (no
permessage-deflate), so one message is the same frame for every receiver,
built once (:attr:`ionet.chat.messages.Encoded.ws`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError

from ionet.chat import messages
from ionet.chat.session import Session, StreamSink
from ionet.chat.tcp import CHECK_AFTER, CONGESTION_RECHECK
from ionet.core.protocol import Protocol, Transport

if TYPE_CHECKING:
    from ionet.chat.service import ChatService

__all__ = ["WebSocketChatProtocol"]

log = logging.getLogger("ionet.chat")

#: RFC 6455 close codes we use.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003


class WebSocketChatProtocol(Protocol):
    """A chat client over WebSocket, from its HTTP upgrade request on."""

    def __init__(self, service: ChatService) -> None:
        self.service = service
        self.ws = WSConnection(ConnectionType.SERVER)
        self.session: Session | None = None
        self.parts: list[str] = []
        self.size = 0
        self.skipping = False  # the rest of an oversized message
        self.texts: list[str] = []  # complete messages of this data_received

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        self.transport = transport
        sink = StreamSink(transport, self.service.lobby.lock, websocket=True,
                          cap=self.service.sink_cap, flusher=self.service.flusher(transport))
        self.sink = sink
        self.session = session = Session(self.service, sink, transport, "ws", self._close)
        sink.on_overflow = session.overflowed

    def _send(self, event: object) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.ws.send(event))  # type: ignore[arg-type]

    def _close(self, code: int = CLOSE_NORMAL) -> None:
        """Send what is queued, then a Close frame, then close the connection."""
        self.sink.flush()
        self.sink.dead = True
        if self.ws.state is ConnectionState.OPEN:
            self._send(CloseConnection(code=code))
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        assert self.session is not None and self.transport is not None
        self.texts = []
        try:
            self.ws.receive_data(data)
            for event in self.ws.events():
                self._event(event)
            self.session.receive_many(self.texts)
            if len(self.texts) >= CHECK_AFTER and self.session.congested():
                self._pause_while_congested()
        except RemoteProtocolError as exc:
            log.info("chat ws: protocol error: %s", exc)
            if self.ws.state is ConnectionState.CONNECTING:
                hint = exc.event_hint
                if isinstance(hint, RejectConnection):
                    self._send(hint)
                else:
                    self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                         b"Connection: close\r\n\r\n")
            self.session.disconnected()
            self.sink.dead = True
            self.transport.close()

    def _pause_while_congested(self) -> None:
        """Most of the room is behind: stop reading this sender for a moment
        (as ``ChatProtocol._turn`` does)."""
        transport = self.transport
        assert transport is not None and self.session is not None
        transport.pause_reading()

        def recheck() -> None:
            if self.session is None or self.session.closed:
                return
            if self.session.congested():
                transport.call_later(CONGESTION_RECHECK, recheck)
            else:
                transport.resume_reading()

        transport.call_later(CONGESTION_RECHECK, recheck)

    def _event(self, event: object) -> None:
        session = self.session
        assert session is not None
        if isinstance(event, Request):
            self._send(AcceptConnection())
        elif isinstance(event, TextMessage):
            self._text(event)
        elif isinstance(event, BytesMessage):
            session.receive_many(self.texts)  # keep the order of replies
            self.texts = []
            session.reply(messages.error("bad_json", "send JSON in text messages"))
        elif isinstance(event, Ping):
            self._send(event.response())
        elif isinstance(event, CloseConnection):
            session.receive_many(self.texts)
            self.texts = []
            session.disconnected()
            self.sink.flush()
            self.sink.dead = True
            if self.ws.state is not ConnectionState.CLOSED:
                self._send(event.response())
            assert self.transport is not None
            self.transport.close()

    def _text(self, event: TextMessage) -> None:
        session = self.session
        assert session is not None
        if not self.skipping:
            self.parts.append(event.data)
            self.size += len(event.data)
            if self.size > self.service.max_line:
                self.skipping = True
                self.parts.clear()
                session.reply(messages.error(
                    "too_large", f"a message is at most {self.service.max_line} characters"))
        if event.message_finished:
            text = "".join(self.parts)
            self.parts.clear()
            self.size = 0
            if self.skipping:
                self.skipping = False
            elif text.strip():
                self.texts.append(text)

    def eof_received(self) -> bool | None:
        if self.session is not None:
            self.session.disconnected()
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.session is not None:
            self.session.disconnected()

    def server_stopping(self) -> None:
        if self.session is not None and not self.session.closed:
            self.session.reply(messages.error("shutting_down", "the server is shutting down"))
            self.session.disconnected("server stopping")
            self._close(CLOSE_GOING_AWAY)
