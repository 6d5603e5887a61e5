"""The FTP control connection (RFC 959, 2389, 2428, 3659, 4217), IO-free on the core contract.

:class:`FtpControl` is the protocol object an engine runs for each client.
It is put together from parts, each in a module of its own:

    ``core.py``       the conversation's state, the command queue, dispatch
                      through the table in ``commands.py``, replies
    ``session.py``    login, AUTH TLS, the session's settings (TYPE, OPTS...)
    ``transfers.py``  data connections and the transfer commands, the data
                      timeout, REST and ABOR
    ``files.py``      navigation, listings, file facts, file management
    ``server.py``     what all connections of a server share (settings,
                      login checks, per-address counts)

This module adds what an engine calls: the connection's events, the idle
timeout between commands, and TLS on the control connection.  Commands come
from a line framer (``500 Command too long.`` past 2048 bytes, and the
connection goes on).

Data connections are separate protocol objects (``data.py``): see that
module for how the two talk across threads.  Paths go through the session's
:class:`~ionet.ftp.fs.VirtualFS`, so nothing outside the user's home is
reachable.

FTPS (AUTH TLS, RFC 4217) is done in the protocol itself, in memory
(``tls.py``): the control connection switches to TLS in the middle of the
conversation, and protected data connections must end with ``close_notify``;
neither needs engine support, so FTPS works on every engine.
"""

from __future__ import annotations

import logging
import socket
import ssl

from ionet.core.errors import FrameTooLarge
from ionet.core.protocol import Transport
from ionet.ftp.files import FileCommands
from ionet.ftp.server import (
    BUSY_REPLY,
    DEFAULT_PORT,
    FtpServer,
    FtpSettings,
    RotatedPorts,
    build_server,
    plain_ip,
)
from ionet.ftp.session import SessionCommands

__all__ = ["BUSY_REPLY", "DEFAULT_PORT", "FtpControl", "FtpServer", "FtpSettings",
           "RotatedPorts", "build_server", "plain_ip"]

log = logging.getLogger("ionet.ftp")


class FtpControl(SessionCommands, FileCommands):
    """One FTP control connection: the engine's events, the idle timeout, TLS."""

    # -- events ----------------------------------------------------------------------

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer_ip = plain_ip(str(peer[0]))
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:  # ftplib sends ABOR as urgent data: keep its last byte in the stream
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
            except (OSError, AttributeError):
                pass
        if self.settings.guard.is_banned(self.peer_ip):
            self._reply(421, "Too many failed logins from your address; try again later.")
            self._close()
            return
        if not self.server.enter(self.peer_ip):
            self._reply(421, "Too many connections from your address.")
            self._close()
            return
        self.counted = True
        self._reply(220, self.settings.banner)
        self._arm_idle(self.settings.idle_timeout)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self.tls is not None:
            plain = self._tls_received(data)
            if not plain:
                return
            data = plain
        self.framer.append(data)
        while not self.closing:
            try:
                line = self.framer.next_line()
            except FrameTooLarge:
                self._reply(500, "Command too long.")
                continue
            if line is None:
                break
            self._line(line)
            if self.tls is not None and not self.tls.handshaken:
                break  # AUTH TLS: what follows is TLS, not commands

    def eof_received(self) -> bool | None:
        self.closing = True
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closing = True
        if self._idle is not None:
            self._idle.cancel()
        self._drop_slot()
        if self.transfer is not None:
            log.info("%s: connection lost during %s %s", self._who(), self.transfer.command,
                     self.transfer.path)
            self.transfer = None
        if self.counted:
            self.counted = False
            self.server.leave(self.peer_ip)

    def server_stopping(self) -> None:
        self.stopping = True
        if not self._busy():
            self._reply(421, "Server shutting down.")
            self._close()

    # -- idle timeout ----------------------------------------------------------------------

    def _arm_idle(self, delay: float | None) -> None:
        if delay is not None and self.transport is not None:
            self._idle = self.transport.call_later(delay, self._idle_check)

    def _idle_check(self) -> None:
        timeout = self.settings.idle_timeout
        if self.closing or timeout is None:
            return
        if self._busy():  # a transfer has its own (data) timeout
            self.last_command = self.server.clock()
            self._arm_idle(timeout)
            return
        remaining = self.last_command + timeout - self.server.clock()
        if remaining > 0:
            self._arm_idle(remaining)
            return
        log.info("%s: control connection idle for %.0fs, closing", self._who(), timeout)
        self._reply(421, "Control connection timed out.")
        self._close()

    # -- TLS on the control connection -----------------------------------------------------

    def _tls_received(self, data: bytes) -> bytes:
        assert self.tls is not None and self.transport is not None
        try:
            plain, peer_closed = self.tls.receive(data)
        except ssl.SSLError as exc:
            log.info("%s: TLS failed: %s", self._who(), exc)
            self.closing = True
            self.transport.close()
            return b""
        if peer_closed:
            self._close()
        return plain
