"""Data channels on the reactor: connections a protocol opens itself.

FTP's control connection asks for a second connection per transfer: either
it listens and waits for the client (``open_listener``, passive mode) or it
connects out to the client (``open_connection``, active mode).  In the loop
each is one more :class:`~ionet.core.engines.reactor_events.Handler`, owned
by the control connection's transport::

    passive   DataAcceptor: a listener watched for READ that accepts ONE
              connection (from the control connection's peer, if the
              protocol asks)
    active    Connector: a non-blocking connect, watched for WRITE until the
              handshake is done or has failed

each within a timeout.  The socket is then handed to the owner's
``_start_child`` (``reactor_connection.py``), which serves it as a
connection of its own, and a failure reaches the protocol's ``on_error``
through the owner's ``_report``.  It is apart from the connection because it
is a side road: a service that never opens a data channel never meets it.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ionet.core.engines.reactor_events import READ, WRITE, Handler
from ionet.core.listeners import bind_first_free
from ionet.core.protocol import DataChannel, Protocol

if TYPE_CHECKING:
    from ionet.core.engines.reactor_connection import SocketTransport

log = logging.getLogger("ionet.engine")


class DataAcceptor(Handler, DataChannel):
    """A listener for one data connection (FTP passive mode), owned by a connection."""

    def __init__(self, owner: SocketTransport, factory: Callable[[], Protocol], host: str,
                 ports: Sequence[int], accept_from: Callable[[Any], bool] | None,
                 timeout: float, on_error: Callable[[BaseException], None] | None,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.owner = owner
        self.engine = owner.engine
        self.factory = factory
        self.accept_from = accept_from
        self.on_error = on_error
        self.ssl_context = ssl_context
        self.closed = False
        self.sock = bind_first_free(host, ports)
        self.port = self.sock.getsockname()[1]
        self.engine._watch(self.sock.fileno(), self, READ)
        self._timer = self.engine.call_later(timeout, self._timed_out)

    def handle_read(self) -> None:
        try:
            sock, addr = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close()
            self.owner._report(self.on_error, exc)
            return
        if self.accept_from is not None and not self.accept_from(addr):
            log.warning("data connection from %s refused: not the control peer", addr)
            sock.close()
            return
        self.close()
        self.owner._start_child(sock, self.factory, self.ssl_context)

    def _timed_out(self) -> None:
        if not self.closed:
            self.close()
            self.owner._report(self.on_error, TimeoutError("no data connection arrived in time"))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._timer.cancel()
            self.engine._unwatch(self.sock.fileno())
            self.sock.close()


class Connector(Handler, DataChannel):
    """An outgoing connection being set up (FTP active mode), owned by a connection."""

    def __init__(self, owner: SocketTransport, factory: Callable[[], Protocol], host: str,
                 port: int, timeout: float, on_error: Callable[[BaseException], None] | None,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.owner = owner
        self.engine = owner.engine
        self.factory = factory
        self.on_error = on_error
        self.ssl_context = ssl_context
        self.closed = False
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        # A non-blocking connect returns at once (EINPROGRESS); the socket
        # becomes writable when the handshake is done, or has failed.
        code = self.sock.connect_ex((host, port))
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            self.sock.close()
            raise OSError(code, os.strerror(code))
        self.engine._watch(self.sock.fileno(), self, WRITE)
        self._timer = self.engine.call_later(timeout, self._timed_out)

    def handle_read(self) -> None:
        self.handle_write()

    def handle_write(self) -> None:
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        sock = self.sock
        self._stop_watching()
        if code:
            sock.close()
            self.owner._report(self.on_error, OSError(code, os.strerror(code)))
            return
        self.owner._start_child(sock, self.factory, self.ssl_context)

    def _timed_out(self) -> None:
        if not self.closed:
            self.close()
            self.owner._report(self.on_error, TimeoutError("the data connection timed out"))

    def _stop_watching(self) -> None:
        self.closed = True
        self._timer.cancel()
        self.engine._unwatch(self.sock.fileno())

    def close(self) -> None:
        if not self.closed:
            self._stop_watching()
            self.sock.close()
