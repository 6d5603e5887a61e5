"""Binding the listening sockets of a server: TCP and UDP, IPv4 and IPv6.

Sockets are made here, inside ``serve()``, never at import time, so that a
test can run two servers in one process and ``--workers`` can fork after
binding.  With ``--workers N`` every worker gets a socket of its own, all
bound to the same address with ``SO_REUSEPORT``: the kernel then spreads new
connections across the workers by a hash, instead of waking them all for
each one (a shared socket gave 16/48 of 64 connections in our measurements).
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import Sequence

from ionet.core.config import Endpoint
from ionet.core.errors import UserError

#: Pending connections the kernel queues per listening socket (capped by
#: /proc/sys/net/core/somaxconn).  High, so a burst of 1000 clients connecting
#: at once is not refused while the loop is busy.
BACKLOG = 4096

HAS_REUSEPORT = hasattr(socket, "SO_REUSEPORT")


@dataclass
class Listener:
    """A bound socket and the endpoint it serves."""

    endpoint: Endpoint
    sock: socket.socket

    @property
    def kind(self) -> str:
        return self.endpoint.kind

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def url(self) -> str:
        return self.endpoint.url(self.port)

    def close(self) -> None:
        self.sock.close()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind_socket(endpoint: Endpoint, port: int, reuse_port: bool = False) -> socket.socket:
    """Create, configure and bind one socket for ``endpoint`` on ``port``.

    Raises:
        UserError: the address is in use, not available, or not permitted,
            with a message naming the endpoint.
    """
    host = endpoint.host or "0.0.0.0"
    family = _family(host)
    kind = socket.SOCK_STREAM if endpoint.kind == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    try:
        # Restarting a server must not wait for TIME_WAIT connections to expire.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and HAS_REUSEPORT:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and host == "::":
            # "::" means every address, IPv4 included (as mapped addresses).
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise UserError(_bind_error_message(endpoint, host, port, exc)) from exc
    return sock


def _bind_error_message(endpoint: Endpoint, host: str, port: int, exc: OSError) -> str:
    where = f"{endpoint.service} ({endpoint.kind}) on {host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen for {where}: the address is already in use (try another --port)"
    if exc.errno == errno.EACCES:
        return f"cannot listen for {where}: permission denied (ports below 1024 need root)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen for {where}: no such local address (check --host)"
    return f"cannot listen for {where}: {exc.strerror or exc}"


def bind_all(endpoints: list[Endpoint], copies: int = 1) -> list[list[Listener]]:
    """Bind every endpoint ``copies`` times (once per worker).

    Returns one list of listeners per copy.  Copies share each port through
    ``SO_REUSEPORT`` where the system has it; elsewhere every copy shares one
    socket.  An endpoint with ``port=0`` gets a free port, which its copies
    and any endpoint with ``same_port_as`` pointing to it reuse.

    Raises:
        UserError: a socket could not be bound; nothing is left open.
    """
    share_one = copies > 1 and not HAS_REUSEPORT
    reuse = copies > 1 and HAS_REUSEPORT
    result: list[list[Listener]] = [[] for _ in range(copies)]
    ports: dict[int, int] = {}  # id(endpoint) -> the port it got
    try:
        for endpoint in endpoints:
            port = endpoint.port
            if endpoint.same_port_as is not None:
                try:
                    port = ports[id(endpoint.same_port_as)]
                except KeyError:
                    raise ValueError(f"{endpoint.url()}: same_port_as must name an endpoint "
                                     "listed before it") from None
            first = bind_socket(endpoint, port, reuse)
            port = first.getsockname()[1]
            ports[id(endpoint)] = port
            result[0].append(Listener(endpoint, first))
            for copy in range(1, copies):
                sock = first if share_one else bind_socket(endpoint, port, reuse)
                result[copy].append(Listener(endpoint, sock))
    except BaseException:
        for listeners in result:
            for listener in listeners:
                listener.close()
        raise
    return result


def bind_first_free(host: str, ports: Sequence[int]) -> socket.socket:
    """A non-blocking listening socket on the first port of ``ports`` that is free.

    For data connections a protocol opens itself (FTP passive mode): ``(0,)``
    takes any free port, a range honours ``--passive-ports``.

    Raises:
        OSError: no port of ``ports`` could be bound (the last error).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    last: OSError | None = None
    for port in ports:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            # A port from --passive-ports may still have connections in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(8)
            sock.setblocking(False)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(errno.EADDRINUSE, "no port to listen on")
