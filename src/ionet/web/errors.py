"""HTTP errors a view can raise, and the error pages the app answers with.

Like bottle's ``HTTPError``, an error is an exception that says which
response to send: ``raise NotFound()`` anywhere in a view (or a helper it
calls) and the app answers 404.  The page is the project's template
``<status>.html`` when it has one (``404.html``), else a small built-in page.

Error pages never echo what the client sent unescaped; a 500 page shows the
traceback only in debug mode (``DEBUG = True``), since a traceback shows
source lines, paths and sometimes values that are nobody else's business.
"""

from __future__ import annotations

import html
from http import HTTPStatus

__all__ = [
    "BadRequest",
    "Forbidden",
    "HTTPError",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "error_html",
    "reason",
]


def reason(status: int) -> str:
    """The standard reason phrase of ``status`` (``"Unknown"`` if none)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class HTTPError(Exception):
    """Answer the request with ``status``.

    Args:
        status: the HTTP status (400-599).
        message: a short text for the page, shown to the client (so never
            put secrets or raw input here unescaped: the page escapes it).
        headers: extra headers (``Allow`` for 405, ``WWW-Authenticate``...).
    """

    status = 500

    def __init__(self, status: int = 500, message: str = "",
                 headers: list[tuple[str, str]] | None = None) -> None:
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"an HTTPError status is 400-599, not {status!r}")
        self.status = status
        self.message = message
        self.headers = list(headers or ())
        super().__init__(f"{self.status} {reason(self.status)}" + (f": {message}" if message else ""))


class _FixedStatus(HTTPError):
    """An HTTPError whose class fixes the status: ``NotFound("no such word")``."""

    def __init__(self, message: str = "", headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(type(self).status, message, headers)


class BadRequest(_FixedStatus):
    """400: the request is malformed (a bad JSON body, a broken form)."""

    status = 400


class Forbidden(_FixedStatus):
    """403: the client may not do this."""

    status = 403


class NotFound(_FixedStatus):
    """404: nothing here."""

    status = 404


class MethodNotAllowed(HTTPError):
    """405: the path exists, not for this method; ``Allow`` lists those that work."""

    status = 405

    def __init__(self, allowed: list[str] | set[str] | frozenset[str], message: str = "") -> None:
        self.allowed = sorted(allowed)
        super().__init__(405, message, [("Allow", ", ".join(self.allowed))])


class PayloadTooLarge(_FixedStatus):
    """413: the body is over MAX_BODY_SIZE (or MAX_UPLOAD_SIZE for uploads)."""

    status = 413


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:3em auto;max-width:60em;padding:0 1em}}
pre{{background:#f4f4f4;padding:1em;overflow:auto}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""


def error_html(status: int, message: str = "", traceback: str | None = None) -> str:
    """The built-in error page; every piece of text in it is escaped.

    Args:
        status: the status shown as the title.
        message: a short explanation.
        traceback: shown in a ``<pre>`` block (debug mode only).
    """
    title = html.escape(f"{status} {reason(status)}")
    body = f"<p>{html.escape(message)}</p>" if message else ""
    if traceback:
        body += f"<h2>Traceback</h2><pre>{html.escape(traceback)}</pre>"
    return _PAGE.format(title=title, body=body)
