"""User accounts: name rules, argon2id password hashes, lockout, DICT keys.

The course stored salted MD5 hashes and compared them with ``==``.  MD5 is
built to be fast, so a stolen table falls to a GPU in hours; argon2id (the
winner of the Password Hashing Competition, RFC 9106) is built to be slow
and to need memory, which GPUs lack.  argon2-cffi salts each hash itself
and compares in constant time.

Parameters: argon2id with 19 MiB, 2 passes, 1 lane, OWASP's recommended
minimum, ~25 ms per hash here.  argon2-cffi's default (64 MiB, 3 passes, 4
lanes) costs ~90 ms and 64 MiB per login in flight, and a loop engine runs
up to 16 logins at once in its worker pool: 1 GiB.  A hash records its own
parameters, so raising them later upgrades each hash at its next login
(:meth:`PasswordHasher.check_needs_rehash`).

Guessing is slowed three ways: the protocol waits a second before it says
a login failed (the delay lives in the protocol, as a timer, so no worker
thread sleeps); five failures in a row lock the account for five minutes
(the count is in the database, so it holds across processes and restarts);
and an unknown name costs the same hash as a wrong password, so timing does
not tell which names exist.

Passwords are never logged, stored or echoed: only their hashes are kept,
and errors name the user, never the password.

DICT ``AUTH`` (RFC 2229) proves a *shared secret*: the client sends
``md5(msg-id + secret)``, so the server must know the secret itself.  An
argon2 hash cannot give it, and keeping passwords readable would undo
everything above.  So each user can ask for a separate random DICT key
(:meth:`Accounts.new_dict_key`), stored as is, good only for DICT, and
replaced whenever they ask again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import unicodedata
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ionet.dict.store import NameTaken, Store

#: Limits on user names (characters) and passwords.
NAME_MAX = 32
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
#: Failed logins in a row that lock an account, and for how long (seconds).
MAX_FAILURES = 5
LOCK_SECONDS = 300.0


def default_hasher() -> PasswordHasher:
    """argon2id, 19 MiB, 2 passes, 1 lane (see the module docstring)."""
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class AccountError(Exception):
    """A request about an account that cannot be granted.

    Attributes:
        code: a short machine-readable code (``bad-name``, ``name-taken``,
            ``bad-password``, ``login-failed``, ``locked``).
        message: a sentence for the user.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_name(name: object) -> str:
    """A valid user name, NFC-normalised.

    Rules: 1-32 characters, none of them white space or a control, format or
    unassigned character (nothing invisible, so two names that look the
    same are the same).

    Raises:
        AccountError: ``bad-name``, saying which rule failed.
    """
    if not isinstance(name, str):
        raise AccountError("bad-name", "the user name must be a string")
    name = unicodedata.normalize("NFC", name)
    if not 1 <= len(name) <= NAME_MAX:
        raise AccountError("bad-name", f"a user name has 1 to {NAME_MAX} characters")
    for ch in name:
        if ch.isspace() or unicodedata.category(ch)[0] in "CZ":
            raise AccountError("bad-name", "a user name cannot contain spaces or "
                                           "control characters")
    return name


def check_password(password: object) -> str:
    """A password acceptable for registration.

    Raises:
        AccountError: ``bad-password``: not a string, or too short or long.
    """
    if not isinstance(password, str):
        raise AccountError("bad-password", "the password must be a string")
    if len(password) < PASSWORD_MIN:
        raise AccountError("bad-password", f"a password has at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise AccountError("bad-password", f"a password has at most {PASSWORD_MAX} characters")
    return password


class Accounts:
    """Registration, login and DICT keys over a :class:`Store`.  Methods block
    (hashing, queries): protocols call them through ``run_in_worker``.

    Args:
        store: where accounts live.
        hasher: the argon2 hasher (tests pass a cheap one).
        max_failures / lock_seconds: the lockout policy.
        clock: wall-clock seconds (lock times are stored, so not monotonic).
    """

    def __init__(self, store: Store, hasher: PasswordHasher | None = None,
                 max_failures: int = MAX_FAILURES, lock_seconds: float = LOCK_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.hasher = hasher or default_hasher()
        self.max_failures = max_failures
        self.lock_seconds = lock_seconds
        self.clock = clock
        # Verified when the name is unknown, so that costs as much as a
        # wrong password (made lazily: hashing at import time would slow
        # every command).
        self._dummy_hash: str | None = None

    def register(self, name: object, password: object) -> str:
        """Create an account; returns the (normalised) name.

        Raises:
            AccountError: ``bad-name``, ``bad-password`` or ``name-taken``
                (decided by the database's UNIQUE constraint, so of two
                simultaneous registrations of one name exactly one wins).
        """
        name = check_name(name)
        password = check_password(password)
        try:
            self.store.add_user(name, self.hasher.hash(password))
        except NameTaken:
            raise AccountError("name-taken", f"the name {name!r} is taken") from None
        return name

    def login(self, name: object, password: object) -> str:
        """Check a name and password; returns the name.

        Raises:
            AccountError: ``login-failed`` (wrong name or password: which one
                is not said) or ``locked``.
        """
        failed = AccountError("login-failed", "wrong user name or password")
        if not isinstance(password, str) or len(password) > PASSWORD_MAX:
            raise failed
        try:
            name = check_name(name)
        except AccountError:
            self._burn(password)
            raise failed from None
        user = self.store.user(name)
        now = self.clock()
        if user is not None and user.locked_until > now:
            raise self._locked(user.locked_until - now)
        if user is None:
            self._burn(password)
            raise failed
        try:
            self.hasher.verify(user.passwd, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            until = self.store.login_failed(name, now, self.max_failures, self.lock_seconds)
            if until > now:
                raise self._locked(until - now) from None
            raise failed from None
        new_hash = None
        if self.hasher.check_needs_rehash(user.passwd):
            new_hash = self.hasher.hash(password)
        if user.failures or new_hash is not None:
            self.store.login_succeeded(name, new_hash)
        return name

    def _burn(self, password: str) -> None:
        """Spend the time a real verification takes (unknown names)."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
        try:
            self.hasher.verify(self._dummy_hash, password)
        except VerificationError:
            pass

    @staticmethod
    def _locked(seconds: float) -> AccountError:
        minutes = max(1, round(seconds / 60))
        return AccountError("locked", f"too many failed logins: try again in {minutes} "
                                      f"minute{'s' if minutes > 1 else ''}")

    def new_dict_key(self, name: str) -> str:
        """Make (or replace) ``name``'s DICT AUTH secret and return it."""
        key = secrets.token_urlsafe(18)
        self.store.set_dict_key(name, key)
        return key

    def check_dict_auth(self, name: str, msg_id: str, answer: str) -> str:
        """Check a DICT ``AUTH name answer`` for the banner's ``msg_id``.

        RFC 2229 3.11: ``answer`` is the hex MD5 of the msg-id (angle brackets
        included) followed by the shared secret.  Failures count towards the
        lockout like failed logins.

        Returns:
            the user name.

        Raises:
            AccountError: ``login-failed`` or ``locked``.
        """
        failed = AccountError("login-failed", "access denied")
        try:
            name = check_name(name)
        except AccountError:
            raise failed from None
        user = self.store.user(name)
        now = self.clock()
        if user is None:
            raise failed
        if user.locked_until > now:
            raise self._locked(user.locked_until - now)
        if user.dict_key is None:
            raise failed
        expected = hashlib.md5((msg_id + user.dict_key).encode()).hexdigest()
        if not hmac.compare_digest(expected, answer.lower().encode("ascii", "replace").decode()):
            until = self.store.login_failed(name, now, self.max_failures, self.lock_seconds)
            if until > now:
                raise self._locked(until - now)
            raise failed
        if user.failures:
            self.store.login_succeeded(name)
        return name
