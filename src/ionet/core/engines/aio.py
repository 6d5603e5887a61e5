"""The asyncio and uvloop engines: our contract on asyncio's own event loop.

Our protocol contract borrows asyncio's names on purpose (``connection_made``,
``data_received``, ``eof_received``, ``connection_lost``, ``pause_writing``),
so asyncio already does most of the work: ``loop.create_server`` accepts,
reads, buffers writes, speaks TLS and says when to pause.  A thin adapter adds
the rest.  Each connection gets one :class:`AioConnection`, which is two
things at once:

* to asyncio, an ``asyncio.Protocol`` that passes every event on to our
  protocol and catches what it raises (logged with the peer; only that
  connection is dropped, as base.py says);
* to our protocol, a :class:`~ionet.core.protocol.Transport` that passes
  ``write``, ``close`` and ``pause_reading`` through to asyncio's transport and
  adds what asyncio lacks: ``sendfile`` kept in order with ``write``,
  ``call_later``, ``run_in_worker`` (a thread pool whose results come back on
  the loop thread), data connections (FTP), and the limits: the connection
  cap, the idle and first-bytes timeouts, and graceful shutdown.

This module is the engine, what to read first: it makes the loop, starts a
server per TCP listener and a datagram endpoint per UDP one, owns the worker
pool, and shuts down gracefully (stop accepting, tell every protocol, wait
until the deadline, abort the rest).  The uvloop engine is the same code on
uvloop's loop.

Stopping.  The loop watches the :class:`StopSignal` pipe with ``add_reader``,
as reactor.py does.  SIGINT/SIGTERM reach it through the handlers ``serve()``
installed: the C handler wakes the loop, the Python handler sets the stop.
(``loop.add_signal_handler`` would do no more, and ``loop.close()`` would then
reset SIGTERM to its default, so a second SIGTERM during exit would kill us.)

The adapter adapts in both directions, so it is longer than the engine; it
lives next door, one thing per module:

    aio_connection.py  AioConnection: one TCP (or TLS) connection -- asyncio's
                       events in, the Transport out, flow control, timeouts,
                       and the read buffer every connection shares
    aio_sendfile.py    sendfile kept in order with write: the queue behind a
                       file, and the task that pumps it
    aio_channels.py    data connections a protocol opens (FTP's
                       open_listener / open_connection)
    aio_udp.py         AioDatagramEndpoint: a UDP socket and its one protocol
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar, TypeVar, cast

from ionet.core.config import Limits
from ionet.core.engines.aio_connection import AioConnection
from ionet.core.engines.aio_udp import AioDatagramEndpoint
from ionet.core.engines.base import RECV_SIZE, Engine
from ionet.core.errors import UserError
from ionet.core.listeners import BACKLOG, Listener
from ionet.core.protocol import Outcome, Protocol
from ionet.core.stop import StopSignal

log = logging.getLogger("ionet.engine")
T = TypeVar("T")

#: Seconds to wait for ``connection_lost`` to reach every protocol after the
#: shutdown deadline aborted the last connections.
ABORT_GRACE = 1.0


class AsyncioEngine(Engine):
    """asyncio's standard event loop (selectors over epoll, on Linux)."""

    name = "asyncio"
    is_loop = True
    #: Whether ``loop.sendfile`` can use ``os.sendfile`` on plain TCP.
    native_sendfile: ClassVar[bool] = True

    def __init__(self, limits: Limits) -> None:
        super().__init__(limits)
        self.connections: set[AioConnection] = set()
        self.datagram_endpoints: list[AioDatagramEndpoint] = []
        self.stopping = False
        self._executor: ThreadPoolExecutor | None = None
        self._pending_work = 0  # run_in_worker calls not yet delivered
        self._changed = asyncio.Event()  # a connection ended or a worker call finished
        self._finished = False  # run() is over: deliver no more worker results
        #: Where asyncio reads into, for every connection (aio_connection.py, "Reading").
        self.read_buffer = memoryview(bytearray(RECV_SIZE))

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """Create the loop this engine runs on."""
        return asyncio.new_event_loop()

    def run(self, listeners: list[Listener], stop: StopSignal) -> None:
        try:
            loop = self.new_event_loop()
        except BaseException:
            for listener in listeners:
                listener.close()
            raise
        try:
            loop.run_until_complete(self._serve(listeners, stop))
        finally:
            self._finished = True
            try:
                if self._executor is not None:
                    # Waits for calls still running; their results are dropped.
                    self._executor.shutdown(wait=True, cancel_futures=True)
                _finish_tasks(loop)
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()
                for listener in listeners:
                    listener.close()  # asyncio closed them already; harmless twice

    async def _serve(self, listeners: list[Listener], stop: StopSignal) -> None:
        loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        stop_requested = asyncio.Event()

        def on_stop_pipe() -> None:
            stop.drain()
            if stop.is_set():
                stop_requested.set()

        loop.add_reader(stop.fileno(), on_stop_pipe)
        servers: list[asyncio.AbstractServer] = []
        try:
            for listener in listeners:
                if listener.kind == "tcp":
                    servers.append(await self._start_server(loop, listener))
                else:
                    await loop.create_datagram_endpoint(
                        functools.partial(AioDatagramEndpoint, self, listener), sock=listener.sock)
            on_stop_pipe()  # a stop requested before the loop ran
            await stop_requested.wait()
            await self._shutdown(servers)
        finally:
            loop.remove_reader(stop.fileno())
            for server in servers:
                server.close()
            for endpoint in list(self.datagram_endpoints):
                endpoint.close()
            for conn in list(self.connections):  # only left if something failed
                conn.abort()

    async def _start_server(self, loop: asyncio.AbstractEventLoop,
                            listener: Listener) -> asyncio.AbstractServer:
        endpoint = listener.endpoint
        limits = self.limits
        tls = endpoint.ssl is not None
        factory = cast(Callable[[], Protocol], endpoint.factory)
        # A TLS client that stalls in the handshake is a silent client too.
        handshake_timeout = (limits.first_bytes_timeout or limits.idle_timeout) if tls else None
        return await loop.create_server(
            functools.partial(AioConnection, self, factory, tls, endpoint.busy_reply,
                              endpoint.own_timeouts),
            sock=listener.sock, ssl=endpoint.ssl, backlog=BACKLOG,
            ssl_handshake_timeout=handshake_timeout)

    async def _shutdown(self, servers: list[asyncio.AbstractServer]) -> None:
        """Stop accepting, tell every protocol, wait for the deadline, abort the rest."""
        log.info("shutting down: %d connection(s) open", len(self.connections))
        self.stopping = True
        for server in servers:
            server.close()  # stop listening; open connections carry on
        for conn in list(self.connections):
            conn.notify_stopping()
        for endpoint in list(self.datagram_endpoints):
            endpoint.notify_stopping()
            endpoint.close()
        if not await self._wait_until_quiet(self.limits.shutdown_timeout):
            log.warning("shutdown deadline passed: closing %d connection(s)", len(self.connections))
            for conn in list(self.connections):
                conn.abort()
            await self._wait_until_quiet(ABORT_GRACE)
        await asyncio.sleep(0)  # let the last close callbacks run

    async def _wait_until_quiet(self, timeout: float) -> bool:
        """Wait until no connection is open and no worker call is pending.

        Returns False if ``timeout`` seconds passed first.
        """
        try:
            async with asyncio.timeout(timeout):
                while self.connections or self._pending_work:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    def forget(self, conn: AioConnection) -> None:
        """A connection ended: shutdown may be waiting for that."""
        self.connections.discard(conn)
        self._changed.set()

    def run_in_worker(self, func: Callable[[], T], callback: Callable[[Outcome[T]], None]) -> None:
        """Run ``func`` on a pool thread; ``callback(outcome)`` runs later on the loop thread."""
        loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.limits.worker_threads,
                                                thread_name_prefix="ionet-worker")
        self._pending_work += 1
        future = loop.run_in_executor(self._executor, func)

        def finished(future: asyncio.Future[T]) -> None:
            self._pending_work -= 1
            self._changed.set()
            if future.cancelled() or self._finished:
                return
            error = future.exception()
            callback(Outcome(None, error) if error is not None else Outcome(future.result()))

        future.add_done_callback(finished)


class UvloopEngine(AsyncioEngine):
    """The same engine on uvloop's loop (libuv): same code, a faster loop."""

    name = "uvloop"
    native_sendfile = False  # uvloop has no loop.sendfile

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        # Imported here, not at the top, so that --engine asyncio works without uvloop.
        try:
            import uvloop
        except ImportError:
            raise UserError(
                "the uvloop engine needs the 'uvloop' package: pip install 'ionet[uvloop]'"
            ) from None
        return uvloop.new_event_loop()


def _finish_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel tasks still pending (a pump, a data channel) and let them end."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
