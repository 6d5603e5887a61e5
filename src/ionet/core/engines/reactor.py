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

This module is the loop, what to read first: :meth:`ReactorEngine.run`, the
services it offers handlers (watch and unwatch a descriptor, ``call_soon``,
timers, a waker for other threads, the worker pool), the listeners'
:class:`Acceptor`, and the graceful shutdown (stop accepting, tell every
protocol, wait until the deadline, abort the rest).  What the loop serves
lives next door, one thing per module:

    reactor_events.py      the event bits, the Poller that reports them and
                           the Handler that receives them
    reactor_connection.py  SocketTransport and TLSSocketTransport: one TCP (or
                           TLS) connection, the transport its protocol writes
                           to, and its timeouts; start_connection
    reactor_channels.py    data connections a protocol opens (FTP's
                           open_listener / open_connection)
    reactor_udp.py         DatagramSocket: a UDP socket and its one protocol
"""

from __future__ import annotations

import collections
import logging
import os
from abc import abstractmethod
from collections.abc import Callable
from typing import TypeVar

from ionet.core.config import Limits
from ionet.core.engines.base import ACCEPT_BACKOFF, ACCEPT_CAPACITY_ERRNOS, RECV_SIZE, Engine, refuse
from ionet.core.engines.reactor_connection import SocketTransport, make_protocol, start_connection
from ionet.core.engines.reactor_events import READ, READ_EVENTS, WRITE, WRITE_EVENTS, Handler, Poller
from ionet.core.engines.reactor_udp import DatagramSocket
from ionet.core.listeners import Listener
from ionet.core.pool import WorkerPool
from ionet.core.protocol import Outcome, TimerHandle
from ionet.core.stop import StopSignal
from ionet.core.timers import Clock, TimerQueue

# select.py, poll.py and epoll.py import the loop's vocabulary from here.
__all__ = ["READ", "WRITE", "Acceptor", "Handler", "Poller", "ReactorEngine"]

log = logging.getLogger("ionet.engine")
T = TypeVar("T")

#: Connections accepted per readiness event of a listener, so one busy
#: listener cannot starve the connections already open.
ACCEPTS_PER_EVENT = 64


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
        #: Every connection of this loop reads into this one buffer and copies
        #: out only what came (``recv_into``).  A ``recv(RECV_SIZE)`` per read
        #: allocates 256 KiB each time, which glibc may serve with ``mmap``
        #: and ``munmap`` per message, depending on its allocation history:
        #: the echo cost flipped between 7 and 25 us per message on that.
        #: One loop runs on one thread, so one buffer per engine is safe.
        self.read_buffer = memoryview(bytearray(RECV_SIZE))

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
