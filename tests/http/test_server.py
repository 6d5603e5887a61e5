"""``ionet http serve`` over real sockets (curl, httpx, http.client, raw sockets), every engine.

Each server runs as a real process (``ServerProcess``, port 0).  The
``engine`` fixture below takes each engine of ``tests/conftest.py`` in turn for
the whole module, and ``engine_server`` starts one server per engine: the test
app (with a small Flask app mounted inside it), ``www/`` under ``/static/``,
and tight limits (a 16 KiB body, 1 s header and keep-alive timeouts).  Against
it, on every engine: real clients, keep-alive, pipelining, HEAD,
``100-continue``, Flask, a slow request beside fast ones, every limit, the
smuggling defences, slowloris, traversal attempts, clients that vanish.  Only
the iterative engine skips what needs two connections at once.  The 100 MB
download and TLS need servers of their own and also run on every engine; the
logs, the directory listing and ``--workers`` are checked on epoll.
"""

from __future__ import annotations

import filecmp
import hashlib
import http.client
import os
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ionet.core.engines import ENGINES, get_engine
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
#: The limits of the per-engine server (see ``engine_server``).
MAX_BODY = 16 * 1024

TEST_APP = '''
import json
import time

def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/flask" or path.startswith("/flask/"):  # a Flask app mounted inside
        import flaskapp
        environ["SCRIPT_NAME"] += "/flask"
        environ["PATH_INFO"] = path[len("/flask"):]
        return flaskapp.app(environ, start_response)
    if path == "/hello":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
        return [b"Hello, World!"]
    if path == "/slow":
        time.sleep(float(environ["QUERY_STRING"] or 2))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slow"]
    if path == "/echo":
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [environ["REQUEST_METHOD"].encode() + b" " + body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"%d," % n for n in range(1000))
    if path == "/file":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open("www/1m.bin", "rb"))
    if path == "/environ":
        keys = ["PATH_INFO", "QUERY_STRING", "SERVER_PORT", "wsgi.url_scheme", "HTTP_X_TEST"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({k: environ.get(k) for k in keys}).encode()]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such page"]
'''

FLASK_APP = '''
from flask import Flask, request, jsonify, url_for

app = Flask(__name__)

@app.route("/")
def index():
    return "flask home"

@app.route("/user/<name>")
def user(name):
    return jsonify(name=name, q=request.args.get("q"), home=url_for("index"))

@app.post("/upload")
def upload():
    return jsonify(size=len(request.get_data()))
'''


# -- fixtures ---------------------------------------------------------------------


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each engine in turn, like ``tests/conftest.py``'s ``engine``, but for
    the whole module, so that one server per engine serves all its tests."""
    name: str = request.param
    get_engine(name)  # a missing engine or extra is a failure, not a skip
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


@pytest.fixture(scope="module")
def engine_server(site: Path, engine: str) -> Iterator[ServerProcess]:
    """One server per engine: the test app, www/ under /static/, tight limits.

    When the engine's tests are done the server must not have logged a
    traceback (a handler or engine failure that the clients did not notice),
    and must stop cleanly.
    """
    server = start(site, engine, "--threads", "4", "--max-body", f"{MAX_BODY // 1024}K",
                   "--header-timeout", "1", "--keepalive-timeout", "1")
    try:
        yield server
        log = server.stderr()
    finally:
        server.stop()
    assert not any(word in log for word in ("Traceback", " ERROR ", " CRITICAL ")), log


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


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with a RST instead of a FIN (SO_LINGER 0): a client that vanishes."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def still_serving(server: ServerProcess, within: float = 5.0) -> None:
    """A new connection is answered at once (not after some timeout)."""
    began = time.monotonic()
    with connect(server) as sock:
        sock.sendall(get("/hello"))
        [response] = read_responses(sock, 1)
    assert response.body == b"Hello, World!"
    assert time.monotonic() - began < within


def curl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "--silent", "--show-error", "--max-time", str(timeout), *args],
                          capture_output=True, timeout=timeout + 10, check=True)


# -- real clients, on every engine ---------------------------------------------------------


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


def test_pipelined_responses_keep_the_request_order(engine_server: ServerProcess) -> None:
    # A slow app response first: the static file and the fast ones behind it,
    # ready long before, must still wait their turn.
    with connect(engine_server) as sock:
        sock.sendall(get("/slow?0.2") + get("/static/hello.txt") + get("/hello")
                     + get("/echo", method="POST", body=b"last") + get("/static/4k.bin"))
        responses = read_responses(sock, 5)
    assert [r.body for r in responses][:4] == [b"slow", b"hello from a file\n", b"Hello, World!",
                                               b"POST last"]
    assert len(responses[4].body) == 4096


def test_many_pipelined_requests_while_the_client_reads_late(engine_server: ServerProcess,
                                                            site: Path) -> None:
    # 300 requests in a row, 1.2 MB of answers: the server must stop reading
    # while the client does not read, and go on when it does.
    count = 300
    stream = b"".join(get("/static/4k.bin") if n % 3 else get("/hello") for n in range(count))
    with connect(engine_server) as sock:
        sender = threading.Thread(target=sock.sendall, args=(stream,))
        sender.start()
        try:
            time.sleep(0.2)  # both sides' buffers fill up
            responses = read_responses(sock, count)
        finally:
            sender.join(IO_TIMEOUT)
    four_k = (site / "www" / "4k.bin").read_bytes()
    assert [r.body for r in responses] == [
        four_k if n % 3 else b"Hello, World!" for n in range(count)]


def test_options_star(engine_server: ServerProcess) -> None:
    with connect(engine_server) as sock:
        sock.sendall(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" + get("/hello"))
        options, hello = read_responses(sock, 2)
    assert options.status == 200 and options.header("Allow")
    assert hello.body == b"Hello, World!"


def test_a_half_closed_client_still_gets_every_answer(engine_server: ServerProcess) -> None:
    # Requests, then the client's FIN (shutdown for writing): all are answered, then close.
    with connect(engine_server) as sock:
        sock.sendall(get("/slow?0.1") + get("/static/hello.txt") + get("/hello"))
        sock.shutdown(socket.SHUT_WR)
        responses = parse_responses(read_to_eof(sock), eof=True)
    assert [r.body for r in responses] == [b"slow", b"hello from a file\n", b"Hello, World!"]


def test_the_header_timeout_waits_while_the_server_answers(engine_server: ServerProcess) -> None:
    # The next request's head has begun, but the server is busy with the one
    # before (longer than the 1 s header timeout) and is not reading: the
    # client is not to blame for that time.
    with connect(engine_server) as sock:
        sock.sendall(get("/slow?1.3") + b"GET /hello HTTP/1.1\r\n")
        [slow] = read_responses(sock, 1)
        assert slow.body == b"slow"
        sock.sendall(b"Host: x\r\n\r\n")
        [hello] = read_responses(sock, 1)
    assert hello.status == 200 and hello.body == b"Hello, World!"


@pytest.mark.parametrize("request_bytes, keeps", [
    (get("/hello", "Connection: close"), False),
    (get("/hello", version="1.0"), False),
    (get("/hello", "Connection: keep-alive", version="1.0"), True),
])
def test_the_client_decides_whether_the_connection_stays(engine_server: ServerProcess,
                                                        request_bytes: bytes, keeps: bool) -> None:
    with connect(engine_server) as sock:
        sock.sendall(request_bytes)
        [response] = read_responses(sock, 1)
        assert response.body == b"Hello, World!"
        if keeps:
            assert response.header("Connection") == "keep-alive"
            sock.sendall(request_bytes)
            assert read_responses(sock, 1)[0].body == b"Hello, World!"
        else:
            assert response.header("Connection") == "close"
            assert sock.recv(100) == b""


def test_wsgi_app_with_httpx(engine_server: ServerProcess, site: Path) -> None:
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
        wrapped = client.get(url(engine_server, "/file"))  # wsgi.file_wrapper: sendfile
        assert wrapped.content == (site / "www" / "1m.bin").read_bytes()


def test_a_real_flask_app(engine_server: ServerProcess) -> None:
    pytest.importorskip("flask")
    with httpx.Client(timeout=IO_TIMEOUT) as client:
        assert client.get(url(engine_server, "/flask/")).text == "flask home"
        user = client.get(url(engine_server, "/flask/user/ada"), params={"q": "a b"})
        assert user.json() == {"name": "ada", "q": "a b", "home": "/flask/"}
        upload = client.post(url(engine_server, "/flask/upload"), content=b"z" * 10_000)
        assert upload.json() == {"size": 10_000}
        chunked = client.post(url(engine_server, "/flask/upload"),
                              content=iter([b"a" * 10, b"b" * 5]))
        assert chunked.json() == {"size": 15}
        assert client.get(url(engine_server, "/static/hello.txt")).text == "hello from a file\n"
        assert client.get(url(engine_server, "/flask/missing")).status_code == 404


def test_head_with_http_client(engine_server: ServerProcess) -> None:
    """HEAD: the length a GET would have, no body (http.client would choke on
    stray body bytes in the next response), on one kept-alive connection."""
    host, port = engine_server.address("tcp")
    conn = http.client.HTTPConnection(host, port, timeout=IO_TIMEOUT)
    try:
        for path, length, body_start in [("/static/1m.bin", str(1 << 20), b""),
                                         ("/static/hello.txt", "18", b"hello from a file"),
                                         ("/hello", "13", b"Hello, World!"),
                                         ("/file", None, b""), ("/stream", None, b"0,1,2,")]:
            conn.request("HEAD", path)
            head = conn.getresponse()
            assert head.status == 200 and head.read() == b"", path
            assert head.getheader("Content-Length") == length, path
            sock = conn.sock
            conn.request("GET", path)
            got = conn.getresponse()
            body = got.read()
            assert got.status == 200 and body.startswith(body_start), path
            if length is not None:
                assert len(body) == int(length)
            assert conn.sock is sock, f"{path}: the connection was not kept alive"
    finally:
        conn.close()


def test_expect_100_continue_and_http10(engine_server: ServerProcess, tmp_path: Path) -> None:
    body = tmp_path / "body.txt"
    body.write_bytes(b"y" * 500)
    result = curl("--include", "-H", "Expect: 100-continue", "--data-binary", f"@{body}",
                  url(engine_server, "/echo"))
    assert result.stdout.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK")
    assert result.stdout.endswith(b"POST " + b"y" * 500)
    old = curl("--http1.0", "--include", url(engine_server, "/hello"))
    assert old.stdout.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in old.stdout


def test_expect_100_continue_over_a_raw_socket(engine_server: ServerProcess) -> None:
    with connect(engine_server) as sock:
        sock.sendall(get("/echo", "Content-Length: 4", "Expect: 100-continue", method="POST"))
        data = b""
        while b"\r\n\r\n" not in data:  # the body is sent only after the interim answer
            data += sock.recv(100)
        assert data == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"body")
        [response] = read_responses(sock, 1)
    assert response.body == b"POST body"


def test_a_slow_request_does_not_hold_up_the_others(engine_server: ServerProcess,
                                                    engine: str) -> None:
    if engine == "iterative":
        pytest.skip("the iterative engine serves one connection at a time: the rest wait")
    slow_result: list[tuple[str, float, float]] = []

    def slow() -> None:
        began = time.monotonic()
        text = httpx.get(url(engine_server, "/slow?2"), timeout=IO_TIMEOUT).text
        slow_result.append((text, time.monotonic() - began, time.monotonic()))

    thread = threading.Thread(target=slow)
    thread.start()
    try:
        time.sleep(0.2)  # let the slow request reach the app first
        began = time.monotonic()
        with httpx.Client(timeout=IO_TIMEOUT) as client:
            for _ in range(5):
                assert client.get(url(engine_server, "/hello")).text == "Hello, World!"
            assert client.get(url(engine_server, "/static/hello.txt")).status_code == 200
        fast_done = time.monotonic()
    finally:
        thread.join(IO_TIMEOUT)
    [(text, slow_time, slow_done)] = slow_result
    assert text == "slow" and slow_time >= 1.9
    # The fast ones did not wait for the slow one (judged by order, not by
    # a tight time limit, so that a loaded machine does not make it flaky).
    assert fast_done < slow_done - 0.3, f"fast requests took {fast_done - began:.2f}s"


# -- limits and hardening, on every engine ---------------------------------------------

#: Sent after each bad request below: it must never be answered (after a
#: framing error the stream cannot be trusted; a smuggled request hides here).
SMUGGLED = get("/hello")


def test_malformed_request_gets_400_and_close(engine_server: ServerProcess) -> None:
    with connect(engine_server) as sock:
        sock.sendall(get("/hello") + b"GET /\x7f HTTP/1.1\r\n\r\n")
        data = read_to_eof(sock)
    ok, bad = parse_responses(data, eof=True)
    assert ok.status == 200 and bad.status == 400
    assert bad.header("Connection") == "close"


@pytest.mark.parametrize("data, status", [
    pytest.param(get("/" + "a" * 10_000), 414, id="414-long-target"),
    pytest.param(get("/", "X-Big: " + "b" * 10_000), 431, id="431-long-header"),
    pytest.param(get("/", *[f"X-{n}: v" for n in range(200)]), 431, id="431-many-headers"),
    pytest.param(get("/echo", f"Content-Length: {MAX_BODY + 1}", method="POST") + b"x" * 100,
                 413, id="413-length"),
    pytest.param(get("/echo", "Transfer-Encoding: chunked", method="POST")
                 + b"%x\r\n" % (MAX_BODY + 1) + b"x" * (MAX_BODY + 1), 413, id="413-chunked"),
    pytest.param(get("/echo", f"Content-Length: {MAX_BODY + 1}", "Expect: 100-continue",
                     method="POST"), 413, id="413-before-100-continue"),
    pytest.param(get("/echo", "Content-Length: 3", "Transfer-Encoding: chunked", method="POST",
                     body=b"0\r\n\r\n"), 400, id="400-length-and-chunked"),
    pytest.param(get("/echo", "Transfer-Encoding: chunked", "Content-Length: 3", method="POST",
                     body=b"0\r\n\r\n"), 400, id="400-chunked-and-length"),
    pytest.param(get("/echo", "Content-Length: 1", "Content-Length: 2", method="POST",
                     body=b"ab"), 400, id="400-two-lengths"),
    pytest.param(get("/echo", "Content-Length: 1", "Content-Length: 1", method="POST",
                     body=b"a"), 400, id="400-same-length-twice"),
    pytest.param(get("/echo", "Content-Length: 1, 1", method="POST", body=b"a"), 400,
                 id="400-length-list"),
    pytest.param(get("/echo", "Content-Length: -1", method="POST"), 400, id="400-negative-length"),
    pytest.param(get("/echo", "Content-Length: +1", method="POST", body=b"a"), 400,
                 id="400-signed-length"),
    pytest.param(get("/echo", "Content-Length: abc", method="POST"), 400, id="400-invalid-length"),
    pytest.param(get("/echo", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked",
                     method="POST", body=b"0\r\n\r\n"), 400, id="400-chunked-twice"),
    pytest.param(get("/echo", "Transfer-Encoding : chunked", method="POST", body=b"0\r\n\r\n"),
                 400, id="400-space-before-colon"),
    pytest.param(get("/echo", "Transfer-Encoding: gzip, chunked", method="POST",
                     body=b"0\r\n\r\n"), 501, id="501-gzip-body"),
    pytest.param(b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
                 id="400-chunked-in-http10"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n", 400, id="400-obs-fold"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n\tfolded\r\n\r\n", 400,
                 id="400-obs-fold-tab"),
    pytest.param(b"GET / HTTP/1.1\nHost: x\n\n", 400, id="400-bare-lf"),
    pytest.param(b"GET / HTTP/1.1\r\n\r\n", 400, id="400-no-host"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, id="400-two-hosts"),
    pytest.param(b"GET /static/hello.txt\x00 HTTP/1.1\r\nHost: x\r\n\r\n", 400, id="400-nul"),
    pytest.param(b"GET /static/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", 400,
                 id="400-raw-non-utf8-target"),
    pytest.param(b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505, id="505"),
    pytest.param(b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 501, id="501-method"),
    pytest.param(get("/hello", "Expect: a-miracle"), 417, id="417"),
])
def test_limits_and_smuggling_defences(engine_server: ServerProcess, data: bytes,
                                       status: int) -> None:
    with connect(engine_server) as sock:
        sock.sendall(data + SMUGGLED)
        responses = parse_responses(read_to_eof(sock), eof=True)
    assert [r.status for r in responses] == [status]
    assert responses[0].header("Connection") == "close"


def test_slowloris_is_cut_off(engine_server: ServerProcess) -> None:
    with connect(engine_server) as sock:
        began = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        data = b""
        sock.settimeout(0.1)
        for n in range(120):  # a header line every 0.1 s: never idle, never done
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


def test_idle_keep_alive_connections_are_closed(engine_server: ServerProcess) -> None:
    with connect(engine_server) as sock:
        sock.sendall(get("/hello"))
        assert read_responses(sock, 1)[0].status == 200
        began = time.monotonic()
        assert sock.recv(100) == b""  # closed by the server, silently
        assert 0.5 < time.monotonic() - began < 6


def test_requests_split_into_single_bytes(engine_server: ServerProcess) -> None:
    chunked = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    stream = get("/echo", "Transfer-Encoding: chunked", method="POST", body=chunked) \
        + get("/echo", method="POST", body=b"sized") + get("/hello")
    with connect(engine_server) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for n in range(len(stream)):
            sock.sendall(stream[n:n + 1])
        responses = read_responses(sock, 3)
    assert [r.body for r in responses] == [b"POST hello world", b"POST sized", b"Hello, World!"]


@pytest.mark.parametrize("close", [socket.socket.close, reset], ids=["fin", "rst"])
def test_a_client_that_vanishes_mid_body(engine_server: ServerProcess,
                                        close: Callable[[socket.socket], None]) -> None:
    sock = connect(engine_server)
    sock.sendall(get("/echo", "Content-Length: 1000", method="POST") + b"x" * 10)
    close(sock)
    still_serving(engine_server)  # at once: not after the 30 s body timeout


@pytest.mark.parametrize("path", ["/static/1m.bin", "/file", "/stream"])
def test_a_client_that_vanishes_mid_response(engine_server: ServerProcess, path: str) -> None:
    for _ in range(3):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the server blocks soon
        sock.settimeout(IO_TIMEOUT)
        sock.connect(engine_server.address("tcp"))
        sock.sendall(get(path))
        assert sock.recv(100).startswith(b"HTTP/1.1 200 OK")
        reset(sock)
    still_serving(engine_server)


def test_non_utf8_targets(engine_server: ServerProcess) -> None:
    # Percent-encoded bytes that are not UTF-8 are a valid target: a plain
    # 404 (or the app's answer), and the connection lives on.  (Raw ones are
    # a malformed request: see the 400 cases above.)
    with connect(engine_server) as sock:
        sock.sendall(get("/static/%ff%fe.txt") + get("/%ff%fe") + get("/environ?q=%ff%c3")
                     + get("/hello"))
        static, app, env, hello = read_responses(sock, 4)
    assert static.status == 404
    assert app.status == 404 and app.body == b"no such page"
    assert env.status == 200 and b'"QUERY_STRING": "q=%ff%c3"' in env.body
    assert hello.body == b"Hello, World!"


TRAVERSALS = [
    "/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/..%2fsecret.txt",
    "/static/%2e%2e%2fsecret.txt", "/static/%2E%2E%2Fsecret.txt", "/static/..%5csecret.txt",
    "/static/escape", "/static/hello.txt%00", "/static/%00", "/static/./../../secret.txt",
    "/static//etc/passwd", "/static/files/../../secret.txt",
]


def test_traversal_attempts(engine_server: ServerProcess) -> None:
    # One curl for all of them (it keeps the connection alive between them).
    result = curl("--path-as-is", "--include", *(url(engine_server, path) for path in TRAVERSALS))
    responses = parse_responses(result.stdout, eof=True)
    assert [(path, r.status) for path, r in zip(TRAVERSALS, responses)] == [
        (path, 404) for path in TRAVERSALS]
    assert b"SECRET" not in result.stdout and b"root:" not in result.stdout


# -- big files and TLS, on every engine (servers of their own) --------------------------


def test_100mb_download_is_byte_exact(site: Path, big_file: Path, engine: str,
                                      tmp_path: Path) -> None:
    server = start(site, engine, app=None)
    out = tmp_path / "download.bin"
    try:
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
        out.unlink(missing_ok=True)  # 100 MB per engine: do not keep them


def test_tls(site: Path, tls_files: tuple[Path, Path], engine: str) -> None:
    cert, key = tls_files
    server = start(site, engine, "--certfile", str(cert), "--keyfile", str(key))
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


# -- logs, static-only, workers (epoll) -------------------------------------------------


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
