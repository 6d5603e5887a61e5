"""Several chat servers sharing rooms through the real Redis server (127.0.0.1:6379).

Every test uses a fresh key prefix, so runs never see each other's names,
rooms or history.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chat.conftest import ChatServer
from tests.chat.peers import Peer, TcpPeer, UdpPeer, WsPeer

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def prefix() -> Iterator[str]:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"these tests need redis-server on 127.0.0.1:6379: {exc}")
    name = f"ionet-test:{uuid.uuid4().hex[:12]}"
    yield name
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def redis_server(tmp_path: Path, prefix: str, engine: str = "epoll", *extra: str) -> ChatServer:
    return ChatServer(tmp_path, engine, "--redis", REDIS_URL, "--redis-prefix", prefix, *extra)


@pytest.mark.parametrize("engine", ["asyncio", "thread", "gevent"])
def test_two_servers_share_a_room(tmp_path: Path, prefix: str, engine: str) -> None:
    with redis_server(tmp_path, prefix) as one, redis_server(tmp_path, prefix, engine) as two:
        with TcpPeer(one.tcp) as ann, UdpPeer(two.udp) as bob, WsPeer(two.http) as cat:
            ann.join("ann")
            ann.say("before bob came")
            bob.join("bob")
            ann.expect("joined", name="bob")
            cat.join("cat")
            ann.expect("joined", name="cat")
            bob.expect("joined", name="cat")
            history = cat.seen[0]["history"]
            assert [h["text"] for h in history] == ["before bob came"]
            ann.say("hello from one")
            bob.expect("message", **{"from": "ann", "text": "hello from one"})
            cat.expect("message", **{"from": "ann", "text": "hello from one"})
            bob.say("hello from two")
            ann.expect("message", **{"from": "bob", "text": "hello from two"})
            cat.expect("message", **{"from": "bob", "text": "hello from two"})
            ann.send({"type": "who"})
            assert ann.expect("who")["names"] == ["ann", "bob", "cat"]
            ann.send({"type": "msg", "to": "Cat", "text": "across servers"})
            cat.expect("private", **{"from": "ann", "text": "across servers"})
            ann.send({"type": "msg", "to": "nobody", "text": "?"})
            assert ann.expect("error")["code"] == "no_such_name"
            with TcpPeer(one.tcp) as impostor:
                impostor.send({"type": "join", "name": "BOB"})
                assert impostor.expect("error")["code"] == "name_taken"
            cat.send({"type": "leave"})
            ann.expect("left", name="cat")
            bob.expect("left", name="cat")
            with TcpPeer(one.tcp) as again:  # the name is free again, on either server
                again.join("cat")


def test_rooms_stay_apart_across_servers(tmp_path: Path, prefix: str) -> None:
    with redis_server(tmp_path, prefix) as one, redis_server(tmp_path, prefix) as two:
        with TcpPeer(one.tcp) as ann, TcpPeer(two.tcp) as bob, TcpPeer(two.tcp) as cat:
            ann.join("ann", "#games")
            bob.join("bob", "#games")
            cat.join("cat")
            ann.say("games only")
            bob.expect("message", text="games only")
            cat.send({"type": "who"})
            assert cat.expect("who")["names"] == ["cat"]
            assert not [o for o in cat.seen if o["type"] == "message"]


def test_duplicate_names_racing_on_two_servers(tmp_path: Path, prefix: str) -> None:
    with redis_server(tmp_path, prefix) as one, redis_server(tmp_path, prefix) as two:
        for round_ in range(10):
            peers: list[Peer] = [TcpPeer(one.tcp), TcpPeer(two.tcp)]
            barrier = threading.Barrier(2)
            results: list[str] = []

            def race(peer: Peer) -> None:
                barrier.wait(5)
                peer.send({"type": "join", "name": f"racer{round_}"})
                while (obj := peer.next())["type"] not in ("welcome", "error"):
                    pass
                results.append(obj.get("code", "welcome"))

            threads = [threading.Thread(target=race, args=(p,)) for p in peers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(15)
            assert sorted(results) == ["name_taken", "welcome"]
            for peer in peers:
                peer.close()


def test_announcements_reach_every_server(tmp_path: Path, prefix: str) -> None:
    with redis_server(tmp_path, prefix) as one, redis_server(tmp_path, prefix) as two:
        with TcpPeer(one.tcp) as boss, TcpPeer(two.tcp) as bob:
            bob.join("bob")
            token = (tmp_path / "chat-admin-token").read_text().strip()
            boss.send({"type": "auth", "token": token})
            boss.send({"type": "announce", "text": "to all servers"})
            boss.expect("ok", what="announce")
            assert bob.expect("announce")["text"] == "to all servers"


def test_a_vanished_member_on_another_server_leaves_once(tmp_path: Path, prefix: str) -> None:
    with redis_server(tmp_path, prefix) as one, redis_server(tmp_path, prefix) as two:
        with TcpPeer(one.tcp) as watcher:
            watcher.join("watcher")
            ghost = TcpPeer(two.tcp)
            ghost.join("ghost")
            watcher.expect("joined", name="ghost")
            ghost.reset()
            watcher.expect("left", name="ghost")
            assert [o for o in watcher.quiet(0.5) if o["type"] == "left"] == []


@pytest.mark.parametrize("flags", [("fork",), ("epoll", "--workers", "2")],
                         ids=["fork", "epoll-2-workers"])
def test_separate_processes_share_the_room_through_redis(
        tmp_path: Path, prefix: str, flags: tuple[str, ...]) -> None:
    with redis_server(tmp_path, prefix, *flags) as server:
        peers = [TcpPeer(server.tcp) for _ in range(4)]
        try:
            for n, peer in enumerate(peers):
                peer.join(f"p{n}")
            for n, peer in enumerate(peers):
                peer.say(f"from p{n}")
            for n, peer in enumerate(peers):  # processes: no order between senders
                got = {(o["from"], o["text"]) for o in (peer.expect("message") for _ in range(3))}
                assert got == {(f"p{m}", f"from p{m}") for m in range(4) if m != n}
            clash = TcpPeer(server.tcp)
            clash.send({"type": "join", "name": "P1"})
            assert clash.expect("error")["code"] == "name_taken"
            clash.close()
            peers[0].send({"type": "leave"})
            for peer in peers[1:]:
                peer.expect("left", name="p0")
        finally:
            for peer in peers:
                peer.close()
