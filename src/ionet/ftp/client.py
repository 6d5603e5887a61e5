"""The FTP client: an interactive shell, and whole-file ``get``/``put``, on ``ftplib``.

``ftplib`` is the standard library's FTP client, so the client works with any
FTP server, ours or not.  On top of it:

* :class:`Shell`, the course's menu-driven client grown into a small shell:
  ``list``, ``get FILE``, ``put FILE``, ``cd``, ``pwd``, ``mkdir``, ``rm``,
  ``quit``, with a progress bar per transfer and one clear line per server
  error (never a traceback);
* :func:`parallel_get`, the course's multi-threaded download done right:
  the size is asked first (SIZE), the file is cut into N byte ranges, each
  fetched on its own connection with ``REST offset`` + ``RETR`` and written in
  place with ``os.pwrite``; a range that fails resumes where it stopped; the
  result is checked against the size, and against the server's SHA-256 when
  it offers ``HASH``.  Nothing appears under the final name unless it is
  complete.
"""

from __future__ import annotations

import argparse
import ftplib
import hashlib
import os
import shlex
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlsplit

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ionet.core.errors import UserError

BLOCK = 256 * 1024
#: Attempts per byte range before giving up on a parallel download.
RANGE_ATTEMPTS = 3

console = Console(stderr=True, highlight=False)


@dataclass(frozen=True)
class FtpURL:
    host: str
    port: int
    user: str
    password: str | None
    path: str


def parse_url(url: str) -> FtpURL:
    """``ftp://[user[:password]@]host[:port]/path``.

    Raises:
        UserError: not an ftp:// URL, or no host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ftp", "ftps") or not parts.hostname:
        raise UserError(f"not an FTP URL: {url!r} (ftp://[user@]host[:port]/path)")
    try:
        port = parts.port or 21
    except ValueError:
        raise UserError(f"bad port in {url!r}") from None
    user = unquote(parts.username) if parts.username else "anonymous"
    password = unquote(parts.password) if parts.password is not None else None
    return FtpURL(parts.hostname, port, user, password, unquote(parts.path) or "/")


def explain(exc: BaseException) -> str:
    """One line saying what went wrong, for people."""
    if isinstance(exc, ftplib.error_perm):
        return f"the server refused: {exc}"
    if isinstance(exc, ftplib.error_temp):
        return f"the server could not do it now: {exc}"
    if isinstance(exc, ftplib.Error):
        return f"unexpected server reply: {exc}"
    if isinstance(exc, EOFError):
        return "the server closed the connection"
    if isinstance(exc, socket.timeout):
        return "the server did not answer in time"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc}"
    if isinstance(exc, OSError):
        return f"network or file error: {exc.strerror or exc}"
    return str(exc)


def connect(host: str, port: int, user: str, password: str | None, timeout: float = 30.0,
            tls: bool = False) -> ftplib.FTP:
    """Connect and log in; ``tls`` uses AUTH TLS and protects data connections.

    Raises:
        ftplib.Error, OSError, EOFError: as ftplib raises them.
    """
    if tls:
        context = ssl.create_default_context()
        if os.environ.get("IONET_FTP_INSECURE"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        ftp: ftplib.FTP = ftplib.FTP_TLS(context=context, timeout=timeout)
    else:
        ftp = ftplib.FTP(timeout=timeout)
    ftp.encoding = "utf-8"
    ftp.connect(host, port)
    try:
        if user == "anonymous" and password is None:
            password = "anonymous@"
        ftp.login(user, password or "")
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.prot_p()
    except BaseException:
        ftp.close()
        raise
    return ftp


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=console,
                    transient=False)


def password_for(user: str, given: str | None) -> str | None:
    """The password: from the URL, $IONET_FTP_PASSWORD, the terminal, or stdin's first line."""
    if given is not None or user == "anonymous":
        return given
    if "IONET_FTP_PASSWORD" in os.environ:
        return os.environ["IONET_FTP_PASSWORD"]
    from ionet.ftp.cli import read_password

    return read_password(f"Password for {user}: ")


# -- whole-file transfers -----------------------------------------------------------------

def download(ftp: ftplib.FTP, remote: str, local: Path, progress: Progress | None = None) -> int:
    """RETR ``remote`` into ``local`` (via ``local.part``, renamed when complete)."""
    size = _size(ftp, remote)
    partial = local.with_name(local.name + ".part")
    task = progress.add_task(f"get {remote}", total=size) if progress else None
    received = 0
    with open(partial, "wb") as out:
        def write(data: bytes) -> None:
            nonlocal received
            out.write(data)
            received += len(data)
            if progress is not None and task is not None:
                progress.advance(task, len(data))

        try:
            ftp.retrbinary(f"RETR {remote}", write, blocksize=BLOCK)
        except BaseException:
            out.close()
            partial.unlink(missing_ok=True)
            raise
    if size is not None and received != size:
        partial.unlink(missing_ok=True)
        raise ftplib.error_temp(f"451 got {received} bytes of {size}")
    os.replace(partial, local)
    return received


def upload(ftp: ftplib.FTP, local: Path, remote: str, progress: Progress | None = None) -> int:
    """STOR ``local`` as ``remote``."""
    size = local.stat().st_size
    task = progress.add_task(f"put {local.name}", total=size) if progress else None
    sent = 0

    def advance(data: bytes) -> None:
        nonlocal sent
        sent += len(data)
        if progress is not None and task is not None:
            progress.advance(task, len(data))

    with open(local, "rb") as file:
        ftp.storbinary(f"STOR {remote}", file, blocksize=BLOCK, callback=advance)
    return sent


def _size(ftp: ftplib.FTP, remote: str) -> int | None:
    ftp.voidcmd("TYPE I")
    try:
        return ftp.size(remote)
    except ftplib.error_perm as exc:
        if str(exc).startswith("550"):
            raise
        return None  # SIZE not supported


# -- the parallel ranged download ----------------------------------------------------------

def ranges(size: int, parts: int) -> list[tuple[int, int]]:
    """Split ``size`` bytes into at most ``parts`` ``(start, length)`` ranges.

    >>> ranges(10, 3)
    [(0, 4), (4, 3), (7, 3)]
    """
    parts = max(1, min(parts, size)) if size else 1
    base, extra = divmod(size, parts)
    out, start = [], 0
    for index in range(parts):
        length = base + (1 if index < extra else 0)
        out.append((start, length))
        start += length
    return out


def fetch_range(open_ftp: Callable[[], ftplib.FTP], remote: str, fd: int, start: int, length: int,
                on_bytes: Callable[[int], None]) -> None:
    """Fetch ``length`` bytes of ``remote`` from ``start`` into ``fd`` at the same offset.

    A failure is retried from where it stopped (REST), up to RANGE_ATTEMPTS times.
    """
    done = 0
    for attempt in range(1, RANGE_ATTEMPTS + 1):
        try:
            with _session(open_ftp) as ftp:
                ftp.voidcmd("TYPE I")
                conn = ftp.transfercmd(f"RETR {remote}", rest=start + done)
                complete = False
                try:
                    while done < length:
                        chunk = conn.recv(min(BLOCK, length - done))
                        if not chunk:
                            break
                        os.pwrite(fd, chunk, start + done)
                        done += len(chunk)
                        on_bytes(len(chunk))
                    complete = done == length
                finally:
                    conn.close()  # ends the transfer early if the range is not the tail
                try:
                    ftp.voidresp()  # 226, or 426/451 since we hung up: either is fine
                except (ftplib.error_temp, ftplib.error_reply):
                    pass
                if complete:
                    return
                raise EOFError(f"data connection closed at {start + done}")
        except (ftplib.error_temp, OSError, EOFError):
            if attempt == RANGE_ATTEMPTS:
                raise


class _session:
    """``with _session(open_ftp) as ftp``: QUIT at the end, or just close on errors."""

    def __init__(self, open_ftp: Callable[[], ftplib.FTP]) -> None:
        self.ftp = open_ftp()

    def __enter__(self) -> ftplib.FTP:
        return self.ftp

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.ftp.quit()
        except (ftplib.Error, OSError, EOFError):
            pass
        finally:
            self.ftp.close()


def parallel_get(open_ftp: Callable[[], ftplib.FTP], remote: str, output: Path, connections: int,
                 progress: Progress | None = None) -> int:
    """Download ``remote`` into ``output`` over ``connections`` parallel byte ranges.

    Returns the size.  Raises ftplib/OS errors, or ``ValueError`` if the
    check fails (size or SHA-256 mismatch); ``output`` is untouched then.
    """
    with _session(open_ftp) as ftp:
        size = _size(ftp, remote)
        if size is None:
            raise ftplib.error_perm("504 the server does not report sizes: cannot split")
        features = ftp.sendcmd("FEAT") if connections > 1 else ""
        before = _mdtm(ftp, remote)
    partial = output.with_name(output.name + ".part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    task = progress.add_task(f"get {remote}", total=size) if progress else None
    lock = threading.Lock()
    failures: list[BaseException] = []

    def on_bytes(count: int) -> None:
        if progress is not None and task is not None:
            with lock:
                progress.advance(task, count)

    completed: list[int] = []

    def worker(start: int, length: int) -> None:
        try:
            fetch_range(open_ftp, remote, fd, start, length, on_bytes)
            completed.append(start)
        except (ftplib.Error, OSError, EOFError, ValueError) as exc:  # reported by the caller
            failures.append(exc)

    try:
        os.ftruncate(fd, size)
        threads = [threading.Thread(target=worker, args=part, daemon=True)
                   for part in ranges(size, connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        if len(completed) != len(threads):  # a thread died of something unexpected
            raise ValueError("a part of the download failed")
        if os.fstat(fd).st_size != size:
            raise ValueError(f"the file has {os.fstat(fd).st_size} bytes, not {size}")
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        partial.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        _check(open_ftp, remote, partial, features, before)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, output)
    return size


def _mdtm(ftp: ftplib.FTP, remote: str) -> str | None:
    try:
        return ftp.sendcmd(f"MDTM {remote}")
    except ftplib.error_perm:
        return None


def _check(open_ftp: Callable[[], ftplib.FTP], remote: str, local: Path, features: str,
           before: str | None) -> None:
    """Compare with the server's SHA-256 (HASH) if offered, and check the file did not change."""
    with _session(open_ftp) as ftp:
        if before is not None and _mdtm(ftp, remote) != before:
            raise ValueError(f"{remote} changed on the server during the download")
        if "HASH" not in features.upper():
            return
        reply = ftp.sendcmd(f"HASH {remote}")
    fields = reply.split()
    if len(fields) >= 4 and fields[1].upper() == "SHA-256":
        with open(local, "rb") as file:
            mine = hashlib.file_digest(file, "sha256").hexdigest()
        if mine.lower() != fields[3].lower():
            raise ValueError("SHA-256 mismatch: the download is corrupt")


# -- the commands --------------------------------------------------------------------------

def run_get(args: argparse.Namespace) -> int:
    url = parse_url(args.url)
    password = password_for(url.user, url.password)
    output: Path = args.output or Path(Path(url.path).name or "download")

    def open_ftp() -> ftplib.FTP:
        return connect(url.host, url.port, url.user, password, args.timeout, args.tls)

    try:
        with progress_bar() as progress:
            size = parallel_get(open_ftp, url.path, output, max(1, args.connections), progress)
    except (ftplib.Error, OSError, EOFError, ValueError) as exc:
        raise UserError(explain(exc)) from None
    console.print(f"saved {output} ({size} bytes, checked)")
    return 0


def run_put(args: argparse.Namespace) -> int:
    url = parse_url(args.url)
    password = password_for(url.user, url.password)
    remote = url.path + args.file.name if url.path.endswith("/") else url.path
    if not args.file.is_file():
        raise UserError(f"no such file: {args.file}")
    try:
        with _session(lambda: connect(url.host, url.port, url.user, password, args.timeout,
                                      args.tls)) as ftp, progress_bar() as progress:
            ftp.voidcmd("TYPE I")
            sent = upload(ftp, args.file, remote, progress)
    except (ftplib.Error, OSError, EOFError) as exc:
        raise UserError(explain(exc)) from None
    console.print(f"uploaded {args.file} as {remote} ({sent} bytes)")
    return 0


class Shell:
    """The interactive client: one command per line, from a terminal or a script."""

    HELP: ClassVar[list[tuple[str, str]]] = [
        ("list [PATH]", "list a folder (ls, dir)"),
        ("get FILE [LOCAL]", "download a file"),
        ("put FILE [REMOTE]", "upload a file"),
        ("cd DIR", "change folder"),
        ("pwd", "show the current folder"),
        ("mkdir DIR", "make a folder"),
        ("rm FILE", "delete a file"),
        ("rmdir DIR", "delete an empty folder"),
        ("help", "this list"),
        ("quit", "leave (exit, bye)"),
    ]

    ALIASES: ClassVar[dict[str, str]] = {"ls": "list", "dir": "list", "del": "rm"}

    def __init__(self, ftp: ftplib.FTP, out: Console | None = None) -> None:
        self.ftp = ftp
        self.out = out or Console(highlight=False)

    def lines(self, stream: Iterator[str] | None = None) -> Iterator[str]:
        if stream is not None:
            yield from stream
            return
        prompt = "ftp> " if sys.stdin.isatty() else ""
        while True:
            try:
                yield input(prompt)
            except EOFError:
                return

    def run(self, stream: Iterator[str] | None = None) -> int:
        status = 0
        for line in self.lines(stream):
            try:
                words = shlex.split(line)
            except ValueError as exc:
                self.error(f"cannot parse the line: {exc}")
                continue
            if not words:
                continue
            name, args = words[0].lower(), words[1:]
            if name in ("quit", "exit", "bye"):
                break
            name = self.ALIASES.get(name, name)
            handler = getattr(self, f"do_{name}", None)
            if handler is None:
                self.error(f"unknown command {name!r}; type help")
                continue
            try:
                handler(*args)
            except TypeError:
                self.error(f"wrong arguments for {name}; type help")
            except (ftplib.Error, OSError, EOFError) as exc:
                self.error(explain(exc))
                status = 1
                if isinstance(exc, (EOFError, ConnectionError, socket.timeout)):
                    return 1
        try:
            self.ftp.quit()
        except (ftplib.Error, OSError, EOFError):
            self.ftp.close()
        return status

    def error(self, message: str) -> None:
        self.out.print(f"[red]error:[/red] {message}")

    def do_help(self) -> None:
        table = Table(show_header=False, box=None)
        for usage, text in self.HELP:
            table.add_row(usage, text)
        self.out.print(table)

    def do_list(self, path: str = "") -> None:
        try:
            entries = list(self.ftp.mlsd(path, facts=["type", "size", "modify"]))
        except ftplib.error_perm as exc:
            if not str(exc).startswith("500"):
                raise
            self.ftp.retrlines(f"LIST {path}".strip(), self.out.print)
            return
        table = Table("name", "size", "modified (UTC)", box=None)
        for name, facts in sorted(entries, key=lambda e: (e[1].get("type") != "dir", e[0])):
            if facts.get("type") in ("cdir", "pdir"):
                continue
            modify = facts.get("modify", "")
            when = f"{modify[:4]}-{modify[4:6]}-{modify[6:8]} {modify[8:10]}:{modify[10:12]}" \
                if len(modify) >= 12 else ""
            is_dir = facts.get("type") == "dir"
            table.add_row(name + ("/" if is_dir else ""), "" if is_dir else facts.get("size", "?"),
                          when)
        self.out.print(table)

    def do_get(self, remote: str, local: str = "") -> None:
        target = Path(local or Path(remote).name)
        with progress_bar() as progress:
            size = download(self.ftp, remote, target, progress)
        self.out.print(f"got {remote} -> {target} ({size} bytes)")

    def do_put(self, local: str, remote: str = "") -> None:
        path = Path(local)
        if not path.is_file():
            self.error(f"no such local file: {local}")
            return
        self.ftp.voidcmd("TYPE I")
        with progress_bar() as progress:
            sent = upload(self.ftp, path, remote or path.name, progress)
        self.out.print(f"put {local} -> {remote or path.name} ({sent} bytes)")

    def do_cd(self, path: str) -> None:
        self.ftp.cwd(path)
        self.do_pwd()

    def do_pwd(self) -> None:
        self.out.print(self.ftp.pwd())

    def do_mkdir(self, path: str) -> None:
        self.out.print(f"created {self.ftp.mkd(path)}")

    def do_rm(self, path: str) -> None:
        self.ftp.delete(path)
        self.out.print(f"deleted {path}")

    def do_rmdir(self, path: str) -> None:
        self.ftp.rmd(path)
        self.out.print(f"removed {path}")


def run_shell(args: argparse.Namespace) -> int:
    user = args.user or "anonymous"
    password = password_for(user, None)
    try:
        ftp = connect(args.host, args.port, user, password, args.timeout, args.tls)
    except (ftplib.Error, OSError, EOFError) as exc:
        raise UserError(f"cannot log in to {args.host}:{args.port}: {explain(exc)}") from None
    shell = Shell(ftp)
    shell.out.print(f"connected to {args.host}:{args.port} as {user}; type help")
    return shell.run()
