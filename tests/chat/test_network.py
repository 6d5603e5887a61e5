"""The chat over real sockets: every front door, every engine, vanishing clients.

Each test runs ``ionet chat serve`` as a real process (ports 0) and talks to it
with the test clients of ``peers.py``; every socket operation has a timeout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.chat.conftest import CHAT_ENGINES
from tests.chat.peers import Peer, TcpPeer, UdpPeer, WsPeer


def test_every_engine_join_say_receive_leave(engine: str, chat_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if engine not in CHAT_ENGINES:
        argv = [sys.executable, "-m", "ionet", "chat", "serve", "--engine", engine, "--port", "0",
                "--http-port", "-1", "--data-dir", str(tmp_path)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert done.returncode == 2
        assert ("--redis" if engine == "fork" else "one connection at a time") in done.stderr
        return
    with chat_server(engine) as server:
        with TcpPeer(server.tcp) as ann, UdpPeer(server.udp) as bob, WsPeer(server.http) as cat:
            ann.join("ann")
            bob.join("bob")
            cat.join("cat")
            ann.expect("joined", name="cat")
            ann.say("from tcp")
            bob.expect("message", text="from tcp")
            cat.expect("message", text="from tcp")
            bob.say("from udp")
            ann.expect("message", **{"from": "bob", "text": "from udp"})
            cat.say("from ws")
            bob.expect("message", **{"from": "cat", "text": "from ws"})
            ann.expect("message", **{"from": "cat", "text": "from ws"})
            ann.send({"type": "leave"})
            ann.expect("left", name="ann")
            assert ann.closed_by_server()
            bob.expect("left", name="ann")
            cat.expect("left", name="ann")


def test_three_doors_see_each_others_messages_and_notices(chat_server) -> None:  # type: ignore[no-untyped-def]
    with chat_server("epoll") as server:
        with UdpPeer(server.udp) as u, TcpPeer(server.tcp) as t, WsPeer(server.http) as w:
            u.join("udp")
            t.join("tcp")
            u.expect("joined", name="tcp")
            w.join("web")
            u.expect("joined", name="web")
            t.expect("joined", name="web")
            for speaker, others in ((u, (t, w)), (t, (u, w)), (w, (u, t))):
                name = {u: "udp", t: "tcp", w: "web"}[speaker]
                speaker.say(f"hello from {name}")
                for other in others:
                    other.expect("message", **{"from": name, "text": f"hello from {name}"})
            t.send({"type": "msg", "to": "UDP", "text": "private"})
            u.expect("private", **{"from": "tcp", "text": "private"})
            w.send({"type": "who"})
            assert w.expect("who")["names"] == ["tcp", "udp", "web"]
            u.send({"type": "leave"})
            t.expect("left", name="udp")
            w.expect("left", name="udp")
            # Nobody got their own message back.
            for peer, name in ((u, "udp"), (t, "tcp"), (w, "web")):
                assert not [o for o in peer.seen if o.get("type") == "message" and o["from"] == name]


def test_duplicate_names_racing_from_two_clients(chat_server) -> None:  # type: ignore[no-untyped-def]
    with chat_server("epoll") as server:
        for round_ in range(15):
            name = f"racer{round_}"
            peers: list[Peer] = [TcpPeer(server.tcp), UdpPeer(server.udp) if round_ % 2 else
                                 WsPeer(server.http)]
            barrier = threading.Barrier(len(peers))
            results: list[str] = []

            def race(peer: Peer, spelled: str) -> None:
                barrier.wait(5)
                peer.send({"type": "join", "name": spelled})
                while True:
                    obj = peer.next()
                    if obj["type"] in ("welcome", "error"):
                        results.append(obj.get("code", "welcome"))
                        return

            threads = [threading.Thread(target=race, args=(p, s))
                       for p, s in zip(peers, (name, name.upper()))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(15)
            assert sorted(results) == ["name_taken", "welcome"], results
            for peer in peers:
                peer.close()


def test_a_tcp_reset_gives_exactly_one_leave_notice(chat_server) -> None:  # type: ignore[no-untyped-def]
    with chat_server("epoll") as server:
        with TcpPeer(server.tcp) as watcher:
            watcher.join("watcher")
            ghost = TcpPeer(server.tcp)
            ghost.join("ghost")
            watcher.expect("joined", name="ghost")
            ghost.reset()
            watcher.expect("left", name="ghost")
            assert [o for o in watcher.quiet(0.5) if o["type"] == "left"] == []
            again = TcpPeer(server.tcp)  # the name is free again
            again.join("ghost")
            again.close()


def test_udp_silence_gives_exactly_one_leave_notice(chat_server) -> None:  # type: ignore[no-untyped-def]
    with chat_server("epoll", "--udp-timeout", "1") as server:
        with TcpPeer(server.tcp) as watcher, UdpPeer(server.udp) as ghost:
            watcher.join("watcher")
            ghost.join("ghost")
            watcher.expect("joined", name="ghost")
            started = time.monotonic()
            left = watcher.expect("left", name="ghost", timeout=10)
            assert left["reason"] == "timed out"
            assert 0.8 < time.monotonic() - started < 5
            assert [o for o in watcher.quiet(1.0) if o["type"] == "left"] == []
            assert ghost.expect("error")["code"] == "timed_out"


def test_udp_heartbeats_keep_a_quiet_client_in(chat_server) -> None:  # type: ignore[no-untyped-def]
    with chat_server("epoll", "--udp-timeout", "1") as server:
        with TcpPeer(server.tcp) as watcher, UdpPeer(server.udp) as quiet:
            watcher.join("watcher")
            quiet.join("quiet")
            for _ in range(8):
                quiet.sendraw(b'0 {"type":"ping"}')
                quiet.expect("ok", what="ping")
                time.sleep(0.25)  # the client's heartbeat interval, not a wait for the server
            watcher.say("still there?")
            quiet.expect("message", text="still there?")
            assert not [o for o in watcher.seen if o["type"] == "left"]


@pytest.mark.parametrize("engine", ["epoll", "asyncio", "thread", "gevent"])
def test_a_slow_receiver_is_dropped_and_the_sender_never_stalls(engine: str, chat_server) -> None:  # type: ignore[no-untyped-def]
    count, text = 3000, "x" * 3900  # ~12 MB to each receiver: past the kernel's
    # buffers (up to 4 MiB send + the receiver's window) and the 1 MiB cap
    with chat_server(engine, "--rate", "0", "--max-text", "4000") as server:
        with TcpPeer(server.tcp) as sender, TcpPeer(server.tcp) as fast, socket.socket() as slow:
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.settimeout(10)
            slow.connect(server.tcp)
            slow.sendall(b'{"type":"join","name":"slow"}\n')
            sender.join("sender")
            fast.join("fast")
            sender.expect("joined", name="fast")
            numbers: list[int] = []

            def read_all() -> None:
                while len(numbers) < count:
                    numbers.append(int(fast.expect("message", timeout=30)["text"].split()[0]))

            reader = threading.Thread(target=read_all)
            reader.start()
            for n in range(count):
                sender.sendraw(b'{"type":"say","text":"%d %s"}\n' % (n, text.encode()))
            left = sender.expect("left", name="slow", timeout=30)
            assert left["reason"] == "too slow"
            reader.join(60)
            assert numbers == list(range(count))


def test_announce_from_the_command_line(chat_server) -> None:  # type: ignore[no-untyped-def]
    with chat_server("epoll") as server:
        with TcpPeer(server.tcp) as ann, UdpPeer(server.udp) as bob:
            ann.join("ann")
            bob.join("bob", "#other")
            host, port = server.tcp
            argv = [sys.executable, "-m", "ionet", "chat", "announce", "lunch", "is", "ready",
                    "--host", host, "--port", str(port), "--data-dir", str(server.data_dir)]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, done.stderr
            for peer in (ann, bob):
                assert peer.expect("announce")["text"] == "lunch is ready"
            (server.data_dir / "chat-admin-token").write_text("forged\n")
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            assert done.returncode == 2 and "wrong administrator token" in done.stderr


def test_console_lines_are_announced(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "ionet", "chat", "serve", "--port", "0", "--http-port", "-1",
            "--data-dir", str(tmp_path)]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline().decode()
        port = int(line.split("tcp://127.0.0.1:")[1].split()[0])
        with TcpPeer(("127.0.0.1", port)) as ann:
            ann.join("ann")
            proc.stdin.write("服务器维护\n".encode())
            proc.stdin.flush()
            assert ann.expect("announce")["text"] == "服务器维护"
    finally:
        proc.terminate()
        proc.wait(30)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
    assert proc.returncode == 0


def test_oversized_lines_and_rate_limits_over_tcp(chat_server) -> None:  # type: ignore[no-untyped-def]
    with chat_server("epoll", "--rate", "1", "--burst", "2") as server:
        with TcpPeer(server.tcp) as ann, TcpPeer(server.tcp) as bob:
            ann.join("ann")
            bob.join("bob")
            ann.sendraw(b"x" * 100_000 + b"\n")
            assert ann.expect("error")["code"] == "too_large"
            for n in range(3):
                ann.say(f"m{n}")
            assert ann.expect("error")["code"] == "rate_limited"
            ann.send({"type": "who"})
            ann.expect("who")  # still connected
            assert [bob.expect("message")["text"] for _ in range(2)] == ["m0", "m1"]


def test_the_terminal_client_scripted(chat_server) -> None:  # type: ignore[no-untyped-def]
    with chat_server("epoll") as server:
        with TcpPeer(server.tcp) as watcher:
            watcher.join("watcher")
            host, port = server.tcp
            for flag, name in (("", "tcpuser"), ("--udp", "udpuser")):
                argv = [sys.executable, "-m", "ionet", "chat", "join", "--name", name,
                        "--host", host, "--port", str(port)] + ([flag] if flag else [])
                watcher.say(f"hello {name}")  # shown from the history on joining
                proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
                watcher.expect("joined", name=name)
                assert proc.stdin is not None
                proc.stdin.write("hi watcher\n/msg watcher psst\n/quit\n")
                proc.stdin.flush()
                out, err = proc.communicate(timeout=20)
                assert proc.returncode == 0, err
                assert f"watcher: hello {name}" in out
                watcher.expect("message", **{"from": name, "text": "hi watcher"})
                watcher.expect("private", **{"from": name, "text": "psst"})
                watcher.expect("left", name=name)


def test_ionet_up_includes_the_chat(tmp_path: Path) -> None:
    from ionet.chat.cli import up_endpoints
    from ionet.cli import build_parser

    args = build_parser().parse_args(["up", "--data-dir", str(tmp_path)])
    args.http_mounts = []
    endpoints = up_endpoints(args)
    assert [(e.service, e.kind, e.port) for e in endpoints] == [
        ("chat", "tcp", 8889), ("chat", "udp", 8889)]
    [site] = args.http_mounts
    assert site.prefix == "/chat/" and list(site.upgrades) == ["/chat/ws"]
    # One service behind every door: one lobby.
    chat_service = endpoints[0].factory.__self__  # type: ignore[union-attr]
    assert site.upgrades["/chat/ws"].__self__ is chat_service  # type: ignore[attr-defined]
    args = build_parser().parse_args(["up", "--engine", "fork", "--data-dir", str(tmp_path)])
    args.http_mounts = []
    assert up_endpoints(args) == [] and args.http_mounts == []


def test_ionet_up_serves_the_chat_page_and_websocket_on_the_http_port(tmp_path: Path) -> None:
    from ionet.chat.ws import WebSocketChatProtocol
    from ionet.cli import build_parser, up_endpoints
    from ionet.core.testing import FakeTransport

    args = build_parser().parse_args(["up", "--data-dir", str(tmp_path)])
    endpoints = up_endpoints(args)
    [http] = [e for e in endpoints if e.service == "http"]
    chat = next(e for e in endpoints if e.service == "chat")
    assert http.port == 8000

    def get(path: str) -> bytes:
        transport = FakeTransport()
        transport.connect(http.factory())  # type: ignore[arg-type]
        transport.feed(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return transport.take()

    page = get("/chat/")
    assert page.startswith(b"HTTP/1.1 200 ") and b"Content-Security-Policy: " in page
    assert b"textContent" in page
    assert get("/chat").startswith(b"HTTP/1.1 301 ")
    assert get("/chat/ws").startswith(b"HTTP/1.1 426 ")
    assert get("/chat/nope").startswith(b"HTTP/1.1 404 ")
    home = get("/")
    assert home.startswith(b"HTTP/1.1 200 ") and b"ionet is up" in home  # www/index.html

    transport = FakeTransport()
    transport.connect(http.factory())  # type: ignore[arg-type]
    transport.feed(b"GET /chat/ws HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: Upgrade\r\n"
                   b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                   b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   b"Origin: http://127.0.0.1:8000\r\n\r\n")
    assert transport.take().startswith(b"HTTP/1.1 101 ")
    ws = transport.protocol
    assert isinstance(ws, WebSocketChatProtocol)
    assert ws.service is chat.factory.__self__  # type: ignore[attr-defined]


def test_allow_origin_on_the_command_line(tmp_path: Path) -> None:
    from ionet.chat.cli import build_service
    from ionet.cli import build_parser

    args = build_parser().parse_args(["chat", "serve", "--data-dir", str(tmp_path),
                                      "--allow-origin", "https://Chat.Example.com/",
                                      "--allow-origin", "http://127.0.0.1:9000"])
    assert build_service(args).allowed_origins == {"https://chat.example.com",
                                                   "http://127.0.0.1:9000"}
    args = build_parser().parse_args(["chat", "serve", "--data-dir", str(tmp_path)])
    assert build_service(args).allowed_origins == frozenset()
