"""A fake network for the split: HTTP protocol, upstream pool and framework, no sockets.

``Network`` links fake transports in pairs and moves the bytes between them
when told (``pump``), so a test decides exactly when the framework answers,
when a connection drops, and when time passes (a shared ``FakeClock``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ionet.core.protocol import DataChannel, Protocol
from ionet.core.testing import FakeClock, FakeTransport
from ionet.http.limits import HttpLimits
from ionet.http.protocol import HttpProtocol, HttpService
from ionet.http.upstream import UpstreamHandler
from ionet.web.split import SplitService


class _Channel(DataChannel):
    def __init__(self) -> None:
        self.cancelled = False

    def close(self) -> None:
        self.cancelled = True


class ClientTransport(FakeTransport):
    """The HTTP client connection's transport: it can open framework connections."""

    def __init__(self, network: Network) -> None:
        super().__init__(clock=network.clock, extra={"engine": "epoll"})
        self.network = network

    def open_connection(self, factory: Callable[[], Protocol], host: str, port: int,
                        timeout: float = 30.0,
                        on_error: Callable[[BaseException], None] | None = None,
                        ssl_context: Any = None) -> DataChannel:
        channel = _Channel()
        self.network.pending.append((self, factory, on_error, channel))
        return channel


class Network:
    """HTTP clients, an upstream pool and a framework process, all in memory.

    Args:
        app: the framework's WSGI app.
        timeout: the upstream handler's reply timeout.
        pool_size: its pool size.
    """

    def __init__(self, app: Any, timeout: float = 5.0, pool_size: int = 4) -> None:
        self.clock = FakeClock()
        self.framework = SplitService(app)
        self.handler = UpstreamHandler("framework", 9000, timeout=timeout, pool_size=pool_size,
                                       mode="loop")
        self.service = HttpService(self.handler, HttpLimits(), clock=self.clock)
        self.pending: list[tuple[ClientTransport, Callable[[], Protocol],
                                 Callable[[BaseException], None] | None, _Channel]] = []
        self.links: list[tuple[FakeTransport, FakeTransport]] = []
        self.up = True  # the framework accepts connections
        self.hold = False  # the framework's workers wait for run_framework()
        self.framework_transports: list[FakeTransport] = []

    def client(self) -> tuple[ClientTransport, HttpProtocol]:
        transport = ClientTransport(self)
        protocol = self.service()
        transport.connect(protocol)
        return transport, protocol

    def open_connections(self) -> None:
        pending, self.pending = self.pending, []
        for owner, factory, on_error, channel in pending:
            if channel.cancelled:
                continue
            if not self.up:
                if on_error is not None and not owner.lost:
                    on_error(ConnectionRefusedError(111, "Connection refused"))
                continue
            upstream = FakeTransport(clock=self.clock, extra={"engine": "epoll"})
            framework = FakeTransport(clock=self.clock, run_workers=not self.hold)
            framework.connect(self.framework())
            self.framework_transports.append(framework)
            self.links.append((upstream, framework))
            upstream.connect(factory())

    def run_framework(self) -> None:
        """Let held app calls run (``hold``: a slow framework)."""
        for transport in self.framework_transports:
            transport.run_pending_workers()

    def pump(self, rounds: int = 100) -> None:
        """Move bytes and closes across every link until nothing changes."""
        for _ in range(rounds):
            moved = bool(self.pending)
            self.open_connections()
            for a, b in list(self.links):
                for src, dst in ((a, b), (b, a)):
                    if src.chunks and not dst.lost and not dst.closed and dst.reading:
                        dst.feed(src.take())
                        moved = True
                for src, dst in ((a, b), (b, a)):
                    if src.closed and not src.lost:
                        src.lose()
                        moved = True
                        if not dst.lost:
                            if not dst.closed:
                                dst.feed_eof()
                            if dst.closed:
                                dst.lose()
                if a.lost and b.lost:
                    self.links.remove((a, b))
            if not moved:
                return
        raise AssertionError("the fake network never settled")

    def crash_framework(self) -> None:
        """The framework process dies: every link breaks, new connects are refused."""
        self.up = False
        for upstream, framework in self.links:
            if not framework.lost:
                framework.closed = True
                framework.lost = True  # no callbacks: the process is gone
            if not upstream.lost:
                upstream.lose(ConnectionResetError(104, "Connection reset by peer"))
        self.links.clear()
        self.framework_transports.clear()
