"""The WSGI gateway on a fake transport: environ, start_response, iterables, validator."""

from __future__ import annotations

import io
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import pytest

from ionet.http import FileWrapper, WSGIGateway, load_app
from ionet.http.wsgi import build_environ
from tests.http.util import FakeConnection, get

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], None]]


def serve(app: Any, *requests: bytes, validate: bool = True, run_workers: bool = True,
          **gateway_options: Any) -> FakeConnection:
    conn = FakeConnection(WSGIGateway(validator(app) if validate else app, **gateway_options),
                          run_workers=run_workers)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a validator warning fails the test
        for request in requests:
            conn.feed(request)
    return conn


def hello(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, World!"]


def test_hello() -> None:
    conn = serve(hello, get("/"))
    [response] = conn.responses()
    assert response.status == 200 and response.body == b"Hello, World!"
    assert response.header("Content-Type") == "text/plain"
    assert response.header("Content-Length") == "13"
    assert response.header("Server") == "ionet"


def test_hello_unvalidated_is_one_write() -> None:
    conn = serve(hello, get("/"), validate=False)
    assert len(conn.transport.chunks) == 1


class Recorder:
    """An app that remembers its environ and answers with the body it read."""

    def __init__(self) -> None:
        self.environ: Environ = {}

    def __call__(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        self.environ = dict(environ)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]


def test_environ() -> None:
    app = Recorder()
    conn = serve(app, get("/caf%C3%A9/a%2Fb?q=%20x&y", "Content-Type: text/plain", "X-Multi: 1",
                          "X-Multi: 2", "Cookie: a=1", "Cookie: b=2", "X_Spoof: 1",
                          "User-Agent: test", method="POST", body=b"payload"))
    env = app.environ
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/caf\xc3\xa9/a/b"  # decoded, carried as latin-1 (PEP 3333)
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/a/b"
    assert env["QUERY_STRING"] == "q=%20x&y"
    assert env["REQUEST_URI"] == env["RAW_URI"] == "/caf%C3%A9/a%2Fb?q=%20x&y"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_NAME"] == "127.0.0.1" and env["SERVER_PORT"] == "8000"
    assert env["REMOTE_ADDR"] == "127.0.0.1" and env["REMOTE_PORT"] == "50000"
    assert env["CONTENT_TYPE"] == "text/plain" and env["CONTENT_LENGTH"] == "7"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["HTTP_HOST"] == "test" and env["HTTP_USER_AGENT"] == "test"
    assert env["HTTP_X_MULTI"] == "1, 2"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert "HTTP_X_SPOOF" not in env  # underscores: dropped
    assert env["wsgi.version"] == (1, 0) and env["wsgi.url_scheme"] == "http"
    assert hasattr(env["wsgi.errors"], "write")  # sys.stderr, wrapped by the validator
    assert env["wsgi.multithread"] is True and env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False and env["wsgi.input_terminated"] is True
    assert env["wsgi.file_wrapper"] is FileWrapper
    assert conn.responses()[0].body == b"payload"


def test_environ_for_a_get_has_no_content_length() -> None:
    app = Recorder()
    serve(app, get("/"))
    assert "CONTENT_LENGTH" not in app.environ and "CONTENT_TYPE" not in app.environ
    assert app.environ["QUERY_STRING"] == ""


def test_a_chunked_body_reaches_wsgi_input() -> None:
    app = Recorder()
    conn = serve(app, get("/", "Transfer-Encoding: chunked", method="PUT",
                          body=b"4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n"))
    assert app.environ["CONTENT_LENGTH"] == "9"
    assert "HTTP_TRANSFER_ENCODING" not in app.environ
    assert conn.responses()[0].body == b"wikipedia"


def test_script_name_and_http10() -> None:
    app = Recorder()
    serve(app, b"GET /x HTTP/1.0\r\n\r\n", script_name="/app")
    assert app.environ["SCRIPT_NAME"] == "/app" and app.environ["PATH_INFO"] == "/x"
    assert app.environ["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_build_environ_is_cheap_to_call_directly() -> None:
    from ionet.http.parser import Request
    request = Request()
    request.method, request.path, request.target = b"GET", b"/", b"/"
    env = build_environ(request, {"SCRIPT_NAME": ""})
    assert env["PATH_INFO"] == "/" and env["REQUEST_METHOD"] == "GET"


def generator_app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"one "
    yield b""
    yield b"two "
    yield b"three"


def test_a_generator_is_streamed_chunked() -> None:
    conn = serve(generator_app, get("/"), get("/again"))
    first, second = conn.responses()
    assert first.chunked and first.body == b"one two three"
    assert second.body == b"one two three"


def test_a_generator_to_http10_is_close_delimited() -> None:
    conn = serve(generator_app, b"GET / HTTP/1.0\r\n\r\n")
    [response] = conn.responses()
    assert response.body == b"one two three" and conn.closed


def test_head_keeps_the_app_length() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [b"12345"]

    conn = serve(app, get("/", method="HEAD"), get("/"))
    head, body = conn.responses(head={0})
    assert head.header("Content-Length") == "5" and head.body == b""
    assert body.body == b"12345"


def test_the_write_callable() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"returned"]

    [response] = serve(app, get("/")).responses()
    assert response.body == b"written returned"


def test_file_wrapper_uses_sendfile(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"0123456789" * 1000)
    files: list[io.BufferedReader] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        file = open(path, "rb")
        file.seek(10)
        files.append(file)
        return environ["wsgi.file_wrapper"](file)

    conn = serve(app, get("/"), get("/"), validate=False)
    first, second = conn.responses()
    assert first.body == second.body == (b"0123456789" * 1000)[10:]
    assert len(conn.transport.files) == 2
    assert files[0].closed
    conn.transport.lose()
    assert files[1].closed


def test_file_wrapper_iterates_when_validated(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"file contents")

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
        return environ["wsgi.file_wrapper"](open(path, "rb"), 4)

    [response] = serve(app, get("/")).responses()
    assert response.body == b"file contents"


class ClosingBody:
    def __init__(self, chunks: list[bytes], fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        for n, chunk in enumerate(self.chunks):
            if n == self.fail_at:
                raise RuntimeError("broken iterable")
            yield chunk

    def close(self) -> None:
        self.closed += 1


def test_close_is_called_once() -> None:
    body = ClosingBody([b"a", b"b"])

    def app(environ: Environ, start_response: StartResponse) -> ClosingBody:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    conn = serve(app, get("/"))
    assert conn.responses()[0].body == b"ab"
    assert body.closed == 1


def test_an_app_that_raises_gets_500() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        raise ValueError("bug")

    conn = serve(app, get("/"), validate=False)
    [response] = conn.responses()
    assert response.status == 500 and conn.closed


def test_an_iterable_that_fails_after_the_head_aborts() -> None:
    body = ClosingBody([b"a", b"b", b"c"], fail_at=2)

    def app(environ: Environ, start_response: StartResponse) -> ClosingBody:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    conn = serve(app, get("/"), validate=False)
    assert conn.transport.aborted and body.closed == 1


def test_exc_info_replaces_the_head_before_anything_was_sent() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise KeyError("oops")
        except KeyError:
            start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"error page"]

    [response] = serve(app, get("/")).responses()
    assert response.status == 500 and response.reason == "Oops"
    assert response.body == b"error page"


def test_exc_info_after_the_head_was_sent_reraises() -> None:
    seen: list[BaseException] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"partial"
        try:
            raise KeyError("late")
        except KeyError:
            try:
                start_response("500 Oops", [], sys.exc_info())
            except KeyError as exc:
                seen.append(exc)
                raise

    conn = serve(app, get("/"), validate=False)
    assert len(seen) == 1 and conn.transport.aborted


@pytest.mark.parametrize("status, headers", [
    ("200 OK", [("X-Injected", "a\r\nSet-Cookie: evil=1")]),
    ("200 OK", [("X-Injected", "a\nb")]),
    ("200 OK", [("Bad Name", "v")]),
    ("200 OK", [("X-Unicode", "\u20ac")]),
    ("200 OK", [("Content-Length", "twelve")]),
    ("200 OK\r\nSet-Cookie: evil=1", []),
    ("OK", []),
    ("2000 OK", []),
    ("200 OK", ("X", "tuple not list")),
])
def test_bad_heads_from_the_app_are_refused(status: str, headers: Any) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response(status, headers)
        return [b"never sent"]

    conn = serve(app, get("/"), validate=False)
    [response] = conn.responses()
    assert response.status == 500
    assert b"evil" not in conn.transport.written() and b"never sent" not in conn.transport.written()


def test_hop_by_hop_headers_are_the_server_s() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close"),
                                  ("Transfer-Encoding", "gzip"), ("Date", "x"), ("Server", "me")])
        return [b"ok"]

    conn = serve(app, get("/"), validate=False)
    [response] = conn.responses()
    assert response.header("Connection") == "close" and conn.closed
    assert response.header("Transfer-Encoding") is None
    assert response.header("Date") == "x" and response.header("Server") == "me"


def test_a_longer_body_than_announced_is_cut() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        yield b"ab"
        yield b"cdef"

    conn = serve(app, get("/") + get("/"), validate=False)
    assert [r.body for r in conn.responses()] == [b"abc", b"abc"]


def test_a_shorter_body_than_announced_closes() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        yield b"abc"

    conn = serve(app, get("/"), validate=False)
    assert conn.closed


def test_the_app_runs_in_a_worker_and_the_connection_waits() -> None:
    conn = serve(hello, get("/") + get("/2"), run_workers=False)
    assert conn.transport.written() == b""
    assert len(conn.transport.pending_workers) == 1  # one request at a time
    conn.transport.run_pending_workers()
    assert len(conn.responses()) == 1
    conn.transport.run_pending_workers()
    assert len(conn.responses()) == 2


def test_streaming_waits_for_the_output_to_drain() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        for n in range(3):
            yield b"chunk%d " % n

    conn = serve(app, get("/"), validate=False, run_workers=False)
    transport = conn.transport
    transport.run_pending_workers()  # call the app, first chunk
    conn.protocol.pause_writing()  # as if the peer reads slowly
    transport.run_pending_workers()  # nothing: waits for the drain
    assert transport.pending_workers == []
    conn.protocol.resume_writing()
    while transport.pending_workers:
        transport.run_pending_workers()
    [response] = conn.responses()
    assert response.body == b"chunk0 chunk1 chunk2 "


def test_close_is_called_when_the_client_goes_away() -> None:
    body = ClosingBody([b"a", b"b", b"c"])

    def app(environ: Environ, start_response: StartResponse) -> ClosingBody:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    conn = serve(app, get("/"), validate=False, run_workers=False)
    conn.transport.run_pending_workers()  # the app ran, one chunk sent
    conn.transport.lose()
    conn.transport.run_pending_workers()
    assert body.closed == 1


def test_a_long_generator_on_an_inline_engine_does_not_recurse() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        for _ in range(5000):
            yield b"x"

    [response] = serve(app, get("/"), validate=False).responses()
    assert response.body == b"x" * 5000


def test_load_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "myapp_for_test.py").write_text(
        "def app(e, s):\n    s('200 OK', [])\n    return [b'']\n"
        "def make():\n    return app\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_app("myapp_for_test:app").__name__ == "app"
    assert load_app("myapp_for_test:make()").__name__ == "app"
    for bad in ("myapp_for_test", "myapp_for_test:nope", "no_such_module_x:app", ":app"):
        with pytest.raises(ValueError):
            load_app(bad)


def test_a_flask_app_in_process() -> None:
    flask = pytest.importorskip("flask")
    app = flask.Flask("test")

    @app.route("/hi/<name>")
    def hi(name: str) -> str:
        return f"hi {name}"

    @app.post("/echo")
    def echo() -> Any:
        return {"got": flask.request.get_data(as_text=True)}

    # Unvalidated: werkzeug reads wsgi.input with read() since we set
    # wsgi.input_terminated, which wsgiref's validator does not allow.
    conn = serve(app.wsgi_app, get("/hi/ionet"), get("/echo", method="POST", body=b"data"),
                 get("/missing"), validate=False)
    hi_response, echo_response, missing = conn.responses()
    assert hi_response.body == b"hi ionet"
    assert echo_response.body.strip() == b'{"got":"data"}'
    assert missing.status == 404
