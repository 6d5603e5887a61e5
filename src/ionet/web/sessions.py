"""Sessions in a signed cookie: the client keeps the data, the server checks it.

The session is a small JSON dict stored in the browser, in one cookie::

    base64url(JSON) . timestamp . base64url(HMAC-SHA256(key, "base64url(JSON).timestamp"))

The server keeps no session table, so every worker process, the split
framework process and a restarted server all read the same sessions, as
long as they share ``SECRET_KEY``.  The HMAC makes the cookie
tamper-evident: a client that edits a single byte of the data or the time
gets an empty session (and the log says why), and comparison uses
``hmac.compare_digest`` so timing reveals nothing.  The timestamp lets a
stolen cookie expire after ``SESSION_MAX_AGE``.

What it is not: encrypted.  The client can *read* its session (base64 is not
secrecy), so keep a user id there, never a password.  JSON, not pickle, so a
forged cookie could not run code even if the key leaked.  Browsers cap a
cookie near 4 KiB, so :meth:`CookieSessions.dump` refuses bigger sessions
instead of letting the browser drop them silently.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any

__all__ = ["CookieSessions", "Session", "SessionTooLarge"]

log = logging.getLogger("ionet.web.sessions")

#: Largest cookie value written (browsers keep at least 4096 bytes per cookie,
#: name and attributes included).
MAX_COOKIE = 3900
#: How far in the future a timestamp may be (clock skew between workers).
FUTURE_SLACK = 60


class SessionTooLarge(ValueError):
    """The session does not fit in a cookie."""


class Session(dict[str, Any]):
    """A dict that knows whether it changed.

    Attributes:
        modified: something was set or deleted; the app sends a new cookie.
        rejected: the cookie was present but invalid (tampered, expired,
            signed with another key): the session started empty.
    """

    def __init__(self, data: dict[str, Any] | None = None, rejected: bool = False) -> None:
        super().__init__(data or {})
        self.modified = False
        self.rejected = rejected

    def _changed(name: str) -> Callable[..., Any]:  # type: ignore[misc]
        method = getattr(dict, name)

        def wrapper(self: Session, *args: Any, **kwargs: Any) -> Any:
            self.modified = True
            return method(self, *args, **kwargs)

        wrapper.__name__ = name
        return wrapper

    __setitem__ = _changed("__setitem__")
    __delitem__ = _changed("__delitem__")
    clear = _changed("clear")
    pop = _changed("pop")
    popitem = _changed("popitem")
    setdefault = _changed("setdefault")
    update = _changed("update")
    del _changed


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CookieSessions:
    """Load and save :class:`Session` objects as signed cookie values.

    Args:
        secret: the project's SECRET_KEY.
        max_age: seconds a cookie stays valid after it was written.
        clock: wall-clock time (a test may fix it).
    """

    def __init__(self, secret: str, max_age: int = 14 * 24 * 3600,
                 clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("sessions need a secret key")
        # A key derived for this one use: the raw SECRET_KEY may sign other
        # things, and a signature made for one purpose must not pass for another.
        self._key = hmac.new(secret.encode("utf-8"), b"ionet.web.session",
                             hashlib.sha256).digest()
        self.max_age = max_age
        self.clock = clock

    def _sign(self, message: bytes) -> str:
        return _b64encode(hmac.new(self._key, message, hashlib.sha256).digest())

    def dump(self, session: dict[str, Any]) -> str:
        """The cookie value for ``session``.

        Raises:
            TypeError: a value JSON cannot hold.
            SessionTooLarge: the value would be over ~4 KiB.
        """
        data = json.dumps(session, separators=(",", ":"), sort_keys=True).encode("utf-8")
        message = f"{_b64encode(data)}.{int(self.clock())}"
        value = f"{message}.{self._sign(message.encode('ascii'))}"
        if len(value) > MAX_COOKIE:
            raise SessionTooLarge(f"the session is {len(value)} bytes as a cookie; "
                                  f"browsers keep about {MAX_COOKIE}")
        return value

    def load(self, value: str | None) -> Session:
        """The session in cookie ``value``; an empty one if absent or invalid."""
        if not value:
            return Session()
        data = self.verify(value)
        if data is None:
            return Session(rejected=True)
        return Session(data)

    def verify(self, value: str) -> dict[str, Any] | None:
        """The data of a cookie value whose signature and age are good, else None."""
        try:
            payload, stamp, signature = value.split(".")
            expected = self._sign(f"{payload}.{stamp}".encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            log.info("session cookie rejected: malformed")
            return None
        if not hmac.compare_digest(expected, signature):
            log.info("session cookie rejected: bad signature (tampered, or another key)")
            return None
        try:
            age = self.clock() - int(stamp)
            data = json.loads(_b64decode(payload))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            log.warning("session cookie rejected: signed but unreadable")
            return None
        if age > self.max_age or age < -FUTURE_SLACK:
            log.info("session cookie rejected: expired")
            return None
        if not isinstance(data, dict):
            return None
        return data
