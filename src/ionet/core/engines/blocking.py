"""The blocking driver: one connection served by one thread of control.

The iterative, thread, fork and gevent engines differ in what serves a
connection (the main thread, an OS thread, a child process, a greenlet) and
in how many of those run at once, but each serves its connection the way the
course's first servers did, top to bottom::

    connection_made
    loop:
        wait until the socket is readable, or until the next deadline
            (a call_later timer, the idle / first-bytes timeout, the shutdown deadline)
        readable  -> recv -> data_received    (b"": eof_received, then close
                                               unless it returns True)
        deadline  -> run the due timers, or close the idle connection
    connection_lost                           (exactly once)

Writes are synchronous: ``write`` is a ``send`` loop under a lock, so when it
returns the bytes are in the kernel.  There is no write buffer, hence no
high-water mark and no ``pause_writing``: a peer that reads slowly just slows
down whoever writes to it.  Simple code is the model's charm; a thread of
control per connection, idle or not, is its cost.

Why wait with ``poll`` before ``recv`` instead of ``settimeout`` + ``recv``:
a socket has one timeout for all its operations, and other threads write to
this socket (a chat room broadcasting); a 5 ms timeout set for the next timer
would make their sends fail.  So the socket keeps one fixed timeout, the idle
timeout, bounding how long a send may make no progress, and the wait for
input is a ``poll`` on the socket plus a stop watch (``ShutdownNotice``, or
the server's ``StopSignal`` itself), so that a stopping server reaches each
protocol in its own thread.  Another thread wakes a connection blocked in that
``poll`` with ``shutdown()`` on its socket: the kernel then reports it readable
(``close``) or broken (``abort``).

Under gevent, ``select.poll``, the sockets and the locks are gevent's
(monkey-patched), so this same code yields to the hub instead of blocking.
"""

from __future__ import annotations

import _socket
import collections
import logging
import math
import os
import select
import socket
import ssl
import threading
import time
from typing import IO, Any, Callable, Protocol as TypingProtocol, TypeVar

from ionet.core.buffer import SEND_CHUNK, SENDFILE_CHUNK, file_region
from ionet.core.config import Limits
from ionet.core.engines.base import (
    ACCEPT_CAPACITY_ERRNOS,
    DISCONNECTED_ERRNOS,
    RECV_SIZE,
    peer_label,
    tune_accepted,
)
from ionet.core.listeners import Listener
from ionet.core.protocol import DatagramProtocol, DatagramTransport, Outcome, TimerHandle, Transport
from ionet.core.timers import Clock, TimerQueue

log = logging.getLogger("ionet.engine")
T = TypeVar("T")

#: How often a connection that is not reading (paused, or kept open after
#: EOF) looks at the stop watch when nothing else wakes it (seconds).
PAUSED_STOP_CHECK = 1.0
#: Connections accepted each time a listener is readable, before looking at
#: the stop pipe again.
ACCEPTS_PER_WAKEUP = 64
#: Datagrams read each time a UDP socket is readable.
DATAGRAMS_PER_WAKEUP = 64

#: The real ``select.poll``, kept before gevent may patch it: a zero-timeout
#: check never blocks, and gevent's poll cannot answer one reliably.
_REAL_POLL = select.poll

RunBlocking = Callable[[Callable[[], Any]], Any]
#: ``wait(fds, timeout)``: block until some of ``fds`` are readable or
#: ``timeout`` seconds pass (None: no limit); return the readable ones.
Wait = Callable[[list[int], "float | None"], set[int]]
WrapTLS = Callable[[socket.socket, ssl.SSLContext], ssl.SSLSocket]


class StopWatch(TypingProtocol):
    """What a connection watches to learn that the server is stopping.

    ``fileno()`` becomes readable; ``drain()`` consumes what it can; then
    ``is_set()`` says whether it was a stop.  Both :class:`ShutdownNotice` and
    :class:`~ionet.core.stop.StopSignal` fit.
    """

    def fileno(self) -> int: ...

    def drain(self) -> object: ...

    def is_set(self) -> bool: ...


class ShutdownNotice:
    """A latch that every connection of an engine watches: one pipe, never drained.

    ``set()`` writes one byte and nobody reads it, so the pipe stays readable
    for every thread, greenlet and forked child that polls it: one write
    wakes them all, each in its own thread of control.
    """

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._set = False

    def fileno(self) -> int:
        return self._read_fd

    def set(self) -> None:
        if not self._set:
            self._set = True
            os.write(self._write_fd, b"!")

    def drain(self) -> None:
        # Nothing to consume (other watchers need the byte); a forked child
        # learns of the stop only from the pipe, as its copy of the flag is stale.
        if not self._set and readable_now(self._read_fd):
            self._set = True

    def is_set(self) -> bool:
        return self._set

    def close(self) -> None:
        os.close(self._read_fd)
        os.close(self._write_fd)


def wait_readable(fds: list[int], timeout: float | None) -> set[int]:
    """Wait up to ``timeout`` seconds (None: forever) until one of ``fds`` is readable.

    ``select.poll`` is looked up at each call, so that under gevent it is the
    cooperative one; poll, unlike select, has no FD_SETSIZE limit.
    """
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    millis = None if timeout is None else max(0, math.ceil(timeout * 1000))
    return {fd for fd, _mask in poller.poll(millis)}


def readable_now(fd: int) -> bool:
    """True if ``fd`` is readable at this instant (never waits)."""
    poller = _REAL_POLL()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def accept_one(listener: Listener) -> socket.socket | None:
    """Accept one pending connection from a (non-blocking) listener.

    Returns None when there is none after all (another process took it, or
    the peer gave up).  Raises the OSError when the process is out of file
    descriptors or memory (``ACCEPT_CAPACITY_ERRNOS``): back off and retry.
    """
    try:
        sock, _addr = listener.sock.accept()
    except (BlockingIOError, InterruptedError):
        return None
    except OSError as exc:
        if exc.errno in ACCEPT_CAPACITY_ERRNOS:
            raise
        log.debug("accept failed: %s", exc)
        return None
    tune_accepted(sock)
    return sock


def refuse(sock: socket.socket, reply: bytes) -> None:
    """Turn away a connection over the limit: a best-effort reply, then close."""
    try:
        sock.setblocking(False)  # a reply that does not fit is dropped, never waited for
        if reply:
            sock.send(reply)
    except OSError:
        pass
    sock.close()


def _shutdown_fd(fd: int, how: int) -> None:
    """``shutdown(how)`` on the connection behind ``fd``.

    Done through a throwaway socket object over the same descriptor, because
    ``SSLSocket.shutdown`` would also drop its TLS state under the feet of the
    thread using it; the kernel's shutdown acts on the connection itself.
    """
    probe = _socket.socket(fileno=fd)
    try:
        probe.shutdown(how)
    except OSError:
        pass  # already disconnected
    finally:
        probe.detach()


def _call_inline(func: Callable[[], T]) -> T:
    return func()


class BlockingTransport(Transport):
    """One accepted connection, served to its end by :meth:`serve_connection`.

    Protocol callbacks, timers and worker callbacks all run in the thread of
    control that calls ``serve_connection``.  ``write``, ``sendfile``,
    ``close``, ``abort``, ``pause_reading``/``resume_reading`` and
    ``notify_stopping`` may also be called from other threads; ``call_later``
    and ``run_in_worker`` belong to the protocol's own thread, as the contract
    says.
    """

    def __init__(
        self,
        sock: socket.socket,
        protocol: Any,
        limits: Limits,
        *,
        engine: str,
        ssl_context: ssl.SSLContext | None = None,
        stopping: StopWatch | None = None,
        run_blocking: RunBlocking | None = None,
        wrap_tls: WrapTLS | None = None,
        wait: Wait | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.sock = sock
        self.protocol = protocol
        self.limits = limits
        self.clock = clock
        self.timers = TimerQueue(clock)
        self._fd = sock.fileno()
        self._context = ssl_context
        self._wrap_tls = wrap_tls or (
            lambda raw, ctx: ctx.wrap_socket(raw, server_side=True, do_handshake_on_connect=False))
        self._stopping = stopping
        self._run_blocking: RunBlocking = run_blocking or _call_inline
        self._wait: Wait = wait or wait_readable
        self._extra: dict[str, Any] = {"socket": sock, "engine": engine}
        self._label = peer_label(sock)  # for log lines, even after the peer is gone
        self._soon: collections.deque[Callable[[], None]] = collections.deque()
        # _lock guards the flags below and the descriptor's life; _io_lock
        # serialises sends (and TLS reads: one SSL object, one user at a time).
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._io_lock = threading.Lock()
        self._reading = True
        self._eof = False
        self._closing = False  # close() or abort(): the loop ends
        self._closed = False  # the loop ended
        self._fd_closed = False
        self._made = False  # connection_made was called
        self._stop_requested = False  # notify_stopping() from another thread
        self._stop_seen = False  # server_stopping() delivered
        self._stop_deadline: float | None = None
        self._error: BaseException | None = None
        self._owner: int | None = None
        self.heard_from_peer = False
        self.started = self.last_activity = clock()
        # Sends that make no progress for this long fail (None: wait forever).
        self._send_timeout = limits.idle_timeout

    # -- the connection's own thread --------------------------------------

    def serve_connection(self) -> None:
        """Serve the connection until it closes; never raises."""
        self._owner = threading.get_ident()
        try:
            if self._closing:  # aborted before it started (a stopping server)
                return
            if self._context is not None and not self._handshake():
                return
            self._made = True
            self._protect("connection_made", self.protocol.connection_made, self)
            self._loop()
        except Exception as exc:  # a bug here must not take the server down
            log.exception("%s: the connection failed", self._label)
            self._error = self._error or exc
        finally:
            self._finish()

    def _handshake(self) -> bool:
        """TLS: wrap and shake hands here, so a slow client delays only itself."""
        limits = self.limits
        raw = self.sock
        raw.settimeout(limits.first_bytes_timeout or limits.idle_timeout)
        try:
            tls = self._wrap_tls(raw, self._context)  # type: ignore[arg-type]
        except (OSError, ValueError) as exc:
            log.info("%s: TLS setup failed: %s", self._label, exc)
            return False
        with self._lock:
            self.sock = tls  # the same descriptor, now behind the ssl module
            self._extra["socket"] = tls
        try:
            tls.do_handshake()
        except (OSError, ValueError) as exc:
            if not self._closing:
                log.info("%s: TLS handshake failed: %s", self._label, exc)
            return False
        self._extra["ssl_object"] = tls
        tls.settimeout(self._send_timeout)
        return True

    def _loop(self) -> None:
        sock = self.sock
        tls = isinstance(sock, ssl.SSLSocket)
        watch = self._stopping
        while True:
            self._run_soon()
            if self._closing:
                return
            if self._stop_requested and not self._stop_seen:
                self._server_stopping()
            now = self.clock()
            deadline = self._deadline()
            if deadline is not None and deadline <= now:
                self._expire()
                return
            timeout = self.timers.next_delay(None if deadline is None else deadline - now)
            watching = watch is not None and not self._stop_seen
            if self._reading and not self._eof:
                if tls and sock.pending():  # type: ignore[attr-defined]
                    ready = {self._fd}  # decrypted bytes the kernel cannot see
                else:
                    fds = [self._fd, watch.fileno()] if watching else [self._fd]  # type: ignore[union-attr]
                    ready = self._wait(fds, timeout)
                if watching and watch.fileno() in ready:  # type: ignore[union-attr]
                    watch.drain()  # type: ignore[union-attr]
                    if watch.is_set():  # type: ignore[union-attr]
                        self._server_stopping()
                if self._fd in ready and self._reading and not self._closing:
                    self._read_once(tls)
            else:
                # Not reading: sleep until a timer is due or another thread
                # resumes, closes or stops us.
                if watching:
                    timeout = min(timeout if timeout is not None else math.inf, PAUSED_STOP_CHECK)
                with self._wakeup:
                    if not self._closing and not (self._reading and not self._eof) \
                            and not self._stop_requested:
                        self._wakeup.wait(timeout)
                if watching and readable_now(watch.fileno()):  # type: ignore[union-attr]
                    watch.drain()  # type: ignore[union-attr]
                    if watch.is_set():  # type: ignore[union-attr]
                        self._server_stopping()
            if self.timers and not self._closing:
                self._protect("a timer callback", self.timers.run_due)

    def _read_once(self, tls: bool) -> None:
        try:
            if tls:
                with self._io_lock:
                    data = self.sock.recv(RECV_SIZE)
            else:
                data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return  # nothing after all (a TLS record is still incomplete)
        except ssl.SSLZeroReturnError:
            data = b""
        except OSError as exc:
            self._broken(exc)
            return
        if self._closing:
            return  # closed by another thread meanwhile: its shutdown woke us
        if data:
            self.heard_from_peer = True
            self.last_activity = self.clock()
            self._protect("data_received", self.protocol.data_received, data)
            return
        self._eof = True
        keep_open = self._protect("eof_received", self.protocol.eof_received)
        if not keep_open:
            self.close()

    def _deadline(self) -> float | None:
        """When this connection must be closed if nothing happens meanwhile."""
        limits = self.limits
        if not self.heard_from_peer and limits.first_bytes_timeout is not None:
            idle_end: float | None = self.started + limits.first_bytes_timeout
        elif limits.idle_timeout is not None:
            idle_end = self.last_activity + limits.idle_timeout
        else:
            idle_end = None
        ends = [t for t in (idle_end, self._stop_deadline) if t is not None]
        return min(ends) if ends else None

    def _expire(self) -> None:
        limits = self.limits
        if self._stop_deadline is not None and self._stop_deadline <= self.clock():
            log.info("%s: still open at the shutdown deadline; closing", self._label)
            self.abort()
        elif not self.heard_from_peer and limits.first_bytes_timeout is not None:
            log.info("%s: closed, no data within %.0fs", self._label, limits.first_bytes_timeout)
            self.close()
        else:
            log.info("%s: closed after %.0fs idle", self._label, limits.idle_timeout)
            self.close()

    def _server_stopping(self) -> None:
        self._stop_seen = True
        self._stop_deadline = self.clock() + self.limits.shutdown_timeout
        self._protect("server_stopping", self.protocol.server_stopping)

    def _run_soon(self) -> None:
        while self._soon and not self._closing:
            self._soon.popleft()()

    def _protect(self, where: str, method: Callable[..., Any], *args: Any) -> Any:
        """Call a protocol method; if it raises, log it with the peer and close."""
        try:
            return method(*args)
        except Exception as exc:
            log.error("%s: %s failed; closing the connection", self._label, where,
                      exc_info=exc)
            self._error = self._error or exc
            self.abort()
            return None

    def _finish(self) -> None:
        """Close the socket and tell the protocol, once."""
        with self._lock:
            if self._closed:
                return
            self._closed = self._closing = True
            self._wakeup.notify_all()
        with self._io_lock:  # let a send in another thread end first
            with self._lock:
                if not self._fd_closed:
                    _shutdown_fd(self._fd, socket.SHUT_RDWR)
                    self.sock.close()
                    self._fd_closed = True
        self._soon.clear()
        if self._made:
            try:
                self.protocol.connection_lost(self._error)
            except Exception:
                log.exception("connection_lost failed")

    def _broken(self, exc: OSError) -> None:
        """A send or recv failed: the connection is over, whoever noticed."""
        if exc.errno not in DISCONNECTED_ERRNOS and not isinstance(exc, ssl.SSLError):
            log.info("%s: connection error: %s", self._label, exc or type(exc).__name__)
        with self._lock:
            if self._error is None and not self._closed:
                self._error = exc
        self.abort()

    # -- the Transport interface ------------------------------------------

    def write(self, data: bytes) -> None:
        if not data:
            return
        with self._io_lock:
            if self._closing:
                return
            try:
                self._send_bytes(memoryview(data))
            except OSError as exc:
                self._broken(exc)
                return
        self.last_activity = self.clock()

    def _send_bytes(self, view: memoryview) -> None:
        # send(), not sendall(): since Python 3.5 sendall's timeout is the
        # total time, and a 10 MB reply to a slow reader may take longer than
        # the idle timeout while making progress all along.
        sock = self.sock
        while view:
            sent = sock.send(view[:SEND_CHUNK])
            view = view[sent:]

    def sendfile(self, file: IO[bytes], offset: int = 0, count: int | None = None) -> None:
        region = file_region(file, offset, count)
        with self._io_lock:
            if self._closing:
                return
            try:
                if isinstance(self.sock, ssl.SSLSocket):
                    self._send_file_by_reading(file.fileno(), region.offset, region.remaining)
                else:
                    self._send_file_zero_copy(file.fileno(), region.offset, region.remaining)
            except OSError as exc:
                self._broken(exc)
                return
        self.last_activity = self.clock()

    def _send_file_zero_copy(self, in_fd: int, offset: int, remaining: int) -> None:
        """``os.sendfile``: the kernel copies from the page cache to the socket.

        The file's own position is not used or moved, so several connections
        may send from one open file.
        """
        while remaining:
            try:
                sent = os.sendfile(self._fd, in_fd, offset, min(remaining, SENDFILE_CHUNK))
            except BlockingIOError:  # a socket with a timeout is non-blocking inside
                if not self._wait_writable():
                    raise TimeoutError("timed out sending a file") from None
                continue
            if sent == 0:
                # The file is shorter than promised: the peer was told a length we cannot deliver.
                raise BrokenPipeError(f"file ended {remaining} bytes early during sendfile")
            offset += sent
            remaining -= sent

    def _send_file_by_reading(self, in_fd: int, offset: int, remaining: int) -> None:
        """TLS: the bytes must pass through the ssl module, so read and send them."""
        while remaining:
            chunk = os.pread(in_fd, min(remaining, SEND_CHUNK), offset)
            if not chunk:
                raise BrokenPipeError(f"file ended {remaining} bytes early during sendfile")
            self._send_bytes(memoryview(chunk))
            offset += len(chunk)
            remaining -= len(chunk)

    def _wait_writable(self) -> bool:
        poller = select.poll()
        poller.register(self._fd, select.POLLOUT)
        timeout = self._send_timeout
        return bool(poller.poll(None if timeout is None else math.ceil(timeout * 1000)))

    def pause_reading(self) -> None:
        with self._lock:
            self._reading = False

    def resume_reading(self) -> None:
        with self._lock:
            if not self._closing and not self._reading:
                self._reading = True
                self._wakeup.notify_all()

    def is_reading(self) -> bool:
        return self._reading and not self._eof and not self._closing

    def close(self) -> None:
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._wakeup.notify_all()
            if self._owner != threading.get_ident() and not self._fd_closed:
                # Wake the connection's thread if it waits in poll(): the
                # kernel reports a socket shut for reading as readable.
                _shutdown_fd(self._fd, socket.SHUT_RD)

    def abort(self) -> None:
        with self._lock:
            self._closing = True
            self._wakeup.notify_all()
            if not self._fd_closed:
                # Wakes a recv, poll or send blocked in any thread.
                _shutdown_fd(self._fd, socket.SHUT_RDWR)

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

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.timers.call_later(delay, callback)

    def run_in_worker(self, func: Callable[[], T], callback: Callable[[Outcome[T]], None]) -> None:
        """Run ``func`` once the current callback returns, then ``callback``.

        The connection has a thread of control of its own, so ``func`` may
        block it (under gevent, ``run_blocking`` sends it to a real thread).
        Deferring both keeps the order a loop engine gives: ``run_in_worker``
        returns at once, and the callback never runs inside the caller.
        """
        def work() -> None:
            try:
                outcome: Outcome[T] = Outcome(self._run_blocking(func))
            except Exception as exc:
                outcome = Outcome(None, exc)
            if not self._closing:
                self._protect("a worker callback", callback, outcome)

        self._soon.append(work)

    def notify_stopping(self) -> None:
        """The server is stopping: have the connection's own thread call
        ``server_stopping()`` (safe from any thread)."""
        with self._lock:
            self._stop_requested = True
            self._wakeup.notify_all()


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
        self._run_blocking: RunBlocking = run_blocking or _call_inline
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
            log.exception("udp %s: %s failed", self.listener.url(), getattr(method, "__name__", method))

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
        if self.closed:
            return
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
        def work() -> None:
            try:
                outcome: Outcome[T] = Outcome(self._run_blocking(func))
            except Exception as exc:
                outcome = Outcome(None, exc)
            self._call(callback, outcome)

        self._soon.append(work)


def serve_datagrams(listener: Listener, stopping: StopWatch, engine: str,
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
