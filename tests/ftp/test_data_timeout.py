"""The data timeout: a download the client stops reading is cut, on every engine.

``--data-timeout`` is "seconds a data connection may make no progress".  A
binary RETR goes out by ``transport.sendfile``, which no engine reports on
while it runs, and on the blocking engines the data connection's thread
sits inside the send meanwhile; so these tests stall a large download on
purpose (a raw data socket that never reads, with a small receive window)
and check that FTP itself ends it, long before the engine's own limits
(``--shutdown-timeout``, ``--idle-timeout``) would.
"""

from __future__ import annotations

import ftplib
import io
import socket
import time

import pytest

from ionet.core.testing import ServerProcess

from .conftest import TIMEOUT, Site, ftp_server, login
from .test_transfers import slow_retr

#: Larger than every buffer between the server and a client that stopped
#: reading (the server's send buffer grows to a few MiB).
STALLED_SIZE = 48 * 1024 * 1024
DATA_TIMEOUT = 1.0
#: The engine's limits, far beyond what the test allows: only FTP's own
#: data timeout can end the stalled transfer in time.
ENGINE_LIMITS = ("--shutdown-timeout", "120", "--idle-timeout", "120")
#: Seconds from the stall to the 426, at most: the timeout, one more check
#: period, and room for a slow, busy test machine.
CUT_WITHIN = 8.0


def stalled_server(site: Site, engine: str) -> ServerProcess:
    with open(site.root / "big.bin", "wb") as file:
        file.truncate(STALLED_SIZE)  # sparse: quick to make, sent like any file
    return ftp_server(site, engine, "--data-timeout", str(DATA_TIMEOUT), *ENGINE_LIMITS)


def open_stalled_download(ftp: ftplib.FTP, name: str) -> socket.socket:
    """Start a binary RETR of ``name`` over a data connection that is never read."""
    ftp.voidcmd("TYPE I")
    host, port = ftp.makepasv()
    data = socket.socket()
    data.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)  # before connect: the window
    data.settimeout(TIMEOUT)
    data.connect((host, port))
    assert ftp.sendcmd(f"RETR {name}").startswith(("125", "150"))
    return data


def read_to_the_end(data: socket.socket, deadline: float) -> int:
    """Drain the data connection until the server's close; the bytes received."""
    total = 0
    while True:
        data.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = data.recv(1 << 20)
        except ConnectionResetError:
            return total
        except TimeoutError:
            raise AssertionError(f"data connection still open after {total} bytes") from None
        if not chunk:
            return total
        total += len(chunk)


def served_meanwhile(server: ServerProcess) -> None:
    """Another client lists and downloads while the stalled transfer is on."""
    other = login(server)
    try:
        lines: list[str] = []
        other.retrlines("LIST", lines.append)
        assert any("hello.txt" in line for line in lines)
        out = io.BytesIO()
        other.retrbinary("RETR hello.txt", out.write)
        assert out.getvalue() == b"hello world\n"
        other.quit()
    finally:
        other.close()


def test_a_stalled_download_is_cut_by_the_data_timeout(site: Site, engine: str) -> None:
    with stalled_server(site, engine) as server:
        ftp = login(server)
        data = open_stalled_download(ftp, "big.bin")
        started = time.monotonic()
        try:
            if engine != "iterative":  # (it serves one control connection at a time)
                served_meanwhile(server)
            assert ftp.sock is not None
            ftp.sock.settimeout(max(0.1, started + CUT_WITHIN - time.monotonic()))
            try:
                reply = ftp.getline()
            except TimeoutError:
                raise AssertionError(f"no reply {CUT_WITHIN}s after a stalled RETR "
                                     f"(data timeout {DATA_TIMEOUT}s)") from None
            assert reply.startswith("426"), reply
            received = read_to_the_end(data, time.monotonic() + TIMEOUT)
            assert received < STALLED_SIZE
        finally:
            data.close()
        ftp.sock.settimeout(TIMEOUT)
        assert ftp.sendcmd("NOOP").startswith("200")  # the control connection goes on
        out = io.BytesIO()
        ftp.retrbinary("RETR hello.txt", out.write)  # and can transfer again
        assert out.getvalue() == b"hello world\n"
        ftp.quit()
        if engine == "iterative":
            served_meanwhile(server)


@pytest.mark.parametrize("engine_name", ["epoll", "thread", "asyncio", "gevent"])
def test_a_slow_download_that_keeps_moving_is_not_cut(site: Site, engine_name: str) -> None:
    """Progress, however slow, resets the data timeout: a binary download
    that lasts several data timeouts completes."""
    payload = bytes(range(256)) * (12 * 1024 * 1024 // 256)
    (site.root / "slow.bin").write_bytes(payload)
    with ftp_server(site, engine_name, "--data-timeout", str(DATA_TIMEOUT),
                    *ENGINE_LIMITS) as server:
        ftp = login(server)
        ftp.voidcmd("TYPE I")
        started = time.monotonic()
        received = slow_retr(ftp, "slow.bin", len(payload), 3 * DATA_TIMEOUT)
        assert time.monotonic() - started >= 3 * DATA_TIMEOUT
        assert received == payload
        assert ftp.sendcmd("NOOP").startswith("200")
        ftp.quit()


def test_abor_ends_a_stalled_download_at_once(site: Site, engine: str) -> None:
    """ABOR reaches a download whose thread is stuck in a send (blocking
    engines) as promptly as a loop engine's: 426 for the transfer, then 226
    (RFC 959), with the data timeout far away."""
    with open(site.root / "big.bin", "wb") as file:
        file.truncate(STALLED_SIZE)
    with ftp_server(site, engine, "--data-timeout", "120", *ENGINE_LIMITS) as server:
        ftp = login(server)
        data = open_stalled_download(ftp, "big.bin")
        try:
            assert ftp.sock is not None
            ftp.sock.sendall(b"ABOR\r\n")
            ftp.sock.settimeout(CUT_WITHIN)
            try:
                replies = [ftp.getline(), ftp.getline()]
            except TimeoutError:
                raise AssertionError(f"no answer to ABOR within {CUT_WITHIN}s") from None
            assert replies[0].startswith("426"), replies
            assert replies[1].startswith("226"), replies
            assert read_to_the_end(data, time.monotonic() + TIMEOUT) < STALLED_SIZE
        finally:
            data.close()
        ftp.sock.settimeout(TIMEOUT)
        assert ftp.sendcmd("NOOP").startswith("200")
        ftp.quit()
