"""The chat's web page, as a handler for ionet's HTTP server.

:class:`ChatPage` answers the plain HTTP requests; the WebSocket upgrade at
``/chat/ws`` never reaches it, since the server hands such a connection to
the chat's WebSocket protocol (``HttpService(upgrades=...)``)::

    HttpService(ChatPage(), upgrades={WS_PATH: service.websocket_protocol})

It is the whole site under ``ionet chat serve --http-port``, and mounted at
``/chat/`` beside the static files under ``ionet up``
(:func:`ionet.http.mount.compose`).  Like every handler it does no IO: it
answers through the connection's response methods.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import re
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ionet.http.parser import Request
    from ionet.http.protocol import HttpProtocol

__all__ = ["ChatPage", "PAGE_PATH", "WS_PATH", "page"]

PAGE_PATH = "/chat/"
WS_PATH = "/chat/ws"

_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
_ALLOW = b"GET, HEAD"


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


class ChatPage:
    """GET/HEAD ``/chat/``: the page; ``/chat/ws`` without an upgrade: 426;
    ``/`` and ``/chat``: a redirect to the page; anything else: 404.

    The redirect from ``/`` matters only when the page is the whole site:
    mounted at ``/chat/``, this handler sees nothing else.
    """

    allow = _ALLOW

    def __init__(self) -> None:
        body, policy = page()
        self.body = body
        self.headers = (b"Content-Type: text/html; charset=utf-8\r\n"
                        b"Content-Security-Policy: " + policy.encode() + b"\r\n"
                        b"X-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\n")
        self._page = PAGE_PATH.encode()
        self._ws = WS_PATH.encode()
        self._to_page = {b"/", self._page[:-1]}

    def handle(self, request: Request, conn: HttpProtocol) -> None:
        path = request.path
        if path == self._page:
            if request.method in (b"GET", b"HEAD"):
                conn.respond(request, 200, self.headers, self.body)
            else:
                conn.respond_error(request, 405, b"Allow: " + _ALLOW + b"\r\n")
        elif path == self._ws:
            # RFC 9110 section 15.5.22: a 426 names the protocol to switch to.
            conn.respond_error(request, 426, b"Upgrade: websocket\r\n")
        elif path in self._to_page:
            conn.respond(request, 302, b"Location: " + self._page + b"\r\n")
        else:
            conn.respond_error(request, 404)
