"""Protocol switches: ``HttpService(upgrades={path: factory})`` hands a connection over."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from ionet.core.engines import ENGINES, get_engine
from ionet.core.protocol import Protocol, Transport
from ionet.core.testing import FakeClock, FakeTransport, ServerProcess, split_points
from ionet.http import HttpProtocol, HttpService
from tests.http.upgrade_server import Page
from tests.http.util import DeferredHandler, get, parse_responses

TIMEOUT = 10.0

#: An upgrade head as a client might really send it: odd case, odd spacing.
HEAD = (b"GET /echo?room=1 HTTP/1.1\r\nHost: example\r\nconnection:   Upgrade\r\n"
        b"UPGRADE: websocket \r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"X-Odd:\tvalue\r\n\r\n")
#: What the client sends right after the head, in the new protocol.
FRAME = b"\x81\x05hello"


class Recorder(Protocol):
    """The protocol that takes over: records what it is given."""

    made: ClassVar[list[Recorder]] = []

    def __init__(self) -> None:
        self.received = b""
        self.eof = False
        Recorder.made.append(self)

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data

    def eof_received(self) -> bool | None:
        self.eof = True
        return None


class Connection:
    def __init__(self, handler: Any = None, access_log: Any = None) -> None:
        Recorder.made.clear()
        clock = FakeClock()
        self.service = HttpService(handler or Page(), upgrades={"/echo": Recorder}, clock=clock,
                                   wall_clock=lambda: 784111777.0, access_log=access_log)
        self.transport = FakeTransport(clock=clock)
        self.http = HttpProtocol(self.service)
        self.transport.connect(self.http)

    @property
    def new(self) -> Recorder:
        [recorder] = Recorder.made
        assert self.transport.protocol is recorder
        assert recorder.transport is self.transport
        return recorder


def test_the_connection_is_handed_over_with_the_exact_head() -> None:
    conn = Connection()
    conn.transport.feed(HEAD + FRAME)
    assert conn.new.received == HEAD + FRAME
    assert conn.transport.written() == b""  # the new protocol answers the handshake
    assert not conn.transport.closed and conn.transport.reading
    conn.transport.feed(b"more")
    assert conn.new.received == HEAD + FRAME + b"more"


@pytest.mark.parametrize("sizes", [[1], [2], [7], [64]])
def test_any_split_gives_the_same_head(sizes: list[int]) -> None:
    conn = Connection()
    for piece in split_points(HEAD + FRAME, sizes):
        conn.transport.feed(piece)
    assert conn.new.received == HEAD + FRAME


def test_pipelined_requests_are_answered_first() -> None:
    conn = Connection()
    conn.transport.feed(b"\r\n" + get("/a") + get("/b") + HEAD + FRAME)
    assert [r.body for r in parse_responses(conn.transport.written(), eof=False)] == [
        b"plain /a", b"plain /b"]
    assert conn.new.received == HEAD + FRAME


def test_an_upgrade_behind_a_body_in_the_same_read() -> None:
    conn = Connection()
    body = b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"  # looks like a head: it is not one
    conn.transport.feed(get("/post", method="POST", body=body) + HEAD + FRAME)
    [response] = parse_responses(conn.transport.written(), eof=False)
    assert response.body == b"plain /post"
    assert conn.new.received == HEAD + FRAME


def test_the_switch_waits_for_a_slow_response_before_it() -> None:
    handler = DeferredHandler()
    conn = Connection(handler)
    conn.transport.feed(get("/slow") + HEAD + FRAME)
    assert Recorder.made == [] and not conn.transport.reading
    handler.answer()
    [response] = parse_responses(conn.transport.written(), eof=False)
    assert response.body == b"done /slow"
    assert conn.new.received == HEAD + FRAME
    assert conn.transport.reading


def test_eof_while_waiting_reaches_the_new_protocol() -> None:
    handler = DeferredHandler()
    conn = Connection(handler)
    conn.transport.feed(get("/slow") + HEAD + FRAME)
    conn.transport.feed_eof()
    handler.answer()
    assert conn.new.received == HEAD + FRAME and conn.new.eof
    assert conn.transport.closed  # its eof_received returned None


def test_the_switch_is_logged_as_101() -> None:
    lines: list[tuple[str, int]] = []
    conn = Connection(access_log=lambda c, r, status, size: lines.append(
        (r.request_line(), status)))
    conn.transport.feed(get("/a") + HEAD)
    assert lines == [("GET /a HTTP/1.1", 200), ("GET /echo?room=1 HTTP/1.1", 101)]


@pytest.mark.parametrize("request_bytes", [
    get("/other", "Connection: Upgrade", "Upgrade: websocket"),  # not registered
    get("/echo", "Connection: Upgrade", "Upgrade: echo", method="POST", body=b"abc"),  # a body
    get("/echo", "Connection: Upgrade", "Upgrade: echo", version="1.0"),
])
def test_other_upgrades_are_plain_requests_then_close(request_bytes: bytes) -> None:
    conn = Connection()
    conn.transport.feed(request_bytes + FRAME)
    [response] = parse_responses(conn.transport.written())
    assert response.status == 200 and response.header("Connection") == "close"
    assert conn.transport.closed and Recorder.made == []
    assert conn.transport.protocol is conn.http


def test_without_connection_upgrade_nothing_switches() -> None:
    conn = Connection()
    conn.transport.feed(get("/echo", "Upgrade: websocket") + get("/echo"))
    assert [r.body for r in parse_responses(conn.transport.written(), eof=False)] == [
        b"plain /echo", b"plain /echo"]
    assert Recorder.made == [] and not conn.transport.closed


def test_services_without_upgrades_keep_no_heads() -> None:
    service = HttpService(Page())
    protocol = HttpProtocol(service)
    transport = FakeTransport()
    transport.connect(protocol)
    transport.feed(HEAD + FRAME)
    [response] = parse_responses(transport.written())
    assert response.body == b"plain /echo" and transport.closed


def test_upgrade_paths_must_be_paths() -> None:
    with pytest.raises(ValueError):
        HttpService(Page(), upgrades={"echo": Recorder})


# -- over real sockets, on every engine ------------------------------------------------


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    engine: str = request.param
    get_engine(engine)  # a missing engine or extra is a failure, as in tests/conftest.py
    with ServerProcess([engine], module="tests.http.upgrade_server") as running:
        yield running


def read_until(sock: socket.socket, marker: bytes, data: bytes = b"") -> bytes:
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"closed after {data!r}")
        data += chunk
    return data


def test_echo_upgrade_over_a_socket(server: ServerProcess) -> None:
    with socket.create_connection(server.address("tcp"), timeout=TIMEOUT) as sock:
        sock.sendall(get("/") + HEAD + b"first")
        data = read_until(sock, b"first")
        plain, _, switched = data.partition(b"HTTP/1.1 101 ")
        assert plain.startswith(b"HTTP/1.1 200 OK") and plain.endswith(b"plain /")
        _, _, report = switched.partition(b"\r\n\r\n")
        assert report == b"%d\n%sfirst" % (len(HEAD), HEAD)
        sock.sendall(b"second")
        assert read_until(sock, b"second") == b"second"


def test_websocket_handshake_with_wsproto(server: ServerProcess) -> None:
    wsproto = pytest.importorskip("wsproto")
    from wsproto.events import (
        AcceptConnection,
        CloseConnection,
        Message,
        Request,
        TextMessage,
    )

    client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    events: list[Any] = []
    with socket.create_connection(server.address("tcp"), timeout=TIMEOUT) as sock:

        def wait_for(kind: type) -> Any:
            while True:
                for event in client.events():
                    events.append(event)
                    if isinstance(event, kind):
                        return event
                chunk = sock.recv(65536)
                assert chunk, f"closed; events so far: {events}"
                client.receive_data(chunk)

        sock.sendall(client.send(Request(host="localhost", target="/ws")))
        wait_for(AcceptConnection)
        sock.sendall(client.send(Message(data="hello")))
        assert wait_for(TextMessage).data == "echo: hello"
        sock.sendall(client.send(CloseConnection(code=1000)))
        assert wait_for(CloseConnection).code == 1000
