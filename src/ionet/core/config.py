"""What a server is asked to run: endpoints (where and what) and limits (how much).

A service describes itself as a list of :class:`Endpoint` objects (an address,
TCP or UDP, and a protocol factory); ``ionet.core.server.serve`` binds them
and hands them to an engine together with one :class:`Limits`.  Keeping this
as plain data, not class attributes, means a test can build two servers with
different settings in one process.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Callable, Literal, Union

from ionet.core.protocol import (
    DEFAULT_HIGH_WATER,
    DEFAULT_LOW_WATER,
    DatagramProtocol,
    Protocol,
)

Kind = Literal["tcp", "udp"]
AnyProtocolFactory = Union[Callable[[], Protocol], Callable[[], DatagramProtocol]]


@dataclass
class Endpoint:
    """One listening address of a service.

    Attributes:
        service: a short name for messages and logs ("echo", "http").
        kind: "tcp" (stream; TLS when ``ssl`` is set) or "udp" (datagrams).
        host: the address to bind; "" or "0.0.0.0" for every IPv4 address,
            "::" for every IPv6 (and IPv4, where the system maps them).
        port: the port; 0 picks a free one.
        factory: builds one protocol object per connection (TCP) or one per
            socket (UDP).
        ssl: a server-side ``ssl.SSLContext`` to speak TLS on this endpoint.
        busy_reply: bytes sent to a connection refused because the server is
            at its connection limit, before closing it (say, an FTP ``421``).
        same_port_as: bind to the port that this other endpoint (listed
            earlier) was given; lets TCP and UDP share a port number chosen
            with 0, and stays right when ``ionet up`` concatenates services.
        own_timeouts: the service times its connections itself, so the
            engine applies neither ``Limits.idle_timeout`` nor
            ``Limits.first_bytes_timeout`` to them.  FTP needs this: its
            control connection is silent while a transfer runs, and a
            download's data connection never hears from the client; its own
            idle and data timeouts know that.  (Connections a protocol opens
            with ``open_listener``/``open_connection`` are always timed by
            that protocol.)
    """

    service: str
    kind: Kind
    host: str
    port: int
    factory: AnyProtocolFactory
    ssl: ssl.SSLContext | None = None
    busy_reply: bytes = b""
    same_port_as: Endpoint | None = None
    own_timeouts: bool = False

    def url(self, port: int | None = None) -> str:
        """The endpoint as ``tcp://host:port`` (IPv6 hosts in brackets)."""
        host = self.host or "0.0.0.0"
        if ":" in host:
            host = f"[{host}]"
        scheme = "tls" if self.ssl is not None else self.kind
        return f"{scheme}://{host}:{self.port if port is None else port}"


@dataclass(frozen=True)
class Limits:
    """How much a server takes on, and how long it waits.

    Attributes:
        max_connections: open stream connections per process; the next one is
            accepted, sent the endpoint's ``busy_reply`` and closed.
        idle_timeout: seconds without any byte received before a connection
            is closed (None: never).  On the blocking engines it also bounds
            a send that makes no progress, on every connection.
        first_bytes_timeout: seconds a new connection may stay silent before
            its first byte (None: only the idle timeout applies).  Cuts off
            clients that connect and send nothing.  It (or, if None, the
            idle timeout) also bounds the TLS handshake of an endpoint's
            connections, ``own_timeouts`` or not.
        shutdown_timeout: seconds that in-flight connections get to finish
            after SIGINT/SIGTERM before they are closed; also how long a
            closed connection's last bytes may make no progress before it is
            aborted (loop engines).
        high_water / low_water: outgoing buffer sizes (bytes) at which a
            protocol is told to pause / resume writing (it stops reading
            meanwhile, by default).
        worker_threads: threads in the pool behind ``run_in_worker`` on loop
            engines.

    The idle and first-bytes timeouts do not apply to connections whose
    service keeps its own time (:attr:`Endpoint.own_timeouts`), nor to those
    a protocol opens itself (``open_listener``/``open_connection``).
    """

    max_connections: int = 10_000
    idle_timeout: float | None = 300.0
    first_bytes_timeout: float | None = 60.0
    shutdown_timeout: float = 10.0
    high_water: int = DEFAULT_HIGH_WATER
    low_water: int = DEFAULT_LOW_WATER
    worker_threads: int = 16

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {self.max_connections}")
        if not 0 <= self.low_water <= self.high_water:
            raise ValueError("need 0 <= low_water <= high_water")
        for name in ("idle_timeout", "first_bytes_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None, not {value}")
