"""The split's two protocols without sockets: the framework side (SplitProtocol)
fed frames by hand, and the HTTP side's loop pool against it over a fake network
(``fakes.Network``): pooling, 502 when the framework is down, 504 when it is
slow, a retry on a stale connection, streamed replies, and a client that leaves.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from ionet.core.framing import LengthPrefixFramer, frame
from ionet.core.testing import FakeTransport, feed_split
from ionet.web import App, Request, Response, Settings, StreamResponse, path
from ionet.web.split import SplitService
from tests.web.fakes import Network

BIG = bytes(range(256)) * 8192  # 2 MiB: sent as stream frames


def hello(request: Request) -> Response:
    return Response(b"Hello, World!", content_type="text/plain")


def echo(request: Request) -> dict[str, Any]:
    return {"method": request.method, "body": request.body.decode(), "client": request.client,
            "query": request.query_string, "path": request.path,
            "agent": request.headers.get("user-agent")}


def big(request: Request) -> Response:
    return Response(BIG, content_type="application/octet-stream")


def ticker(request: Request) -> StreamResponse:
    return StreamResponse((b"tick %d\n" % n for n in range(3)), content_type="text/plain")


def make_app() -> App:
    routes = [path("/hello", hello), path("/echo/<path:rest>", lambda r, rest: echo(r),
                                         methods=None),
              path("/big", big), path("/ticker", ticker)]
    return App(routes, Settings(secret_key="k"))


def request_frames(message_id: int, method: str = "GET", target: str = "/hello",
                   body: bytes = b"", inline: bool = False, **extra: Any) -> bytes:
    path_part, _, query = target.partition("?")
    head: dict[str, Any] = {"id": message_id, "method": method, "path": path_part,
                            "query": query, "version": "1.1",
                            "headers": [["host", "example.org"], ["user-agent", "t"]],
                            "client": ["203.0.113.9", 4242], "server": ["127.0.0.1", 8000],
                            "scheme": "http", **extra}
    if body and inline:
        head["body"] = base64.b64encode(body).decode()
        return frame(json.dumps(head).encode())
    if body:
        head["body_follows"] = True
        return frame(json.dumps(head).encode()) + frame(body)
    return frame(json.dumps(head).encode())


def replies(data: bytes) -> Iterator[tuple[dict[str, Any], bytes]]:
    """Split the framework's output into (head, body) pairs."""
    frames = LengthPrefixFramer().feed(data)
    position = 0
    while position < len(frames):
        head = json.loads(frames[position])
        position += 1
        body = b""
        if head.get("body_follows"):
            body = frames[position]
            position += 1
        elif head.get("stream"):
            while frames[position]:
                body += frames[position]
                position += 1
            position += 1
        elif "body" in head:
            body = base64.b64decode(head["body"])
        yield head, body


def framework() -> FakeTransport:
    transport = FakeTransport()
    transport.connect(SplitService(make_app())())
    return transport


# -- the framework side ----------------------------------------------------------

def test_requests_byte_by_byte_get_replies_in_order() -> None:
    transport = framework()
    data = (request_frames(1) + request_frames(2, "POST", "/echo/x?a=1", b"name=ann")
            + request_frames(3, "PUT", "/echo/y", b"inline body", inline=True))
    feed_split(transport, data, sizes=[1])
    got = list(replies(transport.take()))
    assert [head["id"] for head, _ in got] == [1, 2, 3]
    head, body = got[0]
    assert head["status"] == 200 and body == b"Hello, World!"
    assert ["Content-Length", "13"] in head["headers"]
    assert json.loads(got[1][1]) == {"method": "POST", "body": "name=ann",
                                     "client": "203.0.113.9", "query": "a=1", "path": "/echo/x",
                                     "agent": "t"}
    assert json.loads(got[2][1])["body"] == "inline body"
    assert not transport.closed


def test_big_and_generated_bodies_are_streamed() -> None:
    transport = framework()
    transport.feed(request_frames(1, target="/big") + request_frames(2, target="/ticker"))
    (head1, body1), (head2, body2) = replies(transport.take())
    assert head1["stream"] is True and body1 == BIG
    assert head2["stream"] is True and body2 == b"tick 0\ntick 1\ntick 2\n"


@pytest.mark.parametrize("garbage", [
    frame(b"not json"), frame(b"[1, 2]"), frame(b'{"id": "x", "method": "GET", "path": "/"}'),
    frame(b'{"id": 1, "method": "GET", "path": "/", "headers": [["a"]]}'),
    frame(b'{"id": 1, "method": "GET", "path": "/", "body": "%%%"}'),
    b"\xff\xff\xff\xff",  # a frame over the size limit
])
def test_malformed_requests_close_the_connection(garbage: bytes) -> None:
    transport = framework()
    transport.feed(garbage)
    assert transport.aborted


def test_a_crashing_wsgi_app_gets_a_500() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    transport = FakeTransport()
    transport.connect(SplitService(app)())
    transport.feed(request_frames(5))
    ((head, body),) = replies(transport.take())
    assert head["id"] == 5 and head["status"] == 500 and body == b"Internal Server Error"
    assert not transport.closed


# -- the HTTP side, through the pool -----------------------------------------------

def http_get(target: str, method: str = "GET", body: bytes = b"") -> bytes:
    length = f"Content-Length: {len(body)}\r\n" if body or method == "POST" else ""
    return (f"{method} {target} HTTP/1.1\r\nHost: example.org\r\nUser-Agent: t\r\n{length}\r\n"
            .encode() + body)


def parse_http(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Responses in ``data``: (status, headers by lower-case name, body)."""
    out = []
    while data:
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size_line, _, data = data.partition(b"\r\n")
                size = int(size_line, 16)
                chunk, data = data[:size], data[size + 2:]
                if size == 0:
                    break
                body += chunk
        else:
            length = int(headers.get("content-length", "0"))
            body, data = data[:length], data[length:]
        out.append((status, headers, body))
    return out


def test_requests_share_one_persistent_connection() -> None:
    net = Network(make_app())
    client, _ = net.client()
    for n in range(3):
        client.feed(http_get(f"/echo/n{n}?x={n}"))
        net.pump()
    got = parse_http(client.take())
    assert [status for status, _, _ in got] == [200, 200, 200]
    assert json.loads(got[2][2])["path"] == "/echo/n2"
    assert json.loads(got[0][2])["client"] == "127.0.0.1"  # the HTTP client's address
    assert len(net.framework_transports) == 1  # one connection, reused


def test_a_post_body_and_a_streamed_reply_come_through() -> None:
    net = Network(make_app())
    client, _ = net.client()
    client.feed(http_get("/echo/p", "POST", b"a=1&b=2"))
    net.pump()
    client.feed(http_get("/big"))
    net.pump()
    client.feed(http_get("/ticker"))
    net.pump()
    (_, _, b1), (s2, h2, b2), (s3, h3, b3) = parse_http(client.take())
    assert json.loads(b1)["body"] == "a=1&b=2"
    assert s2 == 200 and h2["content-length"] == str(len(BIG)) and b2 == BIG
    assert s3 == 200 and h3["transfer-encoding"] == "chunked" and b3.count(b"tick") == 3


def test_framework_down_is_a_502_at_once_and_service_comes_back() -> None:
    net = Network(make_app())
    net.up = False
    client, _ = net.client()
    client.feed(http_get("/hello"))
    net.pump()  # no time passes: the refusal is answered at once
    assert [s for s, _, _ in parse_http(client.take())] == [502]
    net.up = True
    client.feed(http_get("/hello"))
    net.pump()
    assert parse_http(client.take())[0][2] == b"Hello, World!"


def test_framework_crash_mid_request_is_a_502_then_recovery() -> None:
    net = Network(make_app())
    net.hold = True
    client, _ = net.client()
    client.feed(http_get("/echo/p", "POST", b"x"))
    net.pump()
    assert client.take() == b""  # the app is still running
    net.crash_framework()
    assert [s for s, _, _ in parse_http(client.take())] == [502]  # a POST is never resent
    net.up, net.hold = True, False
    client.feed(http_get("/hello"))
    net.pump()
    assert parse_http(client.take())[0][0] == 200


def test_slow_framework_is_a_504_after_the_timeout() -> None:
    net = Network(make_app(), timeout=5.0)
    net.hold = True
    client, _ = net.client()
    client.feed(http_get("/hello"))
    net.pump()
    net.clock.advance(4.9)
    assert client.take() == b""
    net.clock.advance(0.2)
    net.pump()
    assert [s for s, _, _ in parse_http(client.take())] == [504]
    # The connection that owed the reply is dropped, so its late reply can
    # never answer the next request; the next request gets a new connection.
    net.run_framework()
    net.pump()
    assert net.links == []
    net.hold = False
    client.feed(http_get("/hello"))
    net.pump()
    assert parse_http(client.take())[0][2] == b"Hello, World!"


def test_a_stale_pooled_connection_is_retried_for_a_get_only() -> None:
    net = Network(make_app())
    client, _ = net.client()
    client.feed(http_get("/hello"))
    net.pump()
    client.take()
    # The framework restarted while our connection sat idle, and we have not
    # heard yet: the request goes out on the dead connection.
    (upstream, fw), = net.links
    fw.closed = fw.lost = True
    client.feed(http_get("/hello"))
    net.pump()
    assert client.take() == b""
    net.links.clear()
    upstream.lose(ConnectionResetError())
    net.pump()
    assert parse_http(client.take())[0][2] == b"Hello, World!"  # sent again, fresh


def test_the_pool_size_caps_connections_and_queues_the_rest() -> None:
    net = Network(make_app(), pool_size=2)
    net.hold = True
    clients = [net.client()[0] for _ in range(3)]
    for n, client in enumerate(clients):
        client.feed(http_get(f"/echo/{n}"))
    net.pump()
    assert len(net.framework_transports) == 2
    for _ in range(3):
        net.run_framework()
        net.pump()
    for n, client in enumerate(clients):
        ((status, _, body),) = parse_http(client.take())
        assert status == 200 and json.loads(body)["path"] == f"/echo/{n}"
    assert len(net.framework_transports) == 2


def test_a_client_that_leaves_does_not_break_the_connection() -> None:
    net = Network(make_app())
    net.hold = True
    client, _ = net.client()
    client.feed(http_get("/echo/gone"))
    net.pump()
    client.lose()
    net.run_framework()
    net.pump()  # the reply is read and dropped
    other, _ = net.client()
    other.feed(http_get("/hello"))
    net.pump()
    net.run_framework()
    net.pump()
    assert parse_http(other.take())[0][2] == b"Hello, World!"
    assert len(net.framework_transports) == 1  # the same connection served both
