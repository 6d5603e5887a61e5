"""The FTP control connection (RFC 959, 2389, 2428, 3659, 4217), IO-free on the core contract.

One :class:`FtpControl` per client holds the whole conversation, as data:

    USER -> PASS -> READY <-> TRANSFER -> CLOSED       (``state``)

    ``self.user``      None until PASS succeeds
    ``self.waiting``   a password check or failed-login delay is pending
    ``self.transfer``  a data transfer runs; only ABOR, STAT and NOOP are
                       answered meanwhile, other commands queue behind it
                       (reading pauses if the queue fills), as RFC 959 allows
    ``self.closing``   the connection is ending; nothing more is read

Commands come from a line framer (``500 Command too long.`` past 2048 bytes,
and the connection goes on) and are dispatched through the table in
``commands.py``, which also drives argument, login and permission checks.
The argument is everything after the first space, so file names keep their
spaces.  Lines are UTF-8 (RFC 2640); bytes that are not valid UTF-8 pass
through unchanged to the filesystem (``surrogateescape``).

Data connections are separate protocol objects (``data.py``): see that
module for how the two talk across threads.  Paths go through the session's
:class:`~ionet.ftp.fs.VirtualFS`, so nothing outside the user's home is
reachable.

FTPS (AUTH TLS, RFC 4217) is done in the protocol itself, in memory
(``tls.py``): the control connection switches to TLS in the middle of the
conversation, and protected data connections must end with ``close_notify``;
neither needs engine support, so FTPS works on every engine.

This module is longer than most (about 1100 lines): it is the whole command
set, one ``ftp_<CMD>`` method per command as in pyftpdlib (whose control
module is twice the size); everything else lives beside it, in
``commands.py`` (the table), ``data.py``, ``fs.py``, ``accounts.py`` and
``tls.py``.
"""

from __future__ import annotations

import _thread
import collections
import functools
import hashlib
import hmac
import ipaddress
import logging
import os
import random
import secrets
import socket
import ssl
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ionet.core.config import Endpoint
from ionet.core.errors import FrameTooLarge
from ionet.core.framing import LineFramer
from ionet.core.protocol import DataChannel, Outcome, Protocol, TimerHandle, Transport
from ionet.ftp.accounts import Authorizer, LoginGuard, User
from ionet.ftp.commands import ALIASES, COMMANDS, MAX_LINE, TLS_COMMANDS, help_lines
from ionet.ftp.data import (
    BytesSender,
    DataConnection,
    FileReceiver,
    FileSender,
    Job,
    TransferResult,
)
from ionet.ftp.fs import (
    ALL_FACTS,
    DEFAULT_FACTS,
    Entry,
    FSError,
    Upload,
    VirtualFS,
    format_list,
    format_mlsx,
    format_nlst,
    mdtm,
    os_error,
)
from ionet.ftp.tls import TLSLayer

log = logging.getLogger("ionet.ftp")

DEFAULT_PORT = 2121
BUSY_REPLY = b"421 Too many connections.\r\n"
#: Commands queued while a transfer runs before reading pauses.
MAX_PENDING = 16
#: Seconds a passive listener waits for the client's data connection.
PASV_TIMEOUT = 30.0
#: Telnet "interrupt process" / "synch" bytes some clients put before ABOR.
_TELNET = b"\xff\xf4\xf2"


@dataclass
class FtpSettings:
    """How an FTP server behaves: plain data, passed in (never class attributes).

    Attributes:
        root: the served folder; anonymous users' home, and the base of
            relative homes in the users file.
        authorizer: checks logins.
        guard: failed-login delays and bans, shared by every connection.
        passive_ports: ports PASV/EPSV may listen on ((0,): any free one).
        masquerade_address: the IPv4 address PASV announces (behind NAT).
        tls: a server SSLContext: enables AUTH TLS / PBSZ / PROT.
        idle_timeout: seconds a logged-in or not control connection may stay
            silent between commands (transfers excepted); None: never.
        data_timeout: seconds a data connection may make no progress.
        max_per_ip: control connections per client address (0: no limit).
        max_download_rate / max_upload_rate: bytes per second per transfer
            (None: unlimited).
        banner: the text of the 220 greeting.
    """

    root: Path
    authorizer: Authorizer
    guard: LoginGuard = field(default_factory=LoginGuard)
    passive_ports: Sequence[int] = (0,)
    masquerade_address: str | None = None
    tls: ssl.SSLContext | None = None
    idle_timeout: float | None = 300.0
    data_timeout: float | None = 300.0
    max_per_ip: int = 0
    max_download_rate: float | None = None
    max_upload_rate: float | None = None
    banner: str = "ionet FTP server ready."


_Post = Callable[[Callable[[], None]], None]
_LoginCallback = Callable[[Outcome[User | None]], None]


class FtpServer:
    """The state every connection of one server shares: settings and per-address counts.

    ``factory`` is the protocol factory for the control endpoint.
    """

    def __init__(self, settings: FtpSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self._per_ip: dict[str, int] = {}
        self._lock = threading.Lock()
        self._key = secrets.token_bytes(32)
        self._check_slots = [_thread.allocate_lock() for _ in range(os.cpu_count() or 2)]
        #: logins being checked: (name, HMAC of the password) -> who else waits for it
        self._logins: dict[tuple[str, bytes], list[tuple[_Post, _LoginCallback]]] = {}
        self._next_port = random.randrange(max(1, len(settings.passive_ports)))

    def factory(self) -> FtpControl:
        return FtpControl(self)

    def endpoints(self, host: str, port: int) -> list[Endpoint]:
        """The control endpoint.  FTP keeps its own time (``own_timeouts``):
        a control connection is silent while a transfer runs, and a
        download's data connection never hears from the client, so the
        engine's idle and first-bytes timeouts would cut both; the settings'
        ``idle_timeout`` (between commands) and ``data_timeout`` (no
        progress) apply instead, whatever server the endpoint runs in."""
        return [Endpoint("ftp", "tcp", host, port, self.factory, busy_reply=BUSY_REPLY,
                         own_timeouts=True)]

    def check_login(self, transport: Transport, name: str, password: str,
                    callback: _LoginCallback) -> None:
        """Verify a login off the loop, then ``callback(outcome)`` in ``transport``'s context.

        argon2 is slow on purpose, so fifty connections logging in at once as
        the same user with the same password (a parallel download) share one
        check: the first runs it, the others wait for its result, delivered
        to each through its own ``call_soon_threadsafe``.  The worker delivers
        to them itself, so they are answered even if the first connection is
        gone by then.  (No thread primitive waits here: under gevent the
        threading module is patched after this object is made.)
        """
        quick = self.settings.authorizer.quick_verify(name, password)
        if quick is not True:  # answered from the cache: no worker thread, no hash
            callback(Outcome(quick or None))
            return
        key = (name, hmac.new(self._key, password.encode("utf-8", "surrogateescape"),
                              hashlib.sha256).digest())
        with self._lock:
            followers = self._logins.get(key)
            if followers is not None:
                followers.append((transport.call_soon_threadsafe, callback))
                return
            self._logins[key] = []
        authorizer = self.settings.authorizer

        def work() -> Outcome[User | None]:
            slot = self._check_slot()
            try:
                outcome: Outcome[User | None] = Outcome(authorizer.verify(name, password))
            except Exception as exc:  # noqa: BLE001 - delivered to all who wait
                outcome = Outcome(None, exc)
            finally:
                slot.release()
            with self._lock:
                waiting = self._logins.pop(key, [])
            for post, follower in waiting:
                post(functools.partial(follower, outcome))
            return outcome

        def deliver(result: Outcome[Outcome[User | None]]) -> None:
            callback(result.value if result.error is None and result.value is not None
                     else Outcome(None, result.error))

        transport.run_in_worker(work, deliver)

    def _check_slot(self) -> Any:
        """Take one of the argon2 slots (blocking), so that a flood of logins costs
        at most ``len(self._check_slots)`` x 64 MiB and as many cores at a time.

        Plain ``_thread`` locks, made in ``__init__``: they block the calling
        worker thread on every engine (gevent patches ``threading`` later)."""
        for lock in self._check_slots:
            if lock.acquire(blocking=False):
                return lock
        lock = random.choice(self._check_slots)
        lock.acquire()
        return lock

    def enter(self, ip: str) -> bool:
        """Count a control connection from ``ip``; False if that is one too many."""
        limit = self.settings.max_per_ip
        with self._lock:
            count = self._per_ip.get(ip, 0) + 1
            if limit and count > limit:
                return False
            self._per_ip[ip] = count
            return True

    def leave(self, ip: str) -> None:
        with self._lock:
            count = self._per_ip.get(ip, 0) - 1
            if count > 0:
                self._per_ip[ip] = count
            else:
                self._per_ip.pop(ip, None)

    def passive_ports(self) -> Sequence[int]:
        """The passive range, starting at a different port each time (fewer bind retries)."""
        ports = self.settings.passive_ports
        with self._lock:
            start = self._next_port % len(ports)
            self._next_port += 1
        return RotatedPorts(ports, start)


class RotatedPorts(Sequence[int]):
    """``ports`` from index ``start`` on, wrapping around, without copying them.

    PASV asks for the whole passive range each time, and the first port
    tried is nearly always free: copying a 12,000-port range for it cost
    ~35 us per transfer.
    """

    __slots__ = ("ports", "start")

    def __init__(self, ports: Sequence[int], start: int) -> None:
        self.ports = ports
        self.start = start

    def __len__(self) -> int:
        return len(self.ports)

    def __getitem__(self, index: int) -> int:  # type: ignore[override]
        size = len(self.ports)
        if not -size <= index < size:
            raise IndexError(index)
        return self.ports[(self.start + index) % size]


def plain_ip(address: str) -> str:
    """An address as text, IPv4-mapped IPv6 (``::ffff:1.2.3.4``) shown as IPv4."""
    if ":" not in address:
        return address  # IPv4 already (the common case: no parsing)
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class _Slot:
    """The control side's view of one data connection, in the control context."""

    __slots__ = ("channel", "conn", "dispatched", "job", "transport")

    def __init__(self) -> None:
        self.channel: DataChannel | None = None
        self.conn: DataConnection | None = None
        self.transport: Transport | None = None
        self.job: Job | None = None
        self.dispatched = False


@dataclass
class _Transfer:
    command: str
    path: str
    done_text: str
    started: float
    abort_requested: bool = False


class FtpControl(Protocol):
    """One FTP control connection."""

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
        self.slot: _Slot | None = None
        self.port_addr: tuple[str, int] | None = None
        self.epsv_all = False
        self.transfer: _Transfer | None = None
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
            self._reply(500, f"Command \"{_printable(name)}\" not understood.")
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
        if command.perm and not (self.user and self.user.can(command.perm)):
            self._reply(550, f"Not enough privileges ({name} needs permission '{command.perm}').")
            return
        if name == "RNTO":
            self.rnfr = rnfr
        handler = getattr(self, "ftp_" + ALIASES.get(name, name))
        try:
            handler(arg)
        except FSError as exc:
            self._reply(exc.code, exc.message)

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

    # -- data connections ------------------------------------------------------------------

    def _data_factory(self, slot: _Slot) -> Callable[[], DataConnection]:
        assert self.transport is not None
        post = self.transport.call_soon_threadsafe
        timeout = self.settings.data_timeout
        tls = self.settings.tls if self.prot_private else None

        def on_connected(conn: DataConnection, transport: Transport) -> None:
            self._data_connected(slot, conn, transport)

        def on_finished(result: TransferResult) -> None:
            self._data_finished(slot, result)

        return lambda: DataConnection(post, on_connected, on_finished, timeout, tls)

    def _connect_timeout(self) -> float:
        data_timeout = self.settings.data_timeout
        return PASV_TIMEOUT if data_timeout is None else min(PASV_TIMEOUT, data_timeout)

    def _new_slot(self) -> _Slot:
        self._drop_slot()
        self.port_addr = None
        slot = self.slot = _Slot()
        return slot

    def _drop_slot(self) -> None:
        """Forget the current data connection: stop listening, close it, free its job."""
        slot, self.slot = self.slot, None
        if slot is None:
            return
        if slot.channel is not None:
            slot.channel.close()
        if slot.transport is not None and slot.conn is not None:
            slot.transport.call_soon_threadsafe(slot.conn.abort)
        if slot.job is not None:
            slot.job.abandon()  # unless the data side runs it: then our abort ends it

    def _data_connected(self, slot: _Slot, conn: DataConnection, transport: Transport) -> None:
        if slot is not self.slot or self.closing:
            transport.call_soon_threadsafe(conn.abort)
            return
        slot.conn, slot.transport = conn, transport
        if slot.job is not None and not slot.dispatched:
            self._dispatch(slot)

    def _dispatch(self, slot: _Slot) -> None:
        conn, job, transport = slot.conn, slot.job, slot.transport
        assert conn is not None and job is not None and transport is not None
        slot.dispatched = True
        transport.call_soon_threadsafe(lambda: conn.start(job))

    def _data_finished(self, slot: _Slot, result: TransferResult) -> None:
        if slot is not self.slot:
            if not result.started and slot.job is not None:
                slot.job.abandon()
            return
        self.slot = None
        if slot.job is None:
            return  # the client connected and hung up before any transfer command
        if not result.started and slot.job.claim():
            completed = slot.job.finish_empty() if result.empty_eof else None
            if completed is None:
                slot.job.discard()
            else:
                result = completed
        self._end_transfer(result)

    def _data_error(self, slot: _Slot, exc: BaseException) -> None:
        """The passive listener timed out, or the active connection failed."""
        if slot is not self.slot:
            return
        self.slot = None
        if slot.job is not None:
            slot.job.abandon()
            reason = "timed out" if isinstance(exc, TimeoutError) else (
                getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
            self._end_transfer(TransferResult(
                False, False, error=f"Can't open data connection: {reason}.", code=425))

    def _start_transfer(self, command: str, path: str, job: Job, opening: str,
                        done_text: str = "Transfer complete.") -> None:
        assert self.transport is not None
        self.rest = 0
        slot = self.slot
        if slot is None:
            if self.port_addr is None:
                job.abandon()
                self._reply(425, "Use PORT, EPRT, PASV or EPSV first.")
                return
            host, port = self.port_addr
            slot = self._new_slot()
            try:
                slot.channel = self.transport.open_connection(
                    self._data_factory(slot), host, port, timeout=self._connect_timeout(),
                    on_error=lambda exc: self._data_error(slot, exc))
            except (OSError, NotImplementedError) as exc:
                self.slot = None
                job.abandon()
                reason = (exc.strerror if isinstance(exc, OSError)
                          else "not available on this engine")
                self._reply(425, f"Can't open data connection: {reason or exc}.")
                return
        slot.job = job
        self.transfer = _Transfer(command, path, done_text, self.server.clock())
        if slot.conn is not None:
            self._reply(125, f"Data connection already open. {opening}")
            self._dispatch(slot)
        else:
            self._reply(150, opening)

    def _end_transfer(self, result: TransferResult) -> None:
        transfer, self.transfer = self.transfer, None
        if transfer is None:
            return
        elapsed = self.server.clock() - transfer.started
        if result.ok:
            self._reply(226, transfer.done_text)
        elif transfer.abort_requested and result.aborted:
            self._reply(426, "Transfer aborted.")
        else:
            self._reply(result.code, result.error)
        if transfer.abort_requested:
            self._reply(226, "ABOR command successful.")
        log.info("%s %s %s %s: %d bytes in %.3fs", self._who(), transfer.command, transfer.path,
                 "ok" if result.ok else "failed", result.nbytes, elapsed)
        self.last_command = self.server.clock()
        self._drain()

    # -- access control --------------------------------------------------------------------

    def ftp_USER(self, arg: str) -> None:
        if self.user is not None:
            self._reply(530, "Can't change to another user.")
            return
        authorizer = self.settings.authorizer
        if authorizer.is_anonymous(arg):
            if not authorizer.anonymous:
                self.username = None
                self._reply(530, "Anonymous access is not allowed.")
                return
            self.username = arg
            self._reply(331, "Anonymous login ok, send your e-mail address as password.")
            return
        self.username = arg
        self._reply(331, "Username ok, send password.")

    def ftp_PASS(self, arg: str) -> None:
        if self.user is not None:
            self._reply(503, "User already authenticated.")
            return
        name = self.username
        if name is None:
            self._reply(503, "Login with USER first.")
            return
        self.username = None
        self.waiting = True
        assert self.transport is not None
        self.server.check_login(self.transport, name, arg,
                                lambda outcome: self._login_checked(name, outcome))

    def _login_checked(self, name: str, outcome: Outcome[User | None]) -> None:
        if self.closing:
            return
        guard = self.settings.guard
        user: User | None = None
        if outcome.error is not None:
            log.error("login check for %s failed: %s", name, outcome.error)
        else:
            user = outcome.value
        if user is not None:
            try:
                home = user.home
                if not home.exists() and _inside(home, self.settings.root):
                    home.mkdir(parents=True, exist_ok=True)
                self.fs = VirtualFS(home)
            except (OSError, FSError) as exc:
                log.error("user %s: home folder %s unusable: %s", user.name, user.home, exc)
                user = None
        if user is None:
            banned = guard.failed(self.peer_ip)
            log.info("%s: failed login as %r", self.peer_ip, name)
            assert self.transport is not None
            self.transport.call_later(guard.delay, lambda: self._login_failed(banned))
            return
        guard.succeeded(self.peer_ip)
        self.user = user
        self.waiting = False
        log.info("%s: logged in", self._who())
        self._reply(230, "Login successful.")
        self._drain()

    def _login_failed(self, banned: bool) -> None:
        if self.closing:
            return
        self.waiting = False
        self._reply(530, "Authentication failed.")
        if banned:
            self._reply(421, "Too many failed logins from your address; try again later.")
            self._close()
            return
        self._drain()

    def ftp_QUIT(self, arg: str) -> None:
        self._reply(221, "Goodbye.")
        self._close()

    def ftp_AUTH(self, arg: str) -> None:
        mode = arg.strip().upper()
        if self.tls is not None:
            self._reply(503, "Already using TLS.")
        elif self.user is not None:
            self._reply(503, "AUTH must come before login.")
        elif mode not in ("TLS", "TLS-C", "SSL", "TLS-P"):
            self._reply(504, f"AUTH {_printable(mode)} not supported; use AUTH TLS.")
        else:
            assert self.settings.tls is not None
            if self.framer.pending:  # bytes after AUTH before our 234: not a TLS client
                self._reply(503, "Send nothing after AUTH until its reply.")
                self._close()
                return
            self._reply(234, f"AUTH {mode} successful.")
            self.tls = TLSLayer(self.settings.tls, self._write_raw)
            if mode in ("SSL", "TLS-P"):
                self.pbsz = self.prot_private = True

    def ftp_PBSZ(self, arg: str) -> None:
        if self.tls is None:
            self._reply(503, "PBSZ not allowed on insecure control connection.")
        else:
            self.pbsz = True
            self._reply(200, "PBSZ=0 successful.")

    def ftp_PROT(self, arg: str) -> None:
        level = arg.strip().upper()
        if self.tls is None:
            self._reply(503, "PROT not allowed on insecure control connection.")
        elif not self.pbsz:
            self._reply(503, "You must issue the PBSZ command prior to PROT.")
        elif level == "C":
            self.prot_private = False
            self._reply(200, "Protection set to Clear.")
        elif level == "P":
            self.prot_private = True
            self._reply(200, "Protection set to Private.")
        elif level in ("S", "E"):
            self._reply(536, f"PROT {level} unsupported (use C or P).")
        else:
            self._reply(504, "Unrecognized PROT type (use C or P).")

    # -- session settings ------------------------------------------------------------------

    def ftp_SYST(self, arg: str) -> None:
        self._reply(215, "UNIX Type: L8")

    def ftp_FEAT(self, arg: str) -> None:
        features = [" EPRT", " EPSV", " HASH SHA-256*", " MDTM",
                    " MLST " + "".join(f"{f}{'*' if f in self.facts else ''};" for f in ALL_FACTS),
                    " REST STREAM", " SIZE", " TVFS", " UTF8"]
        if self.settings.tls is not None:
            features[:0] = [" AUTH TLS", " AUTH SSL"]
            features += [" PBSZ", " PROT"]
        self._reply_multi(211, "Features supported:", features, "End")

    def ftp_OPTS(self, arg: str) -> None:
        name, _, value = arg.partition(" ")
        name, value = name.upper(), value.strip()
        if name in ("UTF8", "UTF-8") and value.upper() in ("ON", ""):
            self._reply(200, "Always in UTF8 mode.")
        elif name == "MLST":
            wanted = [f.lower() for f in value.split(";") if f]
            self.facts = [f for f in ALL_FACTS if f in wanted]
            self._reply(200, "MLST OPTS " + "".join(f + ";" for f in self.facts))
        elif name == "HASH" and value.upper() in ("", "SHA-256"):
            self._reply(200, "SHA-256")
        else:
            self._reply(501, f"Invalid OPTS: {_printable(arg)}.")

    def ftp_NOOP(self, arg: str) -> None:
        self._reply(200, "I successfully did nothing.")

    def ftp_HELP(self, arg: str) -> None:
        if arg:
            command = COMMANDS.get(arg.strip().upper())
            if command is None:
                self._reply(501, "Unrecognized command.")
            else:
                self._reply(214, command.help)
        else:
            self._reply_multi(214, "The following commands are recognized:",
                              help_lines(self.settings.tls is not None), "Help command successful.")

    def ftp_TYPE(self, arg: str) -> None:
        kind = arg.upper().replace(" ", "")
        if kind in ("A", "AN"):
            self.binary = False
            self._reply(200, "Type set to: ASCII.")
        elif kind in ("I", "L8"):
            self.binary = True
            self._reply(200, "Type set to: Binary.")
        else:
            self._reply(504, f"Unsupported type \"{_printable(arg)}\".")

    def ftp_MODE(self, arg: str) -> None:
        if arg.upper() == "S":
            self._reply(200, "Transfer mode set to: S")
        else:
            self._reply(504, "Unimplemented MODE type (only S).")

    def ftp_STRU(self, arg: str) -> None:
        if arg.upper() == "F":
            self._reply(200, "File transfer structure set to: F.")
        else:
            self._reply(504, "Unimplemented STRU type (only F).")

    def ftp_STAT(self, arg: str) -> None:
        if arg:
            if self.user is None:
                self._reply(530, "Log in with USER and PASS first.")
                return
            if not self.user.can("l"):
                self._reply(550, "Not enough privileges (STAT needs permission 'l').")
                return
            show_hidden, path = _list_args(arg)
            vpath, entries = self._entries(path, show_hidden)
            lines = format_list(entries).splitlines()
            self._reply_multi(213, f"Status of \"{vpath}\":", lines, "End of status.")
            return
        if self.transfer is not None:
            state = f"Transfer in progress: {self.transfer.command} {self.transfer.path}"
        elif self.slot is not None:
            state = "Data connection: passive, waiting" if self.slot.conn is None else \
                "Data connection: open"
        else:
            state = "Data connection: closed"
        lines = [
            f"Connected to: {self.peer_ip}",
            f"Logged in as: {self.user.name}" if self.user else
            "Waiting for password." if self.state == "PASS" else "Waiting for username.",
            f"TYPE: {'BINARY' if self.binary else 'ASCII'}; STRUcture: File; MODE: Stream",
            state,
        ]
        self._reply_multi(211, "FTP server status:", lines, "End of status.")

    # -- data channel setup ----------------------------------------------------------------

    def _local_ip(self) -> str:
        assert self.transport is not None
        return str(self.transport.get_extra_info("sockname")[0])

    def _open_passive(self) -> int | None:
        """Listen for the data connection; the port, or None after replying an error."""
        assert self.transport is not None
        slot = self._new_slot()
        peer = self.peer_ip
        try:
            slot.channel = self.transport.open_listener(
                self._data_factory(slot), self._local_ip(), self.server.passive_ports(),
                accept_from=lambda addr: plain_ip(str(addr[0])) == peer,
                timeout=self._connect_timeout(),
                on_error=lambda exc: self._data_error(slot, exc))
        except NotImplementedError:
            self.slot = None
            self._reply(502, "Passive mode is not available on this server's engine.")
            return None
        except OSError as exc:
            self.slot = None
            log.warning("passive listener failed: %s", exc)
            self._reply(425, "Can't open passive connection: no free port.")
            return None
        return slot.channel.port

    def ftp_PASV(self, arg: str) -> None:
        if self.epsv_all:
            self._reply(501, "PASV not allowed after EPSV ALL.")
            return
        address = self.settings.masquerade_address or plain_ip(self._local_ip())
        if ":" in address:
            self._reply(425, "PASV needs IPv4; use EPSV.")
            return
        port = self._open_passive()
        if port is not None:
            numbers = address.split(".") + [str(port >> 8), str(port & 0xFF)]
            self._reply(227, f"Entering Passive Mode ({','.join(numbers)}).")

    def ftp_EPSV(self, arg: str) -> None:
        value = arg.strip().upper()
        if value == "ALL":
            self.epsv_all = True
            self._reply(200, "EPSV ALL command successful.")
            return
        family = "2" if ":" in plain_ip(self._local_ip()) else "1"
        if value and value != family:
            self._reply(522, f"Network protocol not supported, use ({family}).")
            return
        port = self._open_passive()
        if port is not None:
            self._reply(229, f"Entering Extended Passive Mode (|||{port}|).")

    def _set_active(self, ip: str, port: int) -> None:
        if self.epsv_all:
            self._reply(501, "PORT/EPRT not allowed after EPSV ALL.")
        elif plain_ip(ip) != self.peer_ip:
            self._reply(501, "Rejected data connection to a foreign address (use your own).")
        elif not 1024 <= port <= 65535:
            self._reply(501, "Can't connect over a privileged port.")
        else:
            self._drop_slot()
            self.port_addr = (plain_ip(ip), port)
            self._reply(200, "Active data connection accepted.")

    def ftp_PORT(self, arg: str) -> None:
        try:
            numbers = [int(n) for n in arg.split(",")]
            if len(numbers) != 6 or not all(0 <= n <= 255 for n in numbers):
                raise ValueError
        except ValueError:
            self._reply(501, "Invalid PORT format (h1,h2,h3,h4,p1,p2).")
            return
        if ":" in plain_ip(self._local_ip()):
            self._reply(425, "PORT needs IPv4; use EPRT.")
            return
        self._set_active(".".join(map(str, numbers[:4])), numbers[4] * 256 + numbers[5])

    def ftp_EPRT(self, arg: str) -> None:
        try:
            delimiter = arg[0]
            _, proto, ip, port_text, _ = arg.split(delimiter)
            port = int(port_text)
            ipaddress.ip_address(ip)
        except (IndexError, ValueError):
            self._reply(501, "Invalid EPRT format (|proto|address|port|).")
            return
        if proto not in ("1", "2"):
            self._reply(522, "Network protocol not supported, use (1,2).")
            return
        self._set_active(ip, port)

    def ftp_REST(self, arg: str) -> None:
        try:
            offset = int(arg)
            if offset < 0:
                raise ValueError
        except ValueError:
            self._reply(501, "Invalid parameter (REST needs a byte offset).")
            return
        self.rest = offset
        self._reply(350, f"Restarting at {offset}. Send STORE or RETRIEVE to initiate transfer.")

    def ftp_ABOR(self, arg: str) -> None:
        transfer = self.transfer
        if transfer is None:
            if self.slot is not None:
                self._drop_slot()
                self._reply(225, "ABOR command successful; data channel closed.")
            else:
                self._reply(225, "No transfer to abort.")
            return
        slot = self.slot
        transfer.abort_requested = True
        if slot is not None and slot.conn is not None and slot.transport is not None:
            slot.transport.call_soon_threadsafe(slot.conn.abort)  # finished() replies
            return
        self._drop_slot()  # not connected yet: nothing will report back
        self._end_transfer(TransferResult(False, False, aborted=True))

    # -- navigation ---------------------------------------------------------------------

    def _vfs(self) -> VirtualFS:
        assert self.fs is not None
        return self.fs

    def ftp_PWD(self, arg: str) -> None:
        self._reply(257, f"{_quote(self._vfs().cwd)} is the current directory.")

    def ftp_CWD(self, arg: str) -> None:
        vpath = self._vfs().chdir(arg or "/")
        self._reply(250, f"{_quote(vpath)} is the current directory.")

    def ftp_CDUP(self, arg: str) -> None:
        self.ftp_CWD("..")

    # -- listings --------------------------------------------------------------------------

    def _entries(self, path: str, show_hidden: bool) -> tuple[str, list[Entry]]:
        fs = self._vfs()
        vpath, fspath, st = fs.stat(path)
        if stat.S_ISDIR(st.st_mode):
            return vpath, fs.listdir(fspath, show_hidden)
        return vpath, [Entry(os.path.basename(fspath), st)]

    def ftp_LIST(self, arg: str) -> None:
        show_hidden, path = _list_args(arg)
        vpath, entries = self._entries(path, show_hidden)
        data = format_list(entries).encode("utf-8", "surrogateescape")
        self._start_transfer("LIST", vpath, BytesSender(data), "Here comes the directory listing.",
                             "Directory send OK.")

    def ftp_NLST(self, arg: str) -> None:
        show_hidden, path = _list_args(arg)
        vpath, entries = self._entries(path, show_hidden)
        data = format_nlst(entries).encode("utf-8", "surrogateescape")
        self._start_transfer("NLST", vpath, BytesSender(data), "Here comes the directory listing.",
                             "Directory send OK.")

    def ftp_MLSD(self, arg: str) -> None:
        fs = self._vfs()
        vpath, fspath = fs.directory(arg or ".")
        perms = self.user.perm if self.user else ""
        lines = [format_mlsx(e.name, e.st, self.facts, perms) + "\r\n"
                 for e in fs.listdir(fspath, show_hidden=False)]
        data = "".join(lines).encode("utf-8", "surrogateescape")
        self._start_transfer("MLSD", vpath, BytesSender(data), "Here comes the directory listing.",
                             "Directory send OK.")

    def ftp_MLST(self, arg: str) -> None:
        vpath, _, st = self._vfs().stat(arg or ".")
        perms = self.user.perm if self.user else ""
        line = " " + format_mlsx(vpath, st, self.facts, perms)
        self._reply_multi(250, f"Listing {vpath}", [line], "End.")

    # -- file facts ------------------------------------------------------------------------

    def ftp_SIZE(self, arg: str) -> None:
        _, _, st = self._vfs().file(arg)
        self._reply(213, str(st.st_size))

    def ftp_MDTM(self, arg: str) -> None:
        _, _, st = self._vfs().file(arg)
        self._reply(213, mdtm(st.st_mtime))

    def ftp_HASH(self, arg: str) -> None:
        vpath, fspath, st = self._vfs().file(arg)
        assert self.transport is not None
        self.waiting = True

        def digest() -> str:
            with open(fspath, "rb") as file:
                return hashlib.file_digest(file, "sha256").hexdigest()

        def done(outcome: Outcome[str]) -> None:
            self.waiting = False
            if outcome.error is not None:
                error = outcome.error
                self._reply(550, os_error(error, vpath).message
                            if isinstance(error, OSError) else str(error))
            else:
                self._reply(213, f"SHA-256 0-{st.st_size} {outcome.value} {vpath}")
            self._drain()

        self.transport.run_in_worker(digest, done)

    # -- transfers -------------------------------------------------------------------------

    def ftp_RETR(self, arg: str) -> None:
        vpath, fspath, st = self._vfs().file(arg)
        offset = self.rest
        if offset > st.st_size:
            self.rest = 0
            self._reply(554, f"Invalid REST parameter: {vpath} has {st.st_size} bytes.")
            return
        try:
            file = open(fspath, "rb")  # noqa: SIM115 - the data connection closes it
        except OSError as exc:
            self.rest = 0
            raise os_error(exc, vpath) from None
        count = st.st_size - offset
        job = FileSender(file, offset, count, ascii=not self.binary,
                         rate=self.settings.max_download_rate)
        mode = "BINARY" if self.binary else "ASCII"
        self._start_transfer("RETR", vpath, job,
                             f"Opening {mode} mode data connection for {vpath} ({count} bytes).")

    def _store(self, command: str, arg: str, mode: str) -> None:
        fs = self._vfs()
        vpath, fspath = fs.resolve(arg)
        offset, self.rest = self.rest, 0
        user = self.user
        assert user is not None
        try:
            st: os.stat_result | None = os.stat(fspath)
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise FSError(f"{vpath}: Is a directory.")
        if st is not None and command == "STOR" and user.anonymous:
            raise FSError(f"{vpath}: Overwriting is not allowed for anonymous users.")
        if vpath == "/":
            raise FSError("/: Is a directory.")
        if offset:
            if command == "APPE":
                raise FSError("Can't APPE in REST mode.")
            if st is None or offset > st.st_size:
                self._reply(554, f"Invalid REST parameter for {vpath}.")
                return
            mode = "restart"
        upload = Upload(fspath, vpath, mode, offset)
        job = FileReceiver(upload, ascii=not self.binary, rate=self.settings.max_upload_rate)
        self._start_transfer(command, vpath, job, f"Ok to send data for {vpath}.")

    def ftp_STOR(self, arg: str) -> None:
        self._store("STOR", arg, "new")

    def ftp_APPE(self, arg: str) -> None:
        self._store("APPE", arg, "append")

    def ftp_STOU(self, arg: str) -> None:
        fs = self._vfs()
        base = arg or "ftp.file"
        self.rest = 0
        for attempt in range(100):
            candidate = base if attempt == 0 else f"{base}.{attempt}"
            vpath, fspath = fs.resolve(candidate)
            if os.path.lexists(fspath):
                continue
            try:
                upload = Upload(fspath, vpath, "unique")
            except FSError:
                if os.path.lexists(fspath):
                    continue  # taken meanwhile
                raise
            job = FileReceiver(upload, ascii=not self.binary, rate=self.settings.max_upload_rate)
            self._start_transfer("STOU", vpath, job, f"FILE: {os.path.basename(fspath)}")
            return
        raise FSError(f"{base}: No unique name available.", 450)

    # -- file management -------------------------------------------------------------------

    def ftp_DELE(self, arg: str) -> None:
        fs = self._vfs()
        vpath, fspath = fs.resolve(arg)
        if os.path.isdir(fspath) and not os.path.islink(fspath):
            raise FSError(f"{vpath}: Is a directory (use RMD).")
        try:
            os.remove(fspath)
        except OSError as exc:
            raise os_error(exc, vpath) from None
        self._reply(250, "File removed.")

    def ftp_MKD(self, arg: str) -> None:
        vpath, fspath = self._vfs().resolve(arg)
        try:
            os.mkdir(fspath)
        except OSError as exc:
            raise os_error(exc, vpath) from None
        self._reply(257, f"{_quote(vpath)} directory created.")

    def ftp_RMD(self, arg: str) -> None:
        fs = self._vfs()
        vpath, fspath = fs.resolve(arg)
        if vpath == "/":
            raise FSError("Can't remove the home folder.")
        if vpath == fs.cwd or fs.cwd.startswith(vpath + "/"):
            raise FSError(f"{vpath}: Can't remove the current directory.")
        try:
            os.rmdir(fspath)
        except OSError as exc:
            raise os_error(exc, vpath) from None
        self._reply(250, "Directory removed.")

    def ftp_RNFR(self, arg: str) -> None:
        fs = self._vfs()
        vpath, fspath = fs.resolve(arg)
        if vpath == "/":
            raise FSError("Can't rename the home folder.")
        if not os.path.lexists(fspath):
            raise FSError(f"{vpath}: No such file or directory.")
        self.rnfr = (vpath, fspath)
        self._reply(350, "Ready for destination name.")

    def ftp_RNTO(self, arg: str) -> None:
        source, self.rnfr = self.rnfr, None
        if source is None:
            self._reply(503, "Bad sequence of commands: use RNFR first.")
            return
        vpath, fspath = self._vfs().resolve(arg)
        if vpath == "/":
            raise FSError("Can't overwrite the home folder.")
        try:
            os.rename(source[1], fspath)
        except OSError as exc:
            raise os_error(exc, vpath) from None
        self._reply(250, "Renaming ok.")


def _list_args(arg: str) -> tuple[bool, str]:
    """Split ``LIST -la path`` into (show hidden files, path)."""
    show_hidden = False
    path = arg.strip()
    while path.startswith("-"):
        option, _, path = path.partition(" ")
        show_hidden = show_hidden or "a" in option or "A" in option
        path = path.lstrip()
    return show_hidden, path or "."


def _quote(vpath: str) -> str:
    """A path in a 257 reply: in double quotes, inner quotes doubled (RFC 959)."""
    return '"' + vpath.replace('"', '""').replace("\n", "\0") + '"'


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)[:80]


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def build_server(root: Path, users_file: Path | None = None, anonymous: bool = False,
                 **options: Any) -> FtpServer:
    """An :class:`FtpServer` over ``root`` (created if missing) with a users file.

    ``options`` are further :class:`FtpSettings` fields.
    """
    root.mkdir(parents=True, exist_ok=True)
    authorizer = Authorizer(root, users_file, anonymous)
    return FtpServer(FtpSettings(root=root, authorizer=authorizer, **options))
