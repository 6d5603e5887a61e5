"""The blocking driver: one connection served by one thread of control.

The iterative, thread, fork and gevent engines differ in what serves a
connection (the main thread, an OS thread, a child process, a greenlet) and
in how many of those run at once, but each serves its connection the way the
course's first servers did, top to bottom::

    connection_made
    loop:
        wait until the socket is readable, the waker is poked, or the next
            deadline (a call_later timer, the idle / first-bytes timeout, the
            shutdown deadline)
        readable  -> recv -> data_received    (b"": eof_received, then close
                                               unless it returns True)
        poked     -> run what other threads queued (call_soon_threadsafe),
                     notice close / resume_reading / a stopping server
        deadline  -> run the due timers, or close the idle connection
    connection_lost                           (exactly once)

Writes are synchronous: ``write`` is a ``send`` loop under a lock, so when it
returns the bytes are in the kernel.  There is no write buffer, hence no
high-water mark and no ``pause_writing``: a peer that reads slowly just slows
down whoever writes to it.  Simple code is the model's charm; a thread of
control per connection, idle or not, is its cost.

Why ``poll`` before ``recv`` rather than ``settimeout`` + ``recv``: a socket
has one timeout for all its operations, and other threads write to this
socket (a chat room broadcasting); a 5 ms timeout set for the next timer
would make their sends fail.  So the wait for input is a ``poll`` on the
socket plus a :class:`Waker` (an eventfd) that other threads poke, so that
nothing a protocol asks of another connection ever runs in the wrong thread.
Sends get one fixed limit, the idle timeout, as the kernel's own
``SO_SNDTIMEO``: a send that makes no progress that long fails.  (Python's
``settimeout`` would do it by a ``poll`` before every send and recv, and on
the thread engine each extra system call is one more hand-over of the GIL:
it halved the echo rate.  TLS sockets and gevent's do use ``settimeout``.)

Under gevent the sockets, locks and threads are gevent's (monkey-patched) and
the engine passes its own poller (``open_poller``), so this same code yields
to the hub.

This module is the connection loop; four engines share it, and what they
share beside it lives next door, one thing per module:

    blocking_wait.py         how the loop waits: Poller (a poll by default), Waker, ShutdownNotice
    blocking_send.py         how bytes and files leave the socket (send loop, sendfile, TCP_CORK)
    blocking_channels.py     data connections a protocol opens (FTP's open_listener / open_connection)
    blocking_udp.py          the UDP driver: one socket, one protocol
    blocking_connections.py  the engine's side: accept_one, and Connections, the set it stops gracefully
"""

from __future__ import annotations

import _socket
import collections
import logging
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any, TypeVar

from ionet.core.buffer import file_region
from ionet.core.config import Limits
from ionet.core.engines.base import DISCONNECTED_ERRNOS, ENDED, peer_label, tune_accepted
from ionet.core.engines.blocking_channels import Connector, DataListener
from ionet.core.engines.blocking_send import send_bytes, send_file
from ionet.core.engines.blocking_wait import (OpenPoller, Poller, ShutdownNotice, StatelessPoller,
                                              Stopping, Waker)
from ionet.core.protocol import DataChannel, Outcome, Protocol, TimerHandle, Transport
from ionet.core.timers import Clock, TimerQueue

log = logging.getLogger("ionet.engine")
T = TypeVar("T")

#: Bytes asked of one ``recv``: less than ``base.RECV_SIZE`` (256 KiB), on purpose.
#: ``recv(n)`` first allocates ``n`` bytes, then shrinks them to what came,
#: and glibc's malloc serves a request of 128 KiB or more with ``mmap``: a
#: 64-byte message then costs an ``mmap``, a page fault, an ``mremap`` and an
#: ``munmap`` (at 1,000 echo connections, a third of the gevent engine's time).
#: 64 KiB comes from the heap; a bulk transfer takes one ``recv`` per 64 KiB,
#: little beside copying them.
READ_SIZE = 64 * 1024

#: ``run_blocking(func)``: run ``func`` where it may block (inline, or gevent's
#: thread pool) and return its result.
RunBlocking = Callable[[Callable[[], Any]], Any]
WrapTLS = Callable[[socket.socket, ssl.SSLContext], ssl.SSLSocket]
#: ``spawn(transport)``: serve a new connection concurrently; False if it cannot.
Spawn = Callable[["BlockingTransport"], bool]


def call_inline(func: Callable[[], T]) -> T:
    """The default ``run_blocking``: the connection has a thread of its own to block."""
    return func()


def outcome_of(run_blocking: RunBlocking, func: Callable[[], T]) -> Outcome[T]:
    """Run ``func`` through ``run_blocking``; its value or exception, as a value."""
    try:
        return Outcome(run_blocking(func))
    except Exception as exc:  # any failure of the work is its result, for the callback
        return Outcome(None, exc)


def _shutdown_fd(fd: int, how: int) -> None:
    """``shutdown(how)`` on the connection behind ``fd``.

    Through a throwaway socket object over the same descriptor, because
    ``SSLSocket.shutdown`` would also drop its TLS state under the feet of the
    thread using it; the kernel's shutdown acts on the connection itself.
    """
    try:
        probe = _socket.socket(fileno=fd)
    except OSError:
        return
    try:
        probe.shutdown(how)
    except OSError:
        pass  # already disconnected
    finally:
        probe.detach()


def _wrap_tls(sock: socket.socket, context: ssl.SSLContext) -> ssl.SSLSocket:
    return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)


def _spawn_thread(transport: BlockingTransport) -> bool:
    """The default ``spawn``: a thread nobody tracks."""
    threading.Thread(target=transport.serve_connection, name=f"ionet-{transport.label}").start()
    return True


class BlockingTransport(Transport):
    """One connection, served to its end by :meth:`serve_connection`.

    ``own_timeouts``: the protocol times the connection itself (see
    ``Endpoint.own_timeouts``), so the idle and first-bytes deadlines are
    not applied; the TLS handshake and the send timeout still are (a thread
    blocked in ``send`` cannot run the protocol's timers).

    Protocol callbacks, timers and queued calls all run in the thread of
    control that calls ``serve_connection``.  ``write``, ``sendfile``,
    ``close``, ``abort``, ``pause_reading``/``resume_reading``,
    ``call_soon_threadsafe`` and ``notify_stopping`` may also be called from
    other threads; ``call_later``, ``run_in_worker`` and the data-channel
    methods belong to the protocol's own thread, as the contract says.
    """

    def __init__(
        self,
        sock: socket.socket,
        protocol: Any,
        limits: Limits,
        *,
        engine: str,
        ssl_context: ssl.SSLContext | None = None,
        stopping: Stopping | None = None,
        spawn: Spawn | None = None,
        run_blocking: RunBlocking | None = None,
        wrap_tls: WrapTLS | None = None,
        open_poller: OpenPoller | None = None,
        cooperative: bool = False,
        own_timeouts: bool = False,
        clock: Clock = time.monotonic,
    ) -> None:
        self.sock = sock
        self.protocol = protocol
        self.limits = limits
        self.engine = engine
        self.clock = clock
        self.timers = TimerQueue(clock)
        self.label = peer_label(sock)  # for log lines, even after the peer is gone
        self._fd = sock.fileno()
        self._context = ssl_context
        self._stopping = stopping
        self._spawn: Spawn = spawn or _spawn_thread
        self._run_blocking: RunBlocking = run_blocking or call_inline
        self._wrap_tls: WrapTLS = wrap_tls or _wrap_tls
        self._open_poller: OpenPoller = open_poller or StatelessPoller
        # gevent's sockets never block the process: they wait in the hub and
        # honour settimeout() there, so the kernel's timeouts do not apply.
        self._cooperative = cooperative
        self._extra: dict[str, Any] = {"socket": sock, "engine": engine}
        self._soon: collections.deque[Callable[[], None]] = collections.deque()
        self._from_threads: collections.deque[Callable[[], None]] = collections.deque()
        self._listeners: dict[int, DataListener] = {}  # open_listener sockets we watch
        self._connectors: list[Connector] = []  # open_connection calls under way
        self._children: list[BlockingTransport] = []  # data connections we opened
        # _lock guards the flags below and the descriptors' life; _io_lock
        # serialises sends (and TLS reads: one SSL object, one user at a time).
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._waker: Waker | None = None  # made by the serving thread, so unserved costs no fd
        self._poller: Poller | None = None  # likewise: how that thread waits
        self._owner: int | None = None
        self._reading = True
        self._eof = False
        self._closing = False  # close() or abort() was called: the loop ends
        self._closed = False  # the loop has ended
        self._fd_closed = False
        self._made = False  # connection_made was called, so connection_lost is due
        self._stop_requested = False  # notify_stopping() from another thread
        self._stop_seen = False  # server_stopping() delivered
        self._stop_deadline: float | None = None
        self._error: BaseException | None = None
        self.heard_from_peer = False
        self.own_timeouts = own_timeouts
        self.started = self.last_activity = clock()

    # -- the connection's own thread --------------------------------------

    def serve_connection(self) -> None:
        """Serve the connection until it closes; never raises."""
        try:
            with self._lock:
                self._owner = threading.get_ident()
                self._waker = Waker()
            steady = [self._waker.fileno(), self._fd]
            if self._stopping is not None:
                steady.append(self._stopping.fileno())
            self._poller = self._open_poller(steady)
            if self._closing:  # aborted before it started (a stopping server)
                return
            if self._context is not None and not self._handshake():
                return
            self._set_send_timeout()
            self._made = True
            self._protect("connection_made", self.protocol.connection_made, self)
            self._loop()
        except Exception as exc:  # a bug here must not take the server down
            log.exception("%s: the connection failed", self.label)
            self._error = self._error or exc
        finally:
            self._finish()

    def _handshake(self) -> bool:
        """TLS: wrap and shake hands here, so a slow client delays only itself."""
        limits = self.limits
        self.sock.settimeout(limits.first_bytes_timeout or limits.idle_timeout)
        try:
            tls = self._wrap_tls(self.sock, self._context)  # type: ignore[arg-type]
            with self._lock:
                self.sock = self._extra["socket"] = tls  # the same descriptor, behind ssl
            tls.do_handshake()
        except (OSError, ValueError) as exc:
            if not self._closing:
                log.info("%s: TLS handshake failed: %s", self.label, exc)
            return False
        self._extra["ssl_object"] = tls
        return True

    def _set_send_timeout(self) -> None:
        """A send that makes no progress for the idle timeout fails (TimeoutError)."""
        timeout = self.limits.idle_timeout
        if self._cooperative or isinstance(self.sock, ssl.SSLSocket):
            # TLS too: on a blocking socket the ssl module retries a write that
            # SO_SNDTIMEO interrupted, forever; its own timeout does work.
            self.sock.settimeout(timeout)
            return
        self.sock.settimeout(None)  # truly blocking: one system call per send or recv
        if timeout is not None:
            seconds = int(timeout)
            timeval = struct.pack("ll", seconds, int((timeout - seconds) * 1e6))
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)

    def _loop(self) -> None:
        while True:
            self._run_queued()
            if self._closing:
                return
            if self._stop_requested and not self._stop_seen:
                self._server_stopping()
            now = self.clock()
            deadline = self._deadline()
            if deadline is not None and deadline <= now:
                self._expire()
                return
            self._wait_once(self.timers.next_delay(None if deadline is None else deadline - now))
            if self.timers and not self._closing:
                self._protect("a timer callback", self.timers.run_due)

    def _wait_once(self, timeout: float | None) -> None:
        """Wait for input, a poke or the timeout, and handle what came."""
        assert self._waker is not None and self._poller is not None
        reading = self._reading and not self._eof
        stop_fd = self._stopping.fileno() if self._stopping and not self._stop_seen else None
        if reading and isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            ready = {self._fd}  # decrypted bytes, which the kernel cannot see
        else:
            fds = [self._waker.fileno(), *self._listeners]
            if stop_fd is not None:
                fds.append(stop_fd)
            if reading:
                fds.append(self._fd)
            ready = self._poller.wait(fds, timeout)
        if self._waker.fileno() in ready:
            self._waker.drain()
        if stop_fd in ready:
            assert self._stopping is not None
            self._stopping.drain()
            if self._stopping.is_set():
                self._server_stopping()
        if self._listeners:
            for fd in ready & self._listeners.keys():
                listener = self._listeners.get(fd)  # on_error may have closed it meanwhile
                if listener is not None:
                    listener.accept()
        if self._fd in ready and self._reading and not self._eof and not self._closing:
            self._read_once()

    def _read_once(self) -> None:
        try:
            if isinstance(self.sock, ssl.SSLSocket):
                with self._io_lock:
                    data = self.sock.recv(READ_SIZE)
            else:
                data = self.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return  # nothing after all (a TLS record is still incomplete)
        except ssl.SSLZeroReturnError:
            data = b""
        except OSError as exc:
            self._broken(exc)
            return
        if self._closing:
            return  # aborted by another thread meanwhile
        if data:
            self.heard_from_peer = True
            self.last_activity = self.clock()
            self._protect("data_received", self.protocol.data_received, data)
            return
        self._eof = True
        if not self._protect("eof_received", self.protocol.eof_received):
            self.close()

    def _deadline(self) -> float | None:
        """When this connection must be closed if nothing happens meanwhile."""
        limits = self.limits
        end = None
        if not self.own_timeouts:  # (else its protocol keeps the time)
            if not self.heard_from_peer and limits.first_bytes_timeout is not None:
                end = self.started + limits.first_bytes_timeout
            elif limits.idle_timeout is not None:
                end = self.last_activity + limits.idle_timeout
        stop = self._stop_deadline  # the sooner of the two (no list: this runs per message)
        if stop is None or (end is not None and end < stop):
            return end
        return stop

    def _expire(self) -> None:
        limits = self.limits
        if self._stop_deadline is not None and self._stop_deadline <= self.clock():
            log.info("%s: still open at the shutdown deadline; closing", self.label)
            self.abort()
        elif not self.heard_from_peer and limits.first_bytes_timeout is not None:
            log.info("%s: closed, no data within %.0fs", self.label, limits.first_bytes_timeout)
            self.close()
        else:
            log.info("%s: closed after %.0fs idle", self.label, limits.idle_timeout)
            self.close()

    def _server_stopping(self) -> None:
        self._stop_seen = True
        self._stop_deadline = self.clock() + self.limits.shutdown_timeout
        for child in self._children:
            child.notify_stopping()  # the data connections it opened stop with it
        self._protect("server_stopping", self.protocol.server_stopping)

    def _run_queued(self) -> None:
        """Run what ``run_in_worker`` and other threads queued, in order."""
        while (self._soon or self._from_threads) and not self._closing:
            if self._from_threads:
                self._protect("a call_soon_threadsafe callback", self._from_threads.popleft())
            else:
                self._soon.popleft()()

    def _protect(self, where: str, method: Callable[..., Any], *args: Any) -> Any:
        """Call protocol code; if it raises, log it with the peer and abort."""
        try:
            return method(*args)
        except Exception as exc:
            log.error("%s: %s failed; closing the connection", self.label, where, exc_info=exc)
            self._error = self._error or exc
            self.abort()
            return None

    def _finish(self) -> None:
        """Close the socket and tell the protocol, once."""
        with self._lock:
            if self._closed:
                return
            self._closed = self._closing = True
        for channel in [*self._listeners.values(), *self._connectors]:
            channel.close()
        if self._poller is not None:
            self._poller.close()  # before its descriptors close, as event loops ask
        with self._io_lock, self._lock:  # the io lock first: a send in another thread ends
            _shutdown_fd(self._fd, socket.SHUT_RDWR)
            self.sock.close()
            if self._waker is not None:
                self._waker.close()
            self._fd_closed = True
        self._soon.clear()
        self._from_threads.clear()
        if self._made:
            try:
                self.protocol.connection_lost(self._error)
            except Exception:
                log.exception("%s: connection_lost failed", self.label)
        self.protocol = ENDED  # no reference cycle left behind (see base.ENDED)

    def _broken(self, exc: OSError) -> None:
        """A send or recv failed: the connection is over, whoever noticed."""
        if isinstance(exc, TimeoutError):  # the socket timeout: no progress (a peer not reading)
            log.info("%s: closed, stalled for %.0fs", self.label, self.limits.idle_timeout)
        elif exc.errno not in DISCONNECTED_ERRNOS and not isinstance(exc, ssl.SSLError):
            log.info("%s: connection error: %s", self.label, exc)
        with self._lock:
            if self._error is None and not self._closed:
                self._error = exc
        self.abort()

    def _wake(self) -> None:
        """Poke the serving thread if another thread calls (hold ``_lock``)."""
        if self._waker is not None and not self._fd_closed \
                and self._owner != threading.get_ident():
            self._waker.wake()

    # -- the Transport interface ------------------------------------------

    def write(self, data: bytes) -> None:
        if not data:
            return
        with self._io_lock:
            if self._closing:
                return
            try:
                send_bytes(self.sock, memoryview(data))
            except OSError as exc:
                self._broken(exc)
                return
        self.last_activity = self.clock()

    def sendfile(self, file: IO[bytes], offset: int = 0, count: int | None = None,
                 header: bytes = b"") -> None:
        try:
            region = file_region(file, offset, count)
            with self._io_lock:
                if self._closing:
                    return
                send_file(self.sock, self._fd, file.fileno(), region.offset, region.remaining,
                          header, cooperative=self._cooperative,
                          timeout=self.limits.idle_timeout)
        except OSError as exc:
            self._broken(exc)
            return
        finally:
            file.close()  # the transport owns it: sent, failed or dropped
        self.last_activity = self.clock()

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        with self._lock:
            if not self._closing and not self._reading:
                self._reading = True
                self._wake()

    def is_reading(self) -> bool:
        return self._reading and not self._eof and not self._closing

    def close(self) -> None:
        with self._lock:
            if not self._closing:
                self._closing = True
                self._wake()

    def abort(self) -> None:
        with self._lock:
            self._closing = True
            if not self._fd_closed:
                _shutdown_fd(self._fd, socket.SHUT_RDWR)  # wakes a recv or send in any thread
            self._wake()

    def is_closing(self) -> bool:
        return self._closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name not in self._extra and name in ("peername", "sockname"):
            try:
                self._extra[name] = (self.sock.getpeername() if name == "peername"
                                     else self.sock.getsockname())
            except OSError:
                return default
        return self._extra.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0  # writes are synchronous: nothing is ever queued

    def set_protocol(self, protocol: Protocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Protocol:
        return self.protocol  # type: ignore[no-any-return]

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.timers.call_later(delay, callback)

    def call_soon_threadsafe(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if not self._closed:
                self._from_threads.append(callback)
                self._wake()

    def run_in_worker(self, func: Callable[[], T], callback: Callable[[Outcome[T]], None]) -> None:
        """Run ``func`` once the current callback returns, then ``callback``.

        The connection has a thread of control of its own, so ``func`` may
        block it (under gevent, ``run_blocking`` sends it to a real thread).
        Deferring both keeps the order a loop engine gives: ``run_in_worker``
        returns at once, and the callback never runs inside the caller.
        """
        def work() -> None:
            outcome = outcome_of(self._run_blocking, func)
            if not self._closing:
                self._protect("a worker callback", callback, outcome)

        self._soon.append(work)

    def notify_stopping(self) -> None:
        """The server is stopping: have the connection's own thread call
        ``server_stopping()`` (safe from any thread)."""
        with self._lock:
            self._stop_requested = True
            self._wake()

    # -- data connections (FTP) ---------------------------------------------

    def open_listener(
        self, factory: Callable[[], Protocol], host: str, ports: Sequence[int] = (0,),
        accept_from: Callable[[Any], bool] | None = None, timeout: float = 30.0,
        on_error: Callable[[BaseException], None] | None = None, ssl_context: Any = None,
    ) -> DataChannel:
        """Listen in this connection's own ``poll``; the connection that
        arrives is served by a thread (greenlet) of its own."""
        return DataListener(self, factory, host, ports, accept_from, timeout, on_error,
                             ssl_context)

    def open_connection(
        self, factory: Callable[[], Protocol], host: str, port: int, timeout: float = 30.0,
        on_error: Callable[[BaseException], None] | None = None, ssl_context: Any = None,
    ) -> DataChannel:
        """Connect in a helper thread (``connect`` blocks); the connection is
        then served by a thread (greenlet) of its own."""
        return Connector(self, factory, host, port, timeout, on_error, ssl_context)

    def _start_child(self, sock: socket.socket, factory: Callable[[], Protocol],
                     ssl_context: ssl.SSLContext | None) -> None:
        """Serve a data connection concurrently, configured like this one."""
        tune_accepted(sock)
        protocol = self._protect("a data connection's factory", factory)
        if protocol is None:
            sock.close()
            return
        stopping = self._stopping if isinstance(self._stopping, ShutdownNotice) else None
        child = BlockingTransport(
            sock, protocol, self.limits, engine=self.engine, ssl_context=ssl_context,
            stopping=stopping, spawn=self._spawn, run_blocking=self._run_blocking,
            wrap_tls=self._wrap_tls, open_poller=self._open_poller,
            cooperative=self._cooperative,
            own_timeouts=True,  # the protocol that asked for it times it (FTP's data timeout)
            clock=self.clock)
        if self._stop_seen:
            child.notify_stopping()
        if not self._spawn(child):
            sock.close()
            return
        self._children = [c for c in self._children if not c._closed] + [child]

    def _report(self, on_error: Callable[[BaseException], None] | None,
                exc: BaseException) -> None:
        """Deliver a data-channel failure to this connection's protocol."""
        if on_error is not None and not self._closing:
            self._protect("a data channel's on_error", on_error, exc)
