"""Settings: a project's configuration, read from the upper-case names of its ``settings.py``.

A WebFrame project is a folder laid out as the course describes::

    site/
      settings.py     DEBUG, SECRET_KEY, ... (below)
      urls.py         urlpatterns = [path("/", views.home), ...]
      views.py        the view functions
      templates/      Jinja2 templates
      static/         files served as they are under STATIC_URL

Every setting has a default, so an empty ``settings.py`` is valid.  The
settings are one :class:`Settings` object handed to the :class:`~ionet.web.App`
(never module globals), so a test can build two apps with different settings
in one process.

=====================  ============================================================
name                   meaning (default)
=====================  ============================================================
DEBUG                  tracebacks on 500 pages, templates reloaded (False)
SECRET_KEY             signs the session cookie; required unless DEBUG ("")
ROOT_URLCONF           the module holding ``urlpatterns`` ("urls")
TEMPLATES              template folder, relative to the project ("templates")
STATIC                 static folder, relative to the project ("static")
STATIC_URL             where the static folder is served ("/static/")
MAX_BODY_SIZE          largest request body read, uploads aside (1 MiB)
MAX_UPLOAD_SIZE        largest multipart/form-data body (10 MiB)
SESSION_COOKIE_NAME    the session cookie ("session")
SESSION_MAX_AGE        seconds a session cookie stays valid (14 days)
SESSION_COOKIE_SECURE  send the session cookie over HTTPS only (False)
TRUSTED_PROXIES        addresses or networks whose X-Forwarded-For/-Proto are
                       believed (empty: none)
MIDDLEWARE             objects with ``before_request``/``after_request``, or
                       dotted names of them, relative to the project first ([])
HOST / PORT            where ``ionet web serve`` listens ("127.0.0.1", 9000)
=====================  ============================================================

Other upper-case names are kept in :attr:`Settings.extra` for the project's
own use (``request.settings.extra["SITE_NAME"]``).
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["Settings", "TrustedProxies"]

_KNOWN = {
    "DEBUG": "debug",
    "SECRET_KEY": "secret_key",
    "ROOT_URLCONF": "root_urlconf",
    "TEMPLATES": "templates",
    "STATIC": "static",
    "STATIC_URL": "static_url",
    "MAX_BODY_SIZE": "max_body_size",
    "MAX_UPLOAD_SIZE": "max_upload_size",
    "SESSION_COOKIE_NAME": "session_cookie_name",
    "SESSION_MAX_AGE": "session_max_age",
    "SESSION_COOKIE_SECURE": "session_cookie_secure",
    "TRUSTED_PROXIES": "trusted_proxies",
    "MIDDLEWARE": "middleware",
    "HOST": "host",
    "PORT": "port",
}


@dataclass
class Settings:
    """One project's settings (see the module docstring for each name).

    ``templates`` and ``static`` are folders; relative ones are taken from
    ``project_dir`` (the current folder if None).  A folder that does not
    exist is simply not used.
    """

    debug: bool = False
    secret_key: str = ""
    root_urlconf: str = "urls"
    templates: str | Path | None = "templates"
    static: str | Path | None = "static"
    static_url: str = "/static/"
    max_body_size: int = 1024 * 1024
    max_upload_size: int = 10 * 1024 * 1024
    session_cookie_name: str = "session"
    session_max_age: int = 14 * 24 * 3600
    session_cookie_secure: bool = False
    trusted_proxies: list[str] | tuple[str, ...] = ()
    middleware: list[Any] | tuple[Any, ...] = ()
    host: str = "127.0.0.1"
    port: int = 9000
    project_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.static_url.startswith("/") or not self.static_url.endswith("/"):
            raise ValueError(f"STATIC_URL looks like '/static/', not {self.static_url!r}")
        if self.static_url == "/":
            raise ValueError("STATIC_URL must not be '/': views need the other paths")
        for name in ("max_body_size", "max_upload_size", "session_max_age"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.upper()} must not be negative")
        if not self.secret_key:
            if not self.debug:
                raise ValueError("SECRET_KEY is empty: set it in settings.py "
                                 "(python -c 'import secrets; print(secrets.token_hex(32))')")
            # Debug only: a key per process.  Sessions do not survive a
            # restart, nor move between worker processes.
            self.secret_key = secrets.token_hex(32)
        self.trusted = TrustedProxies(self.trusted_proxies)

    @classmethod
    def from_module(cls, module: ModuleType, project_dir: Path | None = None,
                    **overrides: Any) -> Settings:
        """Settings from a module's upper-case names, then ``overrides`` (lower-case).

        Raises:
            ValueError: a value is invalid (a negative size, an empty
                SECRET_KEY outside debug mode, a malformed proxy address).
        """
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for name in dir(module):
            if not name.isupper() or name.startswith("_"):
                continue
            value = getattr(module, name)
            if name in _KNOWN:
                values[_KNOWN[name]] = value
            else:
                extra[name] = value
        values.update(overrides)
        values.setdefault("project_dir", project_dir)
        values.setdefault("extra", extra)
        return cls(**values)

    def folder(self, value: str | Path | None) -> Path | None:
        """The absolute folder a TEMPLATES/STATIC value names, if it exists."""
        if value is None or value == "":
            return None
        folder = Path(value)
        if not folder.is_absolute():
            folder = (self.project_dir or Path.cwd()) / folder
        return folder.resolve() if folder.is_dir() else None


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` and ``X-Forwarded-Proto`` we believe.

    A client can put anything in ``X-Forwarded-For``; only the entries added
    by our own proxies are facts.  So the header is read from the right
    (each proxy appends the address it saw), skipping trusted proxies; the
    first address that is not one of ours is the client.

    Args:
        entries: addresses (``"127.0.0.1"``) or networks (``"10.0.0.0/8"``).

    Raises:
        ValueError: an entry is not an address or network.
    """

    def __init__(self, entries: list[str] | tuple[str, ...] = ()) -> None:
        if isinstance(entries, str):
            entries = [entries]
        self.networks = [ipaddress.ip_network(entry, strict=False) for entry in entries]

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: object) -> bool:
        if not self.networks or not isinstance(address, str):
            return False
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client(self, remote: str, forwarded_for: str | None) -> str:
        """The client's address, given the peer's and its ``X-Forwarded-For``."""
        if not forwarded_for or remote not in self:
            return remote
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if hop not in self:
                return hop
        return hops[0] if hops else remote
