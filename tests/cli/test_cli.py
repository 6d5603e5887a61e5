"""The ``ionet`` command: errors as one line, ``--version``, and ``ionet up``."""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import sys
from pathlib import Path

from ionet import __version__
from ionet.core.testing import ServerProcess
from tests.chat.peers import TcpPeer, WsPeer


def run_ionet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ionet", *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_version() -> None:
    result = run_ionet("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"ionet {__version__}"


def test_help_on_every_level() -> None:
    for args in (["--help"], ["echo", "--help"], ["echo", "serve", "--help"], ["up", "--help"]):
        result = run_ionet(*args)
        assert result.returncode == 0, args
        assert "usage: ionet" in result.stdout


def test_a_user_error_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_ionet("echo", "serve", "--port", str(port), "--no-udp")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "already in use" in result.stderr and "Traceback" not in result.stderr


def test_bad_tls_files_are_one_line() -> None:
    result = run_ionet("echo", "serve", "--port", "0", "--certfile", "/nonexistent.pem")
    assert result.returncode == 2
    assert result.stderr.startswith("ionet: error: ") and "Traceback" not in result.stderr


def test_up_runs_every_service_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    server = ServerProcess(["up", "--data-dir", str(tmp_path / "data")], ready_lines=5,
                           start_timeout=120)
    server.start()
    try:
        services = {line.split()[0] for line in server.lines}
        assert {"echo", "http", "ftp", "chat", "dict"} <= services, server.lines
        ports = [port for _, _, port in server.urls]
        assert len(ports) == len(set((s, p) for s, _, p in server.urls))
        with socket.create_connection(server.address("tcp", 0), timeout=10) as echo:
            echo.sendall(b"up")
            assert echo.recv(2) == b"up"
        # The chat's page and WebSocket are in the HTTP server, on the chat's lobby.
        conn = http.client.HTTPConnection("127.0.0.1", 8000, timeout=10)
        try:
            conn.request("GET", "/chat/")
            response = conn.getresponse()
            assert response.status == 200
            assert "script-src 'sha256-" in response.headers["Content-Security-Policy"]
            assert b"textContent" in response.read()
        finally:
            conn.close()
        with TcpPeer(("127.0.0.1", 8889)) as tcp, WsPeer(("127.0.0.1", 8000)) as web:
            tcp.join("tcp")
            web.join("web")
            tcp.expect("joined", name="web")
            web.say("one lobby")
            tcp.expect("message", **{"from": "web", "text": "one lobby"})
        server.signal(signal.SIGINT)
        assert server.wait(60) == 0
    finally:
        server.stop(check=False)
    assert (tmp_path / "data").is_dir()
