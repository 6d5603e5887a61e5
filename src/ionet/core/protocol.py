"""The one contract between a service and an engine: protocols and transports.

A *protocol* object holds the state of one conversation and reacts to events;
a *transport* is the engine's side of the connection, the only way a protocol
can act.  The names are asyncio's on purpose (``asyncio.Protocol``): a Python
programmer already knows them, and the same object runs on every engine.

Call order for a stream protocol (the fake transport in ``ionet.core.testing``
asserts it)::

    start -> connection_made -> data_received* -> eof_received? -> connection_lost -> end

``data_received`` may be given any split or merge of the byte stream: one
``send`` by the peer can arrive in ten pieces, and ten sends in one.  Message
boundaries therefore come from framing (``ionet.core.framing``), never from
how the bytes happened to arrive.

A protocol never calls ``recv``, ``send``, ``select`` or ``sleep``.  It answers
only through its transport: ``write``/``sendfile`` queue bytes (the engine
deals with partial sends), ``pause_reading``/``resume_reading`` apply
backpressure, ``call_later`` sets a timer, and ``run_in_worker`` runs a
blocking call (a database query, a WSGI app) without freezing a loop engine.

Datagram services (the UDP chat, UDP echo) use :class:`DatagramProtocol` with
``datagram_received(data, addr)`` and ``transport.sendto(data, addr)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import IO, Any, Callable, Generic, NamedTuple, Sequence, TypeVar

T = TypeVar("T")

#: Buffered outgoing bytes above which a transport calls ``pause_writing``.
DEFAULT_HIGH_WATER = 64 * 1024
#: Buffered outgoing bytes below which a paused transport calls ``resume_writing``.
DEFAULT_LOW_WATER = DEFAULT_HIGH_WATER // 4


class Outcome(NamedTuple, Generic[T]):
    """The result of a call run in a worker: a value, or the exception it raised.

    A named tuple: immutable, and made once per worker call with no Python
    ``__init__`` to run (``tuple.__new__(Outcome, (value, None))`` is how the
    worker pool makes one).
    """

    value: T | None = None
    error: BaseException | None = None

    def unwrap(self) -> T:
        """Return the value, or raise the exception the call raised."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class TimerHandle(ABC):
    """A timer set with ``Transport.call_later``; ``cancel()`` stops it firing."""

    @abstractmethod
    def cancel(self) -> None:
        """Stop the timer; harmless if it already fired or was cancelled."""


class BaseTransport(ABC):
    """What every transport offers, stream or datagram."""

    @abstractmethod
    def close(self) -> None:
        """Flush what is queued, then close.  ``connection_lost(None)`` follows."""

    @abstractmethod
    def is_closing(self) -> bool:
        """True once ``close`` or ``abort`` was called or the peer went away."""

    @abstractmethod
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Facts about the connection: ``peername``, ``sockname``, ``socket``,
        ``ssl_object``, ``engine`` (the engine's name)."""

    @abstractmethod
    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Call ``callback()`` in the protocol's context after ``delay`` seconds.

        The callback runs where the protocol's other callbacks run (the loop
        thread, or the connection's own thread), so it needs no locking.
        """

    @abstractmethod
    def run_in_worker(
        self, func: Callable[[], T], callback: Callable[[Outcome[T]], None]
    ) -> None:
        """Run a blocking ``func()`` off the event loop, then ``callback(outcome)``.

        Loop engines run ``func`` in a worker pool and deliver the outcome on
        the loop thread; blocking engines (iterative, thread, fork) simply call
        it in place, since their connection already has a thread of its own.
        ``callback`` is not called if the connection was lost meanwhile.
        """


class DataChannel(ABC):
    """A connection being set up by ``open_listener`` or ``open_connection``."""

    #: The local port a listener got (0 for an outgoing connection).
    port: int = 0

    @abstractmethod
    def close(self) -> None:
        """Give up: stop listening / connecting.  No callback follows.

        A connection that already arrived is its protocol's, and stays open."""


class Transport(BaseTransport):
    """The engine's side of one stream (TCP or TLS) connection."""

    def call_soon_threadsafe(self, callback: Callable[[], None]) -> None:
        """Run ``callback()`` in this connection's context, soon.  Safe from any thread.

        A protocol touches another connection's protocol only this way.  On
        loop engines every connection shares one thread and this is a plain
        queue; on the thread, fork and gevent engines a connection opened with
        ``open_listener``/``open_connection`` runs in a thread (greenlet) of
        its own, and must hand results back to its parent through this.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot call_soon_threadsafe")

    def set_protocol(self, protocol: Protocol) -> None:
        """Hand this connection to another protocol object (asyncio's name).

        For a protocol switch on one connection, as HTTP's ``Upgrade:
        websocket`` does: the HTTP protocol answers 101, then calls
        ``transport.set_protocol(ws)`` and ``ws.connection_made(transport)``;
        every later event goes to ``ws``.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot switch protocols")

    def get_protocol(self) -> Protocol:
        """The protocol object currently receiving this connection's events."""
        raise NotImplementedError(f"{type(self).__name__} cannot report its protocol")

    def open_listener(
        self,
        factory: Callable[[], Protocol],
        host: str,
        ports: Sequence[int] = (0,),
        accept_from: Callable[[Any], bool] | None = None,
        timeout: float = 30.0,
        on_error: Callable[[BaseException], None] | None = None,
        ssl_context: Any = None,
    ) -> DataChannel:
        """Listen on ``host`` for ONE incoming connection, served by ``factory()``.

        This is FTP's passive mode: the control connection opens a data port
        and tells the client where to connect.  The first port of ``ports``
        that can be bound is used (``(0,)``: any free port); ``accept_from``
        vets the peer's address (connections it refuses are closed and the
        listener keeps waiting); after ``timeout`` seconds without a connection,
        the listener closes and ``on_error(TimeoutError)`` is called, in this
        connection's context.  With ``ssl_context`` the new connection speaks
        TLS as the server side.

        The engine's idle and first-bytes timeouts do not apply to the new
        connection (a download's data connection never hears from the
        client): the protocol that asked for it times it.  ``close()`` on
        the returned channel gives up on a connection still to come, never
        on one that came.

        Raises:
            OSError: no port of ``ports`` could be bound.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot open listeners")

    def open_connection(
        self,
        factory: Callable[[], Protocol],
        host: str,
        port: int,
        timeout: float = 30.0,
        on_error: Callable[[BaseException], None] | None = None,
        ssl_context: Any = None,
    ) -> DataChannel:
        """Connect to ``host:port``; the new connection is served by ``factory()``.

        This is FTP's active mode (PORT/EPRT).  A failure or timeout calls
        ``on_error(exc)`` in this connection's context.  With ``ssl_context``
        the new connection speaks TLS as the *server* side (as FTPS data
        connections do).  As with ``open_listener``, the protocol times the
        new connection, and closing the channel leaves it alone once made.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot open connections")

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Queue ``data`` to be sent, in order.  Never blocks a loop engine."""

    def writelines(self, chunks: list[bytes]) -> None:
        """Queue several chunks; engines may send them in one system call."""
        self.write(b"".join(chunks))

    @abstractmethod
    def sendfile(self, file: IO[bytes], offset: int = 0, count: int | None = None,
                 header: bytes = b"") -> None:
        """Queue ``header``, then ``count`` bytes of ``file`` from ``offset`` (to its end if None).

        Sent with ``os.sendfile`` (zero-copy) where the engine and socket allow,
        otherwise by a read/write loop (TLS).  Queued writes keep their order
        with it.  The transport takes ownership of ``file``: it closes it once
        the region is sent, or when the connection ends first.

        ``header`` (an HTTP response head, say) is the same as a ``write``
        just before, except that the transport may hold it back to leave in
        one burst with the file's first bytes (``TCP_CORK`` on Linux, as
        nginx's ``tcp_nopush``): a small head alone in its own packet costs
        the receiver a wake-up per response, measurable on large files.
        """

    @abstractmethod
    def pause_reading(self) -> None:
        """Stop calling ``data_received`` until ``resume_reading``."""

    @abstractmethod
    def resume_reading(self) -> None:
        """Start calling ``data_received`` again."""

    @abstractmethod
    def is_reading(self) -> bool:
        """False while reading is paused."""

    @abstractmethod
    def abort(self) -> None:
        """Close at once, dropping anything still queued."""

    @abstractmethod
    def get_write_buffer_size(self) -> int:
        """Bytes queued and not yet handed to the kernel."""


class DatagramTransport(BaseTransport):
    """The engine's side of one UDP socket."""

    @abstractmethod
    def sendto(self, data: bytes, addr: Any) -> None:
        """Send one datagram to ``addr``; never blocks (may drop, as UDP does)."""


class Protocol:
    """Base class for stream protocols; override the events you need.

    Flow control by default: when this connection's outgoing buffer passes
    the high-water mark the transport calls ``pause_writing``, and this base
    class stops reading from the peer until the buffer drains
    (``resume_writing``).  A peer that sends faster than it reads therefore
    cannot make the server buffer without limit.
    """

    transport: Transport | None = None

    def connection_made(self, transport: Transport) -> None:
        """A peer connected; keep the transport to answer through it."""
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Some bytes arrived, in any split or merge of the stream."""

    def eof_received(self) -> bool | None:
        """The peer half-closed.  Return True to keep our side open (to finish
        writing); a false value closes the transport."""
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection is gone: ``exc`` is None after a clean close.

        Clean means every byte written before ``close()`` reached the kernel.
        A close whose flush the engine had to cut (no progress for
        ``Limits.shutdown_timeout``) reports a ``TimeoutError``, so that a
        protocol can tell a truncated response from a complete one.
        """

    def pause_writing(self) -> None:
        """The outgoing buffer passed the high-water mark: stop reading."""
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        """The outgoing buffer drained below the low-water mark: read again."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def server_stopping(self) -> None:
        """The server is shutting down gracefully.

        A protocol that is idle between requests (an HTTP keep-alive
        connection, say) should close now; one in the middle of a transfer may
        finish it.  Connections still open at the deadline are closed.
        """


class DatagramProtocol:
    """Base class for datagram (UDP) protocols."""

    transport: DatagramTransport | None = None

    def connection_made(self, transport: DatagramTransport) -> None:
        """The socket is ready; keep the transport to answer through it."""
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        """One datagram arrived from ``addr``."""

    def error_received(self, exc: OSError) -> None:
        """A send or receive failed (for instance ICMP port unreachable)."""

    def connection_lost(self, exc: BaseException | None) -> None:
        """The socket was closed."""

    def server_stopping(self) -> None:
        """The server is shutting down gracefully."""


ProtocolFactory = Callable[[], Protocol]
DatagramProtocolFactory = Callable[[], DatagramProtocol]
