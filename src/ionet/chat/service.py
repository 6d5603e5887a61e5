"""The chat service: one lobby, its front doors, and the endpoints to serve them.

The page and the WebSocket go through ionet's HTTP server: a
:class:`~ionet.http.protocol.HttpService` whose handler is
:class:`~ionet.chat.page.ChatPage` and whose upgrade table sends
``/chat/ws`` to :meth:`ChatService.websocket_protocol` (:meth:`ChatService.http_site`).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterable

from ionet.chat.page import PAGE_PATH, WS_PATH, ChatPage
from ionet.chat.room import Lobby
from ionet.chat.session import DEFAULT_SINK_CAP, SHARED_THREAD_ENGINES, Flusher
from ionet.chat.tcp import ChatProtocol
from ionet.chat.udp import DEFAULT_UDP_TIMEOUT, UdpChatProtocol
from ionet.chat.ws import WebSocketChatProtocol
from ionet.core.config import Endpoint
from ionet.core.protocol import BaseTransport
from ionet.http.mount import Site
from ionet.http.protocol import HttpService
from ionet.http.status import BUSY_REPLY as HTTP_BUSY_REPLY

__all__ = ["ChatService", "DEFAULT_PORT", "DEFAULT_HTTP_PORT", "MAX_LINE"]

DEFAULT_PORT = 8889
DEFAULT_HTTP_PORT = 8000
#: The longest TCP line / WebSocket message accepted (bytes / characters).
MAX_LINE = 16 * 1024


class ChatService:
    """Everything one chat server process shares between its connections.

    Args:
        lobby: the rooms (with a Redis bus for several processes).
        admin_token: the secret that makes a connection the administrator
            (None: nobody can be).
        udp_timeout: seconds of silence after which a UDP client is dropped.
        sink_cap: bytes a slow receiver may have waiting before it is dropped.
        clock: the monotonic clock of the UDP door's timeouts (tests fake it).
        allowed_origins: web origins (``"https://chat.example.com"``) whose
            pages may open the WebSocket besides the server's own; see
            :mod:`ionet.chat.ws`.
    """

    def __init__(self, lobby: Lobby | None = None, admin_token: str | None = None,
                 udp_timeout: float = DEFAULT_UDP_TIMEOUT, sink_cap: int = DEFAULT_SINK_CAP,
                 max_line: int = MAX_LINE, clock: Callable[[], float] = time.monotonic,
                 allowed_origins: Iterable[str] = ()) -> None:
        self.lobby = lobby if lobby is not None else Lobby()
        self.admin_token = admin_token
        self.udp_timeout = udp_timeout
        self.sink_cap = sink_cap
        self.max_line = max_line
        self.clock = clock
        self.allowed_origins = frozenset(origin.lower().rstrip("/") for origin in allowed_origins)
        self._flushers: dict[int, Flusher] = {}

    def flusher(self, transport: BaseTransport) -> Flusher | None:
        """The flusher of the calling thread's event loop (None off loop engines)."""
        if transport.get_extra_info("engine") not in SHARED_THREAD_ENGINES:
            return None
        ident = threading.get_ident()
        flusher = self._flushers.get(ident)
        if flusher is None:
            flusher = self._flushers[ident] = Flusher(self.clock)
        return flusher

    # -- protocol factories -----------------------------------------------------------

    def tcp_protocol(self) -> ChatProtocol:
        return ChatProtocol(self)

    def udp_protocol(self) -> UdpChatProtocol:
        return UdpChatProtocol(self)

    def websocket_protocol(self) -> WebSocketChatProtocol:
        """For the HTTP server's upgrade hook: see :mod:`ionet.chat.ws`."""
        return WebSocketChatProtocol(self)

    def http_site(self) -> Site:
        """The page and the WebSocket, for a shared HTTP server (``ionet up``)."""
        return Site(PAGE_PATH, ChatPage(), {WS_PATH: self.websocket_protocol})

    def http_service(self) -> HttpService:
        """An HTTP server of the page alone (``ionet chat serve --http-port``)."""
        return HttpService(ChatPage(), upgrades={WS_PATH: self.websocket_protocol})

    def endpoints(self, host: str, port: int = DEFAULT_PORT, http_port: int | None = None,
                  ssl_context: ssl.SSLContext | None = None, udp: bool = True) -> list[Endpoint]:
        """TCP (TLS with a context) and UDP on one port number; the page and
        WebSocket on ``http_port`` (None: not served here)."""
        tcp = Endpoint("chat", "tcp", host, port, self.tcp_protocol, ssl=ssl_context)
        endpoints = [tcp]
        if udp:
            endpoints.append(Endpoint("chat", "udp", host, port, self.udp_protocol,
                                      same_port_as=tcp))
        if http_port is not None:
            endpoints.append(Endpoint("chat-http", "tcp", host, http_port, self.http_service(),
                                      ssl=ssl_context, busy_reply=HTTP_BUSY_REPLY))
        return endpoints
