"""Two handlers behind one server: a prefix goes to one, everything else to the other.

``ionet http serve DIR --app mod:app`` serves the app, with DIR's files under
``/static/``: ``Mount("/static/", StaticFiles(DIR, prefix="/static/"), gateway)``.
The inner handler sees the full path (it strips the prefix itself), so the
URLs it builds, such as a directory redirect, stay correct.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ionet.http.parser import Request
    from ionet.http.protocol import Handler, HttpProtocol

__all__ = ["Mount"]


class Mount:
    """Route requests whose path starts with ``prefix`` to ``inner``, the rest to ``fallback``.

    Args:
        prefix: a URL path starting and ending with ``/`` (``"/static/"``).
            The bare prefix without its slash (``/static``) is redirected to it.
        inner: the handler for the prefix.
        fallback: the handler for every other path.
    """

    def __init__(self, prefix: str, inner: Handler, fallback: Handler) -> None:
        if not prefix.startswith("/") or not prefix.endswith("/") or prefix == "/":
            raise ValueError(f"a mount prefix looks like '/static/', not {prefix!r}")
        self.prefix = prefix.encode()
        self._bare = self.prefix[:-1]
        self.inner = inner
        self.fallback = fallback
        self.allow = fallback.allow

    def handle(self, request: Request, conn: HttpProtocol) -> None:
        path = request.path
        if path.startswith(self.prefix):
            self.inner.handle(request, conn)
        elif path == self._bare:
            conn.respond(request, 301, b"Location: " + self.prefix + b"\r\n")
        else:
            self.fallback.handle(request, conn)
