"""HttpProtocol on a fake transport: keep-alive, pipelining, timeouts, errors, fuzzing."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ionet.core.testing import feed_split, random_pieces
from ionet.http import HttpError, HttpLimits, HttpProtocol, Request
from ionet.http.status import STATUS_LINES, error_page
from tests.http.util import (
    DeferredHandler,
    EchoHandler,
    FakeConnection,
    final,
    get,
    parse_responses,
)


def test_a_simple_get() -> None:
    conn = FakeConnection(EchoHandler())
    conn.feed(get("/hello"))
    [response] = conn.responses()
    assert response.status == 200
    assert response.body == b"GET /hello 0:"
    assert response.header("Date") == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert response.header("Server") == "ionet"
    assert response.header("Content-Length") == str(len(response.body))
    assert response.header("Connection") is None
    assert not conn.closed  # keep-alive


def test_one_response_is_one_write() -> None:
    conn = FakeConnection(EchoHandler())
    conn.feed(get("/"))
    assert len(conn.transport.chunks) == 1


def test_keep_alive_serves_many_requests() -> None:
    conn = FakeConnection(EchoHandler())
    for n in range(5):
        conn.feed(get(f"/{n}"))
    assert [r.body for r in conn.responses()] == [b"GET /%d 0:" % n for n in range(5)]
    assert not conn.closed


def test_pipelined_requests_one_byte_at_a_time() -> None:
    conn = FakeConnection(EchoHandler())
    stream = (get("/a") + get("/b", body=b"body!", method="POST")
              + get("/c", "Transfer-Encoding: chunked", method="POST",
                    body=b"2\r\nhi\r\n1\r\n!\r\n0\r\n\r\n") + get("/d", method="HEAD"))
    feed_split(conn.transport, stream, sizes=[1])
    responses = conn.responses(head={3})
    assert [r.body for r in responses] == [b"GET /a 0:", b"POST /b 5:body!",
                                           b"POST /c 3:hi!", b""]
    assert responses[3].header("Content-Length") == str(len(b"HEAD /d 0:"))


def test_pipelined_requests_at_random_splits() -> None:
    stream = b"".join(get(f"/{n}", body=b"x" * n, method="POST") for n in range(20))
    for seed in range(10):
        conn = FakeConnection(EchoHandler())
        for piece in random_pieces(stream, seed):
            conn.feed(piece)
        assert [r.body for r in conn.responses()] == [
            b"POST /%d %d:%s" % (n, n, b"x" * n) for n in range(20)]


def test_pipelined_responses_keep_request_order_and_pause_reading() -> None:
    handler = DeferredHandler()
    conn = FakeConnection(handler)
    conn.feed(get("/slow") + get("/fast"))
    assert len(handler.pending) == 1  # the second waits for the first
    assert not conn.transport.reading  # a pipelined request is queued: stop reading
    assert conn.transport.written() == b""
    handler.answer(b"first")
    assert len(handler.pending) == 1
    handler.answer(b"second")
    assert [r.body for r in conn.responses()] == [b"first /slow", b"second /fast"]
    assert conn.transport.reading


def test_reading_continues_while_a_response_is_pending_until_a_request_starts() -> None:
    handler = DeferredHandler()
    conn = FakeConnection(handler)
    conn.feed(get("/1"))
    assert conn.transport.reading  # nothing else arrived: keep reading
    conn.feed(b"GET /2 HTTP/1.1\r\n")
    assert not conn.transport.reading
    handler.answer()
    assert conn.transport.reading
    conn.feed(b"Host: x\r\n\r\n")
    handler.answer()
    assert [r.body for r in conn.responses()] == [b"done /1", b"done /2"]


def test_head_has_the_length_but_no_body() -> None:
    conn = FakeConnection(EchoHandler())
    conn.feed(get("/x", method="HEAD") + get("/y"))
    head, after = conn.responses(head={0})
    assert head.body == b"" and head.header("Content-Length") == str(len(b"HEAD /x 0:"))
    assert after.body == b"GET /y 0:"


def test_options_star() -> None:
    conn = FakeConnection(EchoHandler())
    conn.feed(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" + get("*"))
    options, bad = conn.responses()
    assert options.status == 200 and options.header("Allow") == "GET, HEAD, POST"
    assert bad.status == 400


@pytest.mark.parametrize("request_bytes, closes, connection", [
    (b"GET / HTTP/1.0\r\n\r\n", True, "close"),
    (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", False, "keep-alive"),
    (get("/", "Connection: close"), True, "close"),
    (get("/"), False, None),
])
def test_connection_header(request_bytes: bytes, closes: bool, connection: str | None) -> None:
    conn = FakeConnection(EchoHandler())
    conn.feed(request_bytes)
    [response] = conn.responses()
    assert response.header("Connection") == connection
    assert conn.closed is closes


class StreamingHandler:
    allow = b"GET"

    def handle(self, request: Request, conn: HttpProtocol) -> None:
        conn.start(request, 200, b"Content-Type: text/plain\r\n")
        conn.send(b"hello ")
        conn.send(b"")
        conn.send(b"world")
        conn.finish()


def test_unknown_length_is_chunked_for_http11() -> None:
    conn = FakeConnection(StreamingHandler())
    conn.feed(get("/"))
    [response] = conn.responses()
    assert response.chunked and response.body == b"hello world"
    assert not conn.closed


def test_unknown_length_is_close_delimited_for_http10() -> None:
    conn = FakeConnection(StreamingHandler())
    conn.feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    [response] = conn.responses()
    assert not response.chunked and response.body == b"hello world"
    assert response.header("Connection") == "close" and conn.closed


def test_expect_100_continue() -> None:
    conn = FakeConnection(EchoHandler())
    conn.feed(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    assert conn.transport.written() == b"HTTP/1.1 100 Continue\r\n\r\n"
    conn.feed(b"hello")
    interim, response = conn.responses()
    assert interim.status == 100 and response.body == b"POST /up 5:hello"


def test_expect_100_continue_waits_for_earlier_responses() -> None:
    handler = DeferredHandler()
    conn = FakeConnection(handler)
    conn.feed(get("/first") + b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
              b"Expect: 100-continue\r\n\r\n")
    assert conn.transport.written() == b""
    handler.answer()
    assert conn.transport.written().endswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    conn.feed(b"ok")
    handler.answer()
    assert [r.status for r in conn.responses()] == [200, 100, 200]


def test_expect_100_continue_with_a_body_too_large() -> None:
    conn = FakeConnection(EchoHandler(), HttpLimits(max_body=10))
    conn.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
    [response] = conn.responses()
    assert response.status == 413 and conn.closed


def test_an_error_after_pipelined_requests_comes_in_order_then_closes() -> None:
    conn = FakeConnection(EchoHandler())
    conn.feed(get("/1") + get("/2") + b"NOT HTTP AT ALL\r\n\r\n" + get("/never"))
    responses = conn.responses()
    assert [r.status for r in responses] == [200, 200, 400]
    assert responses[2].header("Connection") == "close"
    assert responses[2].header("Content-Type") == "text/html; charset=utf-8"
    assert b"400 Bad Request" in responses[2].body
    assert conn.closed


@pytest.mark.parametrize("data, status", [
    (get("/" + "a" * 9000), 414),
    (get("/", "X: " + "b" * 9000), 431),
    (get("/", *[f"X-{n}: v" for n in range(101)]), 431),
    (get("/", "Content-Length: 17000000", method="POST"), 413),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"FROB / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    (get("/", "Content-Length: 1", "Transfer-Encoding: chunked", method="POST"), 400),
])
def test_error_pages(data: bytes, status: int) -> None:
    conn = FakeConnection(EchoHandler())
    conn.feed(data)
    [response] = conn.responses()
    assert response.status == status
    assert response.reason == STATUS_LINES[status].decode().split(" ", 2)[2].strip()
    assert response.header("Date") and response.header("Server") == "ionet"
    assert conn.closed


# -- timeouts ----------------------------------------------------------------


def test_keepalive_timeout_closes_an_idle_connection_silently() -> None:
    conn = FakeConnection(EchoHandler(), HttpLimits(keepalive_timeout=5))
    conn.feed(get("/"))
    conn.clock.advance(4)
    assert not conn.closed
    conn.feed(get("/again"))  # activity restarts the wait
    conn.clock.advance(4.9)
    assert not conn.closed
    conn.clock.advance(0.2)
    assert conn.closed
    assert len(conn.responses()) == 2  # no 408 for an idle connection


def test_a_connection_that_never_sends_is_closed() -> None:
    conn = FakeConnection(EchoHandler(), HttpLimits(keepalive_timeout=5))
    conn.clock.advance(5.1)
    assert conn.closed and conn.transport.written() == b""


def test_slowloris_is_cut_off_by_the_header_timeout() -> None:
    conn = FakeConnection(EchoHandler(), HttpLimits(header_timeout=10, keepalive_timeout=60))
    trickle = get("/", *[f"X-{n}: {'v' * 10}" for n in range(30)])
    for byte in trickle[:40]:  # one byte a second: each resets any idle timer
        conn.feed(bytes([byte]))
        conn.clock.advance(1)
        if conn.closed:
            break
    [response] = conn.responses()
    assert response.status == 408 and conn.closed
    assert conn.clock.now - 1000.0 <= 11.5


def test_the_header_timeout_does_not_run_while_we_answer() -> None:
    handler = DeferredHandler()
    conn = FakeConnection(handler, HttpLimits(header_timeout=2, keepalive_timeout=60))
    conn.feed(get("/slow") + b"GET /next HTTP/1.1\r\n")  # a partial pipelined head
    conn.clock.advance(30)  # the app is slow; the client cannot send more
    assert not conn.closed
    handler.answer()
    conn.clock.advance(1)
    assert not conn.closed
    conn.clock.advance(1.1)  # now the head's time runs
    assert conn.closed
    assert [r.status for r in conn.responses()] == [200, 408]


def test_body_timeout() -> None:
    conn = FakeConnection(EchoHandler(), HttpLimits(body_timeout=3, keepalive_timeout=60))
    conn.feed(get("/", "Content-Length: 10", method="POST"))
    for _ in range(5):
        conn.clock.advance(2)
        conn.feed(b"x")  # slow but alive
    assert not conn.closed
    conn.clock.advance(3.1)
    [response] = conn.responses()
    assert response.status == 408 and conn.closed


# -- shutdown, EOF and failures ---------------------------------------------------


def test_server_stopping_closes_idle_connections_at_once() -> None:
    conn = FakeConnection(EchoHandler())
    conn.feed(get("/"))
    conn.protocol.server_stopping()
    assert conn.closed


def test_server_stopping_lets_the_response_in_progress_finish() -> None:
    handler = DeferredHandler()
    conn = FakeConnection(handler)
    conn.feed(get("/"))
    conn.protocol.server_stopping()
    assert not conn.closed
    handler.answer()
    [response] = conn.responses()
    assert response.header("Connection") == "close" and conn.closed


def test_eof_after_a_request_still_gets_the_response() -> None:
    handler = DeferredHandler()
    conn = FakeConnection(handler)
    conn.feed(get("/"))
    assert conn.transport.feed_eof() is True
    handler.answer()
    assert [r.status for r in conn.responses()] == [200] and conn.closed


def test_eof_inside_a_request_closes() -> None:
    conn = FakeConnection(EchoHandler())
    conn.feed(b"GET / HT")
    assert not conn.transport.feed_eof()
    assert conn.transport.written() == b""


class FailingHandler:
    allow = b"GET"

    def handle(self, request: Request, conn: HttpProtocol) -> None:
        if request.path == b"/late":
            conn.start(request, 200, b"", 100)
            conn.send(b"partial")
        elif request.path == b"/teapot":
            raise HttpError(418, close=False)
        raise RuntimeError("handler bug")


def test_a_failing_handler_gives_500_and_the_connection_lives_on() -> None:
    conn = FakeConnection(FailingHandler())
    conn.feed(get("/"))
    conn.feed(get("/teapot"))
    assert [r.status for r in conn.responses()] == [500, 418]
    assert not conn.closed


def test_a_handler_failing_mid_response_aborts() -> None:
    conn = FakeConnection(FailingHandler())
    conn.feed(get("/late"))
    assert conn.transport.aborted


def test_access_log_is_called_per_response() -> None:
    lines: list[tuple[str, int, int]] = []
    conn = FakeConnection(EchoHandler(),
                          access_log=lambda c, r, status, size: lines.append(
                              (r.request_line(), status, size)))
    conn.feed(get("/a") + get("/b", method="HEAD") + b"JUNK\r\n\r\n")
    assert lines == [("GET /a HTTP/1.1", 200, 9), ("HEAD /b HTTP/1.1", 200, 0), ("-", 400, len(error_page(400)))]


class FileHandler:
    allow = b"GET"

    def __init__(self) -> None:
        self.files: list[io.BytesIO] = []

    def handle(self, request: Request, conn: HttpProtocol) -> None:
        file = io.BytesIO(b"xxfile")
        self.files.append(file)
        conn.start(request, 200, b"", 6)
        conn.send_file(file, 2, 4)
        conn.send(b"!!")
        conn.finish()


def test_send_file_hands_the_file_to_the_transport() -> None:
    handler = FileHandler()
    conn = FakeConnection(handler)
    conn.feed(get("/") + get("/") + get("/", method="HEAD"))
    assert [r.body for r in conn.responses(head={2})] == [b"file!!", b"file!!", b""]
    assert [f for f, _, _ in conn.transport.files] == handler.files[:2]
    assert all(f.closed for f in handler.files)  # by the transport, or unsent (HEAD)


# -- fuzzing ---------------------------------------------------------------------------

VALID_STATUSES = {200, 400, 405, 408, 413, 414, 417, 431, 501, 505}

fragments = st.sampled_from([
    b"GET ", b"POST ", b"HEAD ", b"PUT ", b"OPTIONS ", b"/", b"/a?b=c", b"*", b" HTTP/1.1\r\n",
    b" HTTP/1.0\r\n", b" HTTP/2.0\r\n", b"Host: x\r\n", b"Content-Length: 3\r\n",
    b"Content-Length: 99999999999\r\n", b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n", b"Expect: 100-continue\r\n", b"\r\n", b"abc", b"3\r\nabc\r\n",
    b"0\r\n\r\n", b":", b" ", b"\x00", b"\n", b"\r", b"\xff",
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.binary(max_size=40), fragments), max_size=25),
       st.integers(min_value=1, max_value=50))
def test_fuzz_random_bytes_never_crash(parts: list[bytes], piece: int) -> None:
    """Whatever arrives, the protocol answers with valid responses or closes; never raises."""
    handler = EchoHandler()
    conn = FakeConnection(handler, HttpLimits(max_body=1000, max_request_target=200))
    data = b"".join(parts)
    for start in range(0, len(data), piece):
        if conn.closed or not conn.transport.reading:
            break
        conn.feed(data[start:start + piece])
    if not conn.closed:
        conn.transport.feed_eof()
    written = conn.transport.written()
    assert written == b"" or written.startswith(b"HTTP/1.1 ")
    heads = {i for i, r in enumerate(handler.seen)
             if r.method == b"HEAD"}
    responses = final(parse_responses(written, heads, eof=True))
    for response in responses:
        assert response.status in VALID_STATUSES
        if response.status >= 400:
            assert response is responses[-1] and conn.closed


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=300))
def test_fuzz_after_a_valid_request(junk: bytes) -> None:
    conn = FakeConnection(EchoHandler())
    conn.feed(get("/ok") + junk)
    responses = final(parse_responses(conn.transport.written(), eof=True))
    assert responses[0].status == 200 and responses[0].body == b"GET /ok 0:"
