"""How much an HTTP client may send, and how long it may take.

Every number here closes a door that a hostile or broken client would
otherwise hold open:

* sizes cap memory: a request line, one header line, all headers together,
  the number of headers, the body.  Each has its own status (414, 431, 413)
  so a legitimate client learns which limit it hit;
* timeouts cap time: a client that *trickles* its headers (slowloris: one
  byte every few seconds, each byte resetting a naive idle timer) is cut off
  by ``header_timeout``, counted from the request's first byte, not from its
  last; an idle keep-alive connection is closed after ``keepalive_timeout``.

The defaults follow nginx where it has one (8 KiB header lines, a 60 s body
read timeout between bytes is generous, so we use 30 s).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HttpLimits:
    """Size and time limits of one HTTP server.

    Attributes:
        max_request_target: bytes in the request target (URL); longer: 414.
        max_header_line: bytes in one header line (name and value); longer: 431.
        max_header_size: bytes in all header lines together; more: 431.
        max_headers: header lines per request; more: 431.
        max_body: bytes in a request body (after de-chunking); more: 413.
            Bodies are held in memory until the request is complete.
        header_timeout: seconds from a request's first byte to the end of
            its headers; then 408 and close.
        body_timeout: seconds without a byte while a body is being read;
            then 408 and close.
        keepalive_timeout: seconds an idle connection is kept between
            requests (and waits for its first request); then closed silently.
    """

    max_request_target: int = 8 * 1024
    max_header_line: int = 8 * 1024
    max_header_size: int = 64 * 1024
    max_headers: int = 100
    max_body: int = 16 * 1024 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 15.0

    def __post_init__(self) -> None:
        for name in ("max_request_target", "max_header_line", "max_header_size", "max_headers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.max_body < 0:
            raise ValueError(f"max_body must not be negative, not {self.max_body}")
        for name in ("header_timeout", "body_timeout", "keepalive_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
