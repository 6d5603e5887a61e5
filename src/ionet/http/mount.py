"""Two handlers behind one server: a prefix goes to one, everything else to the other.

``ionet http serve DIR --app mod:app`` serves the app, with DIR's files under
``/static/``: ``Mount("/static/", StaticFiles(DIR, prefix="/static/"), gateway)``.
The inner handler sees the full path (it strips the prefix itself), so the
URLs it builds, such as a directory redirect, stay correct.

Other services put their pages into one server the same way: each describes
its part as a :class:`Site` (a prefix, its handler, its WebSocket paths), and
:func:`compose` nests one ``Mount`` per site over the server's own handler.
``ionet up`` does this for the chat's page on port 8000::

    handler, upgrades = compose([Site("/chat/", ChatPage(), {"/chat/ws": ws})],
                                StaticFiles(www))
    HttpService(handler, upgrades=upgrades)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ionet.core.protocol import Protocol
    from ionet.http.parser import Request
    from ionet.http.protocol import Handler, HttpProtocol

__all__ = ["Mount", "Site", "compose"]


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


class Site(NamedTuple):
    """One service's part of a shared HTTP server.

    Attributes:
        prefix: where its pages live (``"/chat/"``), as for :class:`Mount`.
        handler: answers the requests under the prefix (it sees full paths).
        upgrades: URL path -> protocol factory, for ``HttpService(upgrades=...)``
            (``{"/chat/ws": service.websocket_protocol}``).
    """

    prefix: str
    handler: Handler
    upgrades: Mapping[str, Callable[[], Protocol]] = {}


def compose(sites: Iterable[Site], fallback: Handler
            ) -> tuple[Handler, dict[str, Callable[[], Protocol]]]:
    """One handler and one upgrade table for ``HttpService`` from several sites.

    Each site is a :class:`Mount` around the ones before it; the first site
    is tried first, and ``fallback`` answers every path no site claims.

    Returns:
        ``(handler, upgrades)``: ``fallback`` itself when there are no sites.

    Raises:
        ValueError: two sites share a prefix or an upgrade path, or a
            prefix is malformed (see :class:`Mount`).
    """
    sites = list(sites)
    prefixes = [site.prefix for site in sites]
    for prefix in prefixes:
        if prefixes.count(prefix) > 1:
            raise ValueError(f"two sites are mounted at {prefix!r}")
    handler: Handler = fallback
    upgrades: dict[str, Callable[[], Protocol]] = {}
    for site in reversed(sites):
        handler = Mount(site.prefix, site.handler, handler)
        for path, factory in site.upgrades.items():
            if path in upgrades:
                raise ValueError(f"two sites upgrade {path!r}")
            upgrades[path] = factory
    return handler, upgrades
