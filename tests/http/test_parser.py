"""The request parser: plain bytes in, Request objects or HttpError out; no sockets."""

from __future__ import annotations

import pytest

from ionet.core.testing import random_pieces, split_points
from ionet.http import HttpError, HttpLimits, RequestParser
from ionet.http.parser import BODY, HEAD, IDLE, Request
from tests.http.util import get


def parse(data: bytes, limits: HttpLimits | None = None, sizes: list[int] | None = None
          ) -> list[Request]:
    parser = RequestParser(limits or HttpLimits())
    for piece in split_points(data, sizes) if sizes else [data]:
        parser.feed(piece)
    return parser.take()


def error_of(data: bytes, limits: HttpLimits | None = None, sizes: list[int] | None = None
             ) -> int:
    with pytest.raises(HttpError) as info:
        parse(data, limits, sizes)
    assert info.value.close
    return info.value.status


def test_simple_get() -> None:
    [request] = parse(b"GET /a/b%20c?x=1&y=2 HTTP/1.1\r\nHost: example\r\nX-Thing:  v a l  \r\n\r\n")
    assert request.method == b"GET"
    assert request.target == b"/a/b%20c?x=1&y=2"
    assert request.path == b"/a/b%20c"
    assert request.query == b"x=1&y=2"
    assert request.version == "1.1"
    assert request.headers == [(b"host", b"example"), (b"x-thing", b"v a l")]
    assert request.get(b"x-thing") == b"v a l"
    assert request.get(b"missing") is None
    assert request.keep_alive
    assert request.body == b""
    assert request.request_line() == "GET /a/b%20c?x=1&y=2 HTTP/1.1"


@pytest.mark.parametrize("sizes", [[1], [2], [3, 7], [64]])
def test_any_split_gives_the_same_requests(sizes: list[int]) -> None:
    stream = (get("/one") + get("/two", body=b"hello world", method="POST")
              + get("/three", "Transfer-Encoding: chunked", method="PUT",
                    body=b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"))
    whole = parse(stream)
    split = parse(stream, sizes=sizes)
    assert [(r.method, r.path, r.body) for r in split] == [(r.method, r.path, r.body) for r in whole]
    assert [r.body for r in whole] == [b"", b"hello world", b"hello world"]


def test_random_splits() -> None:
    stream = b"".join(get(f"/{n}", body=b"x" * n, method="POST") for n in range(30))
    for seed in range(20):
        parser = RequestParser(HttpLimits())
        for piece in random_pieces(stream, seed):
            parser.feed(piece)
        requests = parser.take()
        assert [r.body for r in requests] == [b"x" * n for n in range(30)]


def test_phases_and_current_request() -> None:
    parser = RequestParser(HttpLimits())
    assert parser.phase == IDLE
    parser.feed(b"POST / HTTP/1.1\r\nHo")
    assert parser.phase == HEAD and parser.begun == 1
    parser.feed(b"st: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nab")
    assert parser.phase == BODY
    assert parser.current is not None and parser.current.expect_continue
    parser.feed(b"cd")
    assert parser.phase == IDLE and parser.current is None
    [request] = parser.take()
    assert request.body == b"abcd"


def test_chunked_body_with_extensions_and_trailers() -> None:
    [request] = parse(get("/", "Transfer-Encoding: chunked", method="POST",
                          body=b"3;name=value\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"))
    assert request.chunked and request.body == b"abc"
    assert request.get(b"x-trailer") is None  # trailers are not headers


def test_absolute_and_asterisk_targets() -> None:
    [absolute] = parse(b"GET http://example.com/p/q?z=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert absolute.path == b"/p/q" and absolute.query == b"z=1"
    [bare] = parse(b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert bare.path == b"/"
    [star] = parse(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
    assert star.path == b"*"
    [fragment] = parse(b"GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\n")
    assert fragment.path == b"/a"


@pytest.mark.parametrize("request_bytes, keep_alive", [
    (b"GET / HTTP/1.0\r\n\r\n", False),
    (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
])
def test_keep_alive(request_bytes: bytes, keep_alive: bool) -> None:
    [request] = parse(request_bytes)
    assert request.keep_alive is keep_alive


def test_http10_needs_no_host() -> None:
    [request] = parse(b"GET / HTTP/1.0\r\n\r\n")
    assert request.version == "1.0"


# -- limits ----------------------------------------------------------------


def test_request_target_limit() -> None:
    limits = HttpLimits(max_request_target=100)
    assert len(parse(get("/" + "a" * 99), limits)) == 1
    assert error_of(get("/" + "a" * 100), limits) == 414
    assert error_of(get("/" + "a" * 500), limits, sizes=[1]) == 414  # trickled too


def test_header_line_limit() -> None:
    limits = HttpLimits(max_header_line=100)
    assert len(parse(get("/", "X: " + "v" * 90), limits)) == 1
    assert error_of(get("/", "X: " + "v" * 200), limits) == 431


def test_a_header_line_that_never_ends() -> None:
    limits = HttpLimits(max_header_line=1000)
    parser = RequestParser(limits)
    parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
    with pytest.raises(HttpError) as info:
        for _ in range(100):
            parser.feed(b"v" * 100)
    assert info.value.status == 431


def test_header_count_and_total_size() -> None:
    assert error_of(get("/", *[f"X-{n}: 1" for n in range(20)]), HttpLimits(max_headers=10)) == 431
    many = [f"X-{n}: " + "v" * 50 for n in range(30)]
    assert error_of(get("/", *many), HttpLimits(max_header_size=1000)) == 431


def test_body_limits() -> None:
    limits = HttpLimits(max_body=10)
    assert parse(get("/", body=b"x" * 10, method="POST"), limits)[0].body == b"x" * 10
    assert error_of(get("/", body=b"x" * 11, method="POST"), limits) == 413
    chunked = get("/", "Transfer-Encoding: chunked", method="POST",
                  body=b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n")
    assert error_of(chunked, limits) == 413


def test_the_413_comes_before_the_body() -> None:
    parser = RequestParser(HttpLimits(max_body=10))
    with pytest.raises(HttpError) as info:
        parser.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
    assert info.value.status == 413


# -- request smuggling and malformed input ------------------------------------


@pytest.mark.parametrize("data", [
    get("/", "Content-Length: 3", "Transfer-Encoding: chunked", method="POST", body=b"0\r\n\r\n"),
    get("/", "Transfer-Encoding: chunked", "Content-Length: 3", method="POST", body=b"0\r\n\r\n"),
    get("/", "Content-Length: 3", "Content-Length: 3", method="POST", body=b"abc"),
    get("/", "Content-Length: 3", "Content-Length: 4", method="POST", body=b"abcd"),
    get("/", "Content-Length: 3,3", method="POST", body=b"abc"),
    get("/", "Content-Length: +3", method="POST", body=b"abc"),
    get("/", "Content-Length: -1", method="POST", body=b"abc"),
    get("/", "Content-Length: 0x3", method="POST", body=b"abc"),
    get("/", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked", method="POST",
        body=b"0\r\n\r\n"),
    get("/", "Transfer-Encoding: chunked", method="POST", version="1.0", body=b"0\r\n\r\n"),
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",  # obs-fold
    b"GET / HTTP/1.1\nHost: x\n\n",  # bare LF
    b"GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n",  # bare CR
    b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",  # space before the colon
    b"GET / HTTP/1.1\r\nHo\x00st: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\x00y\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",  # no Host
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",  # two Hosts
    b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET relative HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello to a plain port
    get("/", "Transfer-Encoding: chunked", method="POST", body=b"zz\r\n"),
])
def test_malformed_requests_are_400(data: bytes) -> None:
    assert error_of(data) == 400


@pytest.mark.parametrize("data, status", [
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505),
    (b"GET / HTTP/0.9\r\n\r\n", 505),
    (b"GET /\r\n\r\n", 505),
    (b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    (get("/", "Transfer-Encoding: gzip, chunked", method="POST", body=b"0\r\n\r\n"), 501),
    (get("/", "Expect: 200-ok"), 417),
    (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405),
])
def test_other_error_statuses(data: bytes, status: int) -> None:
    assert error_of(data) == status


def test_requests_before_an_error_are_kept() -> None:
    parser = RequestParser(HttpLimits())
    with pytest.raises(HttpError):
        parser.feed(get("/1") + get("/2") + b"GARBAGE\r\n\r\n")
    assert [r.path for r in parser.take()] == [b"/1", b"/2"]


def test_expect_continue_only_for_http11_with_a_body() -> None:
    [with_body] = parse(get("/", "Expect: 100-continue", body=b"abc", method="POST"))
    assert with_body.expect_continue
    [no_body] = parse(get("/", "Expect: 100-continue"))
    assert not no_body.expect_continue
    [old] = parse(get("/", "Expect: 100-continue", body=b"abc", method="POST", version="1.0"))
    assert not old.expect_continue


def test_upgrade_requests_are_plain_requests_then_close() -> None:
    parser = RequestParser(HttpLimits())
    parser.feed(get("/", "Connection: Upgrade", "Upgrade: h2c") + b"\x00binary protocol")
    [request] = parser.take()
    assert request.path == b"/" and not request.keep_alive
    parser.feed(b"more bytes of the other protocol")  # ignored
    assert parser.take() == []
    parser = RequestParser(HttpLimits())
    parser.feed(get("/up", "Connection: Upgrade", "Upgrade: x", body=b"abc", method="POST")[:-2])
    parser.feed(b"bc" + b"rest")
    [request] = parser.take()
    assert request.body == b"abc" and not request.keep_alive
