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

Origins (RFC 6455 section 10.2).  A browser lets any page open a WebSocket
to any server, cookies and all, and tells the server only through the
``Origin`` header which page asked: without a check, a page on another site
could join the chat in its visitor's name (cross-site WebSocket hijacking).
So a handshake that carries an ``Origin`` is accepted only when that origin's
host and port are the request's ``Host`` (the page came from this very
server, as ``/chat/`` does), or when it is one of the service's
``allowed_origins`` (``ionet chat serve --allow-origin https://chat.example.com``,
for a page served elsewhere or behind a proxy that rewrites ``Host``).
Anything else is refused with 403 before the handshake completes.  A
handshake without ``Origin`` comes from a program, not a browser page, and is
accepted: such a client could send any ``Origin`` it liked anyway.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

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

__all__ = ["WebSocketChatProtocol", "origin_allowed"]

log = logging.getLogger("ionet.chat")

#: The port a URL scheme implies when its authority names none.
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}

#: The longest handshake request head (wsproto's h11 refuses longer ones).
MAX_HEAD = 16 * 1024

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
        self.head = b""  # the handshake request, until complete

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
        if self.ws.state is ConnectionState.CONNECTING:
            # wsproto's server side drops whatever follows the request head
            # in the same call (frames a client sent without waiting for
            # our 101): give it the head alone, and the rest once it is open.
            searched = max(len(self.head) - 3, 0)
            self.head += data
            end = self.head.find(b"\r\n\r\n", searched)
            if end < 0 and len(self.head) <= MAX_HEAD:
                return
            if end < 0:  # too long: wsproto refuses it
                data, rest = self.head, b""
            else:
                data, rest = self.head[:end + 4], self.head[end + 4:]
            self.head = b""
            self._receive(data)
            if rest and self.ws.state is ConnectionState.OPEN:
                self._receive(rest)
        else:
            self._receive(data)

    def _receive(self, data: bytes) -> None:
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
            origin = dict(event.extra_headers).get(b"origin")
            if origin is None or origin_allowed(origin.decode("latin-1"), event.host,
                                                self.service.allowed_origins):
                self._send(AcceptConnection())
            else:
                log.info("chat ws: refused a page from %r (Host %r)", origin, event.host)
                self._send(RejectConnection(status_code=403, headers=[(b"connection", b"close")]))
                session.disconnected()
                self.sink.dead = True
                assert self.transport is not None
                self.transport.close()
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
            self.session.detach()

    def server_stopping(self) -> None:
        if self.session is not None and not self.session.closed:
            self.session.reply(messages.error("shutting_down", "the server is shutting down"))
            self.session.disconnected("server stopping")
            self._close(CLOSE_GOING_AWAY)


def _host_port(authority: str, scheme: str) -> tuple[str, int] | None:
    """``("example.com", 8000)`` from ``example.com:8000`` (the scheme's port
    when none is given), or None when it cannot be read."""
    try:
        parts = urlsplit(f"//{authority}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    return host.lower(), port if port is not None else DEFAULT_PORTS.get(scheme, 0)


def origin_allowed(origin: str, host: str, allowed: frozenset[str] = frozenset()) -> bool:
    """May a page of ``origin`` open a WebSocket to the server this ``Host`` names?

    Args:
        origin: the handshake's ``Origin`` (``"http://127.0.0.1:8000"``;
            ``"null"`` from a sandboxed or local page).
        host: the handshake's ``Host`` header.
        allowed: further origins, lower-case, without a trailing slash.

    Returns:
        True for the same host and port (the port of the origin's scheme
        when a side names none), or an allowed origin.
    """
    origin = origin.strip().lower()
    if origin in allowed:
        return True
    scheme, sep, authority = origin.partition("://")
    if not sep or scheme not in DEFAULT_PORTS:
        return False
    mine = _host_port(host.strip(), scheme)
    theirs = _host_port(authority, scheme)
    return mine is not None and mine == theirs
