"""UDP in the reactor's loop: one socket, one protocol object.

A UDP listener has no connections: :class:`DatagramSocket` is at once the
socket's :class:`~ionet.core.engines.reactor_events.Handler` in the loop and
the :class:`~ionet.core.protocol.DatagramTransport` of the one protocol that
answers every peer.  A readiness event reads up to ``DATAGRAMS_PER_EVENT``
datagrams, each to ``datagram_received``; ``sendto`` sends at once, and while
the socket is full it queues up to ``MAX_QUEUED_DATAGRAMS`` and asks the
poller for WRITE (beyond that it drops them, as UDP may).  What the protocol
raises is logged, and the socket goes on serving.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ionet.core.engines.reactor_events import READ, WRITE, Handler
from ionet.core.listeners import Listener
from ionet.core.protocol import DatagramProtocol, DatagramTransport, Outcome, TimerHandle

if TYPE_CHECKING:
    from ionet.core.engines.reactor import ReactorEngine

log = logging.getLogger("ionet.engine")
T = TypeVar("T")

#: Datagrams read per readiness event of a UDP socket.
DATAGRAMS_PER_EVENT = 64
#: Outgoing datagrams queued while the socket is full; beyond, drop (UDP may).
MAX_QUEUED_DATAGRAMS = 1024


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
