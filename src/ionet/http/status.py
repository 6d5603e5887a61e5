"""Status lines, error pages and the ``Date`` header: everything precomputed.

A server answering 50,000 requests a second cannot afford to format
``"HTTP/1.1 200 OK\\r\\n"`` or a date string for each of them.  This module
builds every status line once at import, every error page once, and the
``Date:`` header once per second (:class:`HttpClock`), so the per-request work
is a dictionary lookup and a ``b"".join``.

:class:`HttpError` is how the parser and the handlers say "answer with this
status and (usually) close": a :class:`~ionet.core.errors.PeerError` whose
``status_hint`` is the HTTP status to send.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from http import HTTPStatus

from ionet.core.errors import PeerError

__all__ = [
    "BUSY_REPLY",
    "REASONS",
    "STATUS_LINES",
    "HttpClock",
    "HttpError",
    "error_page",
    "http_date",
    "parse_http_date",
    "status_line",
]

#: Status code -> reason phrase, as bytes (``200 -> b"OK"``).
REASONS: dict[int, bytes] = {status.value: status.phrase.encode() for status in HTTPStatus}

#: Status code -> complete status line.  We always answer ``HTTP/1.1``, also
#: to HTTP/1.0 clients: RFC 9110 section 6.2 has a server send its own
#: highest version, and 1.0 clients read it fine (we never send them chunks).
STATUS_LINES: dict[int, bytes] = {
    code: b"HTTP/1.1 %d %s\r\n" % (code, reason) for code, reason in REASONS.items()
}

#: Sent to a connection over the server's connection limit before closing it
#: (the engine writes these bytes as they are, without reading a request).
BUSY_REPLY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
              b"Connection: close\r\nRetry-After: 1\r\n\r\n")

#: Statuses whose responses never have a body (RFC 9110 section 6.4.1).
NO_BODY_STATUSES = frozenset({204, 304} | set(range(100, 200)))

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class HttpError(PeerError):
    """A request we answer with an error status.

    Args:
        status: the HTTP status to send (400, 413, 431, ...).
        message: what went wrong, for the log (never echoed to the client:
            error pages are fixed text, so nothing the peer sent is reflected).
        close: close the connection after the error page.  True for every
            framing error, since the rest of the stream cannot be trusted.
    """

    def __init__(self, status: int, message: str = "", close: bool = True) -> None:
        super().__init__(message or REASONS.get(status, b"Error").decode(), status_hint=status)
        self.status = status
        self.close = close


def status_line(status: int, reason: str | None = None) -> bytes:
    """The status line for ``status``, with a custom ``reason`` if given.

    Raises:
        ValueError: the reason contains a control character (CR/LF injection).
    """
    if reason is None:
        line = STATUS_LINES.get(status)
        if line is not None:
            return line
        reason = "Unknown"
    if any(ord(c) < 32 or ord(c) == 127 for c in reason):
        raise ValueError(f"control character in the reason phrase {reason!r}")
    return b"HTTP/1.1 %d %s\r\n" % (status, reason.encode("latin-1"))


def _build_error_pages() -> dict[int, bytes]:
    pages = {}
    for code, reason in REASONS.items():
        if code < 400:
            continue
        title = f"{code} {reason.decode()}"
        pages[code] = (
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title></head>\n"
            f"<body><h1>{html.escape(title)}</h1><hr><p>ionet</p></body></html>\n"
        ).encode()
    return pages


_ERROR_PAGES = _build_error_pages()
ERROR_PAGE_HEADERS = b"Content-Type: text/html; charset=utf-8\r\n"


def error_page(status: int) -> bytes:
    """The fixed HTML body for an error status (an empty one for unknown codes)."""
    return _ERROR_PAGES.get(status, b"")


def http_date(timestamp: float) -> str:
    """Format a POSIX time as an IMF-fixdate: ``Sun, 06 Nov 1994 08:49:37 GMT``.

    Formatted by hand rather than with ``time.strftime``: ``%a``/``%b``
    follow the locale, and HTTP dates are always English.
    """
    t = time.gmtime(timestamp)
    return (f"{_WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def parse_http_date(value: bytes | str) -> float | None:
    """Parse an HTTP date (any of the three forms RFC 9110 allows); None if invalid."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    return parsed.timestamp()


class HttpClock:
    """The ``Date``/``Server`` header block and the access-log time, cached per second.

    Args:
        server: the ``Server`` header value ("" to send none).
        clock: wall-clock time (``time.time``); a test may fix it.
    """

    def __init__(self, server: str = "ionet", clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.time
        self._server = f"Server: {server}\r\n".encode("latin-1") if server else b""
        self._second = -1
        self._date_server = b""
        self._date_only = b""
        self._log_time = ""

    def _refresh(self, second: int) -> None:
        self._second = second
        date = http_date(second)
        self._date_only = f"Date: {date}\r\n".encode()
        self._date_server = self._date_only + self._server
        t = time.localtime(second)
        offset = t.tm_gmtoff // 60
        sign = "+" if offset >= 0 else "-"
        self._log_time = (f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
                          f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} "
                          f"{sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}")

    def headers(self, date: bool = True, server: bool = True) -> bytes:
        """``Date:`` and ``Server:`` header lines (each may be left out)."""
        second = int(self._clock())
        if second != self._second:
            self._refresh(second)
        if date and server:
            return self._date_server
        if date:
            return self._date_only
        return self._server if server else b""

    def log_time(self) -> str:
        """Now, as Common Log Format writes it: ``10/Oct/2000:13:55:36 -0700``."""
        second = int(self._clock())
        if second != self._second:
            self._refresh(second)
        return self._log_time
