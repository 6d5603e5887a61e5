"""A minimal HTTP door for the chat: the page at ``/chat/``, WebSocket at ``/chat/ws``.

Stand-in until the chat is mounted in ionet's HTTP server: it reads one
request head, then either serves the page (and closes), hands the connection
to :class:`~ionet.chat.ws.WebSocketChatProtocol` (for ``GET /chat/ws`` with
``Upgrade: websocket``), or answers 404.  The hand-over is exactly what the
HTTP server's hook will do: ``set_protocol``, ``connection_made``, then the
raw request head and any bytes after it through ``data_received``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import re
from functools import lru_cache
from typing import TYPE_CHECKING

from ionet.core.protocol import Protocol, Transport

if TYPE_CHECKING:
    from ionet.chat.service import ChatService

__all__ = ["HttpDoor", "page", "PAGE_PATH", "WS_PATH"]

PAGE_PATH = "/chat/"
WS_PATH = "/chat/ws"
MAX_HEAD = 16 * 1024

_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


@lru_cache(maxsize=1)
def page() -> tuple[bytes, str]:
    """The chat page and its Content-Security-Policy.

    The policy allows only the page's own inline script (by its SHA-256),
    so even a bug in the escaping could not run a script a user sent.
    """
    body = importlib.resources.files("ionet.chat").joinpath("static/index.html").read_bytes()
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode()}'"
        for m in _SCRIPT.finditer(body))
    policy = (f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; "
              "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'")
    return body, policy


class HttpDoor(Protocol):
    """Serve one HTTP request: the page, the WebSocket upgrade, or 404."""

    def __init__(self, service: ChatService) -> None:
        self.service = service
        self.buffer = b""
        self.done = False

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.done:
            return
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self._respond(431, "Request Header Fields Too Large", b"request head too large\n")
            return
        head, rest = self.buffer[: end + 4], self.buffer[end + 4:]
        lines = head[:end].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._respond(400, "Bad Request", b"bad request line\n")
            return
        method, target, _version = parts
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        path = target.split("?", 1)[0]
        if path == WS_PATH:
            if method != "GET" or "websocket" not in headers.get("upgrade", "").lower():
                self._respond(426, "Upgrade Required", b"this is a WebSocket endpoint\n",
                              extra=b"Upgrade: websocket\r\n")
                return
            self.done = True
            ws = self.service.websocket_protocol()
            assert self.transport is not None
            self.transport.set_protocol(ws)
            ws.connection_made(self.transport)
            ws.data_received(head + rest)
        elif path == PAGE_PATH and method in ("GET", "HEAD"):
            body, policy = page()
            extra = (f"Content-Security-Policy: {policy}\r\n"
                     "X-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\n").encode()
            self._respond(200, "OK", body, "text/html; charset=utf-8", extra, head_only=method == "HEAD")
        elif path in ("/", "/chat"):
            self._respond(302, "Found", b"", extra=f"Location: {PAGE_PATH}\r\n".encode())
        else:
            self._respond(404, "Not Found", b"not found\n")

    def _respond(self, status: int, reason: str, body: bytes,
                 content_type: str = "text/plain; charset=utf-8", extra: bytes = b"",
                 head_only: bool = False) -> None:
        self.done = True
        assert self.transport is not None
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n".encode()
            + extra + b"\r\n" + (b"" if head_only else body))
        self.transport.close()
