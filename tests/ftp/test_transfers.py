"""Big files, resumes, many clients and the limits, over real sockets."""

from __future__ import annotations

import ftplib
import hashlib
import io
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ionet.core.testing import ServerProcess, wait_until

from .conftest import TIMEOUT, Site, ftp_server, login, password

BIG = 200 * 1024 * 1024


@pytest.fixture(scope="session")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 200 MiB file of random bytes, and its SHA-256."""
    path = tmp_path_factory.mktemp("big") / "big.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        block = os.urandom(1 << 20)
        for index in range(BIG >> 20):
            chunk = index.to_bytes(8, "big") + block[8:]  # no two MiB alike
            digest.update(chunk)
            out.write(chunk)
    return path, digest.hexdigest()


def sha256_of(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a crashed client or a dropped line would."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("engine_name", ["epoll", "thread", "asyncio"])
def test_200_mb_up_and_down_byte_exact(site: Site, engine_name: str,
                                       big_file: tuple[Path, str]) -> None:
    path, digest = big_file
    with ftp_server(site, engine_name) as server:
        ftp = login(server)
        with open(path, "rb") as file:
            assert ftp.storbinary("STOR big.bin", file, blocksize=256 * 1024).startswith("226")
        assert sha256_of(site.root / "big.bin") == digest
        received = hashlib.sha256()
        ftp.retrbinary("RETR big.bin", received.update, blocksize=256 * 1024)
        assert received.hexdigest() == digest
        ftp.quit()


def test_resume_a_download_after_the_connection_dropped(served: tuple[Site, ServerProcess]) -> None:
    site, server = served
    data = (site.root / "data.bin").read_bytes()
    ftp = login(server)
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR data.bin")
    got = bytearray()
    while len(got) < 300_000:
        got += conn.recv(65536)
    reset(conn)
    assert ftp.sock is not None
    reset(ftp.sock)
    ftp.close()
    again = login(server)
    again.retrbinary("RETR data.bin", got.extend, rest=len(got))
    assert bytes(got) == data
    again.quit()


def test_our_client_against_our_server(served: tuple[Site, ServerProcess], tmp_path: Path) -> None:
    site, server = served
    host, port = server.address("tcp")
    url = f"ftp://alice:{password('alice')}@{host}:{port}"
    ionet = [sys.executable, "-m", "ionet", "ftp"]

    def run(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([*ionet, *argv], input=stdin, capture_output=True, text=True,
                              timeout=60, cwd=tmp_path, check=False)

    (site.root / "five.bin").write_bytes(os.urandom(5_000_000))
    result = run("get", f"{url}/five.bin", "-o", "five.bin", "--connections", "4")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "five.bin").read_bytes() == (site.root / "five.bin").read_bytes()
    assert "checked" in result.stderr
    (tmp_path / "mine.txt").write_bytes(b"from our client\n")
    result = run("put", "mine.txt", f"{url}/sub/")
    assert result.returncode == 0, result.stderr
    assert (site.root / "sub" / "mine.txt").read_bytes() == b"from our client\n"
    script = "\n".join([password("alice"), "list", "cd sub", "pwd", "get inner.txt",
                        "put mine.txt copy.txt", "mkdir made", "rm nothing.txt", "get ../../x",
                        "quit"]) + "\n"
    result = run("client", host, "--port", str(port), "--user", "alice", stdin=script)
    assert "hello.txt" in result.stdout and "/sub" in result.stdout
    assert (tmp_path / "inner.txt").read_bytes() == b"inner\n"
    assert (site.root / "sub" / "copy.txt").exists() and (site.root / "sub" / "made").is_dir()
    assert "error: the server refused: 550" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    result = run("get", f"ftp://alice:wrong@{host}:{port}/hello.txt")
    assert result.returncode == 2 and "530" in result.stderr and "Traceback" not in result.stderr


def test_50_clients_at_once(site: Site, engine: str) -> None:
    if engine == "iterative":
        pytest.skip("the iterative engine serves one connection at a time, by design")
    for index in range(5):
        (site.root / f"small{index}.bin").write_bytes(bytes([index]) * 4096)
    with ftp_server(site, engine) as server:
        start = threading.Barrier(50, timeout=TIMEOUT)

        def client(number: int) -> int:
            ftp = login(server)
            try:
                start.wait()
                lines: list[str] = []
                ftp.retrlines("LIST", lines.append)
                assert any("small0.bin" in line for line in lines)
                total = 0
                for index in range(5):
                    out = io.BytesIO()
                    ftp.retrbinary(f"RETR small{index}.bin", out.write)
                    assert out.getvalue() == bytes([index]) * 4096
                    total += 1
                ftp.quit()
                return total
            finally:
                ftp.close()

        with ThreadPoolExecutor(50) as pool:
            assert sum(pool.map(client, range(50))) == 250


def test_limits(site: Site) -> None:
    with ftp_server(site, "epoll", "--max-connections", "3", "--max-per-ip", "2",
                    "--max-login-failures", "2", "--ban-time", "60") as server:
        host, port = server.address("tcp")
        first, second = login(server), login(server)
        third = ftplib.FTP(timeout=TIMEOUT)
        with pytest.raises(ftplib.error_temp, match="421 Too many connections from your address"):
            third.connect(host, port)
        third.close()
        first.quit()
        second.quit()
        # two failed logins: banned, and the next connection is turned away
        ftp = ftplib.FTP(timeout=TIMEOUT)
        ftp.connect(host, port)
        with pytest.raises(ftplib.error_perm, match="530"):
            ftp.login("alice", "wrong")
        with pytest.raises((ftplib.error_perm, ftplib.error_temp), match="530|421"):
            ftp.login("alice", "wrong again")
        ftp.close()
        ftp = ftplib.FTP(timeout=TIMEOUT)
        with pytest.raises(ftplib.error_temp, match="421 Too many failed logins"):
            ftp.connect(host, port)
        ftp.close()


def test_connection_limit_reply(site: Site) -> None:
    with ftp_server(site, "epoll", "--max-connections", "1") as server:
        host, port = server.address("tcp")
        first = login(server)
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            assert sock.recv(100).startswith(b"421 Too many connections.")
        first.quit()


def test_timeouts_and_passive_ports(site: Site) -> None:
    with ftp_server(site, "epoll", "--idle-timeout", "1", "--data-timeout", "1",
                    "--passive-ports", "47100-47109") as server:
        ftp = login(server)
        reply = ftp.sendcmd("EPSV")
        assert 47100 <= int(reply.split("|")[3]) <= 47109
        wait_until(lambda: "Data connection: closed" in ftp.sendcmd("STAT"), timeout=TIMEOUT,
                   interval=0.2, message="passive listener given up")
        with pytest.raises(ftplib.error_temp, match="425"):
            ftp.sendcmd("RETR hello.txt")
        assert ftp.sock is not None
        ftp.sock.settimeout(TIMEOUT)
        assert ftp.getline().startswith("421 Control connection timed out")
        ftp.close()


#: Engine timeouts far shorter than the slow download below.  (``ionet ftp
#: serve`` applies --idle-timeout between FTP commands too: 1s there.)
UP_TIMEOUTS = ("--first-bytes-timeout", "0.25", "--idle-timeout", "0.5")
SERVE_TIMEOUTS = ("--first-bytes-timeout", "0.5", "--idle-timeout", "1")


def slow_retr(ftp: ftplib.FTP, name: str, size: int, seconds: float) -> bytes:
    """RETR ``name`` over a data connection read so slowly that it lasts ``seconds``.

    The receive buffer is small, so the server is still sending most of
    that time; the client never sends a byte on it, nor on the control
    connection meanwhile.
    """
    host, port = ftp.makepasv()
    with socket.socket() as data:
        data.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        data.settimeout(TIMEOUT)
        data.connect((host, port))
        assert ftp.sendcmd(f"RETR {name}").startswith(("125", "150"))
        received = bytearray()
        started = time.monotonic()
        while chunk := data.recv(16 * 1024):
            received += chunk
            time.sleep(max(0.0, started + seconds * len(received) / size - time.monotonic()))
    assert ftp.voidresp().startswith("226")
    return bytes(received)


#: 16 MiB of lines, for ASCII mode: sent in chunks, one by one, not by one
#: sendfile; large enough that the server is still sending for most of the
#: download, whatever the kernel buffers (a few MB here).
LINES = b"".join(b"%062d\n" % number for number in range(256 * 1024))


def check_slow_download(server: ServerProcess, seconds: float = 2.0) -> None:
    with server:
        ftp = login(server)
        ftp.sendcmd("TYPE A")
        started = time.monotonic()
        received = slow_retr(ftp, "lines.txt", len(LINES), seconds)
        assert time.monotonic() - started >= seconds
        assert received == LINES.replace(b"\n", b"\r\n")
        assert ftp.sendcmd("NOOP").startswith("200")
        ftp.quit()


def test_a_slow_download_outlasts_the_engine_timeouts(site: Site, engine: str,
                                                      tmp_path: Path) -> None:
    """FTP keeps its own time: under ``ionet up`` (one set of limits for every
    service) the engine's first-bytes timeout must not cut a download's data
    connection (the client never sends on it), nor its idle timeout the
    control connection, silent while the transfer runs."""
    data_dir = tmp_path / "up"  # `ionet up` serves <data-dir>/files, <data-dir>/ftp-users.json
    (data_dir / "files").mkdir(parents=True)
    (data_dir / "ftp-users.json").write_bytes(site.users.read_bytes())
    (data_dir / "files" / "lines.txt").write_bytes(LINES)
    check_slow_download(ServerProcess(["--data-dir", str(data_dir), "--engine", engine,
                                       *UP_TIMEOUTS], module="tests.ftp.up_server"))


@pytest.mark.parametrize("engine_name", ["epoll", "thread"])
def test_ftp_serve_leaves_the_timing_to_ftp_too(site: Site, engine_name: str) -> None:
    (site.root / "lines.txt").write_bytes(LINES)
    check_slow_download(ftp_server(site, engine_name, *SERVE_TIMEOUTS))


def test_bandwidth_limits(site: Site) -> None:
    rates = ("--max-download-rate", "2M", "--max-upload-rate", "2M")
    with ftp_server(site, "epoll", *rates) as server:
        ftp = login(server)
        started = time.monotonic()
        out = io.BytesIO()
        ftp.retrbinary("RETR data.bin", out.write)  # 1 MB at 2 MiB/s
        assert out.getvalue() == (site.root / "data.bin").read_bytes()
        assert time.monotonic() - started >= 0.4
        started = time.monotonic()
        ftp.storbinary("STOR up.bin", io.BytesIO(b"u" * 1_000_000))
        assert time.monotonic() - started >= 0.4
        assert (site.root / "up.bin").stat().st_size == 1_000_000
        ftp.quit()

