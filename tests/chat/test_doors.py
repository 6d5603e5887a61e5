"""The front doors driven with fake transports: framing, splits, UDP sequencing, time.

No sockets: bytes in, bytes out, and a fake clock for heartbeats and gaps.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from ionet.chat.page import WS_PATH, ChatPage
from ionet.chat.room import Lobby
from ionet.chat.service import ChatService
from ionet.chat.udp import GAP_TIMEOUT
from ionet.chat.ws import WebSocketChatProtocol, origin_allowed
from ionet.core.testing import (
    FakeClock,
    FakeDatagramTransport,
    FakeTransport,
    feed_split,
    random_pieces,
)
from ionet.http import HttpService
from ionet.http.mount import Site, compose

Obj = dict[str, Any]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(clock: FakeClock) -> ChatService:
    lobby = Lobby(history=10, max_text=100, rate=0, clock=clock, wall=lambda: 99.0)
    return ChatService(lobby, admin_token="sesame", udp_timeout=15.0, max_line=1000, clock=clock)


def lines(transport: FakeTransport, clock: FakeClock) -> list[Obj]:
    clock.advance(0)  # flushes are scheduled with call_later(0)
    return [json.loads(line) for line in transport.take().splitlines()]


def tcp(service: ChatService, clock: FakeClock) -> FakeTransport:
    transport = FakeTransport(clock=clock)
    transport.connect(service.tcp_protocol())
    return transport


def send(transport: FakeTransport, *objs: Obj) -> None:
    transport.feed(b"".join(json.dumps(o).encode() + b"\n" for o in objs))


# -- TCP ------------------------------------------------------------------------------


def test_tcp_conversation_one_byte_at_a_time(service: ChatService, clock: FakeClock) -> None:
    ann, bob = tcp(service, clock), tcp(service, clock)
    feed_split(ann, b'{"type": "join", "name": "ann"}\n', sizes=[1])
    assert lines(ann, clock) == [{"type": "welcome", "name": "ann", "room": "#lobby",
                                  "history": []}]
    data = b'{"type":"join","name":"bob"}\n{"type":"say","text":"hi \xe4\xbd\xa0"}\n'
    feed_split(bob, data, sizes=[3, 1, 7])
    assert lines(ann, clock) == [
        {"type": "joined", "name": "bob", "room": "#lobby"},
        {"type": "message", "from": "bob", "room": "#lobby", "text": "hi 你", "time": 99.0}]
    assert [o["type"] for o in lines(bob, clock)] == ["welcome"]


def test_tcp_random_splits_keep_every_message(service: ChatService, clock: FakeClock) -> None:
    ann, bob = tcp(service, clock), tcp(service, clock)
    send(ann, {"type": "join", "name": "ann"})
    stream = json.dumps({"type": "join", "name": "bob"}).encode() + b"\n" + b"".join(
        json.dumps({"type": "say", "text": f"n{n}"}).encode() + b"\n" for n in range(50))
    for piece in random_pieces(stream, seed=7, max_size=11):
        bob.feed(piece)
    got = [o["text"] for o in lines(ann, clock) if o["type"] == "message"]
    assert got == [f"n{n}" for n in range(50)]


def test_tcp_one_write_per_receiver_for_a_burst(service: ChatService, clock: FakeClock) -> None:
    ann, bob = tcp(service, clock), tcp(service, clock)
    send(ann, {"type": "join", "name": "ann"})
    send(bob, {"type": "join", "name": "bob"})
    clock.advance(0)
    ann.take()
    send(bob, *({"type": "say", "text": f"n{n}"} for n in range(20)))
    clock.advance(0)
    assert len(ann.chunks) == 1  # coalesced: one write
    assert ann.written().count(b"\n") == 20


def test_tcp_mistakes_get_errors_and_the_connection_stays(service: ChatService, clock: FakeClock) -> None:
    ann = tcp(service, clock)
    ann.feed(b"not json\n[1,2]\n{\"no\":\"type\"}\n")
    send(ann, {"type": "dance"}, {"type": "say", "text": "before joining"},
         {"type": "join", "name": "admin"}, {"type": "join", "name": "ann"},
         {"type": "say", "text": "x" * 101}, {"type": "msg", "to": "ghost", "text": "hi"},
         {"type": "announce", "text": "I am not the admin"}, {"type": "say", "text": "/dance"})
    ann.feed(b'{"type":"say","text":"' + b"y" * 2000 + b'"}\n')
    send(ann, {"type": "who"})
    codes = [o.get("code", o["type"]) for o in lines(ann, clock)]
    assert codes == ["bad_json", "bad_json", "bad_json", "unknown_type", "not_joined",
                     "reserved_name", "welcome", "too_long", "no_such_name", "not_admin",
                     "unknown_command", "too_large", "who"]
    assert not ann.closed


def test_tcp_leave_sends_a_confirmation_then_closes(service: ChatService, clock: FakeClock) -> None:
    ann, bob = tcp(service, clock), tcp(service, clock)
    send(ann, {"type": "join", "name": "ann"})
    send(bob, {"type": "join", "name": "bob"})
    lines(ann, clock), lines(bob, clock)
    send(bob, {"type": "say", "text": "/quit"})
    assert bob.closed
    assert bob.take().endswith(b'{"type":"left","name":"bob","room":"#lobby"}\n')
    assert lines(ann, clock) == [{"type": "left", "name": "bob", "room": "#lobby"}]
    bob.lose()
    assert lines(ann, clock) == []  # one notice, not two


def test_tcp_connection_lost_leaves_once(service: ChatService, clock: FakeClock) -> None:
    ann, bob = tcp(service, clock), tcp(service, clock)
    send(ann, {"type": "join", "name": "ann"})
    send(bob, {"type": "join", "name": "bob"})
    lines(ann, clock)
    bob.lose(ConnectionResetError())
    assert lines(ann, clock) == [{"type": "left", "name": "bob", "room": "#lobby"}]


def test_slash_commands(service: ChatService, clock: FakeClock) -> None:
    ann, bob = tcp(service, clock), tcp(service, clock)
    send(ann, {"type": "join", "name": "ann"})
    send(bob, {"type": "join", "name": "bob"})
    lines(ann, clock), lines(bob, clock)
    send(ann, {"type": "say", "text": "/msg bob a secret"}, {"type": "say", "text": "//not a command"},
         {"type": "say", "text": "/who"}, {"type": "say", "text": "/join #Games"})
    assert lines(bob, clock) == [
        {"type": "private", "from": "ann", "text": "a secret", "time": 99.0},
        {"type": "message", "from": "ann", "room": "#lobby", "text": "/not a command", "time": 99.0},
        {"type": "left", "name": "ann", "room": "#lobby"}]
    got = lines(ann, clock)
    assert got[0] == {"type": "who", "room": "#lobby", "names": ["ann", "bob"]}
    assert got[1]["type"] == "welcome" and got[1]["room"] == "#games"


def test_admin_token_and_announce(service: ChatService, clock: FakeClock) -> None:
    ann, boss = tcp(service, clock), tcp(service, clock)
    send(ann, {"type": "join", "name": "ann"})
    lines(ann, clock)
    send(boss, {"type": "auth", "token": "wrong"}, {"type": "auth", "token": "sesame"},
         {"type": "announce", "text": "hello all"})
    assert [o.get("code") or o.get("what") for o in lines(boss, clock)] == [
        "bad_token", "auth", "announce"]
    assert lines(ann, clock) == [{"type": "announce", "text": "hello all", "time": 99.0}]


def test_a_slow_tcp_receiver_is_dropped_not_waited_for(clock: FakeClock) -> None:
    lobby = Lobby(rate=0, clock=clock)
    service = ChatService(lobby, sink_cap=10_000, clock=clock)
    ann, bob = tcp(service, clock), tcp(service, clock)
    slow = Clogged(clock=clock)
    slow.connect(service.tcp_protocol())
    send(ann, {"type": "join", "name": "ann"})
    send(slow, {"type": "join", "name": "slow"})
    send(bob, {"type": "join", "name": "bob"})
    for n in range(300):
        send(ann, {"type": "say", "text": f"message number {n}"})
        clock.advance(0)
    assert slow.aborted
    got = lines(bob, clock) + lines(ann, clock)
    assert {"type": "left", "name": "slow", "room": "#lobby", "reason": "too slow"} in got
    assert sum(1 for o in got if o["type"] == "left") == 2  # one for bob, one for ann
    assert "slow" not in lobby.members


class Clogged(FakeTransport):
    """A peer that reads nothing: everything written stays in the write buffer."""

    def get_write_buffer_size(self) -> int:
        return sum(map(len, self.chunks))


def say_lines(count: int, start: int = 0, size: int = 3900) -> bytes:
    return b"".join(b'{"type":"say","text":"%d %s"}\n' % (n, b"x" * size)
                    for n in range(start, start + count))


def test_a_receiver_that_reads_nothing_cannot_hold_a_flooding_sender(clock: FakeClock) -> None:
    # Alone with the sender it is "most of the room behind", so the sender is
    # held; but it takes nothing, so the hold must end, and it is dropped.
    service = ChatService(Lobby(rate=0, max_text=4000, clock=clock), clock=clock)
    ann = tcp(service, clock)
    slow = Clogged(clock=clock)
    slow.connect(service.tcp_protocol())
    send(slow, {"type": "join", "name": "slow"})
    send(ann, {"type": "join", "name": "ann"})
    sent = 0
    for _ in range(400):  # 40 s of the fake clock at most
        if slow.aborted:
            break
        if ann.reading:
            ann.feed(say_lines(64, sent))  # 250 KB a recv, as a flood arrives
            sent += 64
        clock.advance(0.1)
    assert slow.aborted, f"the sender is held for ever ({sent} lines sent)"
    assert sent * 3900 < 3 * service.sink_cap  # dropped near its cap, not much later
    assert {"type": "left", "name": "slow", "room": "#lobby", "reason": "too slow"} in \
        lines(ann, clock)
    clock.advance(0.1)
    assert ann.reading


def test_bytes_in_a_blocking_write_count_as_behind(service: ChatService, clock: FakeClock) -> None:
    # On the thread and gevent engines write() waits for the peer: what it
    # holds is in neither the outbox nor the (empty) write buffer.
    class Blocking(FakeTransport):
        backlog_seen: list[int] = []

        def write(self, data: bytes) -> None:
            self.backlog_seen.append(self.protocol.sink.backlog())  # type: ignore[union-attr]
            super().write(data)

    ann = tcp(service, clock)
    bob = Blocking(clock=clock)
    bob.connect(service.tcp_protocol())
    send(bob, {"type": "join", "name": "bob"})
    send(ann, {"type": "join", "name": "ann"})
    clock.advance(0)
    bob.take()
    Blocking.backlog_seen.clear()
    send(ann, {"type": "say", "text": "hello"})
    clock.advance(0)
    assert Blocking.backlog_seen == [len(bob.written())] and bob.written()
    assert bob.protocol.sink.backlog() == 0  # type: ignore[union-attr]


def test_a_turn_never_adds_more_than_a_quarter_of_the_cap(clock: FakeClock) -> None:
    # 256 lines of 4 KB are a whole megabyte: one such turn could take a
    # receiver that was not behind before it past its cap before the room's
    # congestion is looked at.
    service = ChatService(Lobby(rate=0, max_text=4000, clock=clock), clock=clock)
    ann, bob = tcp(service, clock), tcp(service, clock)
    send(ann, {"type": "join", "name": "ann"})
    send(bob, {"type": "join", "name": "bob"})
    clock.advance(0)
    bob.take()
    ann.feed(say_lines(600))
    clock.advance(1.0)
    assert len(bob.written().splitlines()) == 600
    assert max(map(len, bob.chunks)) < service.sink_cap // 3  # a quarter, as output lines


def test_server_stopping_tells_the_client_and_closes(service: ChatService, clock: FakeClock) -> None:
    ann = tcp(service, clock)
    send(ann, {"type": "join", "name": "ann"})
    lines(ann, clock)
    ann.protocol.server_stopping()  # type: ignore[union-attr]
    assert ann.closed
    assert json.loads(ann.take())["code"] == "shutting_down"


# -- UDP ------------------------------------------------------------------------------


class Udp:
    def __init__(self, service: ChatService, clock: FakeClock) -> None:
        self.transport = FakeDatagramTransport(clock=clock)
        self.proto = service.udp_protocol()
        self.transport.connect(self.proto)

    def feed(self, addr: Any, seq: int, obj: Obj) -> None:
        self.proto.datagram_received(b"%d %s" % (seq, json.dumps(obj).encode()), addr)

    def take(self, addr: Any) -> list[tuple[int, Obj]]:
        got = [(int(d.split(b" ", 1)[0]), json.loads(d.split(b" ", 1)[1]))
               for d, a in self.transport.sent if a == addr]
        self.transport.sent = [(d, a) for d, a in self.transport.sent if a != addr]
        return got

    def objs(self, addr: Any) -> list[Obj]:
        return [o for seq, o in self.take(addr) if o["type"] != "ack"]


A, B = ("10.0.0.1", 1111), ("10.0.0.2", 2222)


def test_udp_datagrams_numbered_and_acked(service: ChatService, clock: FakeClock) -> None:
    udp = Udp(service, clock)
    udp.feed(A, 1, {"type": "join", "name": "ann"})
    udp.feed(B, 7, {"type": "join", "name": "bob"})
    udp.feed(B, 8, {"type": "say", "text": "hi"})
    assert udp.take(A) == [
        (0, {"type": "ack", "seq": 1}),
        (1, {"type": "welcome", "name": "ann", "room": "#lobby", "history": []}),
        (2, {"type": "joined", "name": "bob", "room": "#lobby"}),
        (3, {"type": "message", "from": "bob", "room": "#lobby", "text": "hi", "time": 99.0})]
    assert [s for s, o in udp.take(B)] == [0, 1, 0]


def test_udp_duplicates_are_acked_again_and_handled_once(service: ChatService, clock: FakeClock) -> None:
    udp = Udp(service, clock)
    udp.feed(A, 1, {"type": "join", "name": "ann"})
    udp.feed(B, 1, {"type": "join", "name": "bob"})
    udp.take(A)
    for _ in range(3):
        udp.feed(B, 2, {"type": "say", "text": "once"})
    assert [o["text"] for o in udp.objs(A)] == ["once"]
    assert udp.take(B).count((0, {"type": "ack", "seq": 2})) == 3


def test_udp_reordered_datagrams_are_put_back_in_order(service: ChatService, clock: FakeClock) -> None:
    udp = Udp(service, clock)
    udp.feed(A, 1, {"type": "join", "name": "ann"})
    udp.feed(B, 1, {"type": "join", "name": "bob"})
    udp.take(A)
    for seq in (4, 3, 5, 2):
        udp.feed(B, seq, {"type": "say", "text": f"m{seq}"})
    assert [o["text"] for o in udp.objs(A)] == ["m2", "m3", "m4", "m5"]


def test_udp_a_gap_that_is_never_filled_is_skipped(service: ChatService, clock: FakeClock) -> None:
    udp = Udp(service, clock)
    udp.feed(A, 1, {"type": "join", "name": "ann"})
    udp.feed(B, 1, {"type": "join", "name": "bob"})
    udp.take(A)
    udp.feed(B, 3, {"type": "say", "text": "m3"})
    udp.feed(B, 4, {"type": "say", "text": "m4"})
    assert udp.objs(A) == []
    clock.advance(GAP_TIMEOUT + 1)
    assert [o["text"] for o in udp.objs(A)] == ["m3", "m4"]
    udp.feed(B, 2, {"type": "say", "text": "too late"})
    udp.feed(B, 5, {"type": "say", "text": "m5"})
    assert [o["text"] for o in udp.objs(A)] == ["m5"]


def test_udp_silence_drops_the_client_with_one_notice(service: ChatService, clock: FakeClock) -> None:
    udp = Udp(service, clock)
    udp.feed(A, 1, {"type": "join", "name": "ann"})
    udp.feed(B, 1, {"type": "join", "name": "bob"})
    udp.take(A)
    for _ in range(4):  # ann keeps beating; bob is silent
        clock.advance(5)
        udp.proto.datagram_received(b'0 {"type":"ping"}', A)
    got = udp.objs(A)
    assert got.count({"type": "left", "name": "bob", "room": "#lobby", "reason": "timed out"}) == 1
    assert {"type": "ok", "what": "ping"} in got
    assert udp.objs(B)[-1]["code"] == "timed_out"
    assert list(udp.proto.peers) == [A]
    clock.advance(60)
    assert [o.get("code") for o in udp.objs(A)] == ["timed_out"]  # no notice about herself
    assert udp.proto.peers == {}


def test_udp_before_join_and_garbage(service: ChatService, clock: FakeClock) -> None:
    udp = Udp(service, clock)
    udp.feed(A, 1, {"type": "say", "text": "hi"})
    udp.proto.datagram_received(b"hello", A)
    udp.proto.datagram_received(b'0 {"type":"ping"}', A)
    udp.proto.datagram_received(b"\x00wake:forged", A)
    assert [o["code"] for o in udp.objs(A)] == ["not_joined", "bad_datagram", "not_joined"]
    udp.feed(A, 1, {"type": "join", "name": "ann"})
    udp.proto.datagram_received(b"2 not json", A)
    assert [o.get("code", o["type"]) for o in udp.objs(A)] == ["welcome", "bad_json"]


def test_udp_leave(service: ChatService, clock: FakeClock) -> None:
    udp = Udp(service, clock)
    udp.feed(A, 1, {"type": "join", "name": "ann"})
    udp.feed(B, 1, {"type": "join", "name": "bob"})
    udp.take(A)
    udp.feed(B, 2, {"type": "leave"})
    assert udp.objs(A) == [{"type": "left", "name": "bob", "room": "#lobby"}]
    assert udp.objs(B)[-1] == {"type": "left", "name": "bob", "room": "#lobby"}
    assert B not in udp.proto.peers


def test_udp_big_history_is_trimmed_to_fit_a_datagram(clock: FakeClock) -> None:
    lobby = Lobby(history=50, max_text=2000, rate=0, clock=clock)
    service = ChatService(lobby, clock=clock)
    udp = Udp(service, clock)
    udp.feed(A, 1, {"type": "join", "name": "ann"})
    for n in range(50):
        udp.feed(A, n + 2, {"type": "say", "text": f"{n:04d}" + "長" * 1990})
    udp.feed(B, 1, {"type": "join", "name": "bob"})
    (seq, welcome), = [(s, o) for s, o in udp.take(B) if o["type"] == "welcome"]
    assert 0 < len(welcome["history"]) < 50
    assert welcome["history"][-1]["text"].startswith("0049")


# -- the page and the WebSocket, through ionet's HTTP server ---------------------------


def http(service: ChatService, clock: FakeClock) -> FakeTransport:
    """A connection to ``HttpService(ChatPage(), upgrades=...)``, as ``chat serve`` builds it."""
    http_service = HttpService(ChatPage(), upgrades={WS_PATH: service.websocket_protocol},
                               clock=clock)
    transport = FakeTransport(clock=clock)
    transport.connect(http_service())
    return transport


def ws_client(service: ChatService, clock: FakeClock, sizes: list[int] | None = None,
              **request: Any) -> tuple[FakeTransport, WSConnection]:
    transport = http(service, clock)
    client = WSConnection(ConnectionType.CLIENT)
    handshake = client.send(Request(host="localhost", target="/chat/ws", **request))
    if sizes:
        feed_split(transport, handshake, sizes=sizes)
    else:
        transport.feed(handshake)
    client.receive_data(transport.take())
    assert isinstance(next(client.events()), AcceptConnection)
    assert isinstance(transport.protocol, WebSocketChatProtocol)
    return transport, client


def masked_text(text: str) -> bytes:
    """A client's text frame (RFC 6455 section 5.2), for bytes sent before the
    handshake's answer (wsproto will not build one then)."""
    payload = text.encode()
    assert len(payload) < 126
    mask = b"\x0f\xf0\x55\xaa"
    return (bytes([0x81, 0x80 | len(payload)]) + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def ws_objs(transport: FakeTransport, client: WSConnection, clock: FakeClock) -> list[Obj]:
    clock.advance(0)
    client.receive_data(transport.take())
    return [json.loads(e.data) for e in client.events() if isinstance(e, TextMessage)]


def test_websocket_chat_through_the_http_server(service: ChatService, clock: FakeClock) -> None:
    (ta, ca), (tb, cb) = ws_client(service, clock), ws_client(service, clock, sizes=[1])
    ta.feed(ca.send(TextMessage(data=json.dumps({"type": "join", "name": "ann"}))))
    tb.feed(cb.send(TextMessage(data=json.dumps({"type": "join", "name": "bob"}))))
    frame = cb.send(TextMessage(data=json.dumps({"type": "say", "text": "<script>x</script>"})))
    feed_split(tb, frame, sizes=[1])
    assert ws_objs(ta, ca, clock)[1:] == [
        {"type": "joined", "name": "bob", "room": "#lobby"},
        {"type": "message", "from": "bob", "room": "#lobby", "text": "<script>x</script>",
         "time": 99.0}]


def test_the_upgrade_and_a_frame_in_one_read(service: ChatService, clock: FakeClock) -> None:
    transport = http(service, clock)
    client = WSConnection(ConnectionType.CLIENT)
    transport.feed(client.send(Request(host="localhost", target="/chat/ws"))
                   + masked_text('{"type":"join","name":"ann"}'))
    client.receive_data(transport.take())
    events = list(client.events())
    assert isinstance(events[0], AcceptConnection)
    clock.advance(0)
    client.receive_data(transport.take())
    objs = [json.loads(e.data) for e in [*events, *client.events()] if isinstance(e, TextMessage)]
    assert objs[0]["type"] == "welcome" and objs[0]["name"] == "ann"


def test_websocket_and_tcp_share_the_room(service: ChatService, clock: FakeClock) -> None:
    tw, cw = ws_client(service, clock)
    tt = tcp(service, clock)
    send(tt, {"type": "join", "name": "tcp"})
    tw.feed(cw.send(TextMessage(data='{"type":"join","name":"web"}')))
    send(tt, {"type": "say", "text": "to the web"})
    assert ws_objs(tw, cw, clock)[-1]["text"] == "to the web"
    tw.feed(cw.send(TextMessage(data='{"type":"say","text":"to tcp"}')))
    assert lines(tt, clock)[-1]["text"] == "to tcp"


def test_a_page_of_the_same_origin_is_accepted(service: ChatService, clock: FakeClock) -> None:
    transport, client = ws_client(service, clock,
                                  extra_headers=[(b"Origin", b"http://localhost")])
    transport.feed(client.send(TextMessage(data='{"type":"join","name":"ann"}')))
    assert ws_objs(transport, client, clock)[0]["type"] == "welcome"


@pytest.mark.parametrize("origin", [b"http://evil.example", b"http://localhost:8001",
                                    b"null", b"file://", b"http://localhost.evil.example"])
def test_a_page_of_another_origin_is_refused(service: ChatService, clock: FakeClock,
                                             origin: bytes) -> None:
    transport = http(service, clock)
    client = WSConnection(ConnectionType.CLIENT)
    handshake = client.send(Request(host="localhost", target="/chat/ws",
                                    extra_headers=[(b"Origin", origin)]))
    transport.feed(handshake + masked_text('{"type":"join","name":"eve"}'))
    reply = transport.take()
    assert reply.startswith(b"HTTP/1.1 403 "), reply
    assert transport.closed
    assert not any(room.members for room in service.lobby.rooms.values())


def test_allowed_origins_open_the_websocket(clock: FakeClock) -> None:
    service = ChatService(Lobby(rate=0, clock=clock), clock=clock,
                          allowed_origins=["https://Chat.Example.com/"])
    ws_client(service, clock, extra_headers=[(b"Origin", b"https://chat.example.com")])
    transport = http(service, clock)
    client = WSConnection(ConnectionType.CLIENT)
    transport.feed(client.send(Request(host="localhost", target="/chat/ws",
                                       extra_headers=[(b"Origin", b"https://evil.example")])))
    assert transport.take().startswith(b"HTTP/1.1 403 ")


@pytest.mark.parametrize("origin, host, same", [
    ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
    ("http://example.com", "example.com:80", True),
    ("https://example.com", "example.com", True),
    ("http://[::1]:8000", "[::1]:8000", True),
    ("http://LocalHost:8000", "localhost:8000", True),
    ("http://example.com:8080", "example.com", False),
    ("http://localhost:8000", "127.0.0.1:8000", False),
    ("http://user@example.com", "example.com", False),
    ("http://example.com:99999", "example.com:99999", False),
    ("ftp://example.com", "example.com", False),
    ("null", "example.com", False),
])
def test_origin_allowed(origin: str, host: str, same: bool) -> None:
    assert origin_allowed(origin, host) is same


def test_page_redirect_404_426_and_bad_requests() -> None:
    service, clock = ChatService(), FakeClock()
    for request, status in ((b"GET /chat/ HTTP/1.1\r\nHost: x\r\n\r\n", b"200"),
                            (b"HEAD /chat/?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", b"200"),
                            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"302"),
                            (b"GET /chat HTTP/1.1\r\nHost: x\r\n\r\n", b"302"),
                            (b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", b"404"),
                            (b"GET /chat/ws HTTP/1.1\r\nHost: x\r\n\r\n", b"426"),
                            (b"POST /chat/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                             b"405"),
                            (b"garbage\r\n\r\n", b"400")):
        transport = http(service, clock)
        feed_split(transport, request, sizes=[5])
        reply = transport.take()
        head, _, body = reply.partition(b"\r\n\r\n")
        assert reply.split(b" ")[1] == status, reply[:200]
        if status == b"200":
            assert b"Content-Security-Policy: default-src 'none'; script-src 'sha256-" in head
            assert b"X-Content-Type-Options: nosniff\r\n" in head
            assert b"Cache-Control: no-cache\r\n" in head
            assert b"Content-Type: text/html; charset=utf-8\r\n" in head
            if request.startswith(b"HEAD"):
                assert body == b""
            else:
                assert b"<script>" in body and b"textContent" in body
        elif status == b"302":
            assert b"Location: /chat/\r\n" in head
        elif status == b"426":
            assert b"Upgrade: websocket\r\n" in head
        elif status == b"405":
            assert b"Allow: GET, HEAD\r\n" in head
        elif status == b"400":
            assert transport.closed


def test_a_burst_over_the_urgent_mark_in_one_call_still_flushes(service: ChatService, clock: FakeClock) -> None:
    ann, bob = tcp(service, clock), tcp(service, clock)
    send(ann, {"type": "join", "name": "ann"})
    send(bob, {"type": "join", "name": "bob"})
    clock.advance(0)
    ann.take()
    burst = [{"type": "say", "text": f"{n:03d}" + "x" * 90} for n in range(900)]  # > 64 KiB
    send(bob, *burst)
    clock.advance(1)
    got = [json.loads(line)["text"][:3] for line in ann.take().splitlines()]
    assert got == [f"{n:03d}" for n in range(900)]


def test_sites_compose_into_one_server() -> None:
    """``ionet up``'s way of mounting the chat beside other pages (ionet.http.mount)."""
    class Text:
        allow = b"GET"

        def __init__(self, text: bytes) -> None:
            self.text = text

        def handle(self, request: Any, conn: Any) -> None:
            conn.respond(request, 200, b"", self.text + b" " + request.path)

    service = ChatService()
    handler, upgrades = compose([service.http_site(), Site("/other/", Text(b"other"))],
                                Text(b"fallback"))
    assert upgrades == {WS_PATH: service.websocket_protocol}
    http_service = HttpService(handler, upgrades=upgrades)
    for path, expected in ((b"/chat/", b"200"), (b"/chat/ws", b"426"), (b"/chat", b"301"),
                           (b"/other/x", b"other /other/x"), (b"/", b"fallback /"),
                           (b"/chatter", b"fallback /chatter")):
        transport = FakeTransport()
        transport.connect(http_service())
        transport.feed(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
        reply = transport.take()
        assert (reply.split(b" ")[1] == expected if expected.isdigit()
                else reply.endswith(b"\r\n\r\n" + expected)), (path, reply[:300])
    assert compose([], Text(b"alone"))[1] == {}
    with pytest.raises(ValueError, match="/chat/"):
        compose([service.http_site(), Site("/chat/", Text(b"twice"))], Text(b"fallback"))
    with pytest.raises(ValueError, match="/chat/ws"):
        compose([service.http_site(),
                 Site("/talk/", Text(b"t"), {WS_PATH: service.websocket_protocol})],
                Text(b"fallback"))
