"""HTTPServer 3.0's split, the framework's side: a WSGI app behind framed JSON messages.

The course's HTTPServer 3.0 separates the HTTP server from the web framework:
the server parses HTTP and forwards each request to the framework process,
which routes it, runs the view and answers.  ``ionet web serve PROJECT`` is
that framework process; ``ionet http serve --upstream HOST:PORT`` is the
server (``ionet/http/upstream.py``).  They speak the protocol below over a
few persistent TCP connections.

The message format
==================

Every message is a *frame*: a 4-byte unsigned length in network byte order
(``struct`` ``!I``), then that many bytes (``ionet.core.framing``).  A
*head* frame holds one JSON object (UTF-8); a *body* frame holds raw bytes.
Strings that carry HTTP bytes (path, query, header values, reason) are
latin-1 decoded, one character per byte, as in WSGI (PEP 3333), so any byte
the client sent survives the trip.

Request, server -> framework::

    {"id": 17,                          a number the reply repeats
     "method": "POST",
     "path": "/guestbook",              still percent-encoded, as sent
     "query": "page=2",                 what followed "?" ("" if nothing)
     "version": "1.1",
     "headers": [["host", "example.org"], ["content-type", "..."], ...],
                                        names lower-case, in order, repeats
                                        kept; hop-by-hop headers removed
     "client": ["203.0.113.9", 51234],  the HTTP client's address and port
     "server": ["0.0.0.0", 8000],       where the HTTP server took it
     "scheme": "http",                  "https" when the client used TLS
     "body_follows": true}              optional: ONE body frame follows
                                        (the whole request body)
    -- or, instead of body_follows:
     "body": "aGVsbG8="                 the whole body, base64 (handy for
                                        hand-written clients; ionet sends
                                        a body frame)
    -- neither: the body is empty.

Reply, framework -> server, for each request in the order they came::

    {"id": 17,
     "status": 303, "reason": "See Other",
     "headers": [["Location", "/guestbook"], ["Set-Cookie", "..."], ...],
     "body_follows": true}              ONE body frame follows: the body
    -- or "body": "<base64>"            the body inline
    -- or "stream": true                body frames follow, each a piece of
                                        the body, until an EMPTY frame
                                        (large files, generators)
    -- or none of them: no body.

``Content-Length`` in a reply's headers, when present, is the body's length
(the server frames the HTTP response with it); hop-by-hop headers are
dropped.  Either side that receives something malformed (bad JSON, a missing
field, an ``id`` that does not match) closes the connection; the server then
answers its client 502.  A connection carries one exchange at a time (a
second request may be sent before the reply, and replies come in order),
so the server keeps a *pool* of connections for concurrency.

Concurrency on this side: the protocol runs on a loop engine (epoll by
default), and each app call goes to the worker pool (``--threads``), so a
slow view holds one thread, not the loop; the other connections' requests
go on.
"""

from __future__ import annotations

import base64
import binascii
import collections
import io
import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple
from urllib.parse import unquote_to_bytes

from ionet import __version__
from ionet.core.errors import FrameTooLarge
from ionet.core.framing import LengthPrefixFramer, frame
from ionet.core.protocol import Outcome, Protocol, Transport
from ionet.file_wrapper import FileWrapper

__all__ = ["SplitProtocol", "SplitService", "build_environ", "encode_reply"]

log = logging.getLogger("ionet.web.split")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Largest frame accepted by default (a request head or body).
DEFAULT_MAX_FRAME = 16 * 1024 * 1024 + 64 * 1024
#: Bodies up to this size are sent whole in one frame; larger ones stream.
WHOLE_LIMIT = 1024 * 1024
#: Bytes collected per streamed frame when the length is known.
STREAM_BATCH = 256 * 1024
#: Requests queued on one connection before we stop reading it.
MAX_QUEUED = 16
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailer", "transfer-encoding", "upgrade"})
_REQUIRED = {"id": int, "method": str, "path": str}


class ProtocolViolation(ValueError):
    """The peer sent something this protocol does not allow."""


def parse_request(payload: bytes) -> dict[str, Any]:
    """A request head frame -> its JSON object, checked.

    Raises:
        ProtocolViolation: not a JSON object, or a field is missing or of
            the wrong type.
    """
    try:
        message = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolViolation(f"a head frame is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolViolation("a head frame is not a JSON object")
    for name, kind in _REQUIRED.items():
        if not isinstance(message.get(name), kind):
            raise ProtocolViolation(f"the request has no valid {name!r}")
    headers = message.get("headers", [])
    if type(headers) is not list:
        raise ProtocolViolation("'headers' is not a list")
    for pair in headers:
        if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str \
                or type(pair[1]) is not str:
            raise ProtocolViolation(f"a header is not [name, value]: {pair!r}")
    if "body" in message and not isinstance(message["body"], str):
        raise ProtocolViolation("'body' is not a base64 string")
    return message


def build_environ(message: dict[str, Any], body: bytes, base: dict[str, Any]) -> dict[str, Any]:
    """The WSGI environ for a request message and its body."""
    environ = base.copy()
    path = message["path"]
    query = message.get("query", "") or ""
    environ["REQUEST_METHOD"] = message["method"]
    environ["PATH_INFO"] = unquote_to_bytes(path).decode("latin-1") if "%" in path else path
    environ["QUERY_STRING"] = query
    environ["RAW_URI"] = environ["REQUEST_URI"] = path + ("?" + query if query else "")
    environ["SERVER_PROTOCOL"] = "HTTP/1.0" if message.get("version") == "1.0" else "HTTP/1.1"
    environ["wsgi.url_scheme"] = "https" if message.get("scheme") == "https" else "http"
    if environ["wsgi.url_scheme"] == "https":
        environ["HTTPS"] = "on"
    client = message.get("client")
    if isinstance(client, list) and len(client) == 2:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(client[0]), str(client[1])
    else:
        environ["REMOTE_ADDR"] = ""
    server = message.get("server")
    if isinstance(server, list) and len(server) == 2:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = str(server[0]), str(server[1])
    else:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = "localhost", "80"
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in message.get("headers", ()):
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
            continue
        if name == "content-length" or "_" in name:
            continue  # the length is the body's; "_" could spoof a "-" header
        key = "HTTP_" + name.upper().replace("-", "_")
        if key in environ:
            environ[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
        else:
            environ[key] = value
    return environ


#: Encoded reply heads (without their id), by value: an app sends the same
#: few again and again.  Cleared when full.
_HEADS: dict[tuple[Any, ...], bytes] = {}
_HEADS_MAX = 512


def encode_reply(message_id: int, status: str, headers: list[tuple[str, str]],
                 body: bytes | None = None, stream: bool = False) -> bytes:
    """The head frame of a reply (and its body frame, if ``body``).

    Args:
        status: the WSGI status, ``"200 OK"``.
        body: the whole body (None or b"" for none).
        stream: body frames will follow, ending with an empty one.
    """
    follows = bool(body) and not stream
    try:
        key: tuple[Any, ...] | None = (status, tuple(headers), stream, follows)
        tail = _HEADS.get(key)  # type: ignore[arg-type]
    except TypeError:  # an unhashable header (a list): encode without caching
        key, tail = None, None
    if tail is None:
        code, _, reason = status.partition(" ")
        head: dict[str, Any] = {"status": int(code), "reason": reason,
                                "headers": [[name, value] for name, value in headers
                                            if name.lower() not in _HOP_BY_HOP]}
        if stream:
            head["stream"] = True
        elif follows:
            head["body_follows"] = True
        tail = json.dumps(head, separators=(",", ":")).encode("utf-8")[1:]
        if key is not None:
            if len(_HEADS) >= _HEADS_MAX:
                _HEADS.clear()
            _HEADS[key] = tail
    data = frame(b'{"id":%d,%s' % (message_id, tail))
    if follows:
        assert body is not None
        data += frame(body)
    return data


class _Step(NamedTuple):
    """What one worker step produced, for the loop thread to write."""

    data: bytes  # frames, ready to write
    done: bool  # the reply is complete
    abort: bool = False  # failed mid-stream: drop the connection


class _Call:
    """One request's trip through the app, run step by step in the worker pool."""

    def __init__(self, service: SplitService, message: dict[str, Any], body: bytes) -> None:
        self.service = service
        self.message = message
        self.body = body
        self.id: int = message["id"]
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.length: int | None = None
        self.out: list[bytes] = []  # write() output
        self.result: Iterable[bytes] | None = None
        self.iterator: Iterator[bytes] | None = None
        self.streaming = False

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None and self.streaming:
            raise exc_info[1].with_traceback(exc_info[2])
        if not isinstance(status, str) or not status[:3].isdigit() or status[3:4] != " ":
            raise ValueError(f"invalid WSGI status {status!r}")
        self.status = status
        self.headers = list(headers)
        self.length = None
        for name, value in self.headers:
            if name.lower() == "content-length" and value.strip().isdigit():
                self.length = int(value)
        return self.write

    def write(self, data: bytes) -> None:
        self.out.append(data)

    # -- the steps (worker threads) ------------------------------------------

    def first(self) -> _Step:
        environ = build_environ(self.message, self.body, self.service.base)
        try:
            result = self.result = self.service.app(environ, self.start_response)
            if isinstance(result, (list, tuple)):
                return self._whole(b"".join([*self.out, *result]))
            self.iterator = iter(result)
            chunks, done = self._collect(first=True)
        except Exception as exc:  # noqa: BLE001 - the app's bug is a 500 reply, as in-process
            self._close_result()
            return self._failed(exc)
        if done:
            return self._whole(b"".join(chunks))
        return self._start_stream(chunks)

    def more(self) -> _Step:
        try:
            chunks, done = self._collect(first=False)
        except Exception as exc:  # the app's bug ends its reply only
            log.error("request %d: the app failed while streaming", self.id, exc_info=exc)
            self._close_result()
            return _Step(b"", True, abort=True)
        data = b"".join(frame(chunk) for chunk in chunks if chunk)
        if done:
            self._close_result()
            data += frame(b"")
        return _Step(data, done)

    def _collect(self, first: bool) -> tuple[list[bytes], bool]:
        """Read the iterator until a batch is worth sending; (chunks, exhausted)."""
        assert self.iterator is not None
        chunks, size = ([*self.out] if first else []), 0
        self.out.clear()
        size = sum(len(chunk) for chunk in chunks)
        want = STREAM_BATCH
        if first and self.length is not None and self.length <= WHOLE_LIMIT:
            want = self.length + 1  # small and known: read it all, send it whole
        for chunk in self.iterator:
            if not isinstance(chunk, bytes):
                raise TypeError(f"the app yielded {type(chunk).__name__}, not bytes")
            if self.out:
                chunks.extend(self.out)
                size += sum(len(c) for c in self.out)
                self.out.clear()
            if not chunk:
                continue
            chunks.append(chunk)
            size += len(chunk)
            # Unknown length: send each piece as it comes (server-sent
            # events must not wait for a batch to fill).
            if self.length is None or size >= want:
                return chunks, False
        return chunks, True

    def _whole(self, body: bytes) -> _Step:
        self._close_result()
        if self.status is None:
            return self._failed(RuntimeError("the app never called start_response"))
        if len(body) > WHOLE_LIMIT:  # too big for one frame: stream it
            pieces = [body[i:i + STREAM_BATCH] for i in range(0, len(body), STREAM_BATCH)]
            data = encode_reply(self.id, self.status, self.headers, stream=True)
            return _Step(data + b"".join(frame(p) for p in pieces) + frame(b""), True)
        return _Step(encode_reply(self.id, self.status, self.headers, body), True)

    def _start_stream(self, chunks: list[bytes]) -> _Step:
        if self.status is None:
            self._close_result()
            return self._failed(RuntimeError("the app sent a body before start_response"))
        self.streaming = True
        data = encode_reply(self.id, self.status, self.headers, stream=True)
        return _Step(data + b"".join(frame(chunk) for chunk in chunks if chunk), False)

    def _failed(self, exc: BaseException) -> _Step:
        log.error("request %d (%s %s): the app failed", self.id, self.message.get("method"),
                  self.message.get("path"), exc_info=exc)
        page = b"Internal Server Error"
        return _Step(encode_reply(self.id, "500 Internal Server Error",
                                  [("Content-Type", "text/plain")], page), True)

    def _close_result(self) -> None:
        close = getattr(self.result, "close", None)
        self.result = None
        if close is not None:
            try:
                close()
            except Exception as exc:
                log.error("request %d: the app's close() failed", self.id, exc_info=exc)


class SplitService:
    """What the framework process shares between its connections; the protocol factory.

    Args:
        app: the WSGI app (an :class:`~ionet.web.App`, or any other).
        max_frame: the largest frame accepted (request heads and bodies).
        multiprocess: ``wsgi.multiprocess`` (True with ``--workers`` > 1).
    """

    def __init__(self, app: WSGIApp, *, max_frame: int = DEFAULT_MAX_FRAME,
                 multiprocess: bool = False) -> None:
        self.app = app
        self.max_frame = max_frame
        self.base: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": multiprocess,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
            "wsgi.input_terminated": True,
            "SCRIPT_NAME": "",
            "SERVER_SOFTWARE": f"ionet-web/{__version__}",
        }

    def __call__(self) -> SplitProtocol:
        return SplitProtocol(self)


class SplitProtocol(Protocol):
    """One connection from the HTTP server: requests in, replies out, in order."""

    transport: Transport

    def __init__(self, service: SplitService) -> None:
        self.service = service
        self.framer = LengthPrefixFramer(service.max_frame)
        self.queue: collections.deque[_Call] = collections.deque()
        self.active: _Call | None = None
        self.closed = False
        self._head: dict[str, Any] | None = None  # waiting for its body frame
        self._write_paused = False
        self._waiting_drain = False
        self._stopping = False

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.framer.append(data)
        try:
            while (payload := self.framer.next_frame()) is not None:
                self._frame(payload)
        except (ProtocolViolation, FrameTooLarge) as exc:
            log.warning("%s: %s; closing", self._peer(), exc)
            self._close(abort=True)
            return
        if len(self.queue) >= MAX_QUEUED and self.transport.is_reading():
            self.transport.pause_reading()
        self._next()

    def _frame(self, payload: bytes) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self.queue.append(_Call(self.service, head, payload))
            return
        message = parse_request(payload)
        if message.get("body_follows"):
            self._head = message
            return
        body = b""
        if "body" in message:
            try:
                body = base64.b64decode(message["body"], validate=True)
            except (binascii.Error, ValueError):
                raise ProtocolViolation("'body' is not valid base64") from None
        self.queue.append(_Call(self.service, message, body))

    def eof_received(self) -> bool | None:
        self._stopping = True
        if self.active is not None or self.queue:
            return True  # finish the replies, then close
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.queue.clear()
        active, self.active = self.active, None
        if active is not None and active.streaming:
            # Its generator may hold resources; close it off the loop thread.
            self.transport.run_in_worker(active._close_result, lambda outcome: None)

    def pause_writing(self) -> None:
        self._write_paused = True
        super().pause_writing()

    def resume_writing(self) -> None:
        self._write_paused = False
        super().resume_writing()
        if self._waiting_drain and self.active is not None:
            self._waiting_drain = False
            self._step(self.active.more)

    def server_stopping(self) -> None:
        self._stopping = True
        if self.active is None and not self.queue:
            self._close()

    # -- running the app ----------------------------------------------------------

    def _next(self) -> None:
        if self.active is not None or self.closed:
            return
        if not self.queue:
            if self._stopping:
                self._close()
            return
        call = self.active = self.queue.popleft()
        if len(self.queue) < MAX_QUEUED and not self.transport.is_reading() \
                and not self._write_paused:
            self.transport.resume_reading()
        self._step(call.first)

    def _step(self, step: Callable[[], _Step]) -> None:
        self.transport.run_in_worker(step, self._deliver)

    def _deliver(self, outcome: Outcome[_Step]) -> None:
        if self.closed:
            return
        call = self.active
        assert call is not None
        try:
            result = outcome.unwrap()
        except Exception as exc:  # a bug here, not in the app (that is caught in the step)
            log.error("request %d: the reply failed", call.id, exc_info=exc)
            self._close(abort=True)
            return
        if result.data:
            self.transport.write(result.data)
        if result.abort:
            self._close(abort=True)
        elif result.done:
            self.active = None
            self._next()
        elif self._write_paused:
            self._waiting_drain = True  # resume_writing asks for the next step
        else:
            self._step(call.more)

    def _close(self, abort: bool = False) -> None:
        if not self.closed:
            self.closed = True
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def _peer(self) -> str:
        peer = self.transport.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "-")
