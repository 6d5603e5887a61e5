"""Helpers shared by the HTTP tests: a strict response reader and fake connections."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ionet.core.testing import FakeClock, FakeTransport
from ionet.http import HttpLimits, HttpProtocol, HttpService, Request


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    chunked: bool = False

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive); None if absent."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, f"header {name} sent {len(values)} times"
        return values[0] if values else None


class Incomplete(AssertionError):
    """The data ends inside a response."""


def parse_responses(data: bytes, head: frozenset[int] | set[int] = frozenset(),
                    eof: bool = True) -> list[Response]:
    """Split ``data`` into responses, checking the framing strictly.

    Args:
        head: indexes (0-based, 100 Continue not counted) of responses to
            HEAD requests, which have no body.
        eof: the connection was closed after ``data`` (close-delimited bodies).
    """
    responses: list[Response] = []
    pos = 0
    index = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            raise Incomplete(f"incomplete head: {data[pos:pos + 200]!r}")
        lines = data[pos:end].split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        assert version == b"HTTP/1.1", lines[0]
        code, _, reason = rest.partition(b" ")
        assert len(code) == 3 and code.isdigit(), lines[0]
        response = Response(int(code), reason.decode("latin-1"))
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            assert colon and name and name.strip() == name, f"bad header line {line!r}"
            assert b"\r" not in value and b"\n" not in value
            response.headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
        pos = end + 4
        if 100 <= response.status < 200:
            responses.append(response)
            continue
        length = response.header("Content-Length")
        te = response.header("Transfer-Encoding")
        if index in head or response.status in (204, 304):
            pass
        elif te is not None:
            assert te == "chunked" and length is None
            response.chunked = True
            body = bytearray()
            while True:
                line_end = data.find(b"\r\n", pos)
                if line_end < 0:
                    raise Incomplete("incomplete chunk size")
                size = int(data[pos:line_end], 16)
                pos = line_end + 2
                if size == 0:
                    assert data[pos:pos + 2] == b"\r\n", data[pos:pos + 10]
                    pos += 2
                    break
                if len(data) < pos + size + 2:
                    raise Incomplete("incomplete chunk")
                body += data[pos:pos + size]
                assert data[pos + size:pos + size + 2] == b"\r\n"
                pos += size + 2
            response.body = bytes(body)
        elif length is not None:
            n = int(length)
            if len(data) < pos + n:
                raise Incomplete(f"body of {n} bytes, {len(data) - pos} here")
            response.body = data[pos:pos + n]
            pos += n
        else:
            assert eof, "a close-delimited body but the connection is open"
            assert response.header("Connection") == "close"
            response.body = data[pos:]
            pos = len(data)
        responses.append(response)
        index += 1
    return responses


def final(responses: list[Response]) -> list[Response]:
    """The responses without the interim ``100 Continue`` ones."""
    return [r for r in responses if r.status >= 200]


class FakeConnection:
    """An HttpProtocol on a FakeTransport, with the clock they share."""

    def __init__(self, handler: Any, limits: HttpLimits | None = None,
                 run_workers: bool = True, access_log: Any = None) -> None:
        self.clock = FakeClock()
        self.service = HttpService(handler, limits, clock=self.clock, access_log=access_log,
                                   wall_clock=lambda: 784111777.0)
        self.transport = FakeTransport(clock=self.clock, run_workers=run_workers)
        self.protocol = HttpProtocol(self.service)
        self.transport.connect(self.protocol)

    def feed(self, data: bytes) -> None:
        self.transport.feed(data)

    def responses(self, head: frozenset[int] | set[int] = frozenset()) -> list[Response]:
        return parse_responses(self.transport.written(), head, eof=self.transport.closed)

    @property
    def closed(self) -> bool:
        return self.transport.closed


class EchoHandler:
    """Answers with a description of the request (for protocol tests)."""

    allow = b"GET, HEAD, POST"

    def __init__(self) -> None:
        self.seen: list[Request] = []

    def handle(self, request: Request, conn: HttpProtocol) -> None:
        self.seen.append(request)
        body = b"%s %s %d:%s" % (request.method, request.target, len(request.body), request.body)
        conn.respond(request, 200, b"Content-Type: text/plain\r\n", body)


class DeferredHandler:
    """Holds every request until the test answers it (like a slow app)."""

    allow = b"GET"

    def __init__(self) -> None:
        self.pending: list[tuple[Request, HttpProtocol]] = []

    def handle(self, request: Request, conn: HttpProtocol) -> None:
        self.pending.append((request, conn))

    def answer(self, body: bytes = b"done") -> None:
        request, conn = self.pending.pop(0)
        conn.respond(request, 200, b"", body + b" " + request.path)


def get(path: str = "/", *headers: str, method: str = "GET", version: str = "1.1",
        body: bytes = b"") -> bytes:
    """A request as bytes; adds Host for HTTP/1.1 and Content-Length for a body."""
    lines = [f"{method} {path} HTTP/{version}"]
    if version == "1.1" and not any(h.lower().startswith("host:") for h in headers):
        lines.append("Host: test")
    lines.extend(headers)
    if body and not any(h.lower().startswith(("content-length:", "transfer-encoding:"))
                        for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def write_file(path: os.PathLike[str] | str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


Callback = Callable[[], None]
