"""One TCP (or TLS) connection in the reactor's loop, and the transport its protocol writes to.

The loop (``reactor.py``) accepts a socket and calls :func:`start_connection`,
which makes a :class:`SocketTransport` (a :class:`TLSSocketTransport` for
TLS) and watches its descriptor.  The connection is then two things at once:

* to the loop, a :class:`~ionet.core.engines.reactor_events.Handler`:
  ``handle_read`` does one ``recv`` and passes the bytes to
  ``data_received`` (no bytes: ``eof_received``); ``handle_write`` flushes
  the :class:`~ionet.core.buffer.WriteBuffer`;
* to its protocol, the :class:`~ionet.core.protocol.Transport`: ``write``
  sends at once and queues only what the kernel did not take (only then is
  the poller asked for WRITE), ``sendfile`` queues a file region behind it,
  ``pause_reading`` changes what the poller watches for, ``close`` flushes
  first.

It keeps the connection's time too (one timer behind the first-bytes, idle
and closing deadlines, :meth:`SocketTransport._idle_check`), and catches
what its protocol raises, so that a faulty protocol costs one connection,
not the loop.  Data connections the protocol opens (FTP) are set up in
``reactor_channels.py`` and come back here through ``_start_child``.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from functools import partial
from typing import IO, TYPE_CHECKING, Any, TypeVar

from ionet.core.buffer import WOULD_BLOCK, WriteBuffer, file_region
from ionet.core.engines.base import DISCONNECTED_ERRNOS, ENDED, peer_label, tune_accepted
from ionet.core.engines.reactor_channels import Connector, DataAcceptor
from ionet.core.engines.reactor_events import READ, WRITE, Handler
from ionet.core.protocol import DataChannel, Outcome, Protocol, TimerHandle, Transport

if TYPE_CHECKING:
    from ionet.core.engines.reactor import ReactorEngine

log = logging.getLogger("ionet.engine")
T = TypeVar("T")

#: Files this large have their header corked with their first bytes (see
#: ``Transport.sendfile``); for smaller ones two setsockopt calls cost more
#: than the packet they save.
CORK_MIN_FILE = 64 * 1024
TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)


def make_protocol(factory: Callable[[], Any], sock: socket.socket) -> Any:
    """Call a protocol factory; if it fails, log, close ``sock``, return None.

    A bug in one service's factory must cost one connection, not the engine.
    """
    try:
        return factory()
    except Exception:
        log.exception("%s: the protocol factory failed; closing the connection", peer_label(sock))
        sock.close()
        return None


class SocketTransport(Transport, Handler):
    """One TCP connection in the loop: the transport its protocol writes to.

    ``own_timeouts``: the protocol times the connection itself (see
    ``Endpoint.own_timeouts``), so the idle and first-bytes deadlines are
    not applied once it has the connection.
    """

    use_sendfile = True
    corked = False
    #: Still in the TLS handshake: the protocol does not have the connection yet.
    handshaking = False

    def __init__(self, engine: ReactorEngine, sock: socket.socket, protocol: Any,
                 own_timeouts: bool = False) -> None:
        self.engine = engine
        self.sock = sock
        self.fd = sock.fileno()
        self.protocol = protocol
        self.buffer = WriteBuffer()
        self.reading = True
        self.closing = False  # close() called: flush, then close
        self.closed = False
        self.writing_paused = False  # protocol told to pause_writing
        self.eof = False  # the peer half-closed
        self.made = False  # connection_made was called (so connection_lost is owed)
        self.heard_from_peer = False
        self.own_timeouts = own_timeouts
        self.last_activity = engine.clock()
        self._events = READ
        self._timer: TimerHandle | None = None
        self._extra: dict[str, Any] = {"socket": sock, "engine": engine.name}
        engine._watch(self.fd, self, READ)
        engine.connections.add(self)
        self.started = self.last_activity
        if not own_timeouts or self.handshaking:
            limits = engine.limits
            first = [t for t in (limits.first_bytes_timeout, limits.idle_timeout) if t is not None]
            self._arm_idle_timer(min(first) if first else None)
        self.start()

    def start(self) -> None:
        """Hand the connection to its protocol (TLS: after the handshake)."""
        self.made = True
        try:
            self.protocol.connection_made(self)
        except Exception as exc:
            self._protocol_failed(exc, "connection_made")

    # -- readiness events ---------------------------------------------------

    def handle_read(self) -> None:
        buffer = self.engine.read_buffer  # shared by the loop's connections
        try:
            size = self.sock.recv_into(buffer)
        except WOULD_BLOCK:
            return
        except OSError as exc:
            self._connection_broken(exc)
            return
        if size:
            data = buffer[:size].tobytes()  # the protocol's own copy
            self.heard_from_peer = True
            self.last_activity = self.engine.clock()
            try:
                self.protocol.data_received(data)
            except Exception as exc:
                self._protocol_failed(exc, "data_received")
        else:
            self._eof_received()

    def handle_write(self) -> None:
        try:
            done = self.buffer.flush(self.sock, self.use_sendfile)
        except OSError as exc:
            self._connection_broken(exc)
            return
        self.last_activity = self.engine.clock()
        if done:
            if self.corked:
                self._set_cork(False)
            self._set_events(self._events & ~WRITE)
            if self.closing:
                self._finish()
                return
        if self.writing_paused and self.buffer.size <= self.engine.limits.low_water:
            self.writing_paused = False
            try:
                self.protocol.resume_writing()
            except Exception as exc:
                self._protocol_failed(exc, "resume_writing")

    def _eof_received(self) -> None:
        self._set_events(self._events & ~READ)
        self.reading = False
        self.eof = True  # resume_reading must not ask for a second EOF
        try:
            keep_open = self.protocol.eof_received()
        except Exception as exc:
            self._protocol_failed(exc, "eof_received")
            return
        if not keep_open:
            self.close()

    # -- the Transport interface ------------------------------------------

    def write(self, data: bytes) -> None:
        if self.closing or self.closed or not data:
            return
        buffer = self.buffer
        if not buffer:
            # Try to send at once: most writes fit in the kernel's buffer, and
            # then cost no queueing and no extra poller call.
            try:
                sent = self.sock.send(data)
            except WOULD_BLOCK:
                sent = 0
            except OSError as exc:
                self._connection_broken(exc)
                return
            if sent == len(data):
                return
            data = data[sent:]
            self._set_events(self._events | WRITE)
        buffer.append(data)
        self._check_high_water()

    def writelines(self, chunks: list[bytes]) -> None:
        self.write(b"".join(chunks))

    def sendfile(self, file: IO[bytes], offset: int = 0, count: int | None = None,
                 header: bytes = b"") -> None:
        if self.closing or self.closed:
            file.close()
            return
        region = file_region(file, offset, count)
        if (header and TCP_CORK is not None and self.use_sendfile and not self.buffer
                and region.remaining >= CORK_MIN_FILE):
            # Hold the head back until the file's bytes join it (nginx's
            # tcp_nopush); handle_write uncorks once the buffer is empty.
            self._set_cork(True)
        if header:
            self.write(header)
        was_empty = not self.buffer
        self.buffer.append_file(region)
        if was_empty and self.buffer:
            # As write() does: try at once; most small files go out in one
            # call, and then cost no poller change and no extra loop turn.
            self.handle_write()
            if self.buffer and not self.closed:
                self._set_events(self._events | WRITE)

    def _set_cork(self, on: bool) -> None:
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, TCP_CORK, int(on))
        except OSError:
            return  # a broken socket: the next send says so
        self.corked = on

    def _check_high_water(self) -> None:
        if not self.writing_paused and self.buffer.size > self.engine.limits.high_water:
            self.writing_paused = True
            try:
                self.protocol.pause_writing()
            except Exception as exc:
                self._protocol_failed(exc, "pause_writing")

    def pause_reading(self) -> None:
        if self.reading and not self.closed:
            self.reading = False
            self._set_events(self._events & ~READ)

    def resume_reading(self) -> None:
        if not self.reading and not self.closing and not self.closed and not self.eof:
            self.reading = True
            self._set_events(self._events | READ)

    def is_reading(self) -> bool:
        return self.reading

    def close(self) -> None:
        if self.closing or self.closed:
            return
        self.closing = True
        self.pause_reading()
        if not self.buffer:
            self._finish()
            return
        # From now on only the flush is timed, on every connection: what is
        # queued must keep moving (shutdown_timeout without progress: abort).
        self.last_activity = self.engine.clock()
        self._arm_idle_timer(self.engine.limits.shutdown_timeout)

    def abort(self) -> None:
        self.buffer.clear()
        self.closing = True
        self._finish()

    def is_closing(self) -> bool:
        return self.closing or self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name not in self._extra:
            try:
                if name == "peername":
                    self._extra[name] = self.sock.getpeername()
                elif name == "sockname":
                    self._extra[name] = self.sock.getsockname()
            except OSError:
                return default
        return self._extra.get(name, default)

    def get_write_buffer_size(self) -> int:
        return self.buffer.size

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        def fire() -> None:
            if not self.closed:
                try:
                    callback()
                except Exception as exc:
                    self._protocol_failed(exc, "a timer callback")

        return self.engine.call_later(delay, fire)

    def run_in_worker(self, func: Callable[[], T], callback: Callable[[Outcome[T]], None]) -> None:
        # (Once per WSGI request: a partial, not a closure, and the pool
        # reached directly.)
        pool = self.engine._pool or self.engine.start_pool()
        pool.submit(func, partial(self._deliver_outcome, callback))

    def _deliver_outcome(self, callback: Callable[[Outcome[T]], None],
                         outcome: Outcome[T]) -> None:
        if self.closed:
            return  # the connection ended while the call ran: nobody to tell
        try:
            callback(outcome)
        except Exception as exc:
            self._protocol_failed(exc, "a worker callback")

    def notify_stopping(self) -> None:
        if not self.made:  # still in its TLS handshake: start() tells it later
            return
        try:
            self.protocol.server_stopping()
        except Exception as exc:
            self._protocol_failed(exc, "server_stopping")

    def set_protocol(self, protocol: Protocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Protocol:
        return self.protocol  # type: ignore[no-any-return]

    def call_soon_threadsafe(self, callback: Callable[[], None]) -> None:
        def run() -> None:
            if not self.closed:
                try:
                    callback()
                except Exception as exc:
                    self._protocol_failed(exc, "a call_soon_threadsafe callback")

        self.engine.call_soon_threadsafe(run)

    def open_listener(
        self, factory: Callable[[], Protocol], host: str, ports: Sequence[int] = (0,),
        accept_from: Callable[[Any], bool] | None = None, timeout: float = 30.0,
        on_error: Callable[[BaseException], None] | None = None, ssl_context: Any = None,
    ) -> DataChannel:
        return DataAcceptor(self, factory, host, ports, accept_from, timeout, on_error, ssl_context)

    def open_connection(
        self, factory: Callable[[], Protocol], host: str, port: int, timeout: float = 30.0,
        on_error: Callable[[BaseException], None] | None = None, ssl_context: Any = None,
    ) -> DataChannel:
        return Connector(self, factory, host, port, timeout, on_error, ssl_context)

    def _report(self, on_error: Callable[[BaseException], None] | None, exc: BaseException) -> None:
        """Deliver a data-channel failure to this connection's protocol."""
        if on_error is not None and not self.closed:
            try:
                on_error(exc)
            except Exception as failure:
                self._protocol_failed(failure, "a data channel's on_error")

    def _start_child(self, sock: socket.socket, factory: Callable[[], Protocol],
                     ssl_context: ssl.SSLContext | None) -> None:
        """Serve a data channel's socket (reactor_channels.py) as a connection of its own."""
        protocol = make_protocol(factory, sock)
        if protocol is not None:
            # The protocol that asked for this connection times it (FTP's data timeout).
            start_connection(self.engine, sock, protocol, ssl_context, own_timeouts=True)

    # -- internals -----------------------------------------------------------

    def _set_events(self, events: int) -> None:
        if events != self._events and not self.closed:
            self._events = events
            assert self.engine.poller is not None
            self.engine.poller.modify(self.fd, events)

    def _arm_idle_timer(self, delay: float | None) -> None:
        """(Re)start the one timer behind all three deadlines below."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None if delay is None else self.engine.call_later(delay, self._idle_check)

    def _idle_check(self) -> None:
        """The idle timer fired: close if a deadline passed, else sleep again.

        Three deadlines, each measured lazily from recorded times: a new
        connection must send its first byte within ``first_bytes_timeout``
        of its start; any connection must show activity within
        ``idle_timeout``; a closing one must make flush progress within
        ``shutdown_timeout``, or it is aborted.  A connection with
        ``own_timeouts`` has only the last, and the first while its TLS
        handshake lasts.
        """
        self._timer = None
        if self.closed:
            return
        limits = self.engine.limits
        now = self.engine.clock()
        if self.closing:  # close() is waiting for a flush
            deadline = self.last_activity + limits.shutdown_timeout
            if now >= deadline:  # cut: not a clean close (Protocol.connection_lost)
                self.buffer.clear()
                self._finish(TimeoutError(f"flush stalled for {limits.shutdown_timeout:g} s"))
            else:
                self._arm_idle_timer(deadline - now)
            return
        if self.own_timeouts and not self.handshaking:
            return  # its protocol keeps the time
        deadlines = []
        if not self.heard_from_peer and limits.first_bytes_timeout is not None:
            deadlines.append((self.started + limits.first_bytes_timeout, "no data within", limits.first_bytes_timeout))
        if limits.idle_timeout is not None:
            deadlines.append((self.last_activity + limits.idle_timeout, "idle for", limits.idle_timeout))
        if not deadlines:
            return
        deadline, reason, seconds = min(deadlines)
        if now < deadline:
            self._arm_idle_timer(deadline - now)
            return
        log.info("%s: closed, %s %.0fs", peer_label(self.sock), reason, seconds)
        self.close()  # which gives the flush its own deadline

    def _connection_broken(self, exc: OSError) -> None:
        if exc.errno not in DISCONNECTED_ERRNOS and not isinstance(exc, ssl.SSLError):
            log.info("%s: connection error: %s", peer_label(self.sock), exc)
        self.buffer.clear()
        self._finish(exc)

    def _protocol_failed(self, exc: Exception, where: str) -> None:
        log.error("%s: %s failed; closing the connection", peer_label(self.sock), where,
                  exc_info=exc)
        self.buffer.clear()
        self._finish(exc)

    def _finish(self, exc: BaseException | None = None) -> None:
        """Close the socket now and tell the protocol, on the next loop turn."""
        if self.closed:
            return
        self.closed = self.closing = True
        engine = self.engine
        engine._unwatch(self.fd)
        engine.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        self.sock.close()
        if self.made:  # a failed TLS handshake never reached the protocol
            engine.call_soon(lambda: self._lost(exc))

    def _lost(self, exc: BaseException | None) -> None:
        try:
            self.protocol.connection_lost(exc)
        except Exception:
            log.exception("connection_lost failed")
        self.protocol = ENDED  # no reference cycle left behind (see base.ENDED)


class TLSSocketTransport(SocketTransport):
    """A TLS connection: the handshake and records go through ``ssl``, without blocking.

    ``do_handshake()`` on a non-blocking socket raises ``SSLWantReadError`` or
    ``SSLWantWriteError`` until the peer's bytes arrive; we wait for that
    readiness and try again.  (A blocking handshake inside the loop would
    stall every other client while one is slow.)  Decrypted bytes can sit in
    the ``ssl`` object's buffer where the poller cannot see them, so reads
    drain ``pending()``.  File regions are read and encrypted in user space:
    the kernel's sendfile cannot encrypt.
    """

    use_sendfile = False

    def __init__(self, engine: ReactorEngine, sock: socket.socket, protocol: Any,
                 context: ssl.SSLContext, own_timeouts: bool = False) -> None:
        self.handshaking = True
        tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        super().__init__(engine, tls, protocol, own_timeouts)

    def start(self) -> None:
        self._handshake()

    def _handshake(self) -> None:
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._set_events(READ)
            return
        except ssl.SSLWantWriteError:
            self._set_events(WRITE)
            return
        except (ssl.SSLError, OSError) as exc:
            log.info("%s: TLS handshake failed: %s", peer_label(sock), exc)
            self.abort()
            return
        self.handshaking = False
        self._extra["ssl_object"] = sock
        self._set_events(READ if self.reading else 0)
        super().start()
        if self.engine.stopping and not self.closed:
            self.notify_stopping()
        if not self.closed and self.reading:
            self.handle_read()  # application data may have come with the handshake

    def handle_read(self) -> None:
        if self.handshaking:
            self._handshake()
            return
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        buffer = self.engine.read_buffer
        while self.reading and not self.closed:
            try:
                size = sock.recv_into(buffer)
            except WOULD_BLOCK:
                return
            except ssl.SSLZeroReturnError:
                size = 0
            except OSError as exc:
                self._connection_broken(exc)
                return
            if not size:
                self._eof_received()
                return
            data = buffer[:size].tobytes()
            self.heard_from_peer = True
            self.last_activity = self.engine.clock()
            try:
                self.protocol.data_received(data)
            except Exception as exc:
                self._protocol_failed(exc, "data_received")
                return
            if not sock.pending():
                return

    def handle_write(self) -> None:
        if self.handshaking:
            self._handshake()
        else:
            super().handle_write()

    def write(self, data: bytes) -> None:
        if self.handshaking:
            self.buffer.append(data)  # sent once the handshake is done
            return
        super().write(data)


def start_connection(engine: ReactorEngine, sock: socket.socket, protocol: Any,
                     ssl_context: ssl.SSLContext | None, own_timeouts: bool) -> SocketTransport:
    """Serve an accepted or connected socket in the loop (TLS as the server side)."""
    sock.setblocking(False)
    tune_accepted(sock)
    if ssl_context is not None:
        return TLSSocketTransport(engine, sock, protocol, ssl_context, own_timeouts)
    return SocketTransport(engine, sock, protocol, own_timeouts)
