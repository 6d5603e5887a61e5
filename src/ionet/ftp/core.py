"""One FTP control connection's state, and what every command uses: queue, dispatch, replies.

:class:`ControlCore` holds the whole conversation, as data:

    USER -> PASS -> READY <-> TRANSFER -> CLOSED       (``state``)

    ``self.user``      None until PASS succeeds
    ``self.waiting``   a password check or failed-login delay is pending
    ``self.transfer``  a data transfer runs; only ABOR, STAT and NOOP are
                       answered meanwhile, other commands queue behind it
                       (reading pauses if the queue fills), as RFC 959 allows
    ``self.closing``   the connection is ending; nothing more is read

Each complete line goes through :meth:`ControlCore._line` (queue it, or run
it) to :meth:`ControlCore._execute`, which checks it against the table in
``commands.py`` (arguments, login, permission) and calls the command's
``ftp_<CMD>`` method.  The argument is everything after the first space, so
file names keep their spaces.  Lines are UTF-8 (RFC 2640); bytes that are not
valid UTF-8 pass through unchanged to the filesystem (``surrogateescape``).

The commands themselves live in the modules that subclass this one
(``session.py``, ``transfers.py``, ``files.py``); ``control.py`` puts them
together and adds the engine's events.
"""

from __future__ import annotations

import collections
import logging
import ssl
from typing import TYPE_CHECKING

from ionet.core.framing import LineFramer
from ionet.core.protocol import Protocol, TimerHandle
from ionet.ftp.accounts import User
from ionet.ftp.commands import ALIASES, COMMANDS, MAX_LINE, TLS_COMMANDS
from ionet.ftp.fs import DEFAULT_FACTS, FSError, VirtualFS
from ionet.ftp.server import FtpServer
from ionet.ftp.tls import TLSLayer

if TYPE_CHECKING:  # transfers.py builds on this module
    from ionet.ftp.transfers import DataSlot, Transfer

log = logging.getLogger("ionet.ftp")

#: Commands queued while a transfer runs before reading pauses.
MAX_PENDING = 16
#: Telnet "interrupt process" / "synch" bytes some clients put before ABOR.
_TELNET = b"\xff\xf4\xf2"


class ControlCore(Protocol):
    """One control connection's state, command queue, dispatch and replies."""

    def __init__(self, server: FtpServer) -> None:
        self.server = server
        self.settings = server.settings
        self.framer = LineFramer(b"\n", max_line=MAX_LINE)
        self.peer_ip = ""
        self.counted = False
        self.username: str | None = None
        self.user: User | None = None
        self.fs: VirtualFS | None = None
        self.binary = False  # TYPE A is the RFC 959 default
        self.rest = 0
        self.rnfr: tuple[str, str] | None = None
        self.facts: list[str] = list(DEFAULT_FACTS)
        self.slot: DataSlot | None = None
        self.port_addr: tuple[str, int] | None = None
        self.epsv_all = False
        self.transfer: Transfer | None = None
        self.waiting = False
        self.closing = False
        self.stopping = False
        self.pending: collections.deque[bytes] = collections.deque()
        self._paused_queue = False
        self.tls: TLSLayer | None = None
        self.pbsz = False
        self.prot_private = False
        self.last_command = server.clock()
        self._idle: TimerHandle | None = None

    # -- lines and dispatch ---------------------------------------------------------------

    @property
    def state(self) -> str:
        """Where the conversation is: USER, PASS, READY, TRANSFER or CLOSED."""
        if self.closing:
            return "CLOSED"
        if self.user is None:
            return "PASS" if self.username is not None or self.waiting else "USER"
        return "TRANSFER" if self.transfer is not None else "READY"

    def _busy(self) -> bool:
        return self.transfer is not None or self.waiting

    def _line(self, raw: bytes) -> None:
        self.last_command = self.server.clock()
        if self._busy():
            name = raw.lstrip(_TELNET).split(b" ", 1)[0].strip().upper()
            if self.transfer is not None and name in (b"ABOR", b"STAT", b"NOOP"):
                self._execute(raw)
                return
            self.pending.append(raw)
            if len(self.pending) >= MAX_PENDING and not self._paused_queue:
                self._paused_queue = True
                assert self.transport is not None
                self.transport.pause_reading()
            return
        self._execute(raw)

    def _drain(self) -> None:
        """Run queued commands until one makes us busy again."""
        while self.pending and not self._busy() and not self.closing:
            self._execute(self.pending.popleft())
        if self.stopping and not self._busy() and not self.closing:
            self._reply(421, "Server shutting down.")
            self._close()
        if self._paused_queue and not self.pending and not self.closing:
            self._paused_queue = False
            assert self.transport is not None
            self.transport.resume_reading()

    def _execute(self, raw: bytes) -> None:
        line = raw.rstrip(b"\r").lstrip(_TELNET).decode("utf-8", "surrogateescape")
        name, _, arg = line.partition(" ")
        name = name.upper()
        log.debug("%s <- %s", self._who(), "PASS ****" if name == "PASS" else line)
        command = COMMANDS.get(name)
        if command is None or (name in TLS_COMMANDS and self.settings.tls is None):
            self._reply(500, f"Command \"{printable(name)}\" not understood.")
            return
        rnfr, self.rnfr = self.rnfr, None  # RNFR must be followed at once by RNTO
        if command.arg is True and not arg:
            self._reply(501, "Syntax error: command needs an argument.")
            return
        if command.arg is False and arg:
            self._reply(501, "Syntax error: command does not accept arguments.")
            return
        if command.auth and self.user is None:
            self._reply(530, "Log in with USER and PASS first.")
            return
        if command.perm and not self._permitted(command.perm, name):
            return
        if name == "RNTO":
            self.rnfr = rnfr
        handler = getattr(self, "ftp_" + ALIASES.get(name, name))
        try:
            handler(arg)
        except FSError as exc:
            self._reply(exc.code, exc.message)

    def _permitted(self, letter: str, what: str) -> bool:
        """True if the user has permission ``letter``; else say that ``what`` needs it."""
        if self.user is not None and self.user.can(letter):
            return True
        self._reply(550, f"Not enough privileges ({what} needs permission '{letter}').")
        return False

    # -- replies ---------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        tls = self.tls
        if tls is not None and tls.handshaken:
            try:
                tls.send(data)
            except ssl.SSLError:
                transport.abort()
        else:
            transport.write(data)

    def _write_raw(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def _reply(self, code: int, text: str) -> None:
        text = text.replace("\r", " ").replace("\n", " ")
        self._send(f"{code} {text}\r\n".encode("utf-8", "surrogateescape"))

    def _reply_multi(self, code: int, first: str, lines: list[str], last: str) -> None:
        out = [f"{code}-{first}\r\n"]
        for line in lines:
            line = line.replace("\r", "").replace("\n", " ")
            out.append((" " + line if line[:1].isdigit() else line) + "\r\n")
        out.append(f"{code} {last}\r\n")
        self._send("".join(out).encode("utf-8", "surrogateescape"))

    def _close(self) -> None:
        self.closing = True
        if self.tls is not None:
            self.tls.shutdown()
        if self.transport is not None:
            self.transport.close()

    def _who(self) -> str:
        return f"{self.peer_ip} ({self.user.name if self.user else '-'})"

    def _vfs(self) -> VirtualFS:
        assert self.fs is not None
        return self.fs


def printable(text: str) -> str:
    """A client's text, safe to echo in a reply: printable characters, at most 80."""
    return "".join(c if c.isprintable() else "?" for c in text)[:80]
