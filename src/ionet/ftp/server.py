"""What the control connections of one FTP server share: settings, counts, login checks.

:class:`FtpSettings` is the configuration, plain data passed in (never class
attributes).  :class:`FtpServer` holds the state that every connection of one
server shares -- connections per client address, the passive-port rotation,
the login checks under way (fifty connections logging in as one user share
one argon2 check) -- and makes the control endpoint, whose factory builds one
:class:`~ionet.ftp.control.FtpControl` per connection.  :func:`build_server`
puts a server together from a root folder and a users file.
"""

from __future__ import annotations

import _thread
import functools
import hashlib
import hmac
import ipaddress
import os
import random
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ionet.core.config import Endpoint
from ionet.core.protocol import Outcome, Transport
from ionet.ftp.accounts import Authorizer, LoginGuard, User

if TYPE_CHECKING:  # control.py imports this module: FtpControl is imported where used
    from ionet.ftp.control import FtpControl

DEFAULT_PORT = 2121
BUSY_REPLY = b"421 Too many connections.\r\n"


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
        from ionet.ftp.control import FtpControl

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


def build_server(root: Path, users_file: Path | None = None, anonymous: bool = False,
                 **options: Any) -> FtpServer:
    """An :class:`FtpServer` over ``root`` (created if missing) with a users file.

    ``options`` are further :class:`FtpSettings` fields.
    """
    root.mkdir(parents=True, exist_ok=True)
    authorizer = Authorizer(root, users_file, anonymous)
    return FtpServer(FtpSettings(root=root, authorizer=authorizer, **options))
