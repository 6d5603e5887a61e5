"""UDP on the blocking engines: one socket, one protocol, one thread of control.

A UDP listener has no connections: one protocol object hears every datagram
(``datagram_received(data, addr)``) and answers with ``sendto``.  So there is
nothing to accept and nothing to spawn; whoever serves the socket just
waits on it::

    connection_made
    loop until stopping:
        wait until the socket or the stop pipe is readable, or the next timer
        readable -> recvfrom (up to DATAGRAMS_PER_WAKEUP) -> datagram_received
        due      -> run the timers, then what run_in_worker queued
    server_stopping, close, connection_lost(None)

The thread and gevent engines give each UDP socket a thread (greenlet)
running :func:`serve_datagrams`; the iterative and fork engines fold their
sockets (a :class:`DatagramSet`) into their own ``select`` between accepts.  It is apart from the stream driver because it shares none of its
state: no peer, no EOF, no send lock (``sendto`` never blocks: a datagram
the kernel has no room for is dropped, as UDP may).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ionet.core.engines.blocking import RunBlocking, call_inline, outcome_of
from ionet.core.engines.blocking_wait import Stopping, Wait, wait_readable
from ionet.core.listeners import Listener
from ionet.core.protocol import DatagramProtocol, DatagramTransport, Outcome, TimerHandle
from ionet.core.timers import Clock, TimerQueue

log = logging.getLogger("ionet.engine")
T = TypeVar("T")

#: Datagrams read each time a UDP socket is readable.
DATAGRAMS_PER_WAKEUP = 64


class BlockingDatagramTransport(DatagramTransport):
    """A UDP listener and its one protocol, driven by whoever waits on it.

    The socket stays non-blocking: :meth:`handle_readable` reads what is
    there, and ``sendto`` drops a datagram the kernel has no room for (as UDP
    may).  Timers are serviced by :meth:`run_timers`; the caller folds
    :meth:`next_delay` into its own wait.
    """

    def __init__(self, listener: Listener, engine: str, run_blocking: RunBlocking | None = None,
                 clock: Clock = time.monotonic) -> None:
        self.listener = listener
        self.sock = listener.sock
        self.fd = self.sock.fileno()
        self.engine = engine
        self.protocol: DatagramProtocol = listener.endpoint.factory()  # type: ignore[assignment]
        self.timers = TimerQueue(clock)
        self._run_blocking: RunBlocking = run_blocking or call_inline
        self._soon: collections.deque[Callable[[], None]] = collections.deque()
        self.closed = False

    def start(self) -> None:
        self._call(self.protocol.connection_made, self)

    def handle_readable(self) -> None:
        for _ in range(DATAGRAMS_PER_WAKEUP):
            try:
                data, addr = self.sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._call(self.protocol.error_received, exc)
                break
            self._call(self.protocol.datagram_received, data, addr)
            if self.closed:
                return
        self._run_soon()

    def next_delay(self) -> float | None:
        """Seconds until this socket's next timer (0 if work is waiting)."""
        return 0.0 if self._soon else self.timers.next_delay()

    def run_timers(self) -> None:
        if self.timers:
            self._call(self.timers.run_due)
        self._run_soon()

    def _run_soon(self) -> None:
        while self._soon and not self.closed:
            self._soon.popleft()()

    def _call(self, method: Callable[..., Any], *args: Any) -> None:
        try:
            method(*args)
        except Exception:
            log.exception("udp %s: %s failed", self.listener.url(),
                          getattr(method, "__name__", method))

    def sendto(self, data: bytes, addr: Any) -> None:
        if self.closed:
            return
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            log.debug("udp %s: send buffer full, datagram dropped", self.listener.url())
        except OSError as exc:
            self._call(self.protocol.error_received, exc)

    def notify_stopping(self) -> None:
        self._call(self.protocol.server_stopping)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.listener.close()
            self._call(self.protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sockname":
            return self.sock.getsockname()
        return {"socket": self.sock, "engine": self.engine}.get(name, default)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.timers.call_later(delay, callback)

    def run_in_worker(self, func: Callable[[], T], callback: Callable[[Outcome[T]], None]) -> None:
        self._soon.append(lambda: self._call(callback, outcome_of(self._run_blocking, func)))


class DatagramSet:
    """The UDP sockets of an engine that watches them in its own ``select``."""

    def __init__(self, listeners: list[Listener], engine: str) -> None:
        self.by_fd = {listener.sock.fileno(): BlockingDatagramTransport(listener, engine)
                      for listener in listeners if listener.kind == "udp"}

    def start(self) -> None:
        for transport in self.by_fd.values():
            transport.start()

    def fds(self) -> list[int]:
        """The descriptors to watch for datagrams."""
        return list(self.by_fd)

    def delays(self) -> list[float]:
        """Seconds until each socket's next timer, for those that have one."""
        return [d for d in (t.next_delay() for t in self.by_fd.values()) if d is not None]

    def serve(self, readable: list[int]) -> None:
        """Read the sockets in ``readable``, then run every socket's due timers."""
        for fd, transport in self.by_fd.items():
            if fd in readable:
                transport.handle_readable()
            transport.run_timers()

    def stop(self) -> None:
        """Each protocol hears ``server_stopping()``, then its socket closes."""
        for transport in self.by_fd.values():
            transport.notify_stopping()
            transport.close()


def serve_datagrams(listener: Listener, stopping: Stopping, engine: str,
                    run_blocking: RunBlocking | None = None, wait: Wait | None = None) -> None:
    """Serve one UDP listener in the calling thread until ``stopping`` is set.

    Then the protocol hears ``server_stopping()``, the socket closes and it
    hears ``connection_lost(None)``.
    """
    transport = BlockingDatagramTransport(listener, engine, run_blocking)
    wait = wait or wait_readable
    transport.start()
    try:
        while not transport.closed:
            ready = wait([transport.fd, stopping.fileno()], transport.next_delay())
            if stopping.fileno() in ready:
                stopping.drain()
                if stopping.is_set():
                    transport.notify_stopping()
                    break
            if transport.fd in ready:
                transport.handle_readable()
            transport.run_timers()
    finally:
        transport.close()
