"""The HTTP/1.1 server protocol: one object per connection, on the core contract.

Theory of operation
-------------------
Bytes go to the :class:`~ionet.http.parser.RequestParser`, which hands back
complete requests (body included).  They wait in ``queue`` and are answered
strictly one at a time, in order: that is what makes pipelining correct
(RFC 9112 section 9.3.2), since a client that sends three requests in one
packet must get three responses in the same order, even when the first one
takes longer.

The request being answered is ``active``.  A *handler* (static files, the
WSGI gateway: see :class:`Handler` below) receives it together with this object and
answers through the response methods below, now or later (the WSGI app runs
in a worker thread; its response comes back on the loop thread)::

    conn.respond(request, 200, headers, body)        # a whole response, one write
    conn.start(request, 200, headers, length=None)   # or a streamed one:
    conn.send(data); conn.send_file(f, 0, n); conn.finish()

The protocol adds the headers that belong to the connection, never to the
handler: ``Date`` and ``Server`` (cached per second), the framing
(``Content-Length``, or ``Transfer-Encoding: chunked`` for HTTP/1.1 bodies of
unknown length, or close-delimited for HTTP/1.0), and ``Connection``.  It
drops the body of HEAD responses and of 204/304, keeping the length.

Files go out with ``transport.sendfile``, which takes the file over: the
transport closes it once sent, or when the connection ends, so a response
never waits for a file to be released.

Flow control (uvicorn's rule): while a response is in progress we go on
reading only until the next request starts arriving; then reading pauses, so
a client pipelining a thousand requests cannot make us buffer them all.  We
also stop reading while our own output is over the high-water mark.  Pausing
costs two system calls on loop engines, so it happens only when needed, not
for every request.

Time limits use one timer per connection, re-armed lazily (see
``core/timers.py``): a phase change only records a deadline; when the timer
fires it compares the deadline with the clock and sleeps again if the
connection made progress.  Phases: waiting for a request (keep-alive
timeout: close silently), reading a head (header timeout from its first
byte: 408), reading a body (body timeout between bytes: 408).

Protocol switches (``Upgrade: websocket``): the service maps paths to
protocol factories (``upgrades={"/chat/ws": ChatSocket}``).  A body-less GET
with ``Connection: upgrade`` for such a path is not given to the handler:
once it is the only request left (the responses before it sent), the
connection is handed over with ``transport.set_protocol(new)``, then
``new.connection_made(transport)`` and ``new.data_received(head + rest)``,
where ``head`` is the request head exactly as received and ``rest`` what
followed it, so the new protocol does its own handshake (it answers 101).
An upgrade request for any other path is answered as a plain request, and
the connection closed after it.

Errors: a malformed request (``HttpError`` from the parser) is answered after
the requests before it, then the connection closes, since the stream can no
longer be trusted.  A handler that raises gets a 500 if nothing was sent yet,
else the connection is aborted (the client sees a truncated response rather
than a wrong one).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Mapping
from typing import IO, Any
from typing import Protocol as TypingProtocol

from ionet.core.protocol import Protocol, TimerHandle, Transport
from ionet.http.limits import HttpLimits
from ionet.http.parser import HEAD, IDLE, Request, RequestParser
from ionet.http.status import (
    ERROR_PAGE_HEADERS,
    NO_BODY_STATUSES,
    STATUS_LINES,
    HttpClock,
    HttpError,
    error_page,
)

__all__ = ["AccessLogger", "Handler", "HttpProtocol", "HttpService"]

log = logging.getLogger("ionet.http")

_CLOSE = b"Connection: close\r\n"
_KEEP_ALIVE = b"Connection: keep-alive\r\n"
_CHUNKED = b"Transfer-Encoding: chunked\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_LAST_CHUNK = b"0\r\n\r\n"
#: ``Content-Length`` lines of small bodies, made once.
_LENGTH_LINES = [b"Content-Length: %d\r\n" % n for n in range(1024)]

# Timer kinds: which deadline is running.
_NONE, _KEEPALIVE, _HEAD, _BODY = 0, 1, 2, 3


class Handler(TypingProtocol):
    """What answers requests: static files, a WSGI app, a mount of both.

    ``handle`` is called on the connection's thread (the loop thread on loop
    engines) and must answer through ``conn``'s response methods, exactly
    once per request, now or later.  It must not block a loop engine: slow
    work goes through ``conn.transport.run_in_worker``.
    """

    #: Methods listed in ``Allow`` for ``OPTIONS *`` (``b"GET, HEAD"``).
    allow: bytes

    def handle(self, request: Request, conn: HttpProtocol) -> None: ...


class AccessLogger(TypingProtocol):
    def __call__(self, conn: HttpProtocol, request: Request, status: int, size: int) -> None: ...


class HttpService:
    """What every connection of one HTTP server shares; also its protocol factory.

    Args:
        handler: answers the requests.
        limits: sizes and timeouts (:class:`~ionet.http.limits.HttpLimits`).
        upgrades: URL path (``"/chat/ws"``) -> factory of the protocol that
            takes a connection over when a GET for that path asks for an
            ``Upgrade`` (see the module notes).
        server: the ``Server`` header value ("" for none).
        access_log: called once per response (see ``accesslog.py``), or None.
            A protocol switch is logged with status 101.
        clock: a monotonic clock for the timeouts; it must be the clock the
            engine's ``call_later`` runs on (``time.monotonic``, or a test's
            ``FakeClock``).
        wall_clock: the time for ``Date`` headers and logs.
    """

    def __init__(self, handler: Handler, limits: HttpLimits | None = None, *,
                 upgrades: Mapping[str, Callable[[], Protocol]] | None = None,
                 server: str = "ionet", access_log: AccessLogger | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.handler = handler
        self.limits = limits or HttpLimits()
        self.upgrades: dict[bytes, Callable[[], Protocol]] = {}
        for path, factory in (upgrades or {}).items():
            if not path.startswith("/"):
                raise ValueError(f"an upgrade path starts with '/', not {path!r}")
            self.upgrades[path.encode()] = factory
        self.access_log = access_log
        self.clock = clock
        self.http_clock = HttpClock(server, wall_clock)

    def __call__(self) -> HttpProtocol:
        return HttpProtocol(self)


class HttpProtocol(Protocol):
    """One HTTP/1.1 connection, server side.

    Besides the contract's callbacks, it offers handlers the response
    methods (:meth:`respond`, :meth:`respond_error`, :meth:`start`,
    :meth:`send`, :meth:`send_file`, :meth:`finish`, :meth:`abort`) and two
    hooks: ``on_drain`` (called once when the output buffer drains after
    ``pause_writing``) and ``on_lost`` (called once if the connection is
    lost while the active request is in progress).
    """

    transport: Transport

    def __init__(self, service: HttpService) -> None:
        self.service = service
        self.handler = service.handler
        self.limits = service.limits
        self.parser = RequestParser(service.limits, keep_heads=bool(service.upgrades))
        self.queue: collections.deque[Request] = collections.deque()
        self.active: Request | None = None
        self.failure: HttpError | None = None
        #: Handlers may cache per-connection data here (the WSGI gateway
        #: keeps the connection's part of the environ).
        self.environ_base: dict[str, Any] | None = None
        self.on_drain: Callable[[], None] | None = None
        self.on_lost: Callable[[], None] | None = None
        #: True once this object is done with the connection: closed, or
        #: handed to another protocol.
        self.closed = False
        self.write_paused = False
        self._reading = True
        self._eof = False
        self._stopping = False
        self._dispatching = False
        self._http_clock = service.http_clock
        self._clock = service.clock
        self._timer: TimerHandle | None = None
        self._timer_at = 0.0
        self._deadline: float | None = None
        self._timer_kind = _NONE
        self._head_mark = -1
        # The response in progress.
        self._started = False
        self._head: bytes | None = None  # not yet written: goes with the first body bytes
        self._keep = True
        self._chunked = False
        self._head_only = False
        self._remaining: int | None = None
        self._status = 0
        self._sent = 0

    # -- the contract -------------------------------------------------------

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport
        self._settle()

    def data_received(self, data: bytes) -> None:
        if self.closed or self.failure is not None:
            return
        parser = self.parser
        try:
            parser.feed(data)
        except HttpError as exc:
            log.debug("%s: bad request: %s", self.peer(), exc)
            self.failure = exc
        requests = parser.requests
        if requests:
            if (len(requests) == 1 and self.active is None and not self._dispatching
                    and not self.queue and requests[0].upgrade is None):
                # One request on an idle connection, the keep-alive client's
                # every request: what _next does, without the queue.
                parser.requests = []
                self._dispatching = True
                try:
                    self._dispatch(requests[0])
                finally:
                    self._dispatching = False
                if self.active is None:
                    if self.queue or self.failure is not None:
                        self._next()  # answered at once, and more is waiting
                    else:
                        self._settle()
                elif parser.phase != IDLE or self.failure is not None:
                    self._settle()
                # Else the app is at work in a worker and nothing followed the
                # request: _dispatch cleared the deadline, reading goes on, and
                # _finished settles the connection once the answer is sent.
                return
            self.queue.extend(parser.take())
        if self.active is None and not self._dispatching:
            self._next()
        else:
            self._settle()

    def eof_received(self) -> bool | None:
        self._eof = True
        self._reading = False
        if self.active is not None or self.queue or self.failure is not None:
            if self.active is None and not self._dispatching:
                self._next()
            return True  # keep our side open to finish; _settle closes
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.parser.release()
        self.queue.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        on_lost, self.on_lost = self.on_lost, None
        self.on_drain = None
        if on_lost is not None:
            on_lost()

    def pause_writing(self) -> None:
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._update_reading()
        on_drain, self.on_drain = self.on_drain, None
        if on_drain is not None:
            on_drain()

    def server_stopping(self) -> None:
        """Close at once if idle; otherwise after the response in progress."""
        self._stopping = True
        if self.active is None and not self.queue and self.parser.phase == IDLE:
            self._close()

    # -- dispatching ----------------------------------------------------------

    def _next(self) -> None:
        """Answer queued requests until one is in progress or none is left."""
        self._dispatching = True
        try:
            queue = self.queue
            while self.active is None and not self.closed:
                if queue:
                    request = queue.popleft()
                    if request.upgrade is not None and request.path in self.service.upgrades:
                        self._switch(request)
                        return
                    self._dispatch(request)
                elif self.failure is not None:
                    self._answer_failure(self.failure)
                else:
                    break
        finally:
            self._dispatching = False
        self._settle()

    def _dispatch(self, request: Request) -> None:
        self.active = request
        self._started = False
        self._timer_kind = _NONE  # no deadline while we answer; _settle sets the next
        self._deadline = None
        try:
            if request.path == b"*":
                if request.method == b"OPTIONS":
                    self.respond(request, 200, b"Allow: " + self.handler.allow + b"\r\n")
                else:
                    self.respond_error(request, 400)
                return
            self.handler.handle(request, self)
        except HttpError as exc:
            if self.active is request:
                self.fail(request, exc)
        except Exception as exc:
            log.error("%s: error answering %s", self.peer(), request, exc_info=exc)
            if self.active is request:
                self.fail(request, HttpError(500, close=False))

    def _switch(self, request: Request) -> None:
        """Hand the connection to the protocol registered for the request's path.

        Runs once every response before the request is sent (it is the last
        request: nothing after an upgrade is parsed).  The new protocol gets
        the request head as received and the bytes after it; it answers the
        handshake itself.
        """
        factory = self.service.upgrades[request.path]
        data = (request.upgrade or b"") + (self.parser.rest or b"")
        self.parser.release()
        if self.service.access_log is not None:
            self.service.access_log(self, request, 101, 0)
        new = factory()
        self.closed = True  # from here on the connection is not ours
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport = self.transport
        transport.set_protocol(new)
        if not self._eof:
            transport.resume_reading()  # paused while the request waited
        new.connection_made(transport)
        if data:
            new.data_received(data)
        if self._eof and not new.eof_received():
            transport.close()

    def fail(self, request: Request, exc: HttpError) -> None:
        """Answer ``request`` with ``exc``'s error page, or abort if a response
        was already under way (its head is out: a wrong status would follow)."""
        if self._started and self._head is None:
            self.abort()
        else:
            self._head = None  # a head held back can still be replaced
            self.respond_error(request, exc.status, close=exc.close)

    def _answer_failure(self, exc: HttpError) -> None:
        request = Request()
        request.keep_alive = False
        request.method = b"-"
        self.active = request
        self.respond_error(request, exc.status, close=True)

    def _settle(self) -> None:
        """After any change: close, or set reading, 100-continue and the timer."""
        if self.closed:
            return
        if self.active is None and not self.queue:
            parser = self.parser
            phase = parser.phase
            if self._eof or (self._stopping and phase == IDLE):
                self._close()
                return
            if phase == IDLE:
                if self._timer_kind != _KEEPALIVE:
                    self._set_deadline(_KEEPALIVE, self.limits.keepalive_timeout)
            elif phase == HEAD:
                if self._timer_kind != _HEAD or self._head_mark != parser.begun:
                    self._head_mark = parser.begun
                    self._set_deadline(_HEAD, self.limits.header_timeout)
            else:
                self._set_deadline(_BODY, self.limits.body_timeout)
                current = parser.current
                if current is not None and current.expect_continue and not current.continue_sent:
                    current.continue_sent = True
                    self.transport.write(_CONTINUE)
        else:
            self._timer_kind = _NONE
            self._deadline = None
        self._update_reading()

    def _update_reading(self) -> None:
        want = (not self.write_paused and not self._eof and not self.closed
                and self.failure is None and not self.queue
                and (self.active is None or self.parser.phase == IDLE))
        if want != self._reading:
            self._reading = want
            if want:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    # -- timeouts -------------------------------------------------------------

    def _set_deadline(self, kind: int, seconds: float) -> None:
        deadline = self._clock() + seconds
        self._timer_kind = kind
        self._deadline = deadline
        if self._timer is None or self._timer_at > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.transport.call_later(seconds, self._on_timer)
            self._timer_at = deadline

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline
        if self.closed or deadline is None:
            return
        remaining = deadline - self._clock()
        if remaining > 0:
            self._timer = self.transport.call_later(remaining, self._on_timer)
            self._timer_at = deadline
            return
        kind, self._timer_kind, self._deadline = self._timer_kind, _NONE, None
        if kind == _KEEPALIVE:
            log.debug("%s: closing an idle connection", self.peer())
            self._close()
        elif kind in (_HEAD, _BODY):
            log.info("%s: request %s too slow; closing", self.peer(),
                     "head" if kind == _HEAD else "body")
            self.failure = HttpError(408)
            self._next()

    # -- responses --------------------------------------------------------------

    def _connection_header(self, request: Request, close: bool) -> bytes:
        """The ``Connection`` header line for a response: ``_CLOSE`` (the
        connection ends after it), ``keep-alive`` for HTTP/1.0, or nothing.

        After the peer's EOF, the requests it sent before are still answered.
        """
        if close or not request.keep_alive or self._stopping or (self._eof and not self.queue):
            return _CLOSE
        return _KEEP_ALIVE if request.version == "1.0" else b""

    def respond(self, request: Request, status: int, headers: bytes = b"", body: bytes = b"",
                length: int | None = None, status_line: bytes | None = None,
                date: bool = True, server: bool = True, close: bool = False) -> None:
        """Send a complete response in one write, and end the exchange.

        Args:
            request: the active request.
            status: the status code.
            headers: header lines, each ending in CRLF, without the ones the
                protocol adds (Date, Server, Content-Length, Connection).
            body: the body; not sent for HEAD, 204 and 304.
            length: the Content-Length to announce when it differs from
                ``len(body)`` (a HEAD response for a file not read).
            status_line: a custom status line (a WSGI reason phrase).
            date / server: add the ``Date`` / ``Server`` header.
            close: close the connection after this response.
        """
        connection = self._connection_header(request, close)
        if status in NO_BODY_STATUSES:
            framing, body = b"", b""
        else:
            if length is None:
                length = len(body)
            framing = (_LENGTH_LINES[length] if 0 <= length < 1024
                       else b"Content-Length: %d\r\n" % length)
            if request.method == b"HEAD":
                body = b""
        self._started = True
        self.transport.write(b"".join((
            status_line or STATUS_LINES.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status,
            self._http_clock.headers(date, server), headers, framing, connection, b"\r\n",
            body)))
        self._finished(request, status, len(body), connection is not _CLOSE)

    def respond_error(self, request: Request, status: int, headers: bytes = b"",
                      close: bool = False) -> None:
        """Answer with the fixed error page of ``status``."""
        self.respond(request, status, ERROR_PAGE_HEADERS + headers, error_page(status),
                     close=close)

    def start(self, request: Request, status: int, headers: bytes = b"",
              length: int | None = None, status_line: bytes | None = None,
              date: bool = True, server: bool = True, close: bool = False) -> None:
        """Begin a streamed response of ``length`` bytes (None: unknown).

        An unknown length is sent chunked to HTTP/1.1 clients and
        close-delimited to HTTP/1.0 ones.  The head is held back and goes out
        with the first body bytes, in one write.
        """
        connection = self._connection_header(request, close)
        no_body = status in NO_BODY_STATUSES
        head_only = no_body or request.method == b"HEAD"
        framing = b""
        chunked = False
        if not no_body:
            if length is not None:
                framing = b"Content-Length: %d\r\n" % length
            elif request.version == "1.1":
                framing = _CHUNKED
                chunked = not head_only
            elif not head_only:
                connection = _CLOSE  # the end of the body is the end of the connection
        self._started = True
        self._head = b"".join((
            status_line or STATUS_LINES.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status,
            self._http_clock.headers(date, server), headers, framing,
            connection, b"\r\n"))
        self._keep = connection is not _CLOSE
        self._chunked = chunked
        self._head_only = head_only
        self._remaining = None if head_only else length
        self._status = status
        self._sent = 0

    def send(self, data: bytes) -> None:
        """Send body bytes of a started response (framed; cut at its length)."""
        if self._head_only or not data or self.closed:
            return
        remaining = self._remaining
        if remaining is not None:
            if len(data) > remaining:
                data = data[:remaining]
                if not data:
                    return
            self._remaining = remaining - len(data)
        self._sent += len(data)
        head, self._head = self._head, None
        if self._chunked:
            self.transport.write(b"".join((head or b"", b"%x\r\n" % len(data), data, b"\r\n")))
        elif head is not None:
            self.transport.write(head + data)
        else:
            self.transport.write(data)

    def send_file(self, file: IO[bytes], offset: int, count: int) -> None:
        """Send ``count`` bytes of ``file`` from ``offset`` with ``transport.sendfile``.

        The transport takes the file over and closes it once sent (or when
        the connection ends); so does this method when nothing is to be sent.
        """
        if self._head_only or self.closed:
            file.close()
            return
        if self._remaining is not None:
            count = min(count, self._remaining)
            self._remaining -= count
        head, self._head = self._head, None
        if self._chunked and count:
            head = (head or b"") + b"%x\r\n" % count
        if not count:
            if head is not None:
                self.transport.write(head)
            file.close()
            return
        # The head goes with the file, so the transport can send them in one burst.
        self.transport.sendfile(file, offset, count, header=head or b"")
        self._sent += count
        if self._chunked:
            self.transport.write(b"\r\n")

    def finish(self) -> None:
        """End the started response (the last chunk, if chunked)."""
        request = self.active
        assert request is not None, "finish() without an active request"
        head, self._head = self._head, None
        keep = self._keep
        if self._remaining:  # shorter than announced: the framing is broken
            log.warning("%s: response to %s ended %d bytes short; closing", self.peer(),
                        request, self._remaining)
            keep = False
        if self._chunked:
            self.transport.write((head or b"") + _LAST_CHUNK)
        elif head is not None:
            self.transport.write(head)
        self._finished(request, self._status, self._sent, keep)

    def abort(self) -> None:
        """Give up on the active response: drop the connection at once."""
        request = self.active
        self.active = None
        if request is not None and self.service.access_log is not None:
            self.service.access_log(self, request, self._status or 500, self._sent)
        self._close(abort=True)

    def _finished(self, request: Request, status: int, sent: int, keep: bool) -> None:
        access_log = self.service.access_log
        if access_log is not None:
            access_log(self, request, status, sent)
        self.active = None
        self.on_lost = None
        self._started = False
        self._head = None
        self._chunked = self._head_only = False
        self._remaining = None
        self._status = 0
        if not keep:
            self._close()
        elif self._dispatching:
            pass  # _next goes on with the queue
        elif self.queue or self.failure is not None:
            self._next()
        else:
            self._settle()

    def _close(self, abort: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.queue.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if abort:
            self.transport.abort()
        else:
            self.transport.close()

    # -- facts for handlers and logs ------------------------------------------

    def peer(self) -> str:
        """The client's address for logs: ``127.0.0.1`` (or ``-``)."""
        peer = self.transport.get_extra_info("peername") if self.transport else None
        if isinstance(peer, tuple) and peer:
            return str(peer[0])
        return "-" if not peer else str(peer)
