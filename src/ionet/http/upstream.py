"""Forward requests to a framework process: the HTTP side of HTTPServer 3.0's split.

``ionet http serve --upstream 127.0.0.1:9000`` parses HTTP as usual, and
instead of running an app in-process sends each request to the framework
process (``ionet web serve PROJECT``) as framed JSON, then turns the reply
back into an HTTP response.  The message format is documented in
``ionet/web/split.py``; this module speaks it without importing it (the
HTTP server imports nothing from the framework, and the framework nothing
from the server), so the encoding is repeated here in a few lines.

Theory of operation: two pools
------------------------------
A framework connection carries one exchange at a time, so concurrency
comes from a pool of persistent connections.  How to share a pool depends
on the engine's model:

* **Loop engines** (select, poll, epoll, asyncio, uvloop): every client
  connection of the process lives on one thread, so one pool per process
  (:class:`LoopPool`) serves them all with no lock.  Its connections are
  protocol objects opened with ``transport.open_connection`` on the same
  loop: a request is written to an idle framework connection and the reply
  arrives as ``data_received`` on that connection, which answers the client
  connection directly.  No worker thread is held while the framework works,
  so a thousand slow requests cost a thousand small objects, not a thousand
  threads.  With no idle connection, a request waits in a queue (with its
  deadline) while a new connection opens, up to ``pool_size``.
* **Blocking engines** (iterative, thread, fork, gevent): each client
  connection has a thread of control of its own (a thread, a child process,
  a greenlet), so the exchange is a plain blocking one, made right in that
  thread: take a socket from a per-process list guarded by a lock (held
  only to pop or push, never across IO), send, read the reply with a
  deadline, put the socket back (:class:`BlockingPool`).  Under the fork
  engine each child process has its own list, so each client connection
  gets one framework connection for its lifetime.  Under gevent the
  sockets are gevent's, and the wait yields to the hub.  (Going through
  ``run_in_worker`` instead would gain nothing on these engines, where it
  runs in place, and under gevent it would move sockets between real
  threads, each with its own hub.)

Failures, answered at once
--------------------------
* The framework is down (connection refused): **502** as soon as the
  connect fails; no retry loop, no hang.  The next request tries again, so
  service comes back by itself when the framework does.
* The framework is slow: **504** when no reply came within ``timeout``
  (queueing and connecting included); the connection that owed the reply is
  closed, since its late reply would otherwise answer the next request.
* The framework dies mid-exchange (connection lost before the reply):
  **502**; once the head of a streamed reply went out, the client connection
  is aborted instead (a truncated response, never a wrong one).
* A stale pooled connection (the framework restarted while it sat idle):
  an idempotent request (GET, HEAD, PUT, DELETE, OPTIONS) that got no byte
  back on a *reused* connection is sent once more on a fresh one, as nginx
  does; a POST is never sent twice.
* A malformed reply (bad JSON, a header with CR/LF, a wrong ``id``): 502 and
  the connection is closed.

Per request the loop path costs two JSON codings and two small writes; the
codings of repeated header lists and reply heads are cached by value (as the
WSGI gateway caches encoded headers): 8.4k -> 9.8k hello requests/s in
``bench/web.py``.

(One module of ~850 lines, over the house's ~700: the two pools share the
codec, ``Reply`` and ``Exchange``, and reading them side by side is the point.)
"""

from __future__ import annotations

import base64
import binascii
import collections
import itertools
import json
import logging
import os
import re
import select
import socket
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from ionet.core.errors import FrameTooLarge
from ionet.core.framing import LengthPrefixFramer, frame
from ionet.core.protocol import Protocol, TimerHandle, Transport
from ionet.http.status import REASONS, STATUS_LINES, status_line

if TYPE_CHECKING:
    from ionet.http.parser import Request
    from ionet.http.protocol import HttpProtocol

__all__ = ["BlockingPool", "Exchange", "LoopPool", "Reply", "UpstreamConnection", "UpstreamError",
           "UpstreamHandler", "encode_request", "parse_upstream"]

log = logging.getLogger("ionet.http.upstream")

#: Engines that serve every connection of a process on one thread.
LOOP_ENGINES = frozenset({"select", "poll", "epoll", "asyncio", "uvloop"})
#: RFC 9110 section 9.2.2: safe to send twice.
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"})
#: Largest reply frame accepted (a whole body; bigger replies are streamed).
DEFAULT_MAX_FRAME = 16 * 1024 * 1024 + 64 * 1024

#: Request headers that belong to this hop, not to the framework.
_DROP_REQUEST = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                           b"transfer-encoding", b"upgrade", b"content-length", b"expect",
                           b"proxy-authorization"})
_DROP_REPLY = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailer", "transfer-encoding", "upgrade"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
#: The real ``select.poll``, taken before gevent may patch it: a zero-timeout
#: liveness check must not yield.
_REAL_POLL = select.poll

#: Bumped in every child process after a fork: pools made before it (by the
#: parent) are not the child's.  (Cheaper than comparing os.getpid() per request.)
_forks = [0]


def _forked() -> None:
    _forks[0] += 1


os.register_at_fork(after_in_child=_forked)

# Reply body modes.
_NO_BODY, _INLINE, _FOLLOWS, _STREAM = 0, 1, 2, 3


class UpstreamError(ValueError):
    """The framework sent something the protocol does not allow."""


class Reply:
    """A reply head, checked and encoded for ``HttpProtocol.respond``/``start``."""

    __slots__ = ("body", "date", "headers", "length", "mode", "server", "status", "status_line")

    def __init__(self, payload: bytes, expected_id: int) -> None:
        try:
            head = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UpstreamError(f"a reply head is not JSON: {exc}") from None
        if not isinstance(head, dict) or head.get("id") != expected_id:
            raise UpstreamError(f"a reply for another request (id {expected_id} expected)")
        status, reason = head.get("status"), head.get("reason", "")
        if type(status) is not int or not 200 <= status <= 999 or not isinstance(reason, str):
            raise UpstreamError(f"invalid status {status!r} {reason!r}")
        self.status = status
        try:
            if reason and REASONS.get(status) != reason.encode("latin-1"):
                self.status_line = status_line(status, reason)
            else:
                self.status_line = STATUS_LINES.get(status) or status_line(status)
        except (ValueError, UnicodeEncodeError):
            raise UpstreamError(f"invalid reason phrase {reason!r}") from None
        self.length: int | None = None
        self.date = self.server = True
        lines = []
        headers = head.get("headers", [])
        if not isinstance(headers, list):
            raise UpstreamError("'headers' is not a list")
        for pair in headers:
            if (not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str)
                    or not isinstance(pair[1], str)):
                raise UpstreamError(f"a header is not [name, value]: {pair!r}")
            name, value = pair
            if not _TOKEN.match(name) or _BAD_VALUE.search(value):
                raise UpstreamError(f"unsafe header {name!r}")  # no response splitting
            lower = name.lower()
            if lower == "content-length":
                if not value.strip().isdigit():
                    raise UpstreamError(f"invalid Content-Length {value!r}")
                self.length = int(value)
                continue
            if lower in _DROP_REPLY:
                continue
            if lower == "date":
                self.date = False
            elif lower == "server":
                self.server = False
            lines.append(f"{name}: {value}\r\n")
        try:
            self.headers = "".join(lines).encode("latin-1")
        except UnicodeEncodeError:
            raise UpstreamError("a header value is not latin-1") from None
        self.body = b""
        if head.get("stream"):
            self.mode = _STREAM
        elif head.get("body_follows"):
            self.mode = _FOLLOWS
        elif "body" in head:
            self.mode = _INLINE
            try:
                self.body = base64.b64decode(head["body"], validate=True)
            except (binascii.Error, ValueError, TypeError):
                raise UpstreamError("'body' is not base64") from None
        else:
            self.mode = _NO_BODY

    def respond(self, conn: HttpProtocol, request: Request, body: bytes) -> None:
        """Send the whole response to the client."""
        length = self.length if request.method == b"HEAD" and not body else None
        conn.respond(request, self.status, self.headers, body, length=length,
                     status_line=self.status_line, date=self.date, server=self.server)

    def start(self, conn: HttpProtocol, request: Request) -> None:
        """Begin a streamed response."""
        conn.start(request, self.status, self.headers, self.length,
                   status_line=self.status_line, date=self.date, server=self.server)


#: Encoded header lists, by value (wrk, browsers and health checks send the
#: same few again and again); cleared when full.
_HEADERS_JSON: dict[tuple[tuple[bytes, bytes], ...], str] = {}
#: Checked reply heads by their text after the id (the framework sends the
#: same few heads again and again); cleared when full.
_REPLIES: dict[bytes, Reply] = {}
_CACHE_MAX = 512
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def parse_reply(payload: bytes, expected_id: int) -> Reply:
    """The :class:`Reply` in a head frame; a cached one when the head (its id
    aside) was seen before.

    Raises:
        UpstreamError: malformed, or for another request.
    """
    prefix = b'{"id":%d,' % expected_id
    if not payload.startswith(prefix):
        return Reply(payload, expected_id)
    key = payload[len(prefix):]
    reply = _REPLIES.get(key)
    if reply is None:
        reply = Reply(payload, expected_id)
        if reply.mode != _INLINE and len(key) < 4096:
            if len(_REPLIES) >= _CACHE_MAX:
                _REPLIES.clear()  # varying heads (cookies): start over
            _REPLIES[key] = reply
    return reply


def encode_request(request: Request, conn: HttpProtocol, message_id: int) -> bytes:
    """The frames for ``request``: a JSON head, then its body frame if any."""
    base = conn.environ_base
    where = base.get("ionet.upstream") if base is not None else None
    if where is None:
        where = _dumps(_connection_facts(conn))[1:]  # '"scheme":...}'
        if conn.environ_base is None:
            conn.environ_base = {}
        conn.environ_base["ionet.upstream"] = where
    key = tuple(request.headers)
    headers = _HEADERS_JSON.get(key)
    if headers is None:
        headers = _dumps([[name.decode("latin-1"), value.decode("latin-1")]
                          for name, value in key if name not in _DROP_REQUEST])
        if len(_HEADERS_JSON) >= _CACHE_MAX:
            _HEADERS_JSON.clear()
        _HEADERS_JSON[key] = headers
    body = request.body
    follows = '"body_follows":true,' if body else ""
    head = (f'{{"id":{message_id},"method":{_dumps(request.method.decode("latin-1"))},'
            f'"path":{_dumps(request.path.decode("latin-1"))},'
            f'"query":{_dumps(request.query.decode("latin-1"))},'
            f'"version":"{request.version}","headers":{headers},{follows}{where}').encode()
    if body:
        return frame(head) + frame(body)
    return frame(head)


def _connection_facts(conn: HttpProtocol) -> dict[str, Any]:
    transport = conn.transport
    facts: dict[str, Any] = {
        "scheme": "https" if transport.get_extra_info("ssl_object") is not None else "http"}
    for key, name in (("client", "peername"), ("server", "sockname")):
        address = transport.get_extra_info(name)
        if isinstance(address, tuple) and len(address) >= 2:
            facts[key] = [str(address[0]), int(address[1])]
    return facts


class UpstreamHandler:
    """A handler that forwards every request to a framework process.

    Args:
        host / port: where ``ionet web serve`` listens.
        pool_size: framework connections per process (loop engines);
            requests beyond wait for one.
        connect_timeout: seconds to open a framework connection.
        timeout: seconds from a request's arrival to its reply's head (and
            between the pieces of a streamed reply): then 504.
        max_frame: the largest reply frame accepted.
        mode: ``"auto"`` (by the engine), ``"loop"`` or ``"blocking"``.
    """

    allow = b"GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"

    def __init__(self, host: str, port: int, *, pool_size: int = 64,
                 connect_timeout: float = 5.0, timeout: float = 30.0,
                 max_frame: int = DEFAULT_MAX_FRAME, mode: str = "auto") -> None:
        if pool_size < 1:
            raise ValueError(f"the pool needs at least one connection, not {pool_size}")
        if connect_timeout <= 0 or timeout <= 0:
            raise ValueError("upstream timeouts must be positive")
        if mode not in ("auto", "loop", "blocking"):
            raise ValueError(f"mode is auto, loop or blocking, not {mode!r}")
        self.host = host
        self.port = port
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.max_frame = max_frame
        self.mode = mode
        self._ids = itertools.count(1)
        self._generation = _forks[0]
        self._loop_pool: LoopPool | None = None
        self._blocking_pool: BlockingPool | None = None
        self.healthy = True

    def handle(self, request: Request, conn: HttpProtocol) -> None:
        message_id = next(self._ids)
        exchange = Exchange(self, request, conn, encode_request(request, conn, message_id),
                            message_id)
        mode = self.mode
        if mode == "auto":
            mode = "loop" if conn.transport.get_extra_info("engine") in LOOP_ENGINES \
                else "blocking"
        if mode == "loop":
            self.loop_pool().submit(exchange)
        else:
            self.blocking_pool().run(exchange)

    def loop_pool(self) -> LoopPool:
        if self._loop_pool is None or self._generation != _forks[0]:
            self._generation = _forks[0]  # a forked worker starts its own pool
            self._loop_pool = LoopPool(self)
        return self._loop_pool

    def blocking_pool(self) -> BlockingPool:
        pool = self._blocking_pool
        if pool is None or pool.generation != _forks[0]:  # a forked child starts its own
            pool = self._blocking_pool = BlockingPool(self)
        return pool

    def report(self, ok: bool, problem: str = "") -> None:
        """Log the framework going down or coming back, once per change."""
        if ok and not self.healthy:
            log.warning("upstream %s:%d is back", self.host, self.port)
        elif not ok and self.healthy:
            log.warning("upstream %s:%d failed: %s", self.host, self.port, problem)
        self.healthy = ok


# Exchange states.
_NEW, _WAITING, _SENT, _STREAMING, _DONE = range(5)


class Exchange:
    """One request's trip to the framework and back."""

    __slots__ = (
        "cancelled",
        "conn",
        "handler",
        "id",
        "idempotent",
        "payload",
        "request",
        "retried",
        "reused",
        "state",
        "timer",
        "upstream",
    )

    def __init__(self, handler: UpstreamHandler, request: Request, conn: HttpProtocol,
                 payload: bytes, message_id: int) -> None:
        self.handler = handler
        self.request = request
        self.conn = conn
        self.payload = payload
        self.id = message_id
        self.idempotent = request.method in IDEMPOTENT
        self.state = _NEW
        self.timer: TimerHandle | None = None
        self.upstream: UpstreamConnection | None = None
        self.cancelled = False  # the client went away
        self.retried = False
        self.reused = False

    def arm(self, seconds: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.conn.transport.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def client_lost(self) -> None:
        """The client connection closed while we worked for it."""
        self.cancelled = True
        if self.state in (_NEW, _WAITING):
            self.state = _DONE
            self._disarm()
        # Sent: the framework's reply is still read (and dropped), so the
        # connection stays in step; the timer still guards it.

    def _timed_out(self) -> None:
        self.timer = None
        state = self.state
        if state == _DONE:
            return
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.abandon()  # its late reply must not answer someone else
        if state == _STREAMING:
            self.state = _DONE
            if not self.cancelled:
                log.warning("upstream: %s stalled mid-reply; aborting", self.request)
                self.conn.abort()
            return
        self.handler.report(False, "no reply in time")
        self.fail(504)

    def fail(self, status: int) -> None:
        """Answer the client with an error page (502, 504)."""
        if self.state == _DONE:
            return
        self.state = _DONE
        self._disarm()
        self.upstream = None
        if not self.cancelled and not self.conn.closed:
            self.conn.on_lost = None
            self.conn.respond_error(self.request, status)

    def complete(self, reply: Reply, body: bytes) -> None:
        self.state = _DONE
        self._disarm()
        self.upstream = None
        self.handler.report(True)
        if not self.cancelled and not self.conn.closed:
            self.conn.on_lost = None
            reply.respond(self.conn, self.request, body)

    def start_stream(self, reply: Reply) -> None:
        self.state = _STREAMING
        self.handler.report(True)
        if not self.cancelled and not self.conn.closed:
            reply.start(self.conn, self.request)

    def finish_stream(self) -> None:
        self.state = _DONE
        self._disarm()
        self.upstream = None
        if not self.cancelled and not self.conn.closed:
            self.conn.on_lost = None
            self.conn.finish()


class UpstreamConnection(Protocol):
    """One persistent connection to the framework, on the loop (LoopPool's)."""

    transport: Transport

    def __init__(self, pool: LoopPool, attempt: int) -> None:
        self.pool = pool
        self.attempt = attempt
        self.framer = LengthPrefixFramer(pool.handler.max_frame)
        self.exchange: Exchange | None = None
        self.reply: Reply | None = None
        self.received = False  # a byte of the current reply arrived
        self.uses = 0
        self.closed = False
        self.stopping = False

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.pool.connected(self)

    def send(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.reply = None
        self.received = False
        exchange.upstream = self
        exchange.state = _SENT
        exchange.reused = self.uses > 0
        self.uses += 1
        self.transport.write(exchange.payload)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.received = True
        self.framer.append(data)
        try:
            while not self.closed and (payload := self.framer.next_frame()) is not None:
                self._frame(payload)
        except (UpstreamError, FrameTooLarge) as exc:
            log.warning("upstream %s:%d: %s; closing the connection",
                        self.pool.handler.host, self.pool.handler.port, exc)
            exchange, self.exchange = self.exchange, None
            self.abandon()
            if exchange is not None:
                if exchange.state == _STREAMING:
                    exchange.state = _DONE
                    if not exchange.cancelled:
                        exchange.conn.abort()
                else:
                    exchange.fail(502)

    def _frame(self, payload: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            raise UpstreamError("a frame arrived with no request pending")
        reply = self.reply
        if reply is None:
            reply = parse_reply(payload, exchange.id)
            exchange.arm(self.pool.handler.timeout)
            if reply.mode == _FOLLOWS:
                self.reply = reply
            elif reply.mode == _STREAM:
                self.reply = reply
                exchange.start_stream(reply)
                self._watch_client(exchange)
            else:
                self._done()
                exchange.complete(reply, reply.body)
        elif reply.mode == _FOLLOWS:
            self._done()
            exchange.complete(reply, payload)
        elif payload:
            exchange.arm(self.pool.handler.timeout)
            if not exchange.cancelled and not exchange.conn.closed:
                exchange.conn.send(payload)
                self._watch_client(exchange)
        else:
            self._done()
            exchange.finish_stream()

    def _watch_client(self, exchange: Exchange) -> None:
        """Backpressure: stop reading the framework while the client is slow."""
        conn = exchange.conn
        if conn.write_paused and not conn.closed and self.transport.is_reading():
            self.transport.pause_reading()
            conn.on_drain = self._client_drained

    def _client_drained(self) -> None:
        if not self.closed and not self.transport.is_reading():
            self.transport.resume_reading()

    def _done(self) -> None:
        """The reply is in: back to the pool (or closed, if we are stopping)."""
        self.exchange = None
        self.reply = None
        if not self.transport.is_reading():
            self.transport.resume_reading()
        if self.stopping:
            self.abandon()
        else:
            self.pool.release(self)

    def abandon(self) -> None:
        """Drop this connection (its exchange, if any, is the caller's business)."""
        self.exchange = None
        if not self.closed:
            self.closed = True
            self.transport.abort()
            self.pool.lost(self)

    def eof_received(self) -> bool | None:
        return None  # the framework closed: connection_lost follows

    def connection_lost(self, exc: BaseException | None) -> None:
        was_closed, self.closed = self.closed, True
        if not was_closed:
            self.pool.lost(self)
        exchange, self.exchange = self.exchange, None
        if exchange is None or exchange.state == _DONE:
            return
        if exchange.state == _STREAMING:
            exchange.state = _DONE
            exchange._disarm()
            if not exchange.cancelled:
                exchange.conn.abort()
            return
        if (not self.received and exchange.reused and exchange.idempotent
                and not exchange.retried and not exchange.cancelled):
            exchange.retried = True  # a stale pooled connection: try a fresh one
            exchange.upstream = None
            self.pool.submit(exchange, fresh=True)
            return
        self.pool.handler.report(False, f"connection lost ({exc or 'closed'})")
        exchange.fail(502)

    def server_stopping(self) -> None:
        self.stopping = True
        if self.exchange is None:
            self.abandon()


class LoopPool:
    """Framework connections shared by every client connection of a loop-engine process.

    Only the loop thread touches it, so it needs no lock.
    """

    def __init__(self, handler: UpstreamHandler) -> None:
        self.handler = handler
        self.idle: list[UpstreamConnection] = []
        self.busy: set[UpstreamConnection] = set()
        #: Connections being opened: attempt number -> give-up time.  (If the
        #: client connection that opened one is gone, its failure is not
        #: reported to us; the deadline lets us forget it.)
        self.opening: dict[int, float] = {}
        self.waiting: collections.deque[Exchange] = collections.deque()
        self._attempts = itertools.count(1)
        self._filling = False

    def submit(self, exchange: Exchange, fresh: bool = False) -> None:
        """Send ``exchange`` on an idle connection, or queue it for the next one."""
        if exchange.state == _NEW:
            exchange.conn.on_lost = exchange.client_lost
            exchange.arm(self.handler.timeout)
        while self.idle and not fresh:
            upstream = self.idle.pop()  # the most recently used: likely alive
            if not upstream.closed:
                self.busy.add(upstream)
                upstream.send(exchange)
                return
        exchange.state = _WAITING
        if fresh:
            self.waiting.appendleft(exchange)
        else:
            self.waiting.append(exchange)
        self._open_more(exchange.conn.transport)

    def _open_more(self, owner: Transport) -> None:
        """Open connections for waiting requests that no opening one will serve."""
        if self._filling:
            return  # the loop below is already running further up the stack
        self._filling = True
        try:
            now = time.monotonic()
            for attempt, give_up in list(self.opening.items()):
                if give_up < now:
                    del self.opening[attempt]
            handler = self.handler
            room = handler.pool_size - len(self.idle) - len(self.busy) - len(self.opening)
            wanted = min(room, self._live_waiting(limit=len(self.opening) + room)
                         - len(self.opening))
            for _ in range(wanted):
                attempt = next(self._attempts)
                self.opening[attempt] = now + handler.connect_timeout + 1.0
                try:
                    owner.open_connection(partial(UpstreamConnection, self, attempt),
                                          handler.host, handler.port,
                                          timeout=handler.connect_timeout,
                                          on_error=partial(self._failed, attempt))
                except OSError as exc:
                    self._failed(attempt, exc)
        finally:
            self._filling = False

    def _live_waiting(self, limit: int) -> int:
        """How many queued requests still wait (counting stops at ``limit``)."""
        while self.waiting and self.waiting[0].state != _WAITING:
            self.waiting.popleft()
        count = 0
        for exchange in self.waiting:
            if count >= limit:
                break
            if exchange.state == _WAITING:
                count += 1
        return count

    def _failed(self, attempt: int, exc: BaseException) -> None:
        """A connection could not be opened: the first waiting request fails now."""
        self.opening.pop(attempt, None)
        timed_out = isinstance(exc, (TimeoutError, socket.timeout))
        self.handler.report(False, f"cannot connect: {exc}")
        while self.waiting:
            exchange = self.waiting.popleft()
            if exchange.state == _WAITING:
                exchange.fail(504 if timed_out else 502)
                break

    def connected(self, upstream: UpstreamConnection) -> None:
        self.opening.pop(upstream.attempt, None)
        self.release(upstream)

    def release(self, upstream: UpstreamConnection) -> None:
        """A connection is free: give it to the next waiting request, or keep it idle."""
        self.busy.discard(upstream)
        if upstream.closed:
            return
        while self.waiting:
            exchange = self.waiting.popleft()
            if exchange.state == _WAITING:
                self.busy.add(upstream)
                upstream.send(exchange)
                return
        self.idle.append(upstream)

    def lost(self, upstream: UpstreamConnection) -> None:
        self.busy.discard(upstream)
        if upstream in self.idle:
            self.idle.remove(upstream)
        for exchange in reversed(self.waiting):  # a request still waiting opens the next
            if exchange.state == _WAITING:
                self._open_more(exchange.conn.transport)
                break


class BlockingPool:
    """Framework sockets of one process, for engines with a thread of control per client.

    The lock guards only the list of idle sockets; all IO happens outside it.
    """

    def __init__(self, handler: UpstreamHandler) -> None:
        self.handler = handler
        self.generation = _forks[0]
        self._lock = threading.Lock()
        self._idle: list[socket.socket] = []

    def _take(self, fresh: bool = False) -> tuple[socket.socket, bool]:
        """An idle socket that still looks alive, else a new one.  (socket, reused).

        ``fresh``: skip the idle ones (the retry after a stale one: when the
        framework restarts, every idle socket is stale, and one that still
        looks alive may be closing as we send on it).
        """
        while not fresh:
            with self._lock:
                sock = self._idle.pop() if self._idle else None
            if sock is None:
                break
            if _looks_alive(sock):
                return sock, True
            sock.close()
        handler = self.handler
        sock = socket.create_connection((handler.host, handler.port),
                                        timeout=handler.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, False

    def _give_back(self, sock: socket.socket) -> None:
        with self._lock:
            if len(self._idle) < self.handler.pool_size:
                self._idle.append(sock)
                return
        sock.close()

    def run(self, exchange: Exchange) -> None:
        """Make the exchange now, in the calling thread of control, and answer the client."""
        handler = self.handler
        deadline = time.monotonic() + handler.timeout
        for attempt in range(2):
            try:
                sock, reused = self._take(fresh=attempt > 0)
            except OSError as exc:
                handler.report(False, f"cannot connect: {exc}")
                exchange.fail(504 if isinstance(exc, socket.timeout) else 502)
                return
            reader = _FrameReader(sock, handler.max_frame)
            try:
                sock.sendall(exchange.payload)
                reply = parse_reply(reader.read(deadline), exchange.id)
            except (OSError, UpstreamError, FrameTooLarge, EOFError) as exc:
                sock.close()
                if (reused and not reader.received and exchange.idempotent
                        and not isinstance(exc, (socket.timeout, UpstreamError))):
                    continue  # a stale pooled socket: once more on a fresh one
                handler.report(False, str(exc) or type(exc).__name__)
                exchange.fail(504 if isinstance(exc, socket.timeout) else 502)
                return
            self._answer(exchange, sock, reader, reply, deadline)
            return

    def _answer(self, exchange: Exchange, sock: socket.socket, reader: _FrameReader,
                reply: Reply, deadline: float) -> None:
        handler = self.handler
        try:
            if reply.mode == _FOLLOWS:
                exchange.complete(reply, reader.read(deadline))
            elif reply.mode != _STREAM:
                exchange.complete(reply, reply.body)
            else:
                exchange.start_stream(reply)
                conn = exchange.conn
                while True:
                    piece = reader.read(time.monotonic() + handler.timeout)
                    if not piece:
                        break
                    conn.send(piece)
                exchange.finish_stream()
        except (OSError, FrameTooLarge, EOFError) as exc:
            sock.close()
            if exchange.state == _STREAMING:
                exchange.state = _DONE
                exchange.conn.abort()
            else:
                exchange.fail(504 if isinstance(exc, socket.timeout) else 502)
            return
        if reader.pending:
            sock.close()  # extra bytes after the reply: out of step
        else:
            self._give_back(sock)


class _FrameReader:
    """Read length-prefixed frames from a blocking socket, with a deadline."""

    def __init__(self, sock: socket.socket, max_frame: int) -> None:
        self.sock = sock
        self.framer = LengthPrefixFramer(max_frame)
        self.received = False

    @property
    def pending(self) -> int:
        return self.framer.pending

    def read(self, deadline: float) -> bytes:
        """The next frame.

        Raises:
            socket.timeout: the deadline passed.
            EOFError: the peer closed first.
            FrameTooLarge: over the frame limit.
        """
        while (payload := self.framer.next_frame()) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no reply in time")
            self.sock.settimeout(remaining)
            data = self.sock.recv(64 * 1024)
            if not data:
                raise EOFError("the framework closed the connection")
            self.received = True
            self.framer.append(data)
        return payload


def _looks_alive(sock: socket.socket) -> bool:
    """False if an idle socket is readable: the peer closed it (or broke step)."""
    poller = _REAL_POLL()
    poller.register(sock.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    return not poller.poll(0)


def parse_upstream(text: str) -> tuple[str, int]:
    """``"127.0.0.1:9000"`` / ``"[::1]:9000"`` / ``"localhost:9000"`` -> ``(host, port)``.

    Raises:
        ValueError: not HOST:PORT.
    """
    host, colon, port = text.rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--upstream wants HOST:PORT, not {text!r}")
    return host, int(port)

