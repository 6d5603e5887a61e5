"""Data channels on the blocking engines: connections a protocol opens itself.

FTP's control connection asks for a second connection per transfer: either
it listens and waits for the client (``open_listener``, passive mode) or it
connects out to the client (``open_connection``, active mode).  Both hand the
connection, once there, to the owning transport's ``_start_child``, which
serves it in a thread (greenlet) of its own; both report a failure to the
protocol's ``on_error`` in the owner's thread, never in another one::

    DataListener   a listening socket in its owner's own wait, for ONE
                   connection; a call_later timer gives up on it
    Connector      ``connect`` blocks, so a helper thread connects, then
                   ``call_soon_threadsafe`` hands the socket (or the error)
                   back to the owner's thread

They are apart from the transport because they are a side road: a service
that never opens a data channel never meets them.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ionet.core.listeners import bind_first_free
from ionet.core.protocol import DataChannel, Protocol

if TYPE_CHECKING:
    from ionet.core.engines.blocking import BlockingTransport

log = logging.getLogger("ionet.engine")


class DataListener(DataChannel):
    """``open_listener``: a socket in its owner's wait, for ONE connection."""

    def __init__(self, owner: BlockingTransport, factory: Callable[[], Protocol], host: str,
                 ports: Sequence[int], accept_from: Callable[[Any], bool] | None,
                 timeout: float, on_error: Callable[[BaseException], None] | None,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.owner = owner
        self.factory = factory
        self.accept_from = accept_from
        self.on_error = on_error
        self.ssl_context = ssl_context
        self.closed = False
        self.sock = bind_first_free(host, ports)
        self.port = self.sock.getsockname()[1]
        owner._listeners[self.sock.fileno()] = self
        self._timer = owner.call_later(timeout, self._timed_out)

    def accept(self) -> None:
        try:
            sock, addr = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close()
            self.owner._report(self.on_error, exc)
            return
        if self.accept_from is not None and not self.owner._protect(
                "accept_from", self.accept_from, addr):
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
            del self.owner._listeners[self.sock.fileno()]
            self.sock.close()


class Connector(DataChannel):
    """``open_connection``: connect in a helper thread, report in the owner's."""

    def __init__(self, owner: BlockingTransport, factory: Callable[[], Protocol], host: str,
                 port: int, timeout: float, on_error: Callable[[BaseException], None] | None,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.owner = owner
        self.closed = False
        self._factory = factory
        self._on_error = on_error
        self._ssl_context = ssl_context
        self._sock: socket.socket | None = None  # connected, not yet handed to the owner
        self._lock = threading.Lock()
        owner._connectors.append(self)
        threading.Thread(target=self._connect, args=(host, port, timeout), daemon=True,
                         name=f"ionet-connect-{host}:{port}").start()

    def _connect(self, host: str, port: int, timeout: float) -> None:
        """The helper thread: connect, then hand over to the owner's thread."""
        try:
            sock = socket.create_connection((host, port), timeout)
        except OSError as exc:
            error = TimeoutError("the data connection timed out") if isinstance(
                exc, TimeoutError) else exc
            self.owner.call_soon_threadsafe(lambda: self._finished(error))
            return
        with self._lock:
            if self.closed:
                sock.close()
                return
            self._sock = sock
        self.owner.call_soon_threadsafe(lambda: self._finished(None))

    def _finished(self, error: BaseException | None) -> None:
        """In the owner's thread: serve the connection, or report the failure."""
        with self._lock:
            sock, self._sock = self._sock, None
            closed, self.closed = self.closed, True
        self.owner._connectors.remove(self)
        if closed:
            return
        if sock is not None:
            self.owner._start_child(sock, self._factory, self._ssl_context)
        elif error is not None:
            self.owner._report(self._on_error, error)

    def close(self) -> None:
        """Give up; a connect under way is dropped when it completes."""
        with self._lock:
            self.closed = True
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
