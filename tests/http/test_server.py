"""``ionet http serve`` over real sockets: curl, httpx and raw sockets, on every engine.

Each server runs as a real process (``ServerProcess``, port 0).  A smoke set
(a static file, keep-alive, pipelining, a WSGI app, a chunked upload, a
malformed request) runs on every engine with one server per engine; the
heavier checks (100 MB downloads, limits, a slow app, Flask, TLS) run on a
few representative engines.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ionet.core.engines import ENGINES, get_engine
from ionet.core.errors import UserError
from ionet.core.testing import ServerProcess, wait_until
from tests.http.util import (
    Incomplete,
    Response,
    final,
    get,
    parse_responses,
    write_file,
)

IO_TIMEOUT = 30.0
BIG_SIZE = 100 * 1024 * 1024

TEST_APP = '''
import json
import time

def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/hello":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
        return [b"Hello, World!"]
    if path == "/slow":
        time.sleep(2)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slow"]
    if path == "/echo":
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [environ["REQUEST_METHOD"].encode() + b" " + body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"%d," % n for n in range(1000))
    if path == "/environ":
        keys = ["PATH_INFO", "QUERY_STRING", "SERVER_PORT", "wsgi.url_scheme", "HTTP_X_TEST"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({k: environ.get(k) for k in keys}).encode()]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such page"]
'''

FLASK_APP = '''
from flask import Flask, request, jsonify

app = Flask(__name__)

@app.route("/")
def index():
    return "flask home"

@app.route("/user/<name>")
def user(name):
    return jsonify(name=name, q=request.args.get("q"))

@app.post("/upload")
def upload():
    return jsonify(size=len(request.get_data()))
'''


# -- fixtures ---------------------------------------------------------------------


def engine_or_skip(name: str) -> str:
    try:
        get_engine(name)
    except UserError as exc:
        pytest.skip(f"engine {name} is not available: {exc}")
    return name


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with www/ (static files) and the test apps."""
    base = tmp_path_factory.mktemp("http-site")
    www = base / "www"
    www.mkdir()
    write_file(www / "index.html", b"<h1>ionet test</h1>\n")
    write_file(www / "hello.txt", b"hello from a file\n")
    write_file(www / "4k.bin", os.urandom(4096))
    write_file(www / "1m.bin", os.urandom(1 << 20))
    write_file(base / "secret.txt", b"TOP SECRET")
    (www / "escape").symlink_to(base / "secret.txt")
    (www / "files").mkdir()
    write_file(www / "files" / "a.txt", b"a")
    write_file(www / "files" / "<b>.txt", b"b")
    (base / "testapp.py").write_text(TEST_APP)
    (base / "flaskapp.py").write_text(FLASK_APP)
    return base


@pytest.fixture(scope="module")
def big_file(site: Path) -> Path:
    """100 MB of random bytes (so a misplaced block cannot go unnoticed)."""
    path = site / "www" / "big.bin"
    if not path.exists():
        with open(path, "wb") as f:
            f.writelines(os.urandom(4 << 20) for _ in range(BIG_SIZE // (4 << 20)))
    return path


def start(site: Path, engine: str, *extra: str, app: str | None = "testapp:app",
          directory: bool = True) -> ServerProcess:
    argv = ["http", "serve"]
    if directory:
        argv.append(str(site / "www"))
    if app:
        argv += ["--app", app]
    argv += ["--engine", engine, *extra]
    if "--access-log" not in extra and "--no-quiet" not in extra:
        argv.append("--quiet")
    server = ServerProcess([a for a in argv if a != "--no-quiet"], cwd=str(site))
    server.start()
    return server


@pytest.fixture(scope="module", params=ENGINES)
def engine_server(request: pytest.FixtureRequest, site: Path) -> Iterator[ServerProcess]:
    """One server per engine: the test app, with www/ under /static/."""
    engine = engine_or_skip(request.param)
    server = start(site, engine, "--threads", "4")
    try:
        yield server
    finally:
        server.stop()


def url(server: ServerProcess, path: str, scheme: str = "http") -> str:
    host, port = server.address("tcp")
    return f"{scheme}://{host}:{port}{path}"


def connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(server.address("tcp"), timeout=IO_TIMEOUT)
    return sock


def read_responses(sock: socket.socket, count: int, head: frozenset[int] = frozenset()
                   ) -> list[Response]:
    """Read until ``count`` final responses are complete (or the server closes)."""
    data = b""
    while True:
        try:
            responses = final(parse_responses(data, head, eof=False))
            if len(responses) >= count:
                return responses
        except (Incomplete, AssertionError):
            pass
        chunk = sock.recv(1 << 16)
        if not chunk:
            return final(parse_responses(data, head, eof=True))
        data += chunk


def read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(1 << 16):
        data += chunk
    return data


def curl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "--silent", "--show-error", "--max-time", str(timeout), *args],
                          capture_output=True, timeout=timeout + 10, check=True)


# -- the smoke set, on every engine ---------------------------------------------------


def test_static_file_with_curl(engine_server: ServerProcess, site: Path) -> None:
    result = curl("--include", url(engine_server, "/static/hello.txt"))
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Type: text/plain; charset=utf-8" in head
    assert body == b"hello from a file\n"
    binary = curl(url(engine_server, "/static/4k.bin")).stdout
    assert binary == (site / "www" / "4k.bin").read_bytes()


def test_keep_alive_and_pipelining(engine_server: ServerProcess) -> None:
    with connect(engine_server) as sock:
        for n in range(3):  # one after the other, on one connection
            sock.sendall(get("/hello"))
            [response] = read_responses(sock, 1)
            assert response.body == b"Hello, World!", n
        sock.sendall(get("/static/hello.txt") + get("/echo", method="POST", body=b"x")
                     + get("/hello", method="HEAD") + get("/hello"))  # pipelined
        responses = read_responses(sock, 4, head=frozenset({2}))
        assert [r.body for r in responses] == [b"hello from a file\n", b"POST x", b"",
                                               b"Hello, World!"]
        assert responses[2].header("Content-Length") == "13"


def test_wsgi_app_with_httpx(engine_server: ServerProcess) -> None:
    with httpx.Client(timeout=IO_TIMEOUT) as client:
        hello = client.get(url(engine_server, "/hello"))
        assert hello.status_code == 200 and hello.text == "Hello, World!"
        assert hello.headers["server"] == "ionet" and "date" in hello.headers
        echo = client.post(url(engine_server, "/echo"), content=b"payload" * 1000)
        assert echo.content == b"POST " + b"payload" * 1000
        chunked = client.put(url(engine_server, "/echo"),
                             content=iter([b"chunked ", b"upload"]))  # Transfer-Encoding
        assert chunked.content == b"PUT chunked upload"
        stream = client.get(url(engine_server, "/stream"))
        assert stream.text == "".join(f"{n}," for n in range(1000))
        assert stream.headers["transfer-encoding"] == "chunked"
        missing = client.get(url(engine_server, "/nope"))
        assert missing.status_code == 404


def test_malformed_request_gets_400_and_close(engine_server: ServerProcess) -> None:
    with connect(engine_server) as sock:
        sock.sendall(get("/hello") + b"GET /\x7f HTTP/1.1\r\n\r\n")
        data = read_to_eof(sock)
    ok, bad = parse_responses(data, eof=True)
    assert ok.status == 200 and bad.status == 400
    assert bad.header("Connection") == "close"


# -- big files -------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["epoll", "thread", "asyncio"])
def test_100mb_download_is_byte_exact(site: Path, big_file: Path, engine: str,
                                      tmp_path: Path) -> None:
    server = start(site, engine_or_skip(engine), app=None)
    try:
        out = tmp_path / "download.bin"
        curl("--output", str(out), url(server, "/big.bin"))
        assert out.stat().st_size == BIG_SIZE
        assert filecmp.cmp(out, big_file, shallow=False)
        first, last = 12_345_678, 87_654_321
        result = curl("--range", f"{first}-{last}", "--dump-header", str(tmp_path / "h.txt"),
                      "--output", str(out), url(server, "/big.bin"))
        assert result.returncode == 0
        headers = (tmp_path / "h.txt").read_bytes()
        assert headers.startswith(b"HTTP/1.1 206")
        assert f"Content-Range: bytes {first}-{last}/{BIG_SIZE}".encode() in headers
        with open(big_file, "rb") as f:
            f.seek(first)
            expected = f.read(last - first + 1)
        assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(expected).digest()
        tail = curl("--range", "-1000", url(server, "/big.bin")).stdout
        with open(big_file, "rb") as f:
            f.seek(-1000, os.SEEK_END)
            assert tail == f.read()
    finally:
        server.stop()


# -- limits and hardening (epoll) --------------------------------------------------------


@pytest.fixture(scope="module")
def strict_server(site: Path) -> Iterator[ServerProcess]:
    server = start(site, "epoll", "--max-body", "1K", "--header-timeout", "1",
                   "--keepalive-timeout", "1")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("data, status", [
    (get("/" + "a" * 10_000), 414),
    (get("/", "X-Big: " + "b" * 10_000), 431),
    (get("/", *[f"X-{n}: v" for n in range(200)]), 431),
    (get("/echo", body=b"x" * 2000, method="POST"), 413),
    (get("/echo", "Transfer-Encoding: chunked", method="POST",
         body=b"800\r\n" + b"x" * 0x800 + b"\r\n0\r\n\r\n"), 413),
    (get("/", "Content-Length: 3", "Transfer-Encoding: chunked", method="POST",
         body=b"0\r\n\r\n"), 400),
    (get("/", "Content-Length: 1", "Content-Length: 2", method="POST", body=b"ab"), 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    (b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 501),
])
def test_limits_and_smuggling_defences(strict_server: ServerProcess, data: bytes,
                                       status: int) -> None:
    with connect(strict_server) as sock:
        sock.sendall(data)
        responses = parse_responses(read_to_eof(sock), eof=True)
    assert [r.status for r in responses] == [status]
    assert responses[0].header("Connection") == "close"


def test_slowloris_is_cut_off(strict_server: ServerProcess) -> None:
    with connect(strict_server) as sock:
        began = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        data = b""
        sock.settimeout(0.3)
        for n in range(40):  # a header byte every 0.1 s: never idle, never done
            try:
                sock.sendall(b"X-%d: v\r\n" % n)
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                chunk = sock.recv(4096)
                data += chunk
                if not chunk or b"\r\n\r\n" in data:
                    break
            except TimeoutError:
                pass
        sock.settimeout(IO_TIMEOUT)
        try:
            data += read_to_eof(sock)
        except ConnectionResetError:
            pass
        elapsed = time.monotonic() - began
    assert data.startswith(b"HTTP/1.1 408 ")
    assert elapsed < 8  # cut off after ~1 s, though the trickle would go on for 12 s


def test_idle_keep_alive_connections_are_closed(strict_server: ServerProcess) -> None:
    with connect(strict_server) as sock:
        sock.sendall(get("/hello"))
        assert read_responses(sock, 1)[0].status == 200
        began = time.monotonic()
        assert sock.recv(100) == b""  # closed by the server, silently
        assert 0.5 < time.monotonic() - began < 6


@pytest.mark.parametrize("path", [
    "/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/..%2fsecret.txt",
    "/static/%2e%2e%2fsecret.txt", "/static/escape", "/static/hello.txt%00",
    "/static/./../../secret.txt",
])
def test_traversal_attempts(strict_server: ServerProcess, path: str) -> None:
    result = curl("--path-as-is", "--include", url(strict_server, path))
    assert result.stdout.startswith(b"HTTP/1.1 404"), path
    assert b"SECRET" not in result.stdout


def test_expect_100_continue_and_http10(strict_server: ServerProcess, tmp_path: Path) -> None:
    body = tmp_path / "body.txt"
    body.write_bytes(b"y" * 500)
    result = curl("--include", "-H", "Expect: 100-continue", "--data-binary", f"@{body}",
                  url(strict_server, "/echo"))
    assert result.stdout.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK")
    assert result.stdout.endswith(b"POST " + b"y" * 500)
    old = curl("--http1.0", "--include", url(strict_server, "/hello"))
    assert old.stdout.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in old.stdout


# -- the app in a worker pool ----------------------------------------------------------


@pytest.mark.parametrize("engine", ["epoll", "thread"])
def test_a_slow_request_does_not_hold_up_the_others(site: Path, engine: str) -> None:
    server = start(site, engine_or_skip(engine), "--threads", "4")
    try:
        slow_result: list[tuple[str, float, float]] = []

        def slow() -> None:
            began = time.monotonic()
            text = httpx.get(url(server, "/slow"), timeout=IO_TIMEOUT).text
            slow_result.append((text, time.monotonic() - began, time.monotonic()))

        thread = threading.Thread(target=slow)
        thread.start()
        try:
            time.sleep(0.2)  # let the slow request reach the app first
            began = time.monotonic()
            with httpx.Client(timeout=IO_TIMEOUT) as client:
                for _ in range(5):
                    assert client.get(url(server, "/hello")).text == "Hello, World!"
                assert client.get(url(server, "/static/hello.txt")).status_code == 200
            fast_done = time.monotonic()
        finally:
            thread.join(IO_TIMEOUT)
        [(text, slow_time, slow_done)] = slow_result
        assert text == "slow" and slow_time >= 1.9
        # The fast ones did not wait for the slow one (judged by order, not by
        # a tight time limit, so that a loaded machine does not make it flaky).
        assert fast_done < slow_done - 0.3, f"fast requests took {fast_done - began:.2f}s"
    finally:
        server.stop()


@pytest.mark.parametrize("engine", ["epoll", "thread"])
def test_a_real_flask_app(site: Path, engine: str) -> None:
    pytest.importorskip("flask")
    server = start(site, engine_or_skip(engine), app="flaskapp:app")
    try:
        with httpx.Client(timeout=IO_TIMEOUT) as client:
            assert client.get(url(server, "/")).text == "flask home"
            user = client.get(url(server, "/user/ada"), params={"q": "a b"})
            assert user.json() == {"name": "ada", "q": "a b"}
            upload = client.post(url(server, "/upload"), content=b"z" * 100_000)
            assert upload.json() == {"size": 100_000}
            chunked = client.post(url(server, "/upload"), content=iter([b"a" * 10, b"b" * 5]))
            assert chunked.json() == {"size": 15}
            assert client.get(url(server, "/static/hello.txt")).text == "hello from a file\n"
            assert client.get(url(server, "/missing")).status_code == 404
    finally:
        server.stop()


# -- TLS, logs, static-only ---------------------------------------------------------------


@pytest.mark.parametrize("engine", ["epoll", "thread", "asyncio"])
def test_tls(site: Path, tls_files: tuple[Path, Path], engine: str) -> None:
    cert, key = tls_files
    server = start(site, engine_or_skip(engine), "--certfile", str(cert), "--keyfile", str(key))
    try:
        _, port = server.address("tls")
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert)),
                          timeout=IO_TIMEOUT) as client:
            env = client.get(f"https://localhost:{port}/environ", headers={"X-Test": "1"}).json()
            assert env["wsgi.url_scheme"] == "https" and env["HTTP_X_TEST"] == "1"
            page = client.get(f"https://localhost:{port}/static/4k.bin")
            assert page.content == (site / "www" / "4k.bin").read_bytes()
            big = client.get(f"https://localhost:{port}/static/1m.bin")  # a file region
            assert big.content == (site / "www" / "1m.bin").read_bytes()
    finally:
        server.stop()


def test_access_log_file(site: Path, tmp_path: Path) -> None:
    log_file = tmp_path / "access.log"
    server = start(site, "epoll", "--access-log", str(log_file))
    try:
        with httpx.Client(timeout=IO_TIMEOUT) as client:
            client.get(url(server, "/hello?x=1"))
            client.get(url(server, "/static/nope"))
    finally:
        server.stop()
    lines = log_file.read_text().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("127.0.0.1 - - [")
    assert lines[0].endswith('] "GET /hello?x=1 HTTP/1.1" 200 13')
    assert lines[1].endswith('"GET /static/nope HTTP/1.1" 404 ' + lines[1].rsplit(" ", 1)[1])


def test_access_log_on_stderr(site: Path) -> None:
    server = start(site, "epoll", "--no-quiet", app=None)
    try:
        httpx.get(url(server, "/hello.txt"), timeout=IO_TIMEOUT)
        wait_until(lambda: '"GET /hello.txt HTTP/1.1" 200 18' in server.stderr(),
                   message="the access log line")
    finally:
        server.stop()


def test_static_only_with_listing(site: Path) -> None:
    server = start(site, "epoll", "--list", app=None)
    try:
        with httpx.Client(timeout=IO_TIMEOUT) as client:
            assert client.get(url(server, "/")).text == "<h1>ionet test</h1>\n"
            listing = client.get(url(server, "/files/"))
            assert listing.status_code == 200
            assert "a.txt" in listing.text and "&lt;b&gt;.txt" in listing.text
            assert client.post(url(server, "/hello.txt")).status_code == 405
            assert client.get(url(server, "/files")).status_code == 301
    finally:
        server.stop()


def test_workers_share_the_port(site: Path) -> None:
    server = start(site, "epoll", "--workers", "2")
    try:
        with httpx.Client(timeout=IO_TIMEOUT) as client:
            for _ in range(10):
                assert client.get(url(server, "/hello")).text == "Hello, World!"
        for _ in range(10):  # fresh connections, spread over the workers
            assert httpx.get(url(server, "/static/hello.txt"), timeout=IO_TIMEOUT).status_code == 200
    finally:
        server.stop()


def test_up_endpoints_creates_the_web_folder(tmp_path: Path) -> None:
    import argparse

    from ionet.http.cli import up_endpoints

    args = argparse.Namespace(data_dir=tmp_path / "data", host="127.0.0.1", certfile=None,
                              keyfile=None)
    first = up_endpoints(args)
    [endpoint] = first
    assert endpoint.port == 8000 and endpoint.service == "http"
    assert (tmp_path / "data" / "www" / "index.html").read_text().startswith("<!DOCTYPE html>")
    (tmp_path / "data" / "www" / "index.html").write_text("mine")
    second = up_endpoints(args)  # an existing folder is left alone
    assert (tmp_path / "data" / "www" / "index.html").read_text() == "mine"
    for made in first + second:
        made.factory().service.access_log.close()  # type: ignore[union-attr]
