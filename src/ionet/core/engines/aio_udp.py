"""UDP on the asyncio engines: one socket, one protocol.

A UDP listener has no connections: one protocol object hears every datagram
(``datagram_received(data, addr)``) and answers with ``sendto``.  asyncio's
``loop.create_datagram_endpoint`` already reads the socket and queues what
it cannot send yet, so :class:`AioDatagramEndpoint` is only the adapter, in
both directions, as AioConnection is for a stream: asyncio's
``DatagramProtocol`` on one side, our ``DatagramTransport`` on the other.

What it adds is a bound on that queue: asyncio's datagram transport buffers
without limit while the socket is full, so past ``MAX_DATAGRAM_BACKLOG``
bytes new datagrams are dropped, as UDP may.  It is apart from the stream
adapter because it shares none of its state: no peer, no EOF, no flow
control, no sendfile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ionet.core.engines.aio_connection import AioTimer
from ionet.core.listeners import Listener
from ionet.core.protocol import (
    DatagramProtocol,
    DatagramTransport,
    Outcome,
    TimerHandle,
)

if TYPE_CHECKING:
    from ionet.core.engines.aio import AsyncioEngine

log = logging.getLogger("ionet.engine")
T = TypeVar("T")

#: Bytes of outgoing datagrams the loop may hold while the socket is full;
#: beyond, new ones are dropped (UDP may drop; reactor_udp.py keeps 1024 datagrams).
MAX_DATAGRAM_BACKLOG = 1 << 20


class AioDatagramEndpoint(asyncio.DatagramProtocol, DatagramTransport):
    """A UDP socket: asyncio's datagram protocol, and our protocol's transport."""

    def __init__(self, engine: AsyncioEngine, listener: Listener) -> None:
        self.engine = engine
        self.listener = listener
        self._aio: asyncio.DatagramTransport = None  # type: ignore[assignment]
        self.protocol: DatagramProtocol = listener.endpoint.factory()  # type: ignore[assignment]
        self._closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._aio = transport  # type: ignore[assignment]
        self.engine.datagram_endpoints.append(self)
        self._call("connection_made", self.protocol.connection_made, self)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._call("datagram_received", self.protocol.datagram_received, data, addr)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self._call("error_received", self.protocol.error_received, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self in self.engine.datagram_endpoints:
            self.engine.datagram_endpoints.remove(self)
        self._call("connection_lost", self.protocol.connection_lost, exc)

    def _call(self, where: str, func: Callable[..., Any], *args: Any) -> None:
        try:
            func(*args)
        except Exception:
            log.exception("udp %s: %s failed", self.listener.url(), where)

    def sendto(self, data: bytes, addr: Any) -> None:
        # (The stubs lack get_write_buffer_size on datagram transports; asyncio
        # and uvloop both have it.)
        backlog: int = self._aio.get_write_buffer_size()  # type: ignore[attr-defined]
        if self._closed or backlog > MAX_DATAGRAM_BACKLOG:
            return  # closed, or the socket is not keeping up: drop, as UDP may
        self._aio.sendto(data, addr)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._aio.close()  # closes the listener's socket; connection_lost follows

    def is_closing(self) -> bool:
        return self._closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "engine":
            return self.engine.name
        return self._aio.get_extra_info(name, default)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        loop = asyncio.get_running_loop()
        return AioTimer(loop.call_later(delay, self._call, "a timer callback", callback))

    def run_in_worker(self, func: Callable[[], T], callback: Callable[[Outcome[T]], None]) -> None:
        def deliver(outcome: Outcome[T]) -> None:
            if not self._closed:
                self._call("a worker callback", callback, outcome)

        self.engine.run_in_worker(func, deliver)

    def notify_stopping(self) -> None:
        self._call("server_stopping", self.protocol.server_stopping)
