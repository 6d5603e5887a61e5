"""Real FTP clients against ``ionet ftp serve`` on every engine: ftplib, curl, lftp, FTPS.

One server per test, and each test walks through many commands, so the
whole matrix stays quick on every engine.
"""

from __future__ import annotations

import ftplib
import hashlib
import io
import os
import shutil
import socket
import ssl
import struct
import subprocess
from pathlib import Path

import pytest

from ionet.core.testing import ServerProcess, wait_until

from .conftest import TIMEOUT, Site, ftp_server, login, password


def retr(ftp: ftplib.FTP, name: str, rest: int | None = None) -> bytes:
    out = io.BytesIO()
    ftp.retrbinary(f"RETR {name}", out.write, rest=rest)
    return out.getvalue()


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                          **kwargs)  # type: ignore[call-overload]


def test_ftplib_session(served: tuple[Site, ServerProcess]) -> None:
    site, server = served
    ftp = login(server)
    assert ftp.getwelcome().startswith("220")
    assert ftp.sendcmd("SYST") == "215 UNIX Type: L8"
    assert ftp.pwd() == "/"
    # listings: hidden files only with -a; symlinks out of the home never
    assert sorted(ftp.nlst()) == ["data.bin", "hello.txt", "inlink", "lines.txt", "sub"]
    lines: list[str] = []
    ftp.retrlines("LIST -a", lines.append)
    assert any(line.endswith(" .hidden") for line in lines)
    assert not any("leak" in line for line in lines)
    facts = dict(ftp.mlsd())
    assert facts["sub"]["type"] == "dir" and facts["data.bin"]["size"] == "1000000"
    # downloads: whole, resumed (REST), in ASCII mode, in active mode
    data = (site.root / "data.bin").read_bytes()
    assert retr(ftp, "data.bin") == data
    assert retr(ftp, "data.bin", rest=999_000) == data[999_000:]
    ascii_lines: list[str] = []
    ftp.retrlines("RETR lines.txt", ascii_lines.append)
    assert ascii_lines == ["one", "two", "three"]
    ftp.set_pasv(False)
    assert retr(ftp, "hello.txt") == b"hello world\n"
    ftp.set_pasv(True)
    # uploads: STOR, APPE, STOU, a name with spaces and accents
    ftp.storbinary("STOR up.bin", io.BytesIO(b"x" * 300_000))
    ftp.storbinary("APPE up.bin", io.BytesIO(b"y" * 1000))
    assert (site.root / "up.bin").read_bytes() == b"x" * 300_000 + b"y" * 1000
    assert ftp.size("up.bin") == 301_000
    name = "héllo wörld ü.txt"
    ftp.storbinary(f"STOR {name}", io.BytesIO(b"utf8"))
    assert (site.root / name).read_bytes() == b"utf8"
    assert name in ftp.nlst()
    reply = ftp.storbinary("STOU", io.BytesIO(b"unique"))
    assert reply.startswith("226")
    assert any((site.root / n).read_bytes() == b"unique" for n in os.listdir(site.root)
               if n.startswith("ftp.file"))
    # file management
    assert ftp.sendcmd("MDTM hello.txt").startswith("213 ")
    assert ftp.mkd("newdir") == "/newdir"
    assert ftp.cwd("newdir").startswith("250") and ftp.pwd() == "/newdir"
    assert ftp.sendcmd("CDUP").startswith("250")
    ftp.rename("up.bin", "newdir/moved.bin")
    assert (site.root / "newdir" / "moved.bin").stat().st_size == 301_000
    ftp.delete("newdir/moved.bin")
    assert ftp.rmd("newdir").startswith("250")
    # refusals
    for command in ("RETR ../outside/secret.txt", "RETR leak", "RETR leakdir/secret.txt",
                    "CWD leakdir", "SIZE /../x", "DELE nothing.txt"):
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.sendcmd(command) if not command.startswith("RETR") else retr(ftp, command[5:])
    with pytest.raises(ftplib.error_perm, match="^500"):
        ftp.sendcmd("BOGUS")
    assert ftp.sendcmd("NOOP").startswith("200")
    assert ftp.quit().startswith("221")
    assert not site.temporaries()


def test_read_only_user_and_anonymous(site: Site, engine: str) -> None:
    with ftp_server(site, engine, "--anonymous") as server:
        for user, pw in (("bob", None), ("anonymous", "me@example.com")):
            ftp = login(server, user, pw)
            assert retr(ftp, "hello.txt") == b"hello world\n"
            attempts = [(ftp.storbinary, ("STOR new.txt", io.BytesIO(b"x"))),
                        (ftp.storbinary, ("STOR hello.txt", io.BytesIO(b"x"))),
                        (ftp.delete, ("hello.txt",)), (ftp.mkd, ("d",)),
                        (ftp.rename, ("hello.txt", "h.txt"))]
            for method, args in attempts:
                with pytest.raises(ftplib.error_perm, match="^550"):
                    method(*args)  # type: ignore[operator]
            ftp.quit()
    assert (site.root / "hello.txt").read_bytes() == b"hello world\n"
    assert not (site.root / "new.txt").exists()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl(served: tuple[Site, ServerProcess], tmp_path: Path) -> None:
    site, server = served
    host, port = server.address("tcp")
    base = f"ftp://alice:{password('alice')}@{host}:{port}"
    curl = ["curl", "-sS", "--max-time", str(TIMEOUT)]
    listing = run([*curl, f"{base}/"])
    assert listing.returncode == 0, listing.stderr
    assert "hello.txt" in listing.stdout and ".hidden" not in listing.stdout
    got = tmp_path / "got.bin"
    assert run([*curl, "-o", str(got), f"{base}/data.bin"]).returncode == 0
    assert got.read_bytes() == (site.root / "data.bin").read_bytes()
    # resume a download that stopped half way (-C -: SIZE, REST, RETR)
    got.write_bytes(got.read_bytes()[:400_000])
    result = run([*curl, "-C", "-", "-o", str(got), f"{base}/data.bin"])
    assert result.returncode == 0, result.stderr
    assert got.read_bytes() == (site.root / "data.bin").read_bytes()
    # upload (-T), then resume an upload (-C -: SIZE then APPE)
    local = tmp_path / "local.bin"
    local.write_bytes(os.urandom(700_000))
    assert run([*curl, "-T", str(local), f"{base}/sub/"]).returncode == 0
    assert (site.root / "sub" / "local.bin").read_bytes() == local.read_bytes()
    (site.root / "sub" / "local.bin").write_bytes(local.read_bytes()[:250_000])
    result = run([*curl, "-C", "-", "-T", str(local), f"{base}/sub/local.bin"])
    assert result.returncode == 0, result.stderr
    assert (site.root / "sub" / "local.bin").read_bytes() == local.read_bytes()
    # active mode, and a refusal curl reports
    result = run([*curl, "-P", "-", "-o", str(tmp_path / "h.txt"), f"{base}/hello.txt"])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "h.txt").read_bytes() == b"hello world\n"
    assert run([*curl, "-o", str(tmp_path / "x"), f"{base}/leak"]).returncode != 0


@pytest.mark.skipif(shutil.which("lftp") is None, reason="lftp is not installed")
def test_lftp_mirror_and_pget(served: tuple[Site, ServerProcess], tmp_path: Path) -> None:
    site, server = served
    host, port = server.address("tcp")
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "top.txt").write_bytes(b"top\n")
    (tree / "a" / "b" / "deep.bin").write_bytes(os.urandom(300_000))
    (tree / "a" / "with space ä.txt").write_bytes(b"spaces\n")
    big = site.root / "big.bin"
    big.write_bytes(os.urandom(4 * 1024 * 1024))
    script = "; ".join([
        "set cmd:fail-exit yes", "set net:max-retries 1", "set net:timeout 15",
        "set net:reconnect-interval-base 1", "set net:reconnect-interval-max 1",
        "set ftp:ssl-allow no", "set pget:min-chunk-size 64k",
        f"mirror -R {tree} up", f"mirror up {tmp_path / 'down'}",
        f"pget -n 4 big.bin -o {tmp_path / 'pget.bin'}", "quit",
    ])
    result = run(["lftp", "-u", f"alice,{password('alice')}", "-p", str(port), "-e", script, host])
    assert result.returncode == 0, result.stderr
    assert run(["diff", "-r", str(tree), str(site.root / "up")]).returncode == 0
    assert run(["diff", "-r", str(tree), str(tmp_path / "down")]).returncode == 0
    assert (tmp_path / "pget.bin").read_bytes() == big.read_bytes()
    assert not site.temporaries()


@pytest.mark.skipif(shutil.which("lftp") is None, reason="lftp is not installed")
def test_lftp_mirror_keeps_times_and_modes(
        served: tuple[Site, ServerProcess], tmp_path: Path) -> None:
    """``mirror -R`` sets each file's time (MFMT) and mode (SITE CHMOD), as it
    does against vsftpd or pyftpdlib: without them the copies carry the
    upload's time and the umask's mode, and lftp prints an error per file."""
    site, server = served
    host, port = server.address("tcp")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    files = {tree / "old.txt": 0o640, tree / "sub" / "script.sh": 0o750}
    for index, (path, mode) in enumerate(files.items()):
        path.write_bytes(b"content %d\n" % index)
        path.chmod(mode)
        os.utime(path, (1_500_000_000 + index, 1_500_000_000 + index))
    script = "; ".join(["set cmd:fail-exit yes", "set net:max-retries 1", "set net:timeout 15",
                        "set ftp:ssl-allow no", f"mirror -R -v {tree} up", "quit"])
    argv = ["lftp", "-u", f"alice,{password('alice')}", "-p", str(port), "-e", script, host]
    first = run(argv)
    assert first.returncode == 0 and first.stderr == "", first.stderr
    assert first.stdout.count("Transferring file") == 2, first.stdout
    for path, mode in files.items():
        there = site.root / "up" / path.relative_to(tree)
        assert there.read_bytes() == path.read_bytes()
        assert there.stat().st_mtime == path.stat().st_mtime
        assert there.stat().st_mode & 0o777 == mode
    second = run(argv)
    assert second.returncode == 0 and second.stderr == "", second.stderr
    assert "Transferring" not in second.stdout, second.stdout


def test_ftps_with_ftplib_curl_and_lftp(site: Site, engine: str, tls_files: tuple[Path, Path],
                                        tmp_path: Path) -> None:
    cert, key = tls_files
    with ftp_server(site, engine, "--certfile", str(cert), "--keyfile", str(key)) as server:
        context = ssl.create_default_context(cafile=str(cert))
        ftp = login(server, cls=ftplib.FTP_TLS, context=context)
        assert isinstance(ftp, ftplib.FTP_TLS)
        ftp.prot_p()
        data = (site.root / "data.bin").read_bytes()
        assert retr(ftp, "data.bin") == data
        ftp.storbinary("STOR tls.bin", io.BytesIO(data))
        assert hashlib.sha256((site.root / "tls.bin").read_bytes()).digest() == \
            hashlib.sha256(data).digest()
        assert "hello.txt" in ftp.nlst()
        ftp.quit()
        port = server.address("tcp")[1]
        url = f"ftp://alice:{password('alice')}@localhost:{port}/hello.txt"
        result = run(["curl", "-sS", "--max-time", str(TIMEOUT), "--ssl-reqd", "--cacert",
                      str(cert), url])
        assert result.returncode == 0 and result.stdout == "hello world\n", result.stderr
        if shutil.which("lftp"):
            script = (f"set ssl:ca-file {cert}; set ftp:ssl-force yes; "
                      f"set ftp:ssl-protect-data yes; set net:max-retries 1; "
                      f"set net:reconnect-interval-base 1; set net:reconnect-interval-max 1; "
                      f"get hello.txt -o {tmp_path / 'l.txt'}; quit")
            result = run(["lftp", "-u", f"alice,{password('alice')}", "-p", str(port), "-e",
                          script, "localhost"])
            assert result.returncode == 0, result.stderr
            assert (tmp_path / "l.txt").read_bytes() == b"hello world\n"


def test_aborted_and_dropped_uploads_leave_nothing(served: tuple[Site, ServerProcess]) -> None:
    site, server = served
    before = site.files()
    ftp = login(server)
    ftp.voidcmd("TYPE I")
    # ABOR in the middle of an upload
    conn = ftp.transfercmd("STOR aborted.bin")
    conn.sendall(b"z" * 500_000)
    reply = ftp.abort()
    conn.close()
    if reply.startswith("426"):  # the transfer's reply; then ABOR's own (RFC 959)
        reply = ftp.getresp()
    assert reply.startswith(("225", "226"))
    ftp.quit()
    # the client vanishing in the middle of an upload (one session at a time:
    # the iterative engine serves connections in turn)
    other = login(server)
    other.voidcmd("TYPE I")
    conn = other.transfercmd("STOR dropped.bin")
    conn.sendall(b"z" * 500_000)
    # EOF would end the file (stream mode); a reset is a failure, so no file
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    other.close()
    # the server still works, and nothing was left behind
    ftp = login(server)
    assert ftp.sendcmd("NOOP").startswith("200")
    ftp.quit()
    wait_until(lambda: site.files() == before, timeout=TIMEOUT,
               message="no partial upload and no temporary file left")
