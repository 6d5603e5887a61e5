"""The WSGI gateway (PEP 3333): run a Python web app behind the HTTP protocol.

A WSGI app is a blocking function: ``app(environ, start_response)`` returns
an iterable of byte strings, and both the call and the iteration may take as
long as they like (a database query, ``time.sleep(2)``).  On a loop engine
that would freeze every other connection, so the gateway runs the app with
``transport.run_in_worker``: the app runs in a thread of the worker pool
(``--threads``), and its output comes back to the loop thread, which alone
touches the connection.  On the blocking engines (iterative, thread, fork)
``run_in_worker`` simply calls in place, since the connection already has a
thread (or process) of its own.

The work goes in *steps*, each one worker hand-off:

1. the first step builds the environ, calls the app, and collects its
   output: a list (the common case) is joined whole, so a small response is
   one hand-off and one ``transport.write``; an ``wsgi.file_wrapper`` over a
   real file becomes a ``sendfile`` (zero-copy) instead;
2. for other iterables each step collects output until a chunk arrives
   (a stream of unknown length goes out as it is produced: server-sent
   events must not wait for a buffer to fill) or, when the length is known,
   up to 256 KiB; then the loop thread writes it and asks for the next step,
   unless the connection's output is over its high-water mark, in which case
   it waits for ``resume_writing`` (a slow reader pauses the app, it does not
   grow our memory).

On an inline engine the step's callback arrives before ``run_in_worker``
returns; :meth:`_Call._advance` turns that into a loop rather than a
recursion, so a million-chunk generator cannot overflow the stack.

Headers set by the app are checked before anything is sent: names must be
tokens, values must not contain CR, LF or NUL (a header value built from
user input must not be able to start a second header or a second
response), and the status must be ``"NNN reason"``.  Hop-by-hop headers are
the server's business and are dropped (``Connection: close`` is honoured).
"""

from __future__ import annotations

import io
import logging
import os
import re
import stat
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote_to_bytes

from ionet import __version__
from ionet.core.protocol import Outcome
from ionet.file_wrapper import FileWrapper
from ionet.http.status import HttpError, status_line

if TYPE_CHECKING:
    from ionet.http.parser import Request
    from ionet.http.protocol import HttpProtocol

__all__ = ["FileWrapper", "WSGIGateway", "build_environ", "load_app"]

log = logging.getLogger("ionet.http.wsgi")

WSGIApp = Callable[[dict[str, Any], Callable[..., Callable[[bytes], None]]], Iterable[bytes]]

#: Output collected per step when the response length is known.
BATCH = 256 * 1024
#: Headers the server owns (RFC 9110 section 7.6.1, plus framing).
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailer", "transfer-encoding", "upgrade"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(r"[\r\n\x00]")

#: Header name (lower-case bytes) -> environ key; "" for headers not passed.
#: A cache: filled on first sight, bounded.
_HEADER_KEYS: dict[bytes, str] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "",  # CONTENT_LENGTH comes from the body itself
    b"transfer-encoding": "",  # the body is already de-chunked
}
_HEADER_KEYS_MAX = 1024
_METHODS: dict[bytes, str] = {}
#: Request target -> (PATH_INFO, QUERY_STRING, REQUEST_URI) for origin-form
#: targets: the same few URLs come again and again.  A cache, bounded.
_TARGETS: dict[bytes, tuple[str, str, str]] = {}
_TARGETS_MAX = 1024
_STATUS_CACHE: dict[str, tuple[int, bytes]] = {}
_GOOD_NAMES: set[str] = set()
_END: Any = object()  # "the iterator is exhausted"


def _header_key(name: bytes) -> str:
    key = _HEADER_KEYS.get(name)
    if key is None:
        text = name.decode("latin-1")
        # A name with "_" would collide with its "-" twin once converted
        # (X_User vs X-User): drop it, as nginx and gunicorn do, so a client
        # cannot spoof a header a proxy set.
        key = "" if "_" in text else "HTTP_" + text.upper().replace("-", "_")
        if len(_HEADER_KEYS) < _HEADER_KEYS_MAX:
            _HEADER_KEYS[name] = key
    return key


def build_environ(request: Request, base: dict[str, Any]) -> dict[str, Any]:
    """The WSGI environ of ``request``, on top of the connection's ``base``.

    ``PATH_INFO`` is percent-decoded and carried as latin-1 (PEP 3333: each
    byte one character); ``QUERY_STRING`` is left encoded; ``REQUEST_URI``
    and ``RAW_URI`` keep the target as sent.  The body is complete, so
    ``wsgi.input`` is a ``BytesIO`` that every app can read, chunked or not,
    ``CONTENT_LENGTH`` is its real length, and ``wsgi.input_terminated``
    says reading to the end is safe.
    """
    environ = base.copy()
    method = _METHODS.get(request.method)
    if method is None:
        method = _METHODS.setdefault(request.method, request.method.decode("latin-1"))
    environ["REQUEST_METHOD"] = method
    target = request.target
    strings = _TARGETS.get(target)
    if strings is None:
        path = request.path
        strings = ((unquote_to_bytes(path) if b"%" in path else path).decode("latin-1"),
                   request.query.decode("latin-1"), target.decode("latin-1"))
        # Only the origin form maps its target to one path and query (an
        # absolute target or a '#' is cut by the parser).
        if len(_TARGETS) < _TARGETS_MAX and target[:1] == b"/" and b"#" not in target:
            _TARGETS[target] = strings
    environ["PATH_INFO"], environ["QUERY_STRING"], uri = strings
    environ["REQUEST_URI"] = environ["RAW_URI"] = uri
    environ["SERVER_PROTOCOL"] = "HTTP/1.1" if request.version == "1.1" else "HTTP/1.0"
    body = request.body
    environ["wsgi.input"] = io.BytesIO(body)
    if body or request.content_length is not None or request.chunked:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in request.headers:
        key = _HEADER_KEYS.get(name)
        if key is None:
            key = _header_key(name)
        if not key:
            continue
        text = value.decode("latin-1")
        if key in environ:
            environ[key] += ("; " if key == "HTTP_COOKIE" else ", ") + text
        else:
            environ[key] = text
    return environ


def _parse_status(status: str) -> tuple[int, bytes]:
    cached = _STATUS_CACHE.get(status)
    if cached is not None:
        return cached
    if type(status) is not str:
        raise TypeError(f"the status must be a str, not {type(status).__name__}")
    code_text, space, reason = status.partition(" ")
    if len(code_text) != 3 or not code_text.isdigit() or not space or not reason.strip():
        raise ValueError(f"invalid status {status!r}: it must look like '200 OK'")
    code = int(code_text)
    if code < 200:  # 1xx are interim responses: not something an app can end with
        raise ValueError(f"invalid final status in {status!r}")
    parsed = (code, status_line(code, reason))
    if len(_STATUS_CACHE) < 256:
        _STATUS_CACHE[status] = parsed
    return parsed


class _Head(NamedTuple):
    """A response head as the app set it, ready for ``conn.start``/``respond``."""

    status: int
    status_line: bytes
    headers: bytes
    length: int | None
    date: bool
    server: bool
    close: bool


_Encoded = tuple[bytes, int | None, bool, bool, bool]
#: Checked and encoded heads, by the status and header list the app gave:
#: most apps send the same few again and again, and a lookup is ten times
#: cheaper than checking and encoding.
_HEAD_CACHE: dict[tuple[str, tuple[tuple[str, str], ...]], _Head] = {}
_HEAD_CACHE_MAX = 512


def _make_head(status: str, headers: list[tuple[str, str]]) -> _Head:
    """The checked head for ``start_response(status, headers)``, cached for
    small header lists."""
    if type(status) is not str or type(headers) is not list or len(headers) > 16:
        return _new_head(status, headers)
    try:
        key = (status, tuple(headers))
        cached = _HEAD_CACHE.get(key)
    except TypeError:  # an unhashable item: let the full check explain it
        return _new_head(status, headers)
    if cached is not None:
        return cached
    head = _new_head(status, headers)
    if len(_HEAD_CACHE) >= _HEAD_CACHE_MAX:
        _HEAD_CACHE.clear()  # varying headers (cookies, ETags): start over
    _HEAD_CACHE[key] = head
    return head


def _new_head(status: str, headers: list[tuple[str, str]]) -> _Head:
    code, line = _parse_status(status)
    block, length, date, server, close = _encode_headers(headers)
    return _Head(code, line, block, length, date, server, close)


def _encode_headers(headers: list[tuple[str, str]]) -> _Encoded:
    """Check and encode an app's headers.

    Returns:
        ``(header lines, Content-Length or None, add Date?, add Server?, close?)``

    Raises:
        TypeError / ValueError: not a list of ``(str, str)``, a name that
            is not a token, a value with CR/LF/NUL, a bad Content-Length,
            or a character outside latin-1.
    """
    if type(headers) is not list:
        raise TypeError(f"headers must be a list, not {type(headers).__name__}")
    lines = []
    length = None
    date = server = True
    close = False
    for item in headers:
        if type(item) is not tuple or len(item) != 2:
            raise TypeError(f"each header must be a (name, value) tuple, not {item!r}")
        name, value = item
        if type(name) is not str or type(value) is not str:
            raise TypeError(f"header names and values must be str: {item!r}")
        if name not in _GOOD_NAMES:
            if not _TOKEN.match(name):
                raise ValueError(f"invalid header name {name!r}")
            if len(_GOOD_NAMES) < 1024:
                _GOOD_NAMES.add(name)
        if _BAD_VALUE.search(value):
            raise ValueError(f"CR, LF or NUL in the value of header {name!r}")
        lower = name.lower()
        if lower == "content-length":
            value = value.strip()
            if not value.isdigit():
                raise ValueError(f"invalid Content-Length {value!r}")
            length = int(value)
            continue
        if lower in _HOP_BY_HOP:
            if lower == "connection" and "close" in value.lower():
                close = True
            continue
        if lower == "date":
            date = False
        elif lower == "server":
            server = False
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1"), length, date, server, close


class _Step(NamedTuple):
    """What one worker step produced, for the loop thread to send."""

    head: _Head | None  # the head, the first time
    data: bytes
    file: tuple[IO[bytes], int, int] | None = None  # a sendfile region
    done: bool = False
    error: bool = False  # failed before anything was sent: answer 500
    abort: bool = False  # failed after the head was sent: drop the connection
    whole: bool = False  # head and whole body: one ``conn.respond``


#: ``_Step`` without its Python-level ``__new__`` (for the path of every request).
_new_step = tuple.__new__


class WSGIGateway:
    """A handler that runs a WSGI app.

    Args:
        app: the WSGI callable.
        script_name: where the app is mounted (``SCRIPT_NAME``); "" for the root.
        errors: ``wsgi.errors`` (``sys.stderr`` by default).
        multiprocess: ``wsgi.multiprocess`` (True with ``--workers`` > 1;
            the fork engine sets it by itself).
        url_scheme: force ``wsgi.url_scheme`` (behind a TLS proxy, say);
            by default ``https`` on TLS connections, else ``http``.
    """

    allow = b"GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"

    def __init__(self, app: WSGIApp, *, script_name: str = "", errors: Any = None,
                 multiprocess: bool = False, url_scheme: str | None = None) -> None:
        if script_name == "/" or (script_name and not script_name.startswith("/")):
            raise ValueError(f"script_name must be '' or start with '/': {script_name!r}")
        self.app = app
        self.multiprocess = multiprocess
        self.url_scheme = url_scheme
        self.close_lock = threading.Lock()
        self.base: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.errors": errors if errors is not None else sys.stderr,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
            "wsgi.input_terminated": True,
            "SCRIPT_NAME": script_name.rstrip("/"),
            "SERVER_SOFTWARE": f"ionet/{__version__}",
        }

    def connection_environ(self, conn: HttpProtocol) -> dict[str, Any]:
        """The part of the environ that is the same for a whole connection."""
        transport = conn.transport
        environ = dict(self.base)
        sockname = transport.get_extra_info("sockname")
        peername = transport.get_extra_info("peername")
        if isinstance(sockname, tuple) and len(sockname) >= 2:
            environ["SERVER_NAME"], environ["SERVER_PORT"] = str(sockname[0]), str(sockname[1])
        else:
            environ["SERVER_NAME"], environ["SERVER_PORT"] = "localhost", "0"
        if isinstance(peername, tuple) and len(peername) >= 2:
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(peername[0]), str(peername[1])
        else:
            environ["REMOTE_ADDR"] = ""
        secure = transport.get_extra_info("ssl_object") is not None
        environ["wsgi.url_scheme"] = self.url_scheme or ("https" if secure else "http")
        if secure:
            environ["HTTPS"] = "on"
        engine = transport.get_extra_info("engine")
        environ["wsgi.multithread"] = engine not in ("iterative", "fork")
        environ["wsgi.multiprocess"] = self.multiprocess or engine == "fork"
        return environ

    def handle(self, request: Request, conn: HttpProtocol) -> None:
        base = conn.environ_base
        if base is None:
            base = conn.environ_base = self.connection_environ(conn)
        # (The call's start, inline: this runs for every request.)
        call = _Call(self, request, conn, base)
        conn.on_lost = call._connection_lost
        call.running = True
        conn.transport.run_in_worker(call._first_step, call._deliver)


class _Call:
    """One request's trip through the app: the worker side and the loop side."""

    # Defaults are class attributes: a call (one per request) sets only what
    # differs, and an instance gets its own value once one is assigned.
    status: str | None = None
    head: _Head | None = None
    emitted = False  # the head left the worker: headers count as sent
    result: Iterable[bytes] | None = None
    iterator: Iterator[bytes] | None = None
    sent = 0  # body bytes produced so far
    lost = False
    running = False
    _inline = False
    _sync: Outcome[_Step] | None = None

    def __init__(self, gateway: WSGIGateway, request: Request, conn: HttpProtocol,
                 base: dict[str, Any]) -> None:
        self.gateway = gateway
        self.request = request
        self.conn = conn
        self.base = base
        self.out: list[bytes] = []  # bytes given to write()

    # -- the loop side --------------------------------------------------------

    def _advance(self, step: Callable[[], _Step]) -> None:
        """Run ``step`` in a worker; deliver its result; repeat while asked to."""
        transport = self.conn.transport
        while True:
            self._sync = None
            self._inline = True
            self.running = True
            transport.run_in_worker(step, self._deliver)
            self._inline = False
            outcome = self._sync
            if outcome is None:
                return  # a real worker: _deliver runs later, on the loop thread
            self._sync = None
            if not self._send(outcome):
                return
            step = self._more_step

    def _deliver(self, outcome: Outcome[_Step]) -> None:
        if self._inline:
            self._sync = outcome  # called in place: let _advance loop
            return
        step = outcome.value
        if step is not None and step.whole and not self.lost:
            conn = self.conn
            if not conn.closed:  # the common case: the whole response at once
                head: Any = step.head  # (a whole step always has its head)
                conn.respond(self.request, head.status, head.headers, step.data, None,
                             head.status_line, head.date, head.server, head.close)
                return
        if self._send(outcome):
            self._advance(self._more_step)

    def _resume(self) -> None:
        if not self.lost:
            self._advance(self._more_step)

    def _send(self, outcome: Outcome[_Step]) -> bool:
        """Send a step's output; True to run the next step at once."""
        conn, request = self.conn, self.request
        step = outcome.value
        if self.lost or conn.closed:
            if step is not None and step.file is not None:
                step.file[0].close()  # never handed to the transport
            return False
        if outcome.error is not None:  # our own step code failed: a bug
            log.error("WSGI gateway failure on %s", request, exc_info=outcome.error)
            conn.fail(request, HttpError(500))
            return False
        assert step is not None
        if step.error:
            conn.respond_error(request, 500, close=True)
            return False
        if step.abort:
            conn.abort()
            return False
        head = step.head
        if head is not None:
            if step.done and step.file is None and (
                    head.length == len(step.data)
                    or (head.length is None and (step.data or request.method != b"HEAD"))):
                # The whole response at once: one write (the common case).
                conn.respond(request, head.status, head.headers, step.data, None,
                             head.status_line, head.date, head.server, head.close)
                return False
            conn.start(request, head.status, head.headers, head.length,
                       status_line=head.status_line, date=head.date,
                       server=head.server, close=head.close)
        if step.data:
            conn.send(step.data)
        if step.file is not None:
            file, offset, count = step.file
            conn.send_file(file, offset, count)  # the transport closes it once sent
        if step.done:
            conn.finish()
            return False
        if conn.write_paused:
            conn.on_drain = self._resume
            return False
        return True

    def _connection_lost(self) -> None:
        # The client went away mid-response: the iterable must still be
        # closed (PEP 3333), in a worker, since close() may block too.
        self.lost = True
        if not self.running and self.result is not None:
            self.conn.transport.run_in_worker(self._close_result, lambda outcome: None)

    # -- the worker side ------------------------------------------------------

    def _first_step(self) -> _Step:
        try:
            try:
                result = self.gateway.app(build_environ(self.request, self.base),
                                          self.start_response)
            except Exception as exc:  # the app's boundary: any failure becomes a 500
                return self._failed(exc)
            head = self.head
            if (type(result) is list and len(result) == 1 and type(result[0]) is bytes
                    and not self.out and head is not None and not self.emitted):
                # The common case, one byte string: the whole response in one step.
                data = result[0]
                if head.length is not None and len(data) != head.length:
                    return self._whole_list(result)  # let the general path cut or frame it
                self.emitted = True
                self.sent = len(data)
                return _new_step(_Step, (head, data, None, True, False, False,
                                         head.length is not None or bool(data)
                                         or self.request.method != b"HEAD"))
            return self._first(result)
        finally:
            self.running = False
            if self.lost:
                self._close_result()

    def _more_step(self) -> _Step:
        try:
            return self._collect()
        finally:
            self._step_done()

    def _step_done(self) -> None:
        self.running = False
        if self.lost:
            self._close_result()

    def _first(self, result: Iterable[bytes]) -> _Step:
        if type(result) is list and not self.out and self.head is not None:
            return self._whole_list(result)
        self.result = result
        if type(result) is FileWrapper:
            file_step = self._file(result)
            if file_step is not None:
                return file_step
        try:
            self.iterator = iter(result)
        except Exception as exc:  # the app's boundary (its iterable's __iter__)
            return self._failed(exc)
        return self._collect(whole=hasattr(result, "__len__"))

    def _whole_list(self, result: list[bytes]) -> _Step:
        """The common case, a list of byte strings: the whole body in one step."""
        if len(result) == 1 and type(result[0]) is bytes:
            data = result[0]
        else:
            for chunk in result:
                if type(chunk) is not bytes:
                    return self._failed(TypeError(
                        f"a WSGI app must return bytes, not {type(chunk).__name__}"))
            data = b"".join(result)
        head = self.head
        assert head is not None
        if head.length is not None and len(data) > head.length:
            data = data[:head.length]
        self.sent = len(data)  # (a list has no close(): nothing to keep)
        return _Step(self._emit_head(), data, None, True)

    def _collect(self, whole: bool = False) -> _Step:
        """Gather output: all of it (``whole``), up to a batch, or one chunk."""
        chunks, self.out = self.out, []
        size = sum(map(len, chunks))
        iterator = self.iterator
        assert iterator is not None
        done = False
        try:
            while True:
                head = self.head
                if head is not None and head.length is not None \
                        and self.sent + size >= head.length:
                    done = True  # all the announced bytes are here: stop (PEP 3333)
                    break
                chunk = next(iterator, _END)
                if chunk is _END:
                    done = True
                    break
                if type(chunk) is not bytes:
                    raise TypeError(f"a WSGI app must yield bytes, not {type(chunk).__name__}")
                if self.out:  # the app called write() while iterating
                    chunks.extend(self.out)
                    size += sum(map(len, self.out))
                    self.out = []
                if not chunk:
                    continue
                chunks.append(chunk)
                size += len(chunk)
                if not whole and (self.head is None or self.head.length is None
                                  or size >= BATCH):
                    break
        except Exception as exc:  # the app's boundary (its iterable's __next__)
            return self._failed(exc)
        if self.status is None:
            return self._failed(AssertionError("the app did not call start_response"))
        if done:
            self._close_result()
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.sent += len(data)
        return _Step(self._emit_head(), data, done=done)

    def _file(self, wrapper: FileWrapper) -> _Step | None:
        """A file wrapper over a regular file: a sendfile step (else None).

        ``transport.sendfile`` takes over the file it is given and closes it
        once sent, so it gets a descriptor of its own (``os.dup``), and the
        app's iterable is closed at once, as PEP 3333 asks at the end of a
        response.
        """
        try:
            fd = wrapper.filelike.fileno()
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or self.status is None:
                return None
            offset = wrapper.filelike.tell()
            file = os.fdopen(os.dup(fd), "rb", buffering=0)
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return None
        count = max(0, st.st_size - offset)
        head = self.head
        assert head is not None
        if head.length is not None:
            count = min(count, head.length)
        data = b"".join(self.out)
        self.out = []
        self._close_result()
        return _Step(self._emit_head(), data, (file, offset, count), done=True)

    def _emit_head(self) -> _Head | None:
        if self.emitted:
            return None
        self.emitted = True
        return self.head

    def _failed(self, exc: BaseException) -> _Step:
        log.error("WSGI app failed on %s", self.request, exc_info=exc)
        self._close_result()
        if self.emitted or (self.out and self.status is not None):
            return _Step(None, b"", abort=True)
        return _Step(None, b"", error=True)

    def _close_result(self) -> None:
        with self.gateway.close_lock:
            result, self.result = self.result, None
        close = getattr(result, "close", None)
        if close is not None:
            try:
                close()
            except Exception as exc:
                log.error("close() of the WSGI iterable failed", exc_info=exc)

    # -- what the app calls ---------------------------------------------------

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        """PEP 3333's ``start_response``; checks everything before accepting it."""
        if exc_info is not None:
            try:
                if self.emitted or self.out:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the traceback cycle
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        self.head = _make_head(status, headers)
        self.status = status
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable: its bytes go out before the iterable's."""
        if self.status is None:
            raise AssertionError("write() called before start_response")
        if type(data) is not bytes:
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        self.out.append(data)


def load_app(spec: str) -> WSGIApp:
    """Import ``module:attribute`` (``myapp:app``, ``pkg.web:make_app()``).

    The current directory is put on ``sys.path`` first, as gunicorn does, so
    ``ionet http serve --app hello:app`` finds ``./hello.py``.  A trailing
    ``()`` calls a factory.

    Raises:
        ValueError: the spec is malformed, the module or attribute is missing,
            or the result is not callable.
    """
    import importlib

    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"--app wants module:callable, not {spec!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from None
    call = attribute.endswith("()")
    target: Any = module
    for part in attribute.removesuffix("()").split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"{module_name!r} has no attribute {attribute!r}") from None
    if call:
        target = target()
    if not callable(target):
        raise ValueError(f"{spec} is not callable")
    app: WSGIApp = target
    return app
