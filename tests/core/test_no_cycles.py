"""A connection that ends leaves no reference cycle of ionet objects behind.

Everything a connection makes (transport, protocol, FTP data connections and
jobs, the HTTP parser, a chat member's session) must be freed by reference counting once it is over.
Before this was checked, every FTP transfer left about forty objects in
cycles (transport <-> protocol, job <-> data connection, callbacks holding
their slot) and every HTTP connection its parser: the collector then ran a
young-generation pass every few milliseconds under load, and full passes of
30-60 ms stalled every client at once (the FTP benchmark's p99).

Each test runs the server under ``tests.core.cycles_server`` (collector off,
a report on SIGUSR1), takes a baseline after one warm-up session, runs more
sessions, and asks for the count of ionet objects the collector would find.
The fork engine is left out (each connection is its own process, gone at its
end), and so is the iterative one (it runs the same driver as thread).
"""

from __future__ import annotations

import ftplib
import http.client
import io
import json
import re
import signal
import socket
from pathlib import Path

import pytest

from ionet.core.testing import ServerProcess, wait_until

ENGINES = ["select", "poll", "epoll", "asyncio", "uvloop", "thread", "gevent"]


def cycles(server: ServerProcess) -> tuple[int, str]:
    """Ask the server for a report; the count of ionet objects in cycles, and by type.

    Also checks that the start-up heap was frozen (``core.server.settle_heap``):
    else every full collection walks it all again.
    """
    before = len(re.findall(r"^CYCLES ", server.stderr(), re.M))
    server.signal(signal.SIGUSR1)
    wait_until(lambda: len(re.findall(r"^CYCLES ", server.stderr(), re.M)) > before,
               timeout=10, message="the cycles report")
    count, frozen, types = re.findall(r"^CYCLES (\d+) (\d+) (.*)$", server.stderr(), re.M)[-1]
    assert int(frozen) > 10_000, f"only {frozen} objects frozen at start-up"
    return int(count), types


def ftp_session(server: ServerProcess) -> None:
    host, port = server.address("tcp")
    ftp = ftplib.FTP()
    ftp.connect(host, port, timeout=20)
    ftp.login()  # anonymous
    ftp.retrlines("LIST", lambda line: None)
    for _ in range(3):
        ftp.retrbinary("RETR data.bin", io.BytesIO().write)
    ftp.quit()


@pytest.mark.parametrize("engine", ENGINES)
def test_ftp_sessions_leave_no_cycles(engine: str, tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_bytes(bytes(range(256)) * 64)
    argv = ["ftp", "serve", str(tmp_path), "--anonymous", "--engine", engine]
    with ServerProcess(argv, module="tests.core.cycles_server") as server:
        ftp_session(server)  # imports and caches: not per connection
        cycles(server)
        for _ in range(3):
            ftp_session(server)
        count, types = cycles(server)
        assert count == 0, types


@pytest.mark.parametrize("engine", ENGINES)
def test_http_connections_leave_no_cycles(engine: str, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>hello</p>\n")
    argv = ["http", "serve", str(tmp_path), "--engine", engine, "--quiet"]

    def visit() -> None:
        host, port = server.address("tcp")
        conn = http.client.HTTPConnection(host, port, timeout=20)
        for path in ("/", "/index.html", "/missing"):  # keep-alive: three requests
            conn.request("GET", path)
            conn.getresponse().read()
        conn.close()

    with ServerProcess(argv, module="tests.core.cycles_server") as server:
        visit()
        cycles(server)
        for _ in range(5):
            visit()
        count, types = cycles(server)
        assert count == 0, types


@pytest.mark.parametrize("engine", ENGINES)
def test_chat_members_who_leave_leave_no_cycles(engine: str, tmp_path: Path) -> None:
    argv = ["chat", "serve", "--engine", engine, "--http-port", "-1", "--data-dir", str(tmp_path)]

    def member(name: str) -> None:
        with socket.create_connection(server.address("tcp"), timeout=20) as sock:
            reader = sock.makefile("rb")
            sock.sendall(json.dumps({"type": "join", "name": name}).encode() + b"\n")
            sock.sendall(json.dumps({"type": "say", "text": "hello"}).encode() + b"\n")
            sock.sendall(json.dumps({"type": "who"}).encode() + b"\n")
            while json.loads(reader.readline())["type"] != "who":
                pass  # the welcome, others' notices: until the answer to "who"

    with ServerProcess(argv, module="tests.core.cycles_server") as server:
        member("warm")
        cycles(server)
        for index in range(3):
            member(f"m{index}")
        count, types = cycles(server)
        assert count == 0, types
