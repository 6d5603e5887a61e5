"""File names that are not UTF-8, and commands with bytes that are not, over
real sockets with ftplib, on every engine.

FTP names are bytes on the wire (RFC 2640 asks for UTF-8, but old clients
and old files use Latin-1 and others).  The server passes bytes that are not
valid UTF-8 through to the filesystem unchanged (``surrogateescape``), so a
file stored under a Latin-1 name is listed, fetched, renamed and deleted
under those same bytes, and nothing else is mangled on the way.
"""

from __future__ import annotations

import ftplib
import io
import os

from .conftest import TIMEOUT, ServerProcess, Site, password

LATIN1_NAME = b"caf\xe9 d\xe9j\xe0.txt"  # not UTF-8: \xe9 starts a sequence it cannot end


def test_a_latin1_name_round_trips_byte_for_byte(served: tuple[Site, ServerProcess]) -> None:
    site, server = served
    ftp = latin1_login(server)
    name = LATIN1_NAME.decode("latin-1")
    assert ftp.storbinary(f"STOR {name}", io.BytesIO(b"payload\n")).startswith("226")
    # On disk under exactly those bytes, not a re-encoded name.
    assert LATIN1_NAME in os.listdir(os.fsencode(site.root))
    assert name in ftp.nlst()
    assert any(line.endswith(name) for line in _list(ftp))
    assert ftp.size(name) == len(b"payload\n")
    got = io.BytesIO()
    assert ftp.retrbinary(f"RETR {name}", got.write).startswith("226")
    assert got.getvalue() == b"payload\n"
    assert ftp.rename(name, name + ".old").startswith("250")
    assert LATIN1_NAME + b".old" in os.listdir(os.fsencode(site.root))
    assert ftp.delete(name + ".old").startswith("250")
    assert not [n for n in os.listdir(os.fsencode(site.root)) if n.startswith(b"caf")]
    ftp.quit()


def test_bad_bytes_in_commands_get_replies_and_the_session_goes_on(
        served: tuple[Site, ServerProcess]) -> None:
    site, server = served
    ftp = latin1_login(server)
    # A command verb that is not UTF-8: refused as unknown, not a crash.
    reply = _raw(ftp, "\xff\xfeXYZ")
    assert reply[:3] in {"500", "502"}, reply
    # A path that does not exist, with bytes that are not UTF-8.
    reply = _raw(ftp, "CWD \xe9\xff")
    assert reply.startswith("550"), reply
    # A path trick hidden behind bad bytes still stays inside the root.
    reply = _raw(ftp, "RETR \xe9/../../outside/secret.txt")
    assert reply.startswith("550"), reply
    assert ftp.voidcmd("NOOP").startswith("200")
    assert ftp.pwd() == "/"
    ftp.quit()


def latin1_login(server: ServerProcess) -> ftplib.FTP:
    """ftplib speaking Latin-1: each character is one byte, sent and read as is."""
    host, port = server.address("tcp")
    ftp = ftplib.FTP(timeout=TIMEOUT, encoding="latin-1")
    ftp.connect(host, port)
    ftp.login("alice", password("alice"))
    return ftp


def _list(ftp) -> list[str]:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    ftp.retrlines("LIST", lines.append)
    return lines


def _raw(ftp, line: str) -> str:  # type: ignore[no-untyped-def]
    """Send ``line`` and return the reply, whatever its code."""
    ftp.putcmd(line)
    return ftp.getmultiline()
