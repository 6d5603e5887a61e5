"""Responses: a status, headers and a body, which is itself a WSGI app.

A view returns one of these, or something the app turns into one: a ``str``
(HTML), a ``dict`` or ``list`` (JSON), ``bytes``, or a tuple ``(body,
status)`` / ``(body, status, headers)``.

Header values are checked when they are set: a value holding CR or LF
(say, a redirect to a URL taken from a form) would let the client write a
header, or a whole response, of its own; it raises ``ValueError`` instead.
"""

from __future__ import annotations

import html
import json
import mimetypes
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from ionet.web.errors import NotFound, reason

__all__ = [
    "FileResponse",
    "HTMLResponse",
    "JSONResponse",
    "RedirectResponse",
    "Response",
    "StreamResponse",
    "make_response",
]

HTML = "text/html; charset=utf-8"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_COOKIE_VALUE = re.compile(r"[!#-+\--:<-\[\]-~]*\Z")  # RFC 6265 cookie-octet
#: Blocks read from a file when the server has no ``wsgi.file_wrapper``.
FILE_BLOCK = 64 * 1024


def check_header(name: str, value: str) -> None:
    """Raise ``ValueError`` unless ``name: value`` is one safe header line."""
    if not isinstance(name, str) or not _TOKEN.match(name):
        raise ValueError(f"invalid header name {name!r}")
    if not isinstance(value, str):
        raise TypeError(f"header {name} must be a str, not {type(value).__name__}")
    if _BAD_VALUE.search(value):
        raise ValueError(f"CR, LF or NUL in the value of header {name!r}")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"header {name!r} must be latin-1 (percent-encode it)") from None


class Response:
    """A response: ``Response("<p>hi</p>")``, ``Response(b"...", 201, content_type=...)``.

    Args:
        body: bytes, a str (encoded as UTF-8), or an iterable of bytes
            (streamed, no Content-Length unless given in ``headers``).
        status: the status code.
        headers: a list of ``(name, value)`` pairs or a dict.
        content_type: the Content-Type, unless ``headers`` has one
            (None: send none).
    """

    def __init__(self, body: bytes | str | Iterable[bytes] = b"", status: int = 200,
                 headers: list[tuple[str, str]] | dict[str, str] | None = None,
                 content_type: str | None = HTML) -> None:
        if not isinstance(status, int) or not 100 <= status <= 999:
            raise ValueError(f"invalid status {status!r}")
        self.status = status
        self.headers: list[tuple[str, str]] = []
        items = headers.items() if isinstance(headers, dict) else (headers or ())
        for name, value in items:
            self.add_header(name, value)
        if content_type is not None and self.get_header("Content-Type") is None:
            self.headers.append(("Content-Type", content_type))
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.body: bytes | Iterable[bytes] = body

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.status}>"

    @property
    def status_text(self) -> str:
        """``"200 OK"``: the WSGI status string."""
        return f"{self.status} {reason(self.status)}"

    # -- headers -------------------------------------------------------------

    def get_header(self, name: str, default: str | None = None) -> str | None:
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return default

    def add_header(self, name: str, value: str) -> None:
        """Add a header line (``Set-Cookie`` may repeat); checked first."""
        value = str(value) if isinstance(value, int) else value
        check_header(name, value)
        self.headers.append((name, value))

    def set_header(self, name: str, value: str) -> None:
        """Set a header, replacing any line of that name."""
        self.remove_header(name)
        self.add_header(name, value)

    def remove_header(self, name: str) -> None:
        lower = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lower]

    def set_cookie(self, name: str, value: str, *, max_age: int | None = None,
                   path: str = "/", domain: str | None = None, secure: bool = False,
                   httponly: bool = True, samesite: str | None = "Lax") -> None:
        """Add a ``Set-Cookie`` header.

        ``HttpOnly`` and ``SameSite=Lax`` by default: scripts cannot read the
        cookie, and other sites' forms cannot send it along with a POST.

        Raises:
            ValueError: a name or value with characters a cookie cannot hold
                (percent-encode the value first).
        """
        if not _TOKEN.match(name):
            raise ValueError(f"invalid cookie name {name!r}")
        if not _COOKIE_VALUE.match(value):
            raise ValueError(f"invalid characters in the value of cookie {name!r}")
        parts = [f"{name}={value}"]
        if max_age is not None:
            parts.append(f"Max-Age={int(max_age)}")
            parts.append("Expires=" + formatdate(
                0 if max_age <= 0 else time.time() + max_age, usegmt=True))
        if path:
            parts.append(f"Path={path}")
        if domain:
            parts.append(f"Domain={domain}")
        if secure:
            parts.append("Secure")
        if httponly:
            parts.append("HttpOnly")
        if samesite:
            parts.append(f"SameSite={samesite}")
        self.add_header("Set-Cookie", "; ".join(parts))

    def delete_cookie(self, name: str, path: str = "/", domain: str | None = None) -> None:
        """Tell the browser to forget cookie ``name``."""
        self.set_cookie(name, "", max_age=0, path=path, domain=domain)

    # -- WSGI -------------------------------------------------------------------

    def wsgi_headers(self) -> list[tuple[str, str]]:
        """The header list to hand to ``start_response``."""
        headers = self.headers
        if isinstance(self.body, bytes) and self.get_header("Content-Length") is None:
            headers = [*headers, ("Content-Length", str(len(self.body)))]
        return headers

    def iterable(self, environ: dict[str, Any]) -> Iterable[bytes]:
        """The body as the WSGI result."""
        body = self.body
        if isinstance(body, bytes):
            return [body]
        return body

    def close(self) -> None:
        """Release what the body holds (an open file) when it will not be sent."""
        close = getattr(self.body, "close", None)
        if close is not None:
            close()

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(self.status_text, self.wsgi_headers())
        return self.iterable(environ)


class HTMLResponse(Response):
    """An HTML page (UTF-8)."""

    def __init__(self, html: str, status: int = 200,
                 headers: list[tuple[str, str]] | dict[str, str] | None = None) -> None:
        super().__init__(html, status, headers, HTML)


class JSONResponse(Response):
    """``data`` as JSON (UTF-8, compact).

    Raises:
        TypeError: ``data`` holds something JSON cannot represent.
    """

    def __init__(self, data: Any, status: int = 200,
                 headers: list[tuple[str, str]] | dict[str, str] | None = None) -> None:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        super().__init__(body, status, headers, "application/json")
        self.data = data


class RedirectResponse(Response):
    """Send the browser to ``location``.

    303 (See Other) by default: after a POST, the browser follows with a GET,
    so reloading the result page does not post the form again (the
    "post/redirect/get" pattern).  Use 301/308 for permanent moves, 307 to
    keep the method.
    """

    def __init__(self, location: str, status: int = 303,
                 headers: list[tuple[str, str]] | dict[str, str] | None = None) -> None:
        if not 300 <= status <= 399:
            raise ValueError(f"a redirect status is 3xx, not {status}")
        # Non-ASCII (an IRI) is percent-encoded; CR/LF still fail the check.
        target = quote(location, safe="/:@!$&'()*+,;=-._~?#%[]\r\n\x00")
        page = f'<!DOCTYPE html>\n<p>Redirecting to <a href="{html.escape(target)}">here</a>.</p>\n'
        super().__init__(page, status, headers, HTML)
        self.set_header("Location", target)


class StreamResponse(Response):
    """A body produced piece by piece (``iterable`` of bytes or str), sent as it comes."""

    def __init__(self, iterable: Iterable[bytes | str], status: int = 200,
                 headers: list[tuple[str, str]] | dict[str, str] | None = None,
                 content_type: str = "application/octet-stream") -> None:
        super().__init__(_encoded(iterable), status, headers, content_type)


def _encoded(iterable: Iterable[bytes | str]) -> Iterator[bytes]:
    try:
        for piece in iterable:
            yield piece.encode("utf-8") if isinstance(piece, str) else piece
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()


class FileResponse(Response):
    """A file from disk, sent with the server's ``wsgi.file_wrapper`` (sendfile on ionet).

    Args:
        path: the file.
        content_type: guessed from the name if None (text types get UTF-8).
        download_name: send ``Content-Disposition: attachment`` with this name.
        headers: extra headers.

    Raises:
        NotFound: no such regular file.
    """

    def __init__(self, path: str | Path, content_type: str | None = None,
                 download_name: str | None = None,
                 headers: list[tuple[str, str]] | dict[str, str] | None = None,
                 status: int = 200) -> None:
        self.path = Path(path)
        try:
            info = os.stat(self.path)
        except OSError:
            raise NotFound() from None
        if not stat.S_ISREG(info.st_mode):
            raise NotFound()
        if content_type is None:
            content_type = guess_type(self.path.name)
        super().__init__(b"", status, headers, content_type)
        self.size = info.st_size
        self.mtime = info.st_mtime
        #: Strong enough for static files: it changes when the file does.
        self.etag = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
        self.set_header("Content-Length", str(self.size))
        self.set_header("Last-Modified", formatdate(info.st_mtime, usegmt=True))
        self.set_header("ETag", self.etag)
        if download_name is not None:
            ascii_name = download_name.encode("ascii", "replace").decode().replace('"', "")
            self.set_header("Content-Disposition",
                            f"attachment; filename=\"{ascii_name}\"; "
                            f"filename*=UTF-8''{quote(download_name, safe='')}")

    def iterable(self, environ: dict[str, Any]) -> Iterable[bytes]:
        file: IO[bytes] = open(self.path, "rb")  # noqa: SIM115 - the server closes it
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None:
            result: Iterable[bytes] = wrapper(file, FILE_BLOCK)
            return result
        return _read_blocks(file)

    def close(self) -> None:
        pass  # the file is opened only when sent


def _read_blocks(file: IO[bytes]) -> Iterator[bytes]:
    with file:
        while block := file.read(FILE_BLOCK):
            yield block


def guess_type(name: str) -> str:
    """A Content-Type for a file name; text types say UTF-8."""
    kind, encoding = mimetypes.guess_type(name)
    if kind is None or encoding is not None:
        return "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/javascript", "image/svg+xml"):
        return f"{kind}; charset=utf-8"
    return kind


def make_response(value: Any) -> Response:
    """Turn what a view returned into a Response.

    Raises:
        TypeError: the view returned None or something else unknown.
    """
    if isinstance(value, Response):
        return value
    if isinstance(value, tuple):
        if len(value) not in (2, 3) or not isinstance(value[1], int):
            raise TypeError("a view's tuple is (body, status) or (body, status, headers)")
        response = make_response(value[0])
        response.status = value[1]
        if len(value) == 3:
            items = value[2].items() if isinstance(value[2], dict) else value[2]
            for name, header in items:
                response.set_header(name, header)
        return response
    if isinstance(value, str):
        return HTMLResponse(value)
    if isinstance(value, (bytes, bytearray)):
        return Response(bytes(value))
    if isinstance(value, (dict, list)):
        return JSONResponse(value)
    if value is None:
        raise TypeError("the view returned None: return a Response, a str, a dict or a list")
    raise TypeError(f"a view cannot return a {type(value).__name__}")
