"""A test HTTP server with protocol switches: ``python -m tests.http.upgrade_server ENGINE``.

    /echo   any Upgrade: answers ``HTTP/1.1 101``, then echoes every byte; the
            first line it writes back is the request head it was handed
            (its length, then the bytes), so a test can check it is exact
    /ws     a WebSocket echo (wsproto), when wsproto is installed
    /       anything else: a plain page
"""

from __future__ import annotations

import sys
from typing import Any

from ionet.core.config import Endpoint, Limits
from ionet.core.protocol import Protocol
from ionet.core.server import serve
from ionet.http import HttpProtocol, HttpService, Request


class EchoUpgrade(Protocol):
    """Takes a connection over: reports the head it got, then echoes."""

    def __init__(self) -> None:
        self.received = b""
        self.answered = False

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.answered:
            self.transport.write(data)
            return
        self.received += data
        end = self.received.find(b"\r\n\r\n")
        if end < 0:
            return
        head, rest = self.received[:end + 4], self.received[end + 4:]
        self.answered = True
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n"
                             b"Connection: Upgrade\r\n\r\n%d\n%s" % (len(head), head) + rest)


class WebSocketEcho(Protocol):
    """The server side of a WebSocket (wsproto does the handshake): echoes text."""

    def __init__(self) -> None:
        from wsproto import ConnectionType, WSConnection

        self.ws = WSConnection(ConnectionType.SERVER)

    def data_received(self, data: bytes) -> None:
        from wsproto.events import (
            AcceptConnection,
            CloseConnection,
            Message,
            Ping,
            TextMessage,
        )
        from wsproto.events import (
            Request as WsRequest,
        )

        assert self.transport is not None
        self.ws.receive_data(data)
        out = b""
        for event in self.ws.events():
            if isinstance(event, WsRequest):
                out += self.ws.send(AcceptConnection())
            elif isinstance(event, TextMessage):
                out += self.ws.send(Message(data="echo: " + event.data))
            elif isinstance(event, Ping):
                out += self.ws.send(event.response())
            elif isinstance(event, CloseConnection):
                out += self.ws.send(event.response())
                self.transport.write(out)
                self.transport.close()
                return
        if out:
            self.transport.write(out)


class Page:
    allow = b"GET"

    def handle(self, request: Request, conn: HttpProtocol) -> None:
        conn.respond(request, 200, b"Content-Type: text/plain\r\n", b"plain " + request.path)


def service(**options: Any) -> HttpService:
    return HttpService(Page(), upgrades={"/echo": EchoUpgrade, "/ws": WebSocketEcho}, **options)


def main() -> int:
    engine = sys.argv[1]
    endpoints = [Endpoint("http", "tcp", "127.0.0.1", 0, service())]
    return serve(endpoints, engine, Limits(), announce=lambda line: print(line, flush=True))


if __name__ == "__main__":
    raise SystemExit(main())
