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

Sendfile.  ``loop.sendfile(transport, file)`` sends with ``os.sendfile``
(zero-copy), but while it runs asyncio's transport refuses ``write``.  So once
a file is queued, later writes wait in the adapter's own queue, and a pump
task sends the queue in order (bytes, the file, more bytes...); ``close()``
waits for the pump.  uvloop has no ``loop.sendfile``, and TLS cannot use
``os.sendfile`` (the kernel cannot encrypt), so there the pump reads the file
in chunks and writes them, waiting for ``resume_writing`` between chunks.
As the contract says, each file is ours once queued: closed when sent, or
when the connection ends first.

Reading.  Each connection is an ``asyncio.BufferedProtocol``: the
transport calls ``recv_into`` on one buffer that all connections of the
engine share (the loop runs one callback at a time, and each read is copied
out before our protocol sees it).  As a plain ``asyncio.Protocol`` it would
get ``sock.recv(256 KiB)`` per read: CPython allocates the 256 KiB, then
shrinks it to the bytes that came.  Whether glibc takes that from the heap
or maps it depends on the heap's layout; with 1,000 connections it was
``mmap`` every time, so each 64-byte echo also cost a page fault, ``mremap``
and ``munmap``: 27-30 us of CPU per message instead of ~7 (issue 2).  TLS
transports read into our buffer too, instead of their own 256 KiB reads.

Stopping.  The loop watches the :class:`StopSignal` pipe with ``add_reader``,
as reactor.py does.  SIGINT/SIGTERM reach it through the handlers ``serve()``
installed: the C handler wakes the loop, the Python handler sets the stop.
(``loop.add_signal_handler`` would do no more, and ``loop.close()`` would then
reset SIGTERM to its default, so a second SIGTERM during exit would kill us.)

Size.  The file is longer than the reactor's engines because it adapts in
both directions; reading order: the engine (loop, listeners, shutdown), the
connection adapter (events, Transport, the sendfile pump, timeouts), data
connections for FTP, and the UDP adapter.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import os
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, Awaitable, Callable, ClassVar, Sequence, TypeVar, cast

from ionet.core.buffer import SEND_CHUNK, FileRegion, file_region
from ionet.core.config import Limits
from ionet.core.engines.base import DISCONNECTED_ERRNOS, RECV_SIZE, Engine, tune_accepted
from ionet.core.errors import UserError
from ionet.core.listeners import BACKLOG, Listener, bind_first_free
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

log = logging.getLogger("ionet.engine")
T = TypeVar("T")

#: Bytes per ``loop.sendfile`` call.  A large file goes in pieces so that the
#: idle timer sees the progress, as reactor.py's timer sees each flush.
NATIVE_SENDFILE_CHUNK = 1 << 20
#: Bytes of outgoing datagrams the loop may hold while the socket is full;
#: beyond, new ones are dropped (UDP may drop; reactor.py keeps 1024 datagrams).
MAX_DATAGRAM_BACKLOG = 1 << 20
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
        #: Where asyncio reads into, for every connection (see "Reading" above).
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


def _label(addr: Any) -> str:
    """A peer address for a log line, written as base.peer_label writes it."""
    if isinstance(addr, tuple):
        host = f"[{addr[0]}]" if ":" in str(addr[0]) else addr[0]
        return f"{host}:{addr[1]}"
    return "?" if addr is None else str(addr)


class _Timer(TimerHandle):
    """Our TimerHandle over asyncio's (which is not a subclass of ours)."""

    def __init__(self, handle: asyncio.TimerHandle) -> None:
        self._handle = handle

    def cancel(self) -> None:
        self._handle.cancel()


class AioConnection(asyncio.BufferedProtocol, Transport):
    """One TCP (or TLS) connection: asyncio's protocol, and our protocol's transport."""

    def __init__(self, engine: AsyncioEngine, factory: Callable[[], Protocol], tls: bool,
                 busy_reply: bytes | None, own_timeouts: bool = False) -> None:
        """``busy_reply`` is sent before closing when the server is full; None
        for data connections, which are never refused (as in reactor.py).
        ``own_timeouts``: the protocol times the connection itself (see
        ``Endpoint.own_timeouts``): no idle or first-bytes deadline here.
        (A TLS handshake is over before this object hears of the connection;
        ``ssl_handshake_timeout`` bounds it.)"""
        self.engine = engine
        self._loop = asyncio.get_running_loop()
        self._limits = engine.limits
        self._factory = factory
        self._tls = tls
        self._busy_reply = busy_reply
        self._own_timeouts = own_timeouts
        self._aio: asyncio.Transport = None  # type: ignore[assignment]  # set in connection_made
        self._read_buffer = engine.read_buffer
        self._protocol: Protocol | None = None  # None: refused, or failed to start
        self._closing = False  # close() or abort() called, or the connection is gone
        self._close_pending = False  # close() waits for the pump
        self._lost = False  # asyncio reported connection_lost
        self._error: BaseException | None = None  # why we dropped the connection
        self._reading = True  # what our protocol asked for
        self._eof = False
        # Writes queued behind a file being sent, and the task sending them.
        self._queue: collections.deque[bytes | FileRegion] = collections.deque()
        self._queued_bytes = 0
        self._pump: asyncio.Task[None] | None = None
        self._sending: FileRegion | None = None  # the file the pump is on
        self._use_native_sendfile = engine.native_sendfile and not tls
        self._in_native_sendfile = False
        self._awaiting_empty = False
        self._writable: asyncio.Future[None] | None = None  # resolved by resume_writing
        # Flow control: asyncio's buffer is full / our protocol was told to pause.
        self._transport_full = False
        self._writing_paused = False
        self._in_resume_writing = False  # asyncio is calling our resume_writing
        # The lazy idle timer (see timers.py).
        self._heard_from_peer = False
        self._last_activity = self._loop.time()
        self._handed = 0  # bytes given to asyncio (or to os.sendfile) so far
        self._sent_at_last_check = 0
        self._idle_timer: asyncio.TimerHandle | None = None

    # -- asyncio's side: events, passed on to our protocol -------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._aio = transport  # type: ignore[assignment]
        engine = self.engine
        limits = self._limits
        if self._busy_reply is not None and len(engine.connections) >= limits.max_connections:
            # Over the limit: accepted, told why, and closed (base.py's rule).
            self._closing = True
            if self._busy_reply:
                self._aio.write(self._busy_reply)
            self._aio.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # asyncio sets TCP_NODELAY only when sock.proto is IPPROTO_TCP, and
            # sockets made with socket.socket(family, SOCK_STREAM) say 0.
            tune_accepted(sock)
        self._aio.set_write_buffer_limits(high=limits.high_water, low=limits.low_water)
        engine.connections.add(self)
        self._started = self._loop.time()
        if not self._own_timeouts:
            first = [t for t in (limits.first_bytes_timeout, limits.idle_timeout) if t is not None]
            self._arm_idle_timer(min(first) if first else None)
        try:
            self._protocol = self._factory()
        except Exception as exc:
            log.error("%s: the protocol factory failed; closing the connection", self._peer(),
                      exc_info=exc)
            self.abort()
            return
        self._call("connection_made", self._protocol.connection_made, self)
        if engine.stopping:  # a TLS handshake that ended after the stop began
            self.notify_stopping()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        # Copied out at once: the next read, on any connection, reuses the buffer.
        self.data_received(self._read_buffer[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        protocol = self._protocol
        if protocol is None or self._closing:
            return
        self._heard_from_peer = True
        self._last_activity = self._loop.time()
        try:  # _call's boundary, inlined: this runs once per read
            protocol.data_received(data)
        except Exception as exc:
            self._failed("data_received", exc)

    def eof_received(self) -> bool | None:
        if self._protocol is None:
            return None
        self._eof = True
        self._reading = False
        if not self._closing:
            keep_open = self._call("eof_received", self._protocol.eof_received)
            if not keep_open:
                self.close()
        # Closing is ours to do (after any queued file), so asyncio must not
        # close first; TLS transports close anyway (and warn about True).
        return None if self._tls else True

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = self._closing = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._pump is not None:
            self._pump.cancel()
        self._drop_queue()
        self.engine.forget(self)
        if self._protocol is None:  # refused, or its factory failed
            return
        if isinstance(exc, OSError) and exc.errno not in DISCONNECTED_ERRNOS \
                and not isinstance(exc, ssl.SSLError):
            log.info("%s: connection error: %s", self._peer(), exc)
        try:
            self._protocol.connection_lost(exc or self._error)
        except Exception:
            log.exception("%s: connection_lost failed", self._peer())

    def pause_writing(self) -> None:
        # asyncio's buffer passed the high-water mark -- unless we set the
        # marks to 0 ourselves, to learn when it empties (_wait_until_sent).
        if not self._awaiting_empty:
            self._transport_full = True
            self._update_flow()

    def resume_writing(self) -> None:
        self._transport_full = False
        self._last_activity = self._loop.time()  # the peer is reading
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._in_resume_writing = True  # see close()
        try:
            self._update_flow()
        finally:
            self._in_resume_writing = False

    # -- our protocol's side: the Transport interface ------------------------

    def write(self, data: bytes) -> None:
        if self._closing or not data:
            return
        if self._pump is not None:  # a file is on its way: keep the order
            self._queue.append(bytes(data))
            self._queued_bytes += len(data)
            self._update_flow()
        else:  # _hand, inlined: this runs once per write
            self._handed += len(data)
            self._aio.write(data)

    def sendfile(self, file: IO[bytes], offset: int = 0, count: int | None = None,
                 header: bytes = b"") -> None:
        # The file is ours from here: closed once sent, or when the connection ends.
        if self._closing:
            file.close()
            return
        if header:
            self.write(header)  # asyncio's transport has no corking to share
        region = file_region(file, offset, count)
        if not region.remaining:
            file.close()
            return
        self._queue.append(region)
        if self._pump is None:
            self._pump = self._loop.create_task(self._pump_queue())
            self._pump.add_done_callback(self._pump_cancelled)

    def pause_reading(self) -> None:
        self._reading = False
        self._apply_reading()

    def resume_reading(self) -> None:
        if not self._closing and not self._eof:
            self._reading = True
            self._apply_reading()

    def is_reading(self) -> bool:
        return self._reading

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.pause_reading()
        # From now on only the flush is timed, on every connection: what is
        # queued must keep moving (shutdown_timeout without progress: abort).
        self._last_activity = self._loop.time()
        self._sent_at_last_check = self._bytes_sent()
        self._arm_idle_timer(self._limits.shutdown_timeout)
        if self._pump is not None:
            self._close_pending = True  # the pump closes once the queue is sent
        elif self._in_resume_writing:
            # Our protocol wrote its last bytes from resume_writing, and
            # closes.  CPython 3.11's transport calls resume_writing from its
            # write handler, which, finding its buffer empty and the
            # transport closing, reports connection_lost itself -- and then
            # again from close(), failing inside asyncio.  So close after.
            self._loop.call_soon(self._aio.close)
        else:
            self._aio.close()

    def abort(self) -> None:
        self._closing = True
        self._drop_queue()
        if self._pump is not None:
            # Cancel first: asyncio's sendfile must take its writer off the
            # socket before the socket closes (_pump_cancelled then aborts).
            self._pump.cancel()
        elif self._aio is not None:
            self._aio.abort()

    def is_closing(self) -> bool:
        return self._closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "engine":
            return self.engine.name
        return self._aio.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._aio.get_write_buffer_size() + self._queued_bytes

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return _Timer(self._loop.call_later(delay, self._call, "a timer callback", callback))

    def call_soon_threadsafe(self, callback: Callable[[], None]) -> None:
        def run() -> None:
            if not self._lost:
                self._call("a call_soon_threadsafe callback", callback)

        try:
            self._loop.call_soon_threadsafe(run)
        except RuntimeError:
            pass  # the loop is closed: the server has stopped

    def run_in_worker(self, func: Callable[[], T], callback: Callable[[Outcome[T]], None]) -> None:
        def deliver(outcome: Outcome[T]) -> None:
            if not self._lost:
                self._call("a worker callback", callback, outcome)

        self.engine.run_in_worker(func, deliver)

    def set_protocol(self, protocol: Protocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> Protocol:
        assert self._protocol is not None
        return self._protocol

    def open_listener(
        self, factory: Callable[[], Protocol], host: str, ports: Sequence[int] = (0,),
        accept_from: Callable[[Any], bool] | None = None, timeout: float = 30.0,
        on_error: Callable[[BaseException], None] | None = None, ssl_context: Any = None,
    ) -> DataChannel:
        return AioDataChannel(self, factory, ssl_context, on_error, timeout,
                              listen_on=bind_first_free(host, ports), accept_from=accept_from)

    def open_connection(
        self, factory: Callable[[], Protocol], host: str, port: int, timeout: float = 30.0,
        on_error: Callable[[BaseException], None] | None = None, ssl_context: Any = None,
    ) -> DataChannel:
        return AioDataChannel(self, factory, ssl_context, on_error, timeout,
                              connect_to=(host, port))

    def notify_stopping(self) -> None:
        if self._protocol is not None:
            self._call("server_stopping", self._protocol.server_stopping)

    # -- internals -------------------------------------------------------------

    def _call(self, where: str, func: Callable[..., Any], *args: Any) -> Any:
        """Call into our protocol; if it raises, log with the peer and drop this connection."""
        try:
            return func(*args)
        except Exception as exc:
            self._failed(where, exc)
            return None

    def _failed(self, where: str, exc: Exception) -> None:
        """Our protocol raised in ``where``: log it with the peer, drop this connection."""
        log.error("%s: %s failed; closing the connection", self._peer(), where, exc_info=exc)
        self._error = exc
        self.abort()

    def _peer(self) -> str:
        return _label(self._aio.get_extra_info("peername") if self._aio is not None else None)

    def _apply_reading(self) -> None:
        """Make asyncio read, or not, as our protocol asked.

        Not during a native sendfile: asyncio pauses reading for it and
        restores its own idea afterwards, so we apply ours after each piece.
        """
        aio = self._aio
        if aio is None or self._in_native_sendfile or self._eof or aio.is_closing():
            return
        if self._reading:
            aio.resume_reading()
        else:
            aio.pause_reading()

    def _drop_queue(self) -> None:
        """Forget what waits behind a file; close the queued files (we own them).

        The file being sent is closed too, so that it is closed before
        ``connection_lost`` -- unless ``os.sendfile`` is using it right now
        (then the pump closes it as it unwinds).
        """
        if self._sending is not None and not self._in_native_sendfile:
            self._sending.file.close()
        for item in self._queue:
            if isinstance(item, FileRegion):
                item.file.close()
        self._queue.clear()
        self._queued_bytes = 0

    def _hand(self, data: bytes) -> None:
        """Give bytes to asyncio's transport, counting them for the idle timer."""
        self._handed += len(data)
        self._aio.write(data)

    def _bytes_sent(self) -> int:
        """Bytes that left asyncio's buffer for the kernel: grows while the peer reads."""
        return self._handed - self._aio.get_write_buffer_size()

    def _update_flow(self) -> None:
        """Tell our protocol to pause or resume writing, as reactor.py does.

        Our bytes wait in two places: asyncio's buffer (it reports crossing
        its water marks, which are ours) and our queue behind a file.
        """
        if self._protocol is None or self._lost:
            return
        limits = self._limits
        if not self._writing_paused:
            if self._transport_full or self._queued_bytes > limits.high_water:
                self._writing_paused = True
                self._call("pause_writing", self._protocol.pause_writing)
        elif not self._transport_full and self._queued_bytes <= limits.low_water:
            self._writing_paused = False
            self._call("resume_writing", self._protocol.resume_writing)

    # -- sendfile: the pump ------------------------------------------------------

    async def _pump_queue(self) -> None:
        """Send the queue in order: bytes to asyncio at once, files piece by piece."""
        queue = self._queue
        try:
            while queue and not self._aio.is_closing():
                item = queue.popleft()
                if isinstance(item, FileRegion):
                    self._sending = item
                    try:
                        await self._send_region(item)
                    finally:
                        self._sending = None
                        item.file.close()  # sent, failed or cancelled: we own it
                    continue
                chunks = [item]
                while queue and not isinstance(queue[0], FileRegion):
                    chunks.append(queue.popleft())  # type: ignore[arg-type]
                data = b"".join(chunks)
                self._queued_bytes -= len(data)
                self._hand(data)
                self._update_flow()
        except Exception as exc:  # the task's one boundary: this connection ends
            self._pump = None
            self._sendfile_failed(exc)
            return
        # No await since the last look at the queue: nothing can slip in.
        self._pump = None
        if self._close_pending:
            self._aio.close()

    def _pump_cancelled(self, task: asyncio.Task[None]) -> None:
        """abort() or connection_lost() cancelled the pump: finish the abort."""
        if self._pump is task:  # (a pump that ended normally already made way)
            self._pump = None
        if task.cancelled() and not self._lost:
            self._aio.abort()

    async def _send_region(self, region: FileRegion) -> None:
        if self._use_native_sendfile:
            try:
                await self._send_native(region)
                return
            except asyncio.SendfileNotAvailableError:
                pass  # not a regular file: copy it instead
        await self._copy_region(region)

    async def _send_native(self, region: FileRegion) -> None:
        """``os.sendfile`` through asyncio, one piece at a time."""
        await self._wait_until_sent()
        while region.remaining and not self._aio.is_closing():
            self._in_native_sendfile = True
            try:
                sent = await self._loop.sendfile(
                    self._aio, region.file, region.offset,
                    min(region.remaining, NATIVE_SENDFILE_CHUNK), fallback=False)
            finally:
                self._in_native_sendfile = False
                self._apply_reading()
            if not sent:
                raise BrokenPipeError(f"file ended {region.remaining} bytes early during sendfile")
            region.offset += sent
            region.remaining -= sent
            self._handed += sent
            self._last_activity = self._loop.time()

    async def _copy_region(self, region: FileRegion) -> None:
        """Read the file and write it (TLS, uvloop), pausing while asyncio's buffer is full."""
        fileno = region.file.fileno()
        while region.remaining and not self._aio.is_closing():
            chunk = os.pread(fileno, min(region.remaining, SEND_CHUNK), region.offset)
            if not chunk:
                raise BrokenPipeError(f"file ended {region.remaining} bytes early during sendfile")
            region.offset += len(chunk)
            region.remaining -= len(chunk)
            self._hand(chunk)
            self._last_activity = self._loop.time()
            # Give the loop a turn after every chunk, even when the buffer has
            # room: other connections get theirs, and a lost connection gets
            # noticed (a TLS transport whose socket died still takes writes).
            if self._transport_full:
                await self._wait_writable()
            else:
                await asyncio.sleep(0)

    async def _wait_writable(self) -> None:
        self._writable = self._loop.create_future()
        try:
            await self._writable
        finally:
            self._writable = None

    async def _wait_until_sent(self) -> None:
        """Wait until asyncio's own write buffer is empty.

        ``loop.sendfile`` waits for that itself, but an abort during that wait
        leaves CPython 3.11's transport half-restored, so we wait first, here.
        With both water marks at 0, asyncio calls ``resume_writing`` exactly
        when its buffer empties.
        """
        if self._aio.get_write_buffer_size() == 0:
            return
        self._awaiting_empty = True
        self._aio.set_write_buffer_limits(high=0, low=0)
        try:
            await self._wait_writable()
        finally:
            self._awaiting_empty = False
            self._aio.set_write_buffer_limits(high=self._limits.high_water,
                                              low=self._limits.low_water)

    def _sendfile_failed(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            if exc.errno not in DISCONNECTED_ERRNOS:
                log.info("%s: sendfile failed: %s", self._peer(), exc)
        else:
            log.error("%s: sendfile failed; closing the connection", self._peer(), exc_info=exc)
        self._error = exc
        self._closing = True
        self._drop_queue()
        self._aio.abort()

    # -- timeouts ----------------------------------------------------------------

    def _arm_idle_timer(self, delay: float | None) -> None:
        """(Re)start the one timer behind the deadlines of :meth:`_idle_check`."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._idle_timer = None if delay is None else self._loop.call_later(delay, self._idle_check)

    def _idle_check(self) -> None:
        """The idle timer fired: close, unless the peer was active meanwhile.

        reactor.py's ``_idle_check``, with one change: a closing connection
        whose last bytes are still flowing out gets ``shutdown_timeout`` from
        its last progress, rather than being aborted at the first tick.
        asyncio does not report each flush, so progress is read here from
        :meth:`_bytes_sent`, which grows whenever the peer takes our bytes.
        A connection with ``own_timeouts`` has only that flush deadline.
        """
        self._idle_timer = None
        if self._lost:
            return
        limits = self._limits
        now = self._loop.time()
        sent = self._bytes_sent()
        if sent > self._sent_at_last_check:  # the peer took some of our bytes meanwhile
            self._last_activity = now
        self._sent_at_last_check = sent
        if self._closing:  # close() is waiting for a flush
            remaining = self._last_activity + limits.shutdown_timeout - now
            if remaining > 0:
                self._arm_idle_timer(remaining)
            else:
                self.abort()
            return
        if self._own_timeouts:
            return  # its protocol keeps the time
        deadlines = []
        if not self._heard_from_peer and limits.first_bytes_timeout is not None:
            deadlines.append((self._started + limits.first_bytes_timeout, "no data within",
                              limits.first_bytes_timeout))
        if limits.idle_timeout is not None:
            deadlines.append((self._last_activity + limits.idle_timeout, "idle for",
                              limits.idle_timeout))
        if not deadlines:
            return
        deadline, reason, seconds = min(deadlines)
        if now < deadline:
            self._arm_idle_timer(deadline - now)
        else:
            log.info("%s: closed, %s %.0fs", self._peer(), reason, seconds)
            self.close()  # which gives the flush its own deadline


class AioDataChannel(DataChannel):
    """A data connection being set up for its owner (FTP's passive or active mode).

    A task accepts one connection on ``listen_on`` (passive), or connects to
    ``connect_to`` (active), within ``timeout``; the socket is then served by
    an :class:`AioConnection` (TLS as the server side, with ``ssl_context``).
    Failures reach ``on_error`` in the owner's context.

    ``close()`` gives up on a connection still to come, never on one that
    came: from the moment the socket is handed to asyncio, the connection
    belongs to its protocol, as on the other engines.  (Cancelling the task
    inside ``connect_accepted_socket`` would close the transport behind the
    protocol's back; uvloop then never calls ``connection_lost``, and the
    connection would stay counted until the shutdown deadline.)
    """

    def __init__(self, owner: AioConnection, factory: Callable[[], Protocol],
                 ssl_context: ssl.SSLContext | None,
                 on_error: Callable[[BaseException], None] | None, timeout: float, *,
                 listen_on: socket.socket | None = None,
                 accept_from: Callable[[Any], bool] | None = None,
                 connect_to: tuple[str, int] | None = None) -> None:
        self.owner = owner
        self._factory = factory
        self._ssl = ssl_context
        self._on_error = on_error
        self._timeout = timeout
        self._accept_from = accept_from
        self._address = connect_to
        #: Sockets this channel still owns, closed when its task ends.
        self._listening = listen_on
        self._connecting: socket.socket | None = None
        self._handed_over = False  # the socket is asyncio's: close() no longer applies
        if listen_on is not None:
            self.port = listen_on.getsockname()[1]
            opening: Callable[[], Awaitable[socket.socket]] = self._accept
        else:
            assert connect_to is not None
            family = socket.AF_INET6 if ":" in connect_to[0] else socket.AF_INET
            self._connecting = socket.socket(family, socket.SOCK_STREAM)
            self._connecting.setblocking(False)
            opening = self._connect
        self._task = asyncio.get_running_loop().create_task(self._run(opening))
        # Sockets are closed only once the task has ended, which takes the
        # loop's reader or writer off them first.
        self._task.add_done_callback(self._release)

    def close(self) -> None:
        if not self._handed_over:
            self._task.cancel()

    async def _accept(self) -> socket.socket:
        assert self._listening is not None
        loop = asyncio.get_running_loop()
        while True:
            sock, addr = await loop.sock_accept(self._listening)
            if self._accept_from is None or self._accept_from(addr):
                self._listening.close()  # one connection only
                return sock
            log.warning("data connection from %s refused: not the control peer", _label(addr))
            sock.close()

    async def _connect(self) -> socket.socket:
        sock = self._connecting
        assert sock is not None and self._address is not None
        await asyncio.get_running_loop().sock_connect(sock, self._address)
        self._connecting = None  # the connection owns it from here
        return sock

    async def _run(self, opening: Callable[[], Awaitable[socket.socket]]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                sock = await opening()
        except TimeoutError:
            self._report(TimeoutError("the data connection did not open in time"))
            return
        except OSError as exc:
            self._report(exc)
            return
        engine, tls = self.owner.engine, self._ssl is not None
        self._handed_over = True
        try:
            # The protocol that asked for this connection times it (FTP's data timeout).
            await asyncio.get_running_loop().connect_accepted_socket(
                functools.partial(AioConnection, engine, self._factory, tls, None, True), sock,
                ssl=self._ssl, ssl_handshake_timeout=self._timeout if tls else None)
        except (OSError, TimeoutError) as exc:  # the TLS handshake failed; asyncio closed it
            log.info("data connection: TLS handshake failed: %s", exc)

    def _release(self, task: asyncio.Task[None]) -> None:
        for sock in (self._listening, self._connecting):
            if sock is not None:
                sock.close()

    def _report(self, exc: BaseException) -> None:
        if self._on_error is not None and not self.owner._lost:
            self.owner._call("a data channel's on_error", self._on_error, exc)


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
        return _Timer(loop.call_later(delay, self._call, "a timer callback", callback))

    def run_in_worker(self, func: Callable[[], T], callback: Callable[[Outcome[T]], None]) -> None:
        def deliver(outcome: Outcome[T]) -> None:
            if not self._closed:
                self._call("a worker callback", callback, outcome)

        self.engine.run_in_worker(func, deliver)

    def notify_stopping(self) -> None:
        self._call("server_stopping", self.protocol.server_stopping)
