"""Data channels on the asyncio engines: connections a protocol opens itself.

FTP's control connection asks for a second connection per transfer: either
it listens and waits for the client (``open_listener``, passive mode) or it
connects out to the client (``open_connection``, active mode).  On a loop
both are one task each, :class:`AioDataChannel`::

    passive   loop.sock_accept on the data listener, for ONE connection
              (from the control connection's peer, if the protocol asks)
    active    loop.sock_connect to the client's address

within a timeout; the socket is then handed to the owning connection's
``_start_child``, which serves it as a connection of its own, and a failure
reaches the protocol's ``on_error``, in the owner's context like every other
event.  It is apart from the connection adapter because it is a side road: a
service that never opens a data channel never meets it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ionet.core.protocol import DataChannel, Protocol

if TYPE_CHECKING:
    from ionet.core.engines.aio_connection import AioConnection

log = logging.getLogger("ionet.engine")


def address_label(addr: Any) -> str:
    """A peer address for a log line, written as base.peer_label writes it.

    (AioConnection labels its own log lines with it too.)
    """
    if isinstance(addr, tuple):
        host = f"[{addr[0]}]" if ":" in str(addr[0]) else addr[0]
        return f"{host}:{addr[1]}"
    return "?" if addr is None else str(addr)


class AioDataChannel(DataChannel):
    """A data connection being set up for its owner (FTP's passive or active mode).

    A task accepts one connection on ``listen_on`` (passive), or connects to
    ``connect_to`` (active), within ``timeout``; the socket is then served by
    an :class:`AioConnection` (TLS as the server side, with ``ssl_context``).
    Failures reach ``on_error`` in the owner's context.

    ``close()`` gives up on a connection still to come, never on one that
    came: from the moment the socket is handed to asyncio, the connection
    belongs to its protocol, as on the other engines.  (Cancelling the task
    inside ``connect_accepted_socket`` would close the transport behind the
    protocol's back; uvloop then never calls ``connection_lost``, and the
    connection would stay counted until the shutdown deadline.)
    """

    def __init__(self, owner: AioConnection, factory: Callable[[], Protocol],
                 ssl_context: ssl.SSLContext | None,
                 on_error: Callable[[BaseException], None] | None, timeout: float, *,
                 listen_on: socket.socket | None = None,
                 accept_from: Callable[[Any], bool] | None = None,
                 connect_to: tuple[str, int] | None = None) -> None:
        self.owner = owner
        self._factory = factory
        self._ssl = ssl_context
        self._on_error = on_error
        self._timeout = timeout
        self._accept_from = accept_from
        self._address = connect_to
        #: Sockets this channel still owns, closed when its task ends.
        self._listening = listen_on
        self._connecting: socket.socket | None = None
        self._handed_over = False  # the socket is asyncio's: close() no longer applies
        if listen_on is not None:
            self.port = listen_on.getsockname()[1]
            opening: Callable[[], Awaitable[socket.socket]] = self._accept
        else:
            assert connect_to is not None
            family = socket.AF_INET6 if ":" in connect_to[0] else socket.AF_INET
            self._connecting = socket.socket(family, socket.SOCK_STREAM)
            self._connecting.setblocking(False)
            opening = self._connect
        self._task = asyncio.get_running_loop().create_task(self._run(opening))
        # Sockets are closed only once the task has ended, which takes the
        # loop's reader or writer off them first.
        self._task.add_done_callback(self._release)

    def close(self) -> None:
        if not self._handed_over:
            self._task.cancel()

    async def _accept(self) -> socket.socket:
        assert self._listening is not None
        loop = asyncio.get_running_loop()
        while True:
            sock, addr = await loop.sock_accept(self._listening)
            if self._accept_from is None or self._accept_from(addr):
                self._listening.close()  # one connection only
                return sock
            log.warning("data connection from %s refused: not the control peer",
                        address_label(addr))
            sock.close()

    async def _connect(self) -> socket.socket:
        sock = self._connecting
        assert sock is not None and self._address is not None
        await asyncio.get_running_loop().sock_connect(sock, self._address)
        self._connecting = None  # the connection owns it from here
        return sock

    async def _run(self, opening: Callable[[], Awaitable[socket.socket]]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                sock = await opening()
        except TimeoutError:
            self._report(TimeoutError("the data connection did not open in time"))
            return
        except OSError as exc:
            self._report(exc)
            return
        self._handed_over = True
        try:
            await self.owner._start_child(sock, self._factory, self._ssl, self._timeout)
        except (OSError, TimeoutError) as exc:  # the TLS handshake failed; asyncio closed it
            log.info("data connection: TLS handshake failed: %s", exc)

    def _release(self, task: asyncio.Task[None]) -> None:
        for sock in (self._listening, self._connecting):
            if sock is not None:
                sock.close()

    def _report(self, exc: BaseException) -> None:
        if self._on_error is not None and not self.owner._lost:
            self.owner._call("a data channel's on_error", self._on_error, exc)
