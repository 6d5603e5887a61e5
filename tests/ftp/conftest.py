"""A small FTP site for the tests: a root folder, a users file, a server on port 0.

Password hashes here use tiny argon2 parameters (they are stored in each
hash, so verification is fast too); the server code is the same.
"""

from __future__ import annotations

import ftplib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from ionet.core.testing import ServerProcess
from ionet.ftp.accounts import PERMS

#: Seconds for every client operation.
TIMEOUT = 20.0

_cheap = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


def password(name: str) -> str:
    return f"pw-{name}"


#: name -> (home, perm).  "no_x" users have every permission but letter x.
USERS: dict[str, tuple[str, str]] = {
    "alice": (".", PERMS),
    "bob": (".", "elr"),
    "carol": ("carol", PERMS),
    **{f"no_{letter}": (".", PERMS.replace(letter, "")) for letter in PERMS},
}


@pytest.fixture(scope="session")
def users_json() -> str:
    users = {name: {"password": _cheap.hash(password(name)), "home": home, "perm": perm}
             for name, (home, perm) in USERS.items()}
    return json.dumps({"users": users})


@dataclass
class Site:
    """A served folder: ``root`` (what clients see), ``outside`` (what they must not)."""

    base: Path
    root: Path
    outside: Path
    users: Path

    def files(self) -> set[str]:
        """Every path under the root, relative, hidden upload temporaries included."""
        return {str(p.relative_to(self.root)) for p in self.root.rglob("*")}

    def temporaries(self) -> list[Path]:
        return list(self.root.rglob(".ionet-*"))


@pytest.fixture
def site(tmp_path: Path, users_json: str) -> Site:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "hello.txt").write_bytes(b"hello world\n")
    (root / "lines.txt").write_bytes(b"one\ntwo\nthree\n")
    (root / ".hidden").write_bytes(b"dot file\n")
    (root / "sub" / "inner.txt").write_bytes(b"inner\n")
    (root / "data.bin").write_bytes(os.urandom(1_000_000))
    (outside / "secret.txt").write_bytes(b"top secret\n")
    (root / "leak").symlink_to(outside / "secret.txt")
    (root / "leakdir").symlink_to(outside)
    (root / "inlink").symlink_to(root / "hello.txt")
    users = tmp_path / "users.json"
    users.write_text(users_json)
    return Site(tmp_path, root, outside, users)


def ftp_server(site: Site, engine: str, *extra: str) -> ServerProcess:
    """``ionet ftp serve`` over the site (not started)."""
    return ServerProcess(["ftp", "serve", str(site.root), "--users", str(site.users),
                          "--engine", engine, "--login-delay", "0.05", *extra])


def login(server: ServerProcess, user: str = "alice", pw: str | None = None,
          cls: type[ftplib.FTP] = ftplib.FTP, **kwargs: object) -> ftplib.FTP:
    host, port = server.address("tcp")
    ftp = cls(timeout=TIMEOUT, **kwargs)  # type: ignore[arg-type]
    ftp.encoding = "utf-8"
    ftp.connect(host, port)
    if isinstance(ftp, ftplib.FTP_TLS):
        ftp.auth()
    ftp.login(user, password(user) if pw is None else pw)
    return ftp


@pytest.fixture
def served(site: Site, engine: str) -> Iterator[tuple[Site, ServerProcess]]:
    with ftp_server(site, engine) as server:
        yield site, server
