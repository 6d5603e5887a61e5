"""One asyncio connection: asyncio's protocol, and our protocol's transport.

aio.py's engine gives every TCP (or TLS) connection one :class:`AioConnection`,
the adapter between the two contracts, which share their names.  It reads
in four parts: asyncio's side (events in, passed on to our protocol, what it
raises caught here), our protocol's side (the Transport: writes through to
asyncio's transport, plus what asyncio lacks), the internals (errors,
reading, flow control over two buffers), and the timeouts.  Two side roads
live next door: the sendfile pump (``aio_sendfile.py``, a mixin of this
class) and the data channels (``aio_channels.py``).

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
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, TypeVar

from ionet.core.buffer import FileRegion, file_region
from ionet.core.engines.aio_channels import AioDataChannel, address_label
from ionet.core.engines.aio_sendfile import SendfilePump
from ionet.core.engines.base import DISCONNECTED_ERRNOS, ENDED, tune_accepted
from ionet.core.listeners import bind_first_free
from ionet.core.protocol import DataChannel, Outcome, Protocol, TimerHandle, Transport

if TYPE_CHECKING:
    from ionet.core.engines.aio import AsyncioEngine

log = logging.getLogger("ionet.engine")
T = TypeVar("T")


class AioTimer(TimerHandle):
    """Our TimerHandle over asyncio's (which is not a subclass of ours)."""

    def __init__(self, handle: asyncio.TimerHandle) -> None:
        self._handle = handle

    def cancel(self) -> None:
        self._handle.cancel()


class AioConnection(asyncio.BufferedProtocol, Transport, SendfilePump):
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
        self._factory: Callable[[], Protocol] | None = factory
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
        # Writes queued behind a file being sent, and the task sending them
        # (the pump: aio_sendfile.py).
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
        factory, self._factory = self._factory, None  # used once; it may hold its creator
        try:
            self._protocol = factory()
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
        self._protocol = ENDED  # no reference cycle left behind (see base.ENDED)

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
        # The pump (aio_sendfile.py) sends it, and what is written after it, in order.
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
        return AioTimer(self._loop.call_later(delay, self._call, "a timer callback", callback))

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
        return address_label(self._aio.get_extra_info("peername") if self._aio is not None else None)

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

    def _hand(self, data: bytes) -> None:
        """Give bytes to asyncio's transport, counting them for the idle timer."""
        self._handed += len(data)
        self._aio.write(data)

    def _bytes_sent(self) -> int:
        """Bytes that left asyncio's buffer for the kernel: grows while the peer reads."""
        return self._handed - self._aio.get_write_buffer_size()

    def _update_flow(self) -> None:
        """Tell our protocol to pause or resume writing, as reactor_connection.py does.

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

    async def _start_child(self, sock: socket.socket, factory: Callable[[], Protocol],
                           ssl_context: ssl.SSLContext | None, handshake_timeout: float) -> None:
        """Serve a data channel's socket (aio_channels.py) as a connection of its own."""
        tls = ssl_context is not None
        # The protocol that asked for this connection times it (FTP's data timeout).
        await self._loop.connect_accepted_socket(
            functools.partial(AioConnection, self.engine, factory, tls, None, True), sock,
            ssl=ssl_context, ssl_handshake_timeout=handshake_timeout if tls else None)

    # -- timeouts ----------------------------------------------------------------

    def _arm_idle_timer(self, delay: float | None) -> None:
        """(Re)start the one timer behind the deadlines of :meth:`_idle_check`."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._idle_timer = None if delay is None else self._loop.call_later(delay, self._idle_check)

    def _idle_check(self) -> None:
        """The idle timer fired: close, unless the peer was active meanwhile.

        reactor_connection.py's ``_idle_check``, with one change: a closing connection
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
            else:  # cut: not a clean close (Protocol.connection_lost)
                self._error = TimeoutError(f"flush stalled for {limits.shutdown_timeout:g} s")
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
