"""The event loop behind the select, poll and epoll engines (the reactor pattern).

One thread serves every connection.  The loop asks the operating system
"which of these sockets can I read or write without blocking?", then does
exactly that much work for each, and asks again::

    while not stopped:
        events = poller.poll(timeout=until the next timer)
        for fd, mask in events:
            handler = handlers[fd]      # a listener, a connection, a UDP socket...
            if readable: handler.handle_read()    # accept(), or recv() -> protocol.data_received
            if writable: handler.handle_write()   # flush the connection's WriteBuffer
        run due timers; run callbacks queued with call_soon

Nothing here blocks: sockets are non-blocking, a slow reader's data waits in
its :class:`~ionet.core.buffer.WriteBuffer`, TLS handshakes advance one step
per readiness event, and blocking calls go to a :class:`~ionet.core.pool.WorkerPool`.

The three engines differ only in how they ask the question, the
:class:`Poller` (see ``select.py``, ``poll.py``, ``epoll.py``): that is the
whole difference between the system calls, and why epoll scales to thousands
of connections where select cannot (FD_SETSIZE, and O(n) work per call).

Event masks use the poll/epoll bit values (they are the same on Linux):
READ = POLLIN = EPOLLIN, WRITE = POLLOUT = EPOLLOUT, and error or hang-up
bits count as both, so that the handler's next recv/send reports the error.
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import select
import socket
import ssl
from abc import ABC, abstractmethod
from functools import partial
from typing import IO, Any, Callable, Sequence, TypeVar

from ionet.core.buffer import WOULD_BLOCK, WriteBuffer, file_region
from ionet.core.config import Limits
from ionet.core.engines.base import (
    ACCEPT_BACKOFF,
    ACCEPT_CAPACITY_ERRNOS,
    DISCONNECTED_ERRNOS,
    RECV_SIZE,
    Engine,
    peer_label,
    refuse,
    tune_accepted,
)
from ionet.core.listeners import Listener, bind_first_free
from ionet.core.pool import WorkerPool
from ionet.core.protocol import (
    DataChannel,
    DatagramProtocol,
    DatagramTransport,
    Outcome,
    Protocol,
    TimerHandle,
    Transport,
)
from ionet.core.stop import StopSignal
from ionet.core.timers import Clock, TimerQueue

log = logging.getLogger("ionet.engine")
T = TypeVar("T")

READ = select.POLLIN
WRITE = select.POLLOUT
#: Bits that mean "something happened, let recv/send find out what".
ERROR_BITS = select.POLLERR | select.POLLHUP | select.POLLNVAL
READ_EVENTS = READ | ERROR_BITS
WRITE_EVENTS = WRITE | ERROR_BITS

#: Connections accepted per readiness event of a listener, so one busy
#: listener cannot starve the connections already open.
ACCEPTS_PER_EVENT = 64
#: Datagrams read per readiness event of a UDP socket.
DATAGRAMS_PER_EVENT = 64
#: Outgoing datagrams queued while the socket is full; beyond, drop (UDP may).
MAX_QUEUED_DATAGRAMS = 1024
#: Files this large have their header corked with their first bytes (see
#: ``Transport.sendfile``); for smaller ones two setsockopt calls cost more
#: than the packet they save.
CORK_MIN_FILE = 64 * 1024
TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)


class Poller(ABC):
    """The readiness system call of one engine, behind one small interface."""

    @abstractmethod
    def register(self, fd: int, events: int) -> None:
        """Watch ``fd`` for ``events`` (READ, WRITE or both)."""

    @abstractmethod
    def modify(self, fd: int, events: int) -> None:
        """Change what ``fd`` is watched for (0: nothing, but stay registered)."""

    @abstractmethod
    def unregister(self, fd: int) -> None:
        """Stop watching ``fd`` (before it is closed)."""

    @abstractmethod
    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Wait up to ``timeout`` seconds (None: forever) for events.

        Returns ``(fd, mask)`` pairs for the descriptors that are ready.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the poller's own resources (nothing by default)."""


class Handler(ABC):
    """Whatever sits behind one file descriptor in the loop."""

    @abstractmethod
    def handle_read(self) -> None: ...

    def handle_write(self) -> None:  # noqa: B027 - optional hook
        """The descriptor is writable (only handlers that asked for WRITE)."""


class ReactorEngine(Engine):
    """An engine that runs one event loop over a :class:`Poller`."""

    is_loop = True

    def __init__(self, limits: Limits, clock: Clock | None = None) -> None:
        super().__init__(limits)
        self.timers = TimerQueue(clock) if clock else TimerQueue()
        self.clock = self.timers.clock
        self.handlers: dict[int, Handler] = {}
        self.connections: set[SocketTransport] = set()
        self.datagram_sockets: list[DatagramSocket] = []
        self._soon: collections.deque[Callable[[], None]] = collections.deque()
        self._from_threads: collections.deque[Callable[[], None]] = collections.deque()
        self._waker: _Waker | None = None
        self._pool: WorkerPool | None = None
        self.poller: Poller | None = None
        self.stopping = False

    @abstractmethod
    def make_poller(self) -> Poller:
        """Create this engine's poller."""

    # -- the loop ---------------------------------------------------------

    def run(self, listeners: list[Listener], stop: StopSignal) -> None:
        self.poller = poller = self.make_poller()
        handlers = self.handlers
        self._watch(stop.fileno(), _StopHandler(self, stop), READ)
        self._waker = _Waker(self)
        self._watch(self._waker.fileno(), self._waker, READ)
        accepters: list[Acceptor] = []
        for listener in listeners:
            if listener.kind == "tcp":
                accepter = Acceptor(self, listener)
                accepters.append(accepter)
                self._watch(listener.sock.fileno(), accepter, READ)
            else:
                DatagramSocket(self, listener)
        deadline: float | None = None
        timers = self.timers
        soon = self._soon
        try:
            while True:
                if self.stopping:
                    if deadline is None:
                        deadline = self._begin_shutdown(accepters)
                    if not self.connections and not (self._pool and self._pool.pending):
                        break
                    if self.clock() >= deadline:
                        self._abort_all()
                        break
                timeout = 0.0 if soon else timers.next_delay(None)
                if deadline is not None:
                    timeout = max(0.0, min(timeout if timeout is not None else 1.0,
                                           deadline - self.clock()))
                for fd, mask in poller.poll(timeout):
                    handler = handlers.get(fd)
                    if handler is None:
                        continue
                    if mask & READ_EVENTS:
                        handler.handle_read()
                    if mask & WRITE_EVENTS and fd in handlers:
                        handler.handle_write()
                if timers:
                    timers.run_due()
                while soon:
                    soon.popleft()()
        finally:
            for datagram in list(self.datagram_sockets):
                datagram.close()
            for accepter in accepters:
                accepter.close()
            if self._pool is not None:
                self._pool.close()
            if self._waker is not None:
                self._waker.close()
            poller.close()

    def _begin_shutdown(self, accepters: list[Acceptor]) -> float:
        """Stop accepting, tell every protocol, and return the deadline."""
        log.info("shutting down: %d connection(s) open", len(self.connections))
        for accepter in accepters:
            accepter.close()
        accepters.clear()
        for conn in list(self.connections):
            conn.notify_stopping()
        for datagram in list(self.datagram_sockets):
            datagram.notify_stopping()
            datagram.close()
        return self.clock() + self.limits.shutdown_timeout

    def _abort_all(self) -> None:
        if self.connections:
            log.warning("shutdown deadline passed: closing %d connection(s)", len(self.connections))
        for conn in list(self.connections):
            conn.abort()
        while self._soon:
            self._soon.popleft()()

    # -- services for handlers ------------------------------------------------

    def _watch(self, fd: int, handler: Handler, events: int) -> None:
        assert self.poller is not None
        self.poller.register(fd, events)  # first: it may refuse (select's FD_SETSIZE)
        self.handlers[fd] = handler

    def _unwatch(self, fd: int) -> None:
        assert self.poller is not None
        if self.handlers.pop(fd, None) is not None:
            self.poller.unregister(fd)

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the next turn of the loop, after IO events."""
        self._soon.append(callback)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.timers.call_later(delay, callback)

    def call_soon_threadsafe(self, callback: Callable[[], None]) -> None:
        """Queue ``callback`` from any thread; the loop wakes and runs it."""
        self._from_threads.append(callback)  # deque.append is atomic
        if self._waker is not None:
            self._waker.wake()

    def run_in_worker(self, func: Callable[[], T], callback: Callable[[Outcome[T]], None]) -> None:
        (self._pool or self.start_pool()).submit(func, callback)

    def start_pool(self) -> WorkerPool:
        """The worker pool, made (and watched) on the first blocking call."""
        if self._pool is None:
            self._pool = WorkerPool(self.limits.worker_threads, self.call_soon)
            self._watch(self._pool.fileno(), _PoolHandler(self._pool), READ)
        return self._pool


class _StopHandler(Handler):
    """Wakes the loop when SIGINT/SIGTERM or ``StopSignal.set()`` arrives."""

    def __init__(self, engine: ReactorEngine, stop: StopSignal) -> None:
        self.engine = engine
        self.stop = stop

    def handle_read(self) -> None:
        self.stop.drain()
        if self.stop.is_set():
            self.engine.stopping = True


class _Waker(Handler):
    """A pipe that other threads write to, to wake the loop for their callbacks."""

    def __init__(self, engine: ReactorEngine) -> None:
        self.engine = engine
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)

    def fileno(self) -> int:
        return self._read_fd

    def wake(self) -> None:
        try:
            os.write(self._write_fd, b"\0")
        except (BlockingIOError, OSError):
            pass  # already awake, or closing

    def handle_read(self) -> None:
        try:
            while os.read(self._read_fd, 4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        queue = self.engine._from_threads
        while queue:
            self.engine.call_soon(queue.popleft())

    def close(self) -> None:
        os.close(self._read_fd)
        os.close(self._write_fd)


class _PoolHandler(Handler):
    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool

    def handle_read(self) -> None:
        self.pool.run_ready()


class Acceptor(Handler):
    """A listening TCP socket: accept connections and build their transports."""

    def __init__(self, engine: ReactorEngine, listener: Listener) -> None:
        self.engine = engine
        self.listener = listener
        self.sock = listener.sock
        self.endpoint = listener.endpoint
        self.closed = False

    def handle_read(self) -> None:
        engine = self.engine
        for _ in range(ACCEPTS_PER_EVENT):
            try:
                sock, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in ACCEPT_CAPACITY_ERRNOS:
                    # Out of file descriptors: stop watching the listener for
                    # a moment (the pending connections wait in the backlog)
                    # rather than spin on an accept() that keeps failing.
                    log.warning("accept failed (%s); retrying in %.1fs", exc, ACCEPT_BACKOFF)
                    engine._unwatch(self.sock.fileno())
                    engine.call_later(ACCEPT_BACKOFF, self._resume)
                    return
                log.debug("accept failed: %s", exc)
                continue
            sock.setblocking(False)
            if len(engine.connections) >= engine.limits.max_connections:
                refuse(sock, self.endpoint.busy_reply)
                continue
            protocol = make_protocol(self.endpoint.factory, sock)
            if protocol is None:
                continue
            try:
                start_connection(engine, sock, protocol, self.endpoint.ssl,
                                 own_timeouts=self.endpoint.own_timeouts)
            except OSError as exc:  # the poller cannot take it (select's FD_SETSIZE)
                log.warning("refusing a connection: %s", exc)
                refuse(sock, self.endpoint.busy_reply)

    def _resume(self) -> None:
        if not self.closed and not self.engine.stopping:
            self.engine._watch(self.sock.fileno(), self, READ)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.engine._unwatch(self.sock.fileno())
            self.listener.close()


def make_protocol(factory: Callable[[], Any], sock: socket.socket) -> Any:
    """Call a protocol factory; if it fails, log, close ``sock``, return None.

    A bug in one service's factory must cost one connection, not the engine.
    """
    try:
        return factory()
    except Exception:
        log.exception("%s: the protocol factory failed; closing the connection", peer_label(sock))
        sock.close()
        return None




class SocketTransport(Transport, Handler):
    """One TCP connection in the loop: the transport its protocol writes to.

    ``own_timeouts``: the protocol times the connection itself (see
    ``Endpoint.own_timeouts``), so the idle and first-bytes deadlines are
    not applied once it has the connection.
    """

    use_sendfile = True
    corked = False
    #: Still in the TLS handshake: the protocol does not have the connection yet.
    handshaking = False

    def __init__(self, engine: ReactorEngine, sock: socket.socket, protocol: Any,
                 own_timeouts: bool = False) -> None:
        self.engine = engine
        self.sock = sock
        self.fd = sock.fileno()
        self.protocol = protocol
        self.buffer = WriteBuffer()
        self.reading = True
        self.closing = False  # close() called: flush, then close
        self.closed = False
        self.writing_paused = False  # protocol told to pause_writing
        self.eof = False  # the peer half-closed
        self.made = False  # connection_made was called (so connection_lost is owed)
        self.heard_from_peer = False
        self.own_timeouts = own_timeouts
        self.last_activity = engine.clock()
        self._events = READ
        self._timer: TimerHandle | None = None
        self._extra: dict[str, Any] = {"socket": sock, "engine": engine.name}
        engine._watch(self.fd, self, READ)
        engine.connections.add(self)
        self.started = self.last_activity
        if not own_timeouts or self.handshaking:
            limits = engine.limits
            first = [t for t in (limits.first_bytes_timeout, limits.idle_timeout) if t is not None]
            self._arm_idle_timer(min(first) if first else None)
        self.start()

    def start(self) -> None:
        """Hand the connection to its protocol (TLS: after the handshake)."""
        self.made = True
        try:
            self.protocol.connection_made(self)
        except Exception as exc:
            self._protocol_failed(exc, "connection_made")

    # -- readiness events ---------------------------------------------------

    def handle_read(self) -> None:
        try:
            data = self.sock.recv(RECV_SIZE)
        except WOULD_BLOCK:
            return
        except OSError as exc:
            self._connection_broken(exc)
            return
        if data:
            self.heard_from_peer = True
            self.last_activity = self.engine.clock()
            try:
                self.protocol.data_received(data)
            except Exception as exc:
                self._protocol_failed(exc, "data_received")
        else:
            self._eof_received()

    def handle_write(self) -> None:
        try:
            done = self.buffer.flush(self.sock, self.use_sendfile)
        except OSError as exc:
            self._connection_broken(exc)
            return
        self.last_activity = self.engine.clock()
        if done:
            if self.corked:
                self._set_cork(False)
            self._set_events(self._events & ~WRITE)
            if self.closing:
                self._finish()
                return
        if self.writing_paused and self.buffer.size <= self.engine.limits.low_water:
            self.writing_paused = False
            try:
                self.protocol.resume_writing()
            except Exception as exc:
                self._protocol_failed(exc, "resume_writing")

    def _eof_received(self) -> None:
        self._set_events(self._events & ~READ)
        self.reading = False
        self.eof = True  # resume_reading must not ask for a second EOF
        try:
            keep_open = self.protocol.eof_received()
        except Exception as exc:
            self._protocol_failed(exc, "eof_received")
            return
        if not keep_open:
            self.close()

    # -- the Transport interface ------------------------------------------

    def write(self, data: bytes) -> None:
        if self.closing or self.closed or not data:
            return
        buffer = self.buffer
        if not buffer:
            # Try to send at once: most writes fit in the kernel's buffer, and
            # then cost no queueing and no extra poller call.
            try:
                sent = self.sock.send(data)
            except WOULD_BLOCK:
                sent = 0
            except OSError as exc:
                self._connection_broken(exc)
                return
            if sent == len(data):
                return
            data = data[sent:]
            self._set_events(self._events | WRITE)
        buffer.append(data)
        self._check_high_water()

    def writelines(self, chunks: list[bytes]) -> None:
        self.write(b"".join(chunks))

    def sendfile(self, file: IO[bytes], offset: int = 0, count: int | None = None,
                 header: bytes = b"") -> None:
        if self.closing or self.closed:
            file.close()
            return
        region = file_region(file, offset, count)
        if (header and TCP_CORK is not None and self.use_sendfile and not self.buffer
                and region.remaining >= CORK_MIN_FILE):
            # Hold the head back until the file's bytes join it (nginx's
            # tcp_nopush); handle_write uncorks once the buffer is empty.
            self._set_cork(True)
        if header:
            self.write(header)
        was_empty = not self.buffer
        self.buffer.append_file(region)
        if was_empty and self.buffer:
            # As write() does: try at once; most small files go out in one
            # call, and then cost no poller change and no extra loop turn.
            self.handle_write()
            if self.buffer and not self.closed:
                self._set_events(self._events | WRITE)

    def _set_cork(self, on: bool) -> None:
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, TCP_CORK, int(on))
        except OSError:
            return  # a broken socket: the next send says so
        self.corked = on

    def _check_high_water(self) -> None:
        if not self.writing_paused and self.buffer.size > self.engine.limits.high_water:
            self.writing_paused = True
            try:
                self.protocol.pause_writing()
            except Exception as exc:
                self._protocol_failed(exc, "pause_writing")

    def pause_reading(self) -> None:
        if self.reading and not self.closed:
            self.reading = False
            self._set_events(self._events & ~READ)

    def resume_reading(self) -> None:
        if not self.reading and not self.closing and not self.closed and not self.eof:
            self.reading = True
            self._set_events(self._events | READ)

    def is_reading(self) -> bool:
        return self.reading

    def close(self) -> None:
        if self.closing or self.closed:
            return
        self.closing = True
        self.pause_reading()
        if not self.buffer:
            self._finish()
            return
        # From now on only the flush is timed, on every connection: what is
        # queued must keep moving (shutdown_timeout without progress: abort).
        self.last_activity = self.engine.clock()
        self._arm_idle_timer(self.engine.limits.shutdown_timeout)

    def abort(self) -> None:
        self.buffer.clear()
        self.closing = True
        self._finish()

    def is_closing(self) -> bool:
        return self.closing or self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name not in self._extra:
            try:
                if name == "peername":
                    self._extra[name] = self.sock.getpeername()
                elif name == "sockname":
                    self._extra[name] = self.sock.getsockname()
            except OSError:
                return default
        return self._extra.get(name, default)

    def get_write_buffer_size(self) -> int:
        return self.buffer.size

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        def fire() -> None:
            if not self.closed:
                try:
                    callback()
                except Exception as exc:
                    self._protocol_failed(exc, "a timer callback")

        return self.engine.call_later(delay, fire)

    def run_in_worker(self, func: Callable[[], T], callback: Callable[[Outcome[T]], None]) -> None:
        # (Once per WSGI request: a partial, not a closure, and the pool
        # reached directly.)
        pool = self.engine._pool or self.engine.start_pool()
        pool.submit(func, partial(self._deliver_outcome, callback))

    def _deliver_outcome(self, callback: Callable[[Outcome[T]], None],
                         outcome: Outcome[T]) -> None:
        if self.closed:
            return  # the connection ended while the call ran: nobody to tell
        try:
            callback(outcome)
        except Exception as exc:
            self._protocol_failed(exc, "a worker callback")

    def notify_stopping(self) -> None:
        if not self.made:  # still in its TLS handshake: start() tells it later
            return
        try:
            self.protocol.server_stopping()
        except Exception as exc:
            self._protocol_failed(exc, "server_stopping")

    def set_protocol(self, protocol: Protocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Protocol:
        return self.protocol  # type: ignore[no-any-return]

    def call_soon_threadsafe(self, callback: Callable[[], None]) -> None:
        def run() -> None:
            if not self.closed:
                try:
                    callback()
                except Exception as exc:
                    self._protocol_failed(exc, "a call_soon_threadsafe callback")

        self.engine.call_soon_threadsafe(run)

    def open_listener(
        self, factory: Callable[[], Protocol], host: str, ports: Sequence[int] = (0,),
        accept_from: Callable[[Any], bool] | None = None, timeout: float = 30.0,
        on_error: Callable[[BaseException], None] | None = None, ssl_context: Any = None,
    ) -> DataChannel:
        return DataAcceptor(self, factory, host, ports, accept_from, timeout, on_error, ssl_context)

    def open_connection(
        self, factory: Callable[[], Protocol], host: str, port: int, timeout: float = 30.0,
        on_error: Callable[[BaseException], None] | None = None, ssl_context: Any = None,
    ) -> DataChannel:
        return Connector(self, factory, host, port, timeout, on_error, ssl_context)

    def _report(self, on_error: Callable[[BaseException], None] | None, exc: BaseException) -> None:
        """Deliver a data-channel failure to this connection's protocol."""
        if on_error is not None and not self.closed:
            try:
                on_error(exc)
            except Exception as failure:
                self._protocol_failed(failure, "a data channel's on_error")

    # -- internals -----------------------------------------------------------

    def _set_events(self, events: int) -> None:
        if events != self._events and not self.closed:
            self._events = events
            assert self.engine.poller is not None
            self.engine.poller.modify(self.fd, events)

    def _arm_idle_timer(self, delay: float | None) -> None:
        """(Re)start the one timer behind all three deadlines below."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None if delay is None else self.engine.call_later(delay, self._idle_check)

    def _idle_check(self) -> None:
        """The idle timer fired: close if a deadline passed, else sleep again.

        Three deadlines, each measured lazily from recorded times: a new
        connection must send its first byte within ``first_bytes_timeout``
        of its start; any connection must show activity within
        ``idle_timeout``; a closing one must make flush progress within
        ``shutdown_timeout``, or it is aborted.  A connection with
        ``own_timeouts`` has only the last, and the first while its TLS
        handshake lasts.
        """
        self._timer = None
        if self.closed:
            return
        limits = self.engine.limits
        now = self.engine.clock()
        if self.closing:  # close() is waiting for a flush
            deadline = self.last_activity + limits.shutdown_timeout
            if now >= deadline:
                self.abort()
            else:
                self._arm_idle_timer(deadline - now)
            return
        if self.own_timeouts and not self.handshaking:
            return  # its protocol keeps the time
        deadlines = []
        if not self.heard_from_peer and limits.first_bytes_timeout is not None:
            deadlines.append((self.started + limits.first_bytes_timeout, "no data within", limits.first_bytes_timeout))
        if limits.idle_timeout is not None:
            deadlines.append((self.last_activity + limits.idle_timeout, "idle for", limits.idle_timeout))
        if not deadlines:
            return
        deadline, reason, seconds = min(deadlines)
        if now < deadline:
            self._arm_idle_timer(deadline - now)
            return
        log.info("%s: closed, %s %.0fs", peer_label(self.sock), reason, seconds)
        self.close()  # which gives the flush its own deadline

    def _connection_broken(self, exc: OSError) -> None:
        if exc.errno not in DISCONNECTED_ERRNOS and not isinstance(exc, ssl.SSLError):
            log.info("%s: connection error: %s", peer_label(self.sock), exc)
        self.buffer.clear()
        self._finish(exc)

    def _protocol_failed(self, exc: Exception, where: str) -> None:
        log.error("%s: %s failed; closing the connection", peer_label(self.sock), where,
                  exc_info=exc)
        self.buffer.clear()
        self._finish(exc)

    def _finish(self, exc: BaseException | None = None) -> None:
        """Close the socket now and tell the protocol, on the next loop turn."""
        if self.closed:
            return
        self.closed = self.closing = True
        engine = self.engine
        engine._unwatch(self.fd)
        engine.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        self.sock.close()
        if self.made:  # a failed TLS handshake never reached the protocol
            engine.call_soon(lambda: self._lost(exc))

    def _lost(self, exc: BaseException | None) -> None:
        try:
            self.protocol.connection_lost(exc)
        except Exception:
            log.exception("connection_lost failed")


class TLSSocketTransport(SocketTransport):
    """A TLS connection: the handshake and records go through ``ssl``, without blocking.

    ``do_handshake()`` on a non-blocking socket raises ``SSLWantReadError`` or
    ``SSLWantWriteError`` until the peer's bytes arrive; we wait for that
    readiness and try again.  (A blocking handshake inside the loop would
    stall every other client while one is slow.)  Decrypted bytes can sit in
    the ``ssl`` object's buffer where the poller cannot see them, so reads
    drain ``pending()``.  File regions are read and encrypted in user space:
    the kernel's sendfile cannot encrypt.
    """

    use_sendfile = False

    def __init__(self, engine: ReactorEngine, sock: socket.socket, protocol: Any,
                 context: ssl.SSLContext, own_timeouts: bool = False) -> None:
        self.handshaking = True
        tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        super().__init__(engine, tls, protocol, own_timeouts)

    def start(self) -> None:
        self._handshake()

    def _handshake(self) -> None:
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._set_events(READ)
            return
        except ssl.SSLWantWriteError:
            self._set_events(WRITE)
            return
        except (ssl.SSLError, OSError) as exc:
            log.info("%s: TLS handshake failed: %s", peer_label(sock), exc)
            self.abort()
            return
        self.handshaking = False
        self._extra["ssl_object"] = sock
        self._set_events(READ if self.reading else 0)
        super().start()
        if self.engine.stopping and not self.closed:
            self.notify_stopping()
        if not self.closed and self.reading:
            self.handle_read()  # application data may have come with the handshake

    def handle_read(self) -> None:
        if self.handshaking:
            self._handshake()
            return
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        while self.reading and not self.closed:
            try:
                data = sock.recv(RECV_SIZE)
            except WOULD_BLOCK:
                return
            except ssl.SSLZeroReturnError:
                data = b""
            except OSError as exc:
                self._connection_broken(exc)
                return
            if not data:
                self._eof_received()
                return
            self.heard_from_peer = True
            self.last_activity = self.engine.clock()
            try:
                self.protocol.data_received(data)
            except Exception as exc:
                self._protocol_failed(exc, "data_received")
                return
            if not sock.pending():
                return

    def handle_write(self) -> None:
        if self.handshaking:
            self._handshake()
        else:
            super().handle_write()

    def write(self, data: bytes) -> None:
        if self.handshaking:
            self.buffer.append(data)  # sent once the handshake is done
            return
        super().write(data)


def start_connection(engine: ReactorEngine, sock: socket.socket, protocol: Any,
                     ssl_context: ssl.SSLContext | None, own_timeouts: bool) -> SocketTransport:
    """Serve an accepted or connected socket in the loop (TLS as the server side)."""
    sock.setblocking(False)
    tune_accepted(sock)
    if ssl_context is not None:
        return TLSSocketTransport(engine, sock, protocol, ssl_context, own_timeouts)
    return SocketTransport(engine, sock, protocol, own_timeouts)


class DataAcceptor(Handler, DataChannel):
    """A listener for one data connection (FTP passive mode), owned by a connection."""

    def __init__(self, owner: SocketTransport, factory: Callable[[], Protocol], host: str,
                 ports: Sequence[int], accept_from: Callable[[Any], bool] | None,
                 timeout: float, on_error: Callable[[BaseException], None] | None,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.owner = owner
        self.engine = owner.engine
        self.factory = factory
        self.accept_from = accept_from
        self.on_error = on_error
        self.ssl_context = ssl_context
        self.closed = False
        self.sock = bind_first_free(host, ports)
        self.port = self.sock.getsockname()[1]
        self.engine._watch(self.sock.fileno(), self, READ)
        self._timer = self.engine.call_later(timeout, self._timed_out)

    def handle_read(self) -> None:
        try:
            sock, addr = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close()
            self.owner._report(self.on_error, exc)
            return
        if self.accept_from is not None and not self.accept_from(addr):
            log.warning("data connection from %s refused: not the control peer", addr)
            sock.close()
            return
        self.close()
        protocol = make_protocol(self.factory, sock)
        if protocol is not None:
            # The protocol that asked for this connection times it (FTP's data timeout).
            start_connection(self.engine, sock, protocol, self.ssl_context, own_timeouts=True)

    def _timed_out(self) -> None:
        if not self.closed:
            self.close()
            self.owner._report(self.on_error, TimeoutError("no data connection arrived in time"))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._timer.cancel()
            self.engine._unwatch(self.sock.fileno())
            self.sock.close()




class Connector(Handler, DataChannel):
    """An outgoing connection being set up (FTP active mode), owned by a connection."""

    def __init__(self, owner: SocketTransport, factory: Callable[[], Protocol], host: str,
                 port: int, timeout: float, on_error: Callable[[BaseException], None] | None,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.owner = owner
        self.engine = owner.engine
        self.factory = factory
        self.on_error = on_error
        self.ssl_context = ssl_context
        self.closed = False
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        # A non-blocking connect returns at once (EINPROGRESS); the socket
        # becomes writable when the handshake is done, or has failed.
        code = self.sock.connect_ex((host, port))
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            self.sock.close()
            raise OSError(code, os.strerror(code))
        self.engine._watch(self.sock.fileno(), self, WRITE)
        self._timer = self.engine.call_later(timeout, self._timed_out)

    def handle_read(self) -> None:
        self.handle_write()

    def handle_write(self) -> None:
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        sock = self.sock
        self._stop_watching()
        if code:
            sock.close()
            self.owner._report(self.on_error, OSError(code, os.strerror(code)))
            return
        protocol = make_protocol(self.factory, sock)
        if protocol is not None:
            # The protocol that asked for this connection times it (FTP's data timeout).
            start_connection(self.engine, sock, protocol, self.ssl_context, own_timeouts=True)

    def _timed_out(self) -> None:
        if not self.closed:
            self.close()
            self.owner._report(self.on_error, TimeoutError("the data connection timed out"))

    def _stop_watching(self) -> None:
        self.closed = True
        self._timer.cancel()
        self.engine._unwatch(self.sock.fileno())

    def close(self) -> None:
        if not self.closed:
            self._stop_watching()
            self.sock.close()


class DatagramSocket(DatagramTransport, Handler):
    """A UDP socket in the loop, with its one protocol object."""

    def __init__(self, engine: ReactorEngine, listener: Listener) -> None:
        self.engine = engine
        self.listener = listener
        self.sock = listener.sock
        self.fd = self.sock.fileno()
        self.protocol: DatagramProtocol = listener.endpoint.factory()  # type: ignore[assignment]
        self.queue: collections.deque[tuple[bytes, Any]] = collections.deque()
        self.closed = False
        engine.datagram_sockets.append(self)
        engine._watch(self.fd, self, READ)
        try:
            self.protocol.connection_made(self)
        except Exception:
            log.exception("udp %s: connection_made failed", listener.url())

    def handle_read(self) -> None:
        for _ in range(DATAGRAMS_PER_EVENT):
            try:
                data, addr = self.sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._call(self.protocol.error_received, exc)
                return
            self._call(self.protocol.datagram_received, data, addr)
            if self.closed:
                return

    def handle_write(self) -> None:
        while self.queue:
            data, addr = self.queue[0]
            try:
                self.sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._call(self.protocol.error_received, exc)
            self.queue.popleft()
        self.engine.poller.modify(self.fd, READ)  # type: ignore[union-attr]

    def _call(self, method: Callable[..., None], *args: Any) -> None:
        try:
            method(*args)
        except Exception:
            log.exception("udp %s: %s failed", self.listener.url(), method.__name__)

    def sendto(self, data: bytes, addr: Any) -> None:
        if self.closed:
            return
        if not self.queue:
            try:
                self.sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self.engine.poller.modify(self.fd, READ | WRITE)  # type: ignore[union-attr]
            except OSError as exc:
                self._call(self.protocol.error_received, exc)
                return
        if len(self.queue) < MAX_QUEUED_DATAGRAMS:
            self.queue.append((data, addr))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.engine._unwatch(self.fd)
        if self in self.engine.datagram_sockets:
            self.engine.datagram_sockets.remove(self)
        self.listener.close()
        self._call(self.protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sockname":
            return self.sock.getsockname()
        if name == "socket":
            return self.sock
        if name == "engine":
            return self.engine.name
        return default

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.engine.call_later(delay, lambda: self._call(callback))

    def run_in_worker(self, func: Callable[[], T], callback: Callable[[Outcome[T]], None]) -> None:
        self.engine.run_in_worker(func, lambda outcome: self._call(callback, outcome))

    def notify_stopping(self) -> None:
        self._call(self.protocol.server_stopping)
