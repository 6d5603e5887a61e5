"""The project's static folder, served under ``STATIC_URL`` by the app itself.

So the project works the same under any WSGI server.  (In front of real
traffic, let the HTTP server send these files: ``ionet http serve
PROJECT/static --app ...`` or ``--upstream ...`` mounts the folder under
``/static/`` with sendfile and ranges, and the app never sees those requests.)

Paths are jailed as starlette's ``StaticFiles`` does: the requested path is
joined to the folder, resolved with ``realpath`` (``..`` and symlinks
followed), and must still lie inside the folder (``commonpath``).  Hidden
names (``.git``, ``.env``) are not served, nor are folders (no listings).
Responses carry ``ETag`` and ``Last-Modified``, and a matching
``If-None-Match`` / ``If-Modified-Since`` gets 304 with no body.
"""

from __future__ import annotations

import os
from email.utils import parsedate_to_datetime
from pathlib import Path

from ionet.web.errors import MethodNotAllowed, NotFound
from ionet.web.request import Request
from ionet.web.response import FileResponse, Response

__all__ = ["StaticFolder"]


class StaticFolder:
    """Files of ``directory`` under the URL path ``prefix``.

    Args:
        directory: the folder (must exist).
        prefix: a path like ``/static/``.
        max_age: seconds browsers may reuse a file without asking
            (0: ``no-cache``, they revalidate with the ETag every time).
    """

    def __init__(self, directory: Path, prefix: str = "/static/", max_age: int = 0) -> None:
        self.directory = os.path.realpath(directory)
        self.prefix = prefix
        self.cache_control = f"public, max-age={max_age}" if max_age > 0 else "no-cache"

    def handles(self, path: str) -> bool:
        return path.startswith(self.prefix)

    def lookup(self, relative: str) -> str | None:
        """The real path of ``relative`` inside the folder, or None."""
        if "\x00" in relative or "\\" in relative:
            return None
        parts = [part for part in relative.split("/") if part]
        if not parts or any(part.startswith(".") for part in parts):
            return None
        full = os.path.realpath(os.path.join(self.directory, *parts))
        if os.path.commonpath([full, self.directory]) != self.directory:
            return None
        return full if os.path.isfile(full) else None

    def serve(self, request: Request) -> Response:
        """Answer ``request`` (its path starts with the prefix).

        Raises:
            NotFound: no such file (or a hidden one, or outside the folder).
            MethodNotAllowed: neither GET nor HEAD.
        """
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed({"GET", "HEAD"})
        found = self.lookup(request.path[len(self.prefix):])
        if found is None:
            raise NotFound()
        response = FileResponse(found)
        response.set_header("Cache-Control", self.cache_control)
        if not_modified(request, response):
            return Response(b"", 304, [(name, value) for name, value in response.headers
                                       if name in ("ETag", "Last-Modified", "Cache-Control")],
                            content_type=None)
        return response


def not_modified(request: Request, response: FileResponse) -> bool:
    """Whether the client's cached copy is current (RFC 9110 section 13.1)."""
    match = request.environ.get("HTTP_IF_NONE_MATCH")
    if match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in match.split(",")]
        return "*" in tags or response.etag in tags
    since = request.environ.get("HTTP_IF_MODIFIED_SINCE")
    if since:
        try:
            return int(response.mtime) <= parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError, IndexError):
            return False
    return False
