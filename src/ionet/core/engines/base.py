"""What every engine is: an object that serves bound listeners until stopped.

An engine owns the concurrency model and all socket IO; services only give it
protocol factories (see ``ionet.core.protocol``).  Each engine lives in a file
of its own, so that a student can read one model at a time:

    iterative.py  one connection at a time        thread.py  a thread per connection
    fork.py       a process per connection        select.py, poll.py, epoll.py  one event loop
    aio.py        asyncio (and uvloop)            green.py   gevent's hub

The shared rules, whatever the model:

* a protocol callback that raises is logged with its peer and closes that one
  connection, never the server (asyncio's ``_fatal_error``, bottle's catchall);
* past ``Limits.max_connections`` a new connection is accepted, sent its
  endpoint's ``busy_reply`` and closed, so the client learns why at once;
* a connection silent past ``Limits.first_bytes_timeout`` or
  ``Limits.idle_timeout`` is closed -- unless its endpoint says
  ``own_timeouts`` or a protocol opened it (``open_listener`` /
  ``open_connection``): then its protocol keeps the time;
* ``stop`` set means: close the listeners, tell protocols ``server_stopping()``,
  let open connections finish until ``Limits.shutdown_timeout``, then close
  them and return.
"""

from __future__ import annotations

import errno
import logging
import socket
from abc import ABC, abstractmethod
from typing import ClassVar

from ionet.core.config import Limits
from ionet.core.listeners import Listener
from ionet.core.protocol import Protocol
from ionet.core.stop import StopSignal

log = logging.getLogger("ionet.engine")

#: accept() failures that mean "out of resources, retry later", not "broken":
#: the process or system ran out of file descriptors, or the kernel of memory.
ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})

#: accept() failures caused by the peer (it gave up before we accepted).
ACCEPT_PEER_ERRNOS = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})

#: send/recv failures that mean the peer is gone; not worth a traceback.
DISCONNECTED_ERRNOS = frozenset(
    {errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.ESHUTDOWN, errno.ECONNABORTED,
     errno.ETIMEDOUT, errno.EBADF}
)

#: How long to stop accepting after EMFILE before trying again (seconds).
ACCEPT_BACKOFF = 0.1

#: The size of a loop engine's one read buffer, which every connection of the
#: loop reads into (``recv_into``) before copying out what came.  Not a size
#: to pass to ``recv(n)``: that allocates ``n`` bytes per call, and glibc
#: serves 128 KiB or more with ``mmap`` (see ``blocking.READ_SIZE``).
RECV_SIZE = 256 * 1024

class _Ended(Protocol):
    """The protocol of a connection that is over: every event is ignored,
    and it keeps nothing (not even a transport handed to it)."""

    def connection_made(self, transport: object) -> None:  # type: ignore[override]
        pass

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass


#: What a transport points at once ``connection_lost`` has been delivered
#: (asyncio's transports do the same: ``self._protocol = None``).  A
#: protocol keeps its transport, so a transport that kept its protocol would
#: leave a reference cycle behind every connection, freed only by Python's
#: cyclic garbage collector: CPU on every collection, and pauses of tens of
#: milliseconds for all the other connections when a full one runs.  A
#: late event that reaches this one is ignored.
ENDED = _Ended()


class Engine(ABC):
    """A concurrency model; ``run`` serves until ``stop`` is set, then returns."""

    #: The name used by ``--engine``.
    name: ClassVar[str]
    #: True for engines that multiplex many connections in one thread and so
    #: need a worker pool for blocking calls (and gain from ``--workers``).
    is_loop: ClassVar[bool] = False

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    @abstractmethod
    def run(self, listeners: list[Listener], stop: StopSignal) -> None:
        """Serve ``listeners`` until ``stop`` is set and in-flight work ends.

        The engine owns the listeners from here on and closes them.
        """


def tune_accepted(sock: socket.socket) -> None:
    """Options every accepted TCP socket gets.

    TCP_NODELAY: without it, a server that writes a response in two pieces
    waits ~40 ms for the client's delayed ACK before the second (Nagle's
    algorithm); the stdlib's ThreadingHTTPServer loses 9x its throughput so.
    """
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # the peer may already be gone


def peer_label(sock: socket.socket) -> str:
    """The peer's address for a log line, or '?' if it is already gone."""
    try:
        peer = sock.getpeername()
    except OSError:
        return "?"
    if isinstance(peer, tuple):
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else peer[0]
        return f"{host}:{peer[1]}"
    return str(peer)


def refuse(sock: socket.socket, reply: bytes) -> None:
    """Turn away a connection over the limit: a best-effort reply, then close.

    The reply is sent without blocking: if it does not fit in the socket's
    buffer it is dropped, never waited for.
    """
    try:
        sock.setblocking(False)
        if reply:
            sock.send(reply)
    except OSError:
        pass
    sock.close()
