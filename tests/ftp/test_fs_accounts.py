"""The virtual filesystem, uploads, listings, the users file and the login guard, alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ionet.core.testing import FakeClock
from ionet.ftp.accounts import (
    AccountError,
    Authorizer,
    LoginGuard,
    add_user,
    check_perm,
    load_users,
)
from ionet.ftp.fs import Entry, FSError, Upload, VirtualFS, format_list, format_mlsx

from .conftest import Site, password


def test_ftpnorm_and_the_jail(site: Site) -> None:
    fs = VirtualFS(site.root)
    fs.cwd = "/sub"
    assert fs.ftpnorm("a/../b") == "/sub/b"
    assert fs.ftpnorm("/x//y/.") == "/x/y"
    assert fs.ftpnorm("..") == "/"
    for bad in ("../..", "/..", "a/../../..", "/../etc/passwd"):
        with pytest.raises(FSError):
            fs.ftpnorm(bad)
    with pytest.raises(FSError):
        fs.ftpnorm("a\0b")
    assert fs.resolve("/etc/passwd")[1] == str(site.root / "etc" / "passwd")
    for out in ("/leak", "/leakdir", "/leakdir/secret.txt"):
        with pytest.raises(FSError):
            fs.resolve(out)
    assert fs.resolve("/inlink")[0] == "/inlink"  # a link that stays inside is fine


def test_listing_skips_hidden_and_escaping_entries(site: Site) -> None:
    fs = VirtualFS(site.root)
    names = [e.name for e in fs.listdir(str(site.root))]
    assert names == ["data.bin", "hello.txt", "inlink", "lines.txt", "sub"]
    assert ".hidden" in [e.name for e in fs.listdir(str(site.root), show_hidden=True)]
    (site.root / "broken").symlink_to(site.root / "nowhere")
    assert "broken" not in [e.name for e in fs.listdir(str(site.root))]


def test_formats(site: Site) -> None:
    st = os.stat(site.root / "hello.txt")
    line = format_list([Entry("hello.txt", st)], now=st.st_mtime)
    assert line.startswith("-rw") and line.endswith(" hello.txt\r\n") and " 12 " in line
    old = format_list([Entry("x", st)], now=st.st_mtime + 400 * 86400)
    assert str(time.gmtime(st.st_mtime).tm_year) in old
    assert format_mlsx("hello.txt", st, ["type", "size", "perm"], "elr") == \
        "type=file;size=12;perm=r; hello.txt"


def test_upload_modes(site: Site) -> None:
    target = site.root / "up.bin"
    upload = Upload(str(target), "/up.bin", "new")
    upload.file.write(b"abc")
    assert not target.exists()
    upload.commit()
    assert target.read_bytes() == b"abc" and not site.temporaries()
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode
    upload = Upload(str(target), "/up.bin", "append")
    upload.file.write(b"def")
    upload.abort()  # appends keep what arrived: the client can resume
    assert target.read_bytes() == b"abcdef"
    upload = Upload(str(target), "/up.bin", "restart", 2)
    upload.file.write(b"XY")
    upload.commit()
    assert target.read_bytes() == b"abXY"
    upload = Upload(str(target), "/up.bin", "new")
    upload.file.write(b"zzz")
    upload.abort()
    assert target.read_bytes() == b"abXY" and not site.temporaries()
    unique = Upload(str(site.root / "u.txt"), "/u.txt", "unique")
    with pytest.raises(FSError):
        Upload(str(site.root / "u.txt"), "/u.txt", "unique")  # the name is reserved
    unique.abort()
    assert not (site.root / "u.txt").exists()
    with pytest.raises(FSError):
        Upload(str(site.root / "nodir" / "x"), "/nodir/x", "new")


def test_users_file_json_and_toml(tmp_path: Path) -> None:
    for name in ("users.json", "users.toml"):
        path = tmp_path / name
        assert add_user(path, "alice", "s3cret", "alice", "elr") is True
        assert add_user(path, "alice", "n3w", ".", "elradfmw") is False
        users = load_users(path)
        assert users["alice"]["perm"] == "elradfmw"
        assert users["alice"]["password"].startswith("$argon2id$")
        assert "n3w" not in path.read_text()
        assert path.stat().st_mode & 0o077 == 0
    with pytest.raises(AccountError):
        check_perm("elrz")
    with pytest.raises(AccountError):
        add_user(tmp_path / "u.json", "anonymous", "x")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(AccountError):
        load_users(tmp_path / "bad.json")


def test_authorizer(site: Site) -> None:
    auth = Authorizer(site.root, site.users, anonymous=False)
    user = auth.verify("alice", password("alice"))
    assert user is not None and user.home == site.root / "." and user.can("w")
    assert auth.verify("alice", password("alice")) is not None  # cached path
    assert auth.verify("alice", "wrong") is None
    assert auth.verify("nobody", "x") is None
    assert auth.verify("anonymous", "me@") is None
    carol = auth.verify("carol", password("carol"))
    assert carol is not None and carol.home == site.root / "carol"
    anon = Authorizer(site.root, None, anonymous=True).verify("ftp", "")
    assert anon is not None and anon.perm == "elr" and anon.anonymous


def test_login_guard_with_a_fake_clock() -> None:
    clock = FakeClock()
    guard = LoginGuard(max_failures=3, window=10, ban=100, clock=clock)
    assert not guard.failed("1.2.3.4") and not guard.failed("1.2.3.4")
    clock.advance(11)  # the old failures expire
    assert not guard.failed("1.2.3.4") and not guard.failed("1.2.3.4")
    assert guard.failed("1.2.3.4") and guard.is_banned("1.2.3.4")
    assert not guard.is_banned("5.6.7.8")
    clock.advance(101)
    assert not guard.is_banned("1.2.3.4")


def test_adduser_reads_the_password_from_stdin(tmp_path: Path) -> None:
    users = tmp_path / "u.json"
    result = subprocess.run(
        [sys.executable, "-m", "ionet", "ftp", "adduser", "erin", "--users", str(users),
         "--home", "erin", "--perm", "elr"],
        input="erin-pw\nignored\n", capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "erin-pw" not in result.stdout + result.stderr + users.read_text()
    user = Authorizer(tmp_path, users).verify("erin", "erin-pw")
    assert user is not None and user.perm == "elr"
    bad = subprocess.run([sys.executable, "-m", "ionet", "ftp", "adduser", "x", "--users",
                          str(users), "--perm", "q"], input="pw\n", capture_output=True,
                         text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "unknown permission" in bad.stderr


def test_per_address_limits_warn_when_processes_do_not_share_them() -> None:
    import argparse

    from ionet.ftp.cli import per_process_warning

    def args(engine: str, workers: int = 1, max_per_ip: int = 0) -> argparse.Namespace:
        return argparse.Namespace(engine=engine, workers=workers, max_per_ip=max_per_ip)

    assert per_process_warning(args("epoll")) is None
    assert per_process_warning(args("thread", max_per_ip=3)) is None
    fork = per_process_warning(args("fork", max_per_ip=3))
    assert fork is not None and "--max-per-ip" in fork and "fork engine" in fork
    workers = per_process_warning(args("epoll", workers=4))
    assert workers is not None and "4 workers" in workers and "--max-per-ip" not in workers
