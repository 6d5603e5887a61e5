"""FTP accounts: who may log in, where their home is, and what they may do.

An *authorizer* (pyftpdlib's word) answers two questions for the control
connection: is this name and password right, and which permissions does the
user have.  Accounts live in a users file, JSON or TOML, that
``ionet ftp adduser`` writes::

    {"users": {"alice": {"password": "$argon2id$v=19$...", "home": "alice",
                         "perm": "elradfmwMT"}}}

Passwords are stored only as argon2id hashes (``argon2-cffi``), never in
plain text, and never logged.  A relative ``home`` is taken under the
server's root folder; the default, ".", is the root itself.

Permission letters are pyftpdlib's:

    e  change directory (CWD, CDUP)     d  delete (DELE, RMD)
    l  list (LIST, NLST, MLSD, MLST, STAT)  f  rename (RNFR, RNTO)
    r  retrieve (RETR)                  m  make directories (MKD)
    a  append (APPE)                    w  store (STOR, STOU)
    M  change mode (SITE CHMOD)         T  change modification time (MFMT)

The last two let mirroring clients (``lftp mirror -R``, FileZilla, WinSCP)
keep each file's permissions and time on the server.  A users file written before they existed ("elradfmw") keeps its
meaning: those users may not change modes or times.

Anonymous users ("anonymous" or "ftp", any password) are refused unless the
server enables them, and then get read-only permissions ("elr").

:class:`LoginGuard` slows down password guessing: every failed login is
answered only after a delay, and an address that fails too often within a
window is refused for a while.  It is shared state, so it is an object
passed to every connection (never a module global), and it takes a clock
so tests need not sleep.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

log = logging.getLogger("ionet.ftp")

#: Every permission letter, in pyftpdlib's order.
PERMS = "elradfmwMT"
#: What an anonymous user may do: look and download.
ANONYMOUS_PERMS = "elr"
ANONYMOUS_NAMES = frozenset({"anonymous", "ftp"})

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory parameters


#: ``_verify(quick=True)``: the answer needs an argon2 hash.
_SLOW = object()


class AccountError(Exception):
    """A users file that cannot be read or written, or a bad account field."""


def check_perm(perm: str) -> str:
    """Return ``perm`` if every letter is a known permission.

    Raises:
        AccountError: an unknown letter.
    """
    unknown = sorted(set(perm) - set(PERMS))
    if unknown:
        raise AccountError(f"unknown permission letter(s) {''.join(unknown)!r}; "
                           f"use some of {PERMS!r}")
    return "".join(letter for letter in PERMS if letter in perm)


@dataclass(frozen=True)
class User:
    """A logged-in user: name, real home folder, permission letters."""

    name: str
    home: Path
    perm: str
    anonymous: bool = False

    def can(self, letter: str) -> bool:
        return letter in self.perm


# -- the users file ---------------------------------------------------------------

def load_users(path: Path) -> dict[str, dict[str, Any]]:
    """Read a users file (``.toml`` as TOML, anything else as JSON).

    Raises:
        AccountError: unreadable or malformed.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AccountError(f"cannot read the users file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise AccountError(f"the users file {path} is malformed: {exc}") from None
    users = data.get("users", {}) if isinstance(data, dict) else None
    if not isinstance(users, dict):
        raise AccountError(f"the users file {path} has no 'users' table")
    for name, record in users.items():
        if not isinstance(record, dict) or not isinstance(record.get("password"), str):
            raise AccountError(f"user {name!r} in {path} has no password hash")
    return users


def save_users(path: Path, users: dict[str, dict[str, Any]]) -> None:
    """Write the users file atomically (a temporary file renamed into place), mode 0600."""
    if path.suffix == ".toml":
        text = _to_toml(users)
    else:
        text = json.dumps({"users": users}, indent=2, sort_keys=True) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise AccountError(f"cannot write the users file {path}: {exc.strerror}") from None


def _to_toml(users: dict[str, dict[str, Any]]) -> str:
    # JSON string escapes are valid TOML basic-string escapes, so json.dumps
    # quotes keys and values correctly; the file has only strings in tables.
    lines = ["# ionet FTP accounts (ionet ftp adduser)", ""]
    for name in sorted(users):
        lines.append(f"[users.{json.dumps(name)}]")
        for key, value in sorted(users[name].items()):
            lines.append(f"{key} = {json.dumps(str(value))}")
        lines.append("")
    return "\n".join(lines)


def add_user(path: Path, name: str, password: str, home: str = ".", perm: str = PERMS) -> bool:
    """Add or replace an account in the users file; True if it was new.

    Raises:
        AccountError: a bad name or permission string, or an unwritable file.
    """
    if not name or name in ANONYMOUS_NAMES or any(c.isspace() for c in name):
        raise AccountError(f"invalid user name {name!r}")
    if not password:
        raise AccountError("the password must not be empty")
    users = load_users(path)
    new = name not in users
    users[name] = {"password": _hasher.hash(password), "home": home, "perm": check_perm(perm)}
    save_users(path, users)
    return new


# -- the authorizer ------------------------------------------------------------------

class Authorizer:
    """Checks logins against a users file, re-read whenever it changes.

    Args:
        root: the server's root folder; relative homes are taken under it,
            and it is the anonymous users' home.
        users_file: the users file (None or missing: no accounts).
        anonymous: accept anonymous logins (read-only).

    ``verify`` costs one argon2 hash (tens of milliseconds of CPU, by
    design), so the control connection runs it with ``run_in_worker``.  A
    successful verification is remembered as an HMAC of the password under a
    per-process random key, so the next login of the same user with the same
    password is cheap.  Nothing reversible is kept, and a changed hash in the
    file drops the entry.  (Logins that arrive together are coalesced one
    level up, by ``FtpServer.check_login``.)
    """

    def __init__(self, root: Path, users_file: Path | None = None, anonymous: bool = False) -> None:
        self.root = root
        self.users_file = users_file
        self.anonymous = anonymous
        self._users: dict[str, dict[str, Any]] = {}
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, tuple[str, bytes]] = {}
        self.reload()

    def reload(self) -> None:
        """Re-read the users file if it changed (size or mtime).

        Raises:
            AccountError: the file is malformed (the old table is kept).
        """
        if self.users_file is None:
            return
        try:
            st = self.users_file.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        with self._lock:
            if stamp == self._stamp:
                return
            users = load_users(self.users_file) if stamp is not None else {}
            self._users, self._stamp = users, stamp

    def _check(self, name: str, stored: str, password: str, digest: bytes) -> bool:
        """argon2-verify, or find this password already verified in the cache."""
        with self._lock:
            cached = self._verified.get(name)
        if cached and cached[0] == stored and hmac.compare_digest(cached[1], digest):
            return True
        try:
            _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        with self._lock:
            self._verified[name] = (stored, digest)
        return True

    def is_anonymous(self, name: str) -> bool:
        return name.lower() in ANONYMOUS_NAMES

    def verify(self, name: str, password: str) -> User | None:
        """The user, if ``name`` and ``password`` are right; else None.  Blocking (argon2)."""
        return self._verify(name, password, quick=False)

    def quick_verify(self, name: str, password: str) -> User | bool:
        """Answer without argon2 when possible (anonymous, or a password already
        verified): the user, or False for a sure refusal; True means "ask
        :meth:`verify`" (it would cost a hash).  Cheap enough for an event loop."""
        user = self._verify(name, password, quick=True)
        return True if user is _SLOW else user or False

    def _verify(self, name: str, password: str, quick: bool) -> Any:
        if self.is_anonymous(name):
            if not self.anonymous:
                return None
            return User("anonymous", self.root, ANONYMOUS_PERMS, anonymous=True)
        try:
            self.reload()
        except AccountError as exc:
            log.error("%s", exc)
        with self._lock:
            record = self._users.get(name)
        if record is None:
            if quick:
                return _SLOW  # an unknown name costs a hash too: do not reveal it
            _hasher.hash(password or "x")
            return None
        stored = record["password"]
        digest = hmac.new(self._key, password.encode("utf-8", "surrogateescape"),
                          hashlib.sha256).digest()
        if quick:
            with self._lock:
                cached = self._verified.get(name)
            if not (cached and cached[0] == stored and hmac.compare_digest(cached[1], digest)):
                return _SLOW
        elif not self._check(name, stored, password, digest):
            return None
        try:
            perm = check_perm(str(record.get("perm", PERMS)))
        except AccountError as exc:
            log.error("user %s: %s", name, exc)
            return None
        home = Path(str(record.get("home", ".")))
        return User(name, home if home.is_absolute() else self.root / home, perm)


# -- failed logins ---------------------------------------------------------------------

class LoginGuard:
    """Counts failed logins per address and bans addresses that fail too often.

    Args:
        delay: seconds to wait before answering a failed login.
        max_failures: failures within ``window`` seconds that get an address banned.
        window: how long a failure counts.
        ban: how long a banned address is refused.
        clock: a monotonic clock (injectable for tests).

    Thread-safe: the thread engine calls it from many connection threads.
    (With the fork engine each connection is its own process, so counts are
    not shared; use a loop engine where lockout matters.)
    """

    def __init__(self, delay: float = 1.0, max_failures: int = 5, window: float = 600.0,
                 ban: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.delay = delay
        self.max_failures = max_failures
        self.window = window
        self.ban = ban
        self.clock = clock
        self._failures: dict[str, list[float]] = {}
        self._banned: dict[str, float] = {}
        self._lock = threading.Lock()

    def is_banned(self, address: str) -> bool:
        with self._lock:
            until = self._banned.get(address)
            if until is None:
                return False
            if self.clock() >= until:
                del self._banned[address]
                return False
            return True

    def failed(self, address: str) -> bool:
        """Record a failed login; True if the address is now banned."""
        now = self.clock()
        with self._lock:
            recent = [t for t in self._failures.get(address, ()) if now - t < self.window]
            recent.append(now)
            if len(recent) >= self.max_failures:
                self._failures.pop(address, None)
                self._banned[address] = now + self.ban
                log.warning("%s banned for %.0fs after %d failed logins", address, self.ban,
                            len(recent))
                return True
            self._failures[address] = recent
            if len(self._failures) > 10_000:  # forget the stalest addresses
                for stale in list(self._failures)[:1000]:
                    del self._failures[stale]
            return False

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)
