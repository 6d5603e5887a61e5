"""FTP: ionet beside pyftpdlib and vsftpd, on loopback.

Run it as ``python bench/ftp.py`` (``--quick`` for a smoke run, ``--help``
for the options).  Rows:

* ``RETR 256 MiB`` and ``STOR 256 MiB``: a ``curl`` download to /dev/null
  and a ``curl -T`` upload of a 256 MiB file (MiB/s, from the transfer
  command to the end of the transfer as curl times them: the login is not
  part of it).  Each repeat does three of each and keeps the median;
* ``50 clients``: 50 concurrent sessions, each logging in, doing one
  ``PASV`` + ``LIST`` and 20 ``PASV`` + ``RETR`` of 4 KiB files; transfers
  per second (the 1000 RETRs over the wall time of the whole run, logins
  included) and the p99 latency of one RETR (PASV sent to 226 received).
  Each repeat runs it once to warm up (ionet's first login pays one argon2
  hash, ~0.1 s of CPU, then the verified password is cached; pyftpdlib
  compares plain text, vsftpd runs anonymous), then three times, keeping
  the median.  The load is one asyncio client process (a small FTP client
  written here, so it costs the same for every server; asyncio sets
  TCP_NODELAY on its sockets, curl too); control connections are opened at
  most 25 at a time (vsftpd's listen backlog is 32, BENCH.md).

Each row also has a *server CPU* twin: the CPU time the server's processes
spent on the work (``ionet.bench.cpu.CpuMeter``: schedstat of every thread
of the server and of the session processes it forks, sampled every 10 ms
while the work runs, so that vsftpd's sessions count after they end),
per MiB for RETR/STOR and per RETR for the 50 clients (the whole run's CPU,
logins and listings included, over its 1000 RETRs).  On a shared 2-core
machine the rates move with whatever else runs (RETR 256 MiB from ~900 to
~6,000 MiB/s: another benchmark's server pinned to core 0 as well takes half
of it, and each wakeup of ours waits behind it), the CPU per unit of work
much less: compare those first.  ``--realtime`` (root) goes further: the
bench, the servers and the clients run under SCHED_FIFO, so the other
processes cannot take their cores while they work (the kernel still leaves
them 5% of each second) and the rates approach a quiet machine's (the
virtual machine's host still moves them between runs: pyftpdlib's RETR
stayed within 4,700-5,100 MiB/s in one run, 2,800-3,800 in another).

How the servers are set up (shared/BENCH.md):

* ionet: ``ionet ftp serve`` (epoll engine unless ``--engines``), a user
  with ``elradfmw`` in a users file, logging at warning (no per-transfer
  lines), failed-login delay off;
* pyftpdlib: its default ``FTPServer`` (async, epoll), a ``DummyAuthorizer``
  user with ``elradfmw``, its logger at warning; it uses sendfile;
* vsftpd: ``listen=YES``, ``use_sendfile=YES``, logs off, no client
  limits.  It runs with anonymous login and uploads (a local user needs a
  system account and PAM; anonymous is the cheaper login, so this favours
  vsftpd slightly).  Skipped if vsftpd is not installed or we
  are not root (it must start as root to drop privileges).

All three listen for passive data connections on the same range,
20000-21999, outside Linux's ephemeral ports (32768-60999), as a deployment
behind a firewall would.  Left to pick any free port (``bind`` to port 0,
ionet's and pyftpdlib's default), each PASV costs the kernel a scan of the
ephemeral range, and every RETR leaves the server's end of its data
connection in TIME_WAIT for 60 s, holding a port of that range: after a few
50-client runs (1,000 RETRs each) 22,000-26,000 of its 28,232 ports are
held and the scan costs ionet and pyftpdlib 2-4 ms of CPU per RETR instead
of 0.2 (vsftpd, on its own range, stayed at 0.36): the rate then fell from
~5,000 RETR/s to 250-500, which made this row bimodal (207-5,736) before.

Each server runs pinned to core 0 and every client on core 1.  The servers
are measured interleaved, the order rotated at each repeat (ionet, pyftpdlib,
vsftpd; pyftpdlib, vsftpd, ionet; ...) and each figure is the median of
``--repeat`` runs (3); the table also shows ionet/pyftpdlib as a ratio,
taken within each repeat and then the median (target: >= 1 on every row;
for p99 and CPU rows, where lower is better, the ratio is pyftpdlib/ionet,
so > 1 is better there too).  Before each run the bench waits for the
machine to be quiet (``--max-other``; not with ``--realtime``).

Needs: curl (Debian), pyftpdlib (``pip install pyftpdlib``), vsftpd (Debian),
Linux (CPU affinity).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ionet.bench.cpu import CpuMeter
from ionet.core.testing import ServerProcess

MiB = 1024 * 1024
BIG_SIZE = 256 * MiB
SMALL_SIZE = 4096
SMALL_FILES = 20
#: RETR and STOR transfers per repeat; the repeat keeps their median.
BIG_ROUNDS = 3
CLIENTS = 50
CONNECT_BATCH = 25
#: 50-client runs per repeat (after one warm-up); the repeat keeps their median.
MANY_ROUNDS = 3
USER, PASSWORD = "bench", "bench-password"
SERVER_CORE, CLIENT_CORE = 0, 1
TIMEOUT = 120.0
#: Passive ports for all three servers: outside Linux's ephemeral range
#: (32768-60999), see the module docstring.
PASSIVE_PORTS = range(20000, 22000)
#: SCHED_FIFO priority with ``--realtime``: above every normal process, below
#: the kernel's own real-time threads (migration, watchdog: 99).
REALTIME_PRIORITY = 10

console = Console(highlight=False)


def wait_for_quiet(max_other: float, patience: float = 30.0) -> float:
    """Wait (up to ``patience`` s) until other processes use under ``max_other`` percent
    of one core, over half a second; returns the last reading (psutil, else 0)."""
    try:
        import psutil
    except ImportError:
        return 0.0
    deadline = time.monotonic() + patience
    while True:
        busy = float(psutil.cpu_percent(interval=0.5)) * (psutil.cpu_count() or 1)
        if busy <= max_other or time.monotonic() >= deadline:
            return busy


# -- the site ----------------------------------------------------------------------

@dataclass
class Site:
    base: Path
    root: Path
    big_size: int

    @property
    def upload(self) -> Path:
        return self.root / "upload"


def make_site(base: Path, big_size: int) -> Site:
    """A root with ``big.bin``, 20 small files and a world-writable ``upload`` folder."""
    root = base / "root"
    (root / "upload").mkdir(parents=True)
    block = os.urandom(MiB)
    with open(root / "big.bin", "wb") as out:
        out.writelines(index.to_bytes(8, "big") + block[8:] for index in range(big_size // MiB))
    for index in range(SMALL_FILES):
        (root / f"s{index:02d}.bin").write_bytes(os.urandom(SMALL_SIZE))
    os.chmod(root, 0o755)  # vsftpd refuses a writable anonymous root
    os.chmod(root / "upload", 0o777)
    return Site(base, root, big_size)


# -- the servers ----------------------------------------------------------------------

@dataclass
class Running:
    host: str
    port: int
    user: str
    password: str
    pid: int = 0  # the server's process (its CPU time is read from /proc)

    def meter(self) -> CpuMeter:
        """Measures the CPU time the server's processes use during a ``with`` block."""
        return CpuMeter(self.pid)


@contextlib.contextmanager
def pinned(core: int) -> Iterator[None]:
    """Run the block (and every process it starts) on one core."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    wanted = {core} if core < (os.cpu_count() or 1) else before
    os.sched_setaffinity(0, wanted)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextlib.contextmanager
def ionet_server(site: Site, engine: str) -> Iterator[Running]:
    users = site.base / "users.json"
    if not users.exists():
        from ionet.ftp.accounts import add_user

        add_user(users, USER, PASSWORD, ".", "elradfmw")
    argv = ["--log-level", "warning", "ftp", "serve", str(site.root), "--users", str(users),
            "--engine", engine, "--login-delay", "0", "--max-connections", "10000",
            "--passive-ports", f"{PASSIVE_PORTS[0]}-{PASSIVE_PORTS[-1]}"]
    with pinned(SERVER_CORE):
        server = ServerProcess(argv)
        server.start()
    try:
        host, port = server.address("tcp")
        yield Running(host, port, USER, PASSWORD, server.pid)
    finally:
        server.stop(check=False)


@contextlib.contextmanager
def pyftpdlib_server(site: Site) -> Iterator[Running]:
    with pinned(SERVER_CORE):
        server = ServerProcess(["pyftpdlib", "serve", str(site.root)], module="ionet.bench.ftp")
        server.start()
    try:
        host, port = server.address("tcp")
        yield Running(host, port, USER, PASSWORD, server.pid)
    finally:
        server.stop(check=False)


def run_pyftpdlib(root: str, port: int) -> int:
    """The pyftpdlib server as BENCH.md sets it up (runs in a child process)."""
    import logging

    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    logger = logging.getLogger("pyftpdlib")
    logger.addHandler(logging.NullHandler())  # serve_forever then leaves logging alone
    logger.setLevel(logging.WARNING)
    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, root, perm="elradfmw")
    handler = FTPHandler
    handler.authorizer = authorizer
    handler.passive_ports = PASSIVE_PORTS
    server = FTPServer(("127.0.0.1", port), handler)
    server.max_cons = 10000
    print(f"pyftpdlib tcp://127.0.0.1:{server.socket.getsockname()[1]}", flush=True)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: server.close_all())
    server.serve_forever(handle_exit=True)
    return 0


VSFTPD_CONF = """\
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={port}
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root={root}
anon_upload_enable=YES
anon_other_write_enable=YES
anon_umask=022
write_enable=YES
local_enable=NO
pasv_enable=YES
pasv_min_port={passive_low}
pasv_max_port={passive_high}
connect_from_port_20=NO
use_sendfile=YES
xferlog_enable=NO
dual_log_enable=NO
log_ftp_protocol=NO
syslog_enable=NO
vsftpd_log_file=/dev/null
max_clients=0
max_per_ip=0
seccomp_sandbox=NO
secure_chroot_dir=/var/run/vsftpd/empty
ftpd_banner=ready
hide_ids=YES
"""


def vsftpd_missing() -> str | None:
    if shutil.which("vsftpd") is None and not Path("/usr/sbin/vsftpd").exists():
        return "vsftpd is not installed (apt-get install vsftpd)"
    if os.geteuid() != 0:
        return "vsftpd must start as root"
    return None


@contextlib.contextmanager
def vsftpd_server(site: Site) -> Iterator[Running]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = site.base / "vsftpd.conf"
    conf.write_text(VSFTPD_CONF.format(port=port, root=site.root, passive_low=PASSIVE_PORTS[0],
                                       passive_high=PASSIVE_PORTS[-1]))
    Path("/var/run/vsftpd/empty").mkdir(parents=True, exist_ok=True)
    shutil.chown(site.upload, "ftp", "ftp")
    binary = shutil.which("vsftpd") or "/usr/sbin/vsftpd"
    with pinned(SERVER_CORE):
        proc = subprocess.Popen([binary, str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.recv(100)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"vsftpd did not start: {err.strip()}") from None
                time.sleep(0.05)
        yield Running("127.0.0.1", port, "anonymous", "bench", proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
        shutil.chown(site.upload, "root", "root")


# -- the measurements ------------------------------------------------------------------

def _url(server: Running, path: str) -> str:
    return f"ftp://{server.user}:{server.password}@{server.host}:{server.port}/{path}"


@dataclass
class Transfer:
    """One big transfer: its rate and what it cost the server."""

    rate: float  # MiB/s
    cpu_ms_per_mib: float  # server CPU time (whole session, login included) per MiB


def curl_transfer(server: Running, argv: list[str], size: int) -> Transfer:
    """One curl transfer: MiB/s from the transfer command to its end (curl's
    ``time_pretransfer`` to ``time_total``: the login is not the transfer),
    and the server's CPU time for the whole session per MiB."""
    os.sync()  # no writeback of earlier uploads in the middle of this one
    with server.meter() as meter:
        result = subprocess.run(["curl", "-sS", "--max-time", str(TIMEOUT), "-w",
                                 "%{time_pretransfer} %{time_total}", *argv],
                                capture_output=True, text=True, timeout=TIMEOUT + 10,
                                check=False)
    cpu = meter.seconds
    if result.returncode != 0:
        raise RuntimeError(f"curl failed: {result.stderr.strip()}")
    pretransfer, total = map(float, result.stdout.split()[-2:])
    return Transfer(size / MiB / max(total - pretransfer, 1e-6), cpu * 1000 / (size / MiB))


def measure_retr(server: Running, site: Site) -> Transfer:
    return curl_transfer(server, ["-o", "/dev/null", _url(server, "big.bin")], site.big_size)


def measure_stor(server: Running, site: Site, name: str) -> Transfer:
    result = curl_transfer(
        server, ["-T", str(site.root / "big.bin"), _url(server, f"upload/{name}")],
        site.big_size)
    uploaded = site.upload / name
    size = uploaded.stat().st_size if uploaded.exists() else -1
    uploaded.unlink(missing_ok=True)
    if size != site.big_size:
        raise RuntimeError(f"the upload has {size} bytes, not {site.big_size}")
    return result


class FtpError(Exception):
    pass


async def _reply(reader: asyncio.StreamReader) -> tuple[int, str]:
    line = (await reader.readline()).decode("utf-8", "replace")
    if len(line) < 4:
        raise FtpError(f"connection closed ({line!r})")
    code, text = int(line[:3]), line
    if line[3] == "-":
        while True:
            more = (await reader.readline()).decode("utf-8", "replace")
            if not more:
                raise FtpError("connection closed in a multi-line reply")
            text += more
            if more[:3] == line[:3] and more[3:4] == " ":
                break
    return code, text


async def _command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: str,
                   expect: tuple[int, ...]) -> str:
    writer.write(line.encode() + b"\r\n")
    code, text = await _reply(reader)
    if code not in expect:
        raise FtpError(f"{line.split()[0]}: {text.strip()}")
    return text


async def _transfer(host: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    command: str) -> int:
    text = await _command(reader, writer, "PASV", (227,))
    numbers = text[text.index("(") + 1 : text.index(")")].split(",")
    port = int(numbers[4]) * 256 + int(numbers[5])
    data_reader, data_writer = await asyncio.open_connection(host, port)
    try:
        await _command(reader, writer, command, (125, 150))
        received = 0
        while chunk := await data_reader.read(65536):
            received += len(chunk)
    finally:
        data_writer.close()
    code, text = await _reply(reader)
    if code != 226:
        raise FtpError(f"{command}: {text.strip()}")
    return received


async def _session(server: Running, names: list[str], gate: asyncio.Semaphore,
                   latencies: list[float]) -> None:
    async with gate:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        await _reply(reader)
    try:
        text = await _command(reader, writer, f"USER {server.user}", (230, 331))
        if text.startswith("331"):
            await _command(reader, writer, f"PASS {server.password}", (230,))
        await _command(reader, writer, "TYPE I", (200,))
        await _transfer(server.host, reader, writer, "LIST")
        for name in names:
            started = time.perf_counter()
            size = await _transfer(server.host, reader, writer, f"RETR {name}")
            latencies.append(time.perf_counter() - started)
            if size != SMALL_SIZE:
                raise FtpError(f"RETR {name}: {size} bytes")
        writer.write(b"QUIT\r\n")
        await _reply(reader)
    finally:
        writer.close()


@dataclass
class ManyResult:
    rate: float  # RETRs per second
    p99_ms: float
    cpu_us_per_retr: float = 0.0  # server CPU over the run (logins, LISTs included) per RETR


def measure_many(server: Running, clients: int = CLIENTS) -> ManyResult:
    names = [f"s{index:02d}.bin" for index in range(SMALL_FILES)]
    latencies: list[float] = []

    async def main() -> float:
        gate = asyncio.Semaphore(CONNECT_BATCH)
        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(
            *(_session(server, names, gate, latencies) for _ in range(clients))), TIMEOUT)
        return time.perf_counter() - started

    with server.meter() as meter:
        elapsed = asyncio.run(main())
    cpu = meter.seconds
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return ManyResult(len(latencies) / elapsed, p99 * 1000, cpu * 1e6 / len(latencies))


# -- running and reporting -----------------------------------------------------------------

RETR, RETR_CPU = "RETR 256 MiB (MiB/s)", "RETR server CPU (ms/MiB)"
STOR, STOR_CPU = "STOR 256 MiB (MiB/s)", "STOR server CPU (ms/MiB)"
MANY, MANY_P99, MANY_CPU = ("50 clients (RETR/s)", "50 clients p99 (ms)",
                            "50 clients server CPU (us/RETR)")
ROWS = (RETR, RETR_CPU, STOR, STOR_CPU, MANY, MANY_P99, MANY_CPU)
#: Rows where less is better: their ratio is pyftpdlib/ionet.
LOWER_IS_BETTER = (RETR_CPU, STOR_CPU, MANY_P99, MANY_CPU)
#: ``--rows`` names and the rows each measures.
ROW_GROUPS = {"retr": (RETR, RETR_CPU), "stor": (STOR, STOR_CPU),
              "many": (MANY, MANY_P99, MANY_CPU)}


@dataclass
class Column:
    name: str
    values: dict[str, list[float]] = field(default_factory=dict)
    failed: str = ""

    def add(self, row: str, value: float) -> None:
        self.values.setdefault(row, []).append(value)

    def median(self, row: str) -> float | None:
        values = self.values.get(row)
        return statistics.median(values) if values else None


def measure_server(column: Column, server: Running, site: Site, repeat: int,
                   groups: tuple[str, ...] = tuple(ROW_GROUPS)) -> None:
    with pinned(CLIENT_CORE):
        if "retr" in groups:
            big = [measure_retr(server, site) for _ in range(BIG_ROUNDS)]
            column.add(RETR, statistics.median(run.rate for run in big))
            column.add(RETR_CPU, statistics.median(run.cpu_ms_per_mib for run in big))
        if "stor" in groups:
            big = [measure_stor(server, site, f"up{repeat}-{index}.bin")
                   for index in range(BIG_ROUNDS)]
            column.add(STOR, statistics.median(run.rate for run in big))
            column.add(STOR_CPU, statistics.median(run.cpu_ms_per_mib for run in big))
        if "many" in groups:
            measure_many(server)  # warm-up: the logins' password checks get cached
            runs = [measure_many(server) for _ in range(MANY_ROUNDS)]
            column.add(MANY, statistics.median(run.rate for run in runs))
            column.add(MANY_P99, statistics.median(run.p99_ms for run in runs))
            column.add(MANY_CPU, statistics.median(run.cpu_us_per_retr for run in runs))


def _figure(value: float) -> str:
    """Three significant digits or so: 4,592 / 54.2 / 0.271."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.3f}"


def build_table(columns: list[Column], title: str) -> tuple[Table, str]:
    """The rich table, and the same as Markdown for the issue note."""
    table = Table(title=title)
    table.add_column("")
    for column in columns:
        table.add_column(column.name, justify="right")
    base = next((c for c in columns if c.name.startswith("ionet")), None)
    ref = next((c for c in columns if c.name == "pyftpdlib"), None)
    if base and ref:
        table.add_column(f"{base.name} / pyftpdlib", justify="right")
    lines = ["| | " + " | ".join(c.name for c in columns)
             + (f" | {base.name} / pyftpdlib |" if base and ref else " |"),
             "|---" * (len(columns) + 1 + (1 if base and ref else 0)) + "|"]
    for row in ROWS:
        if all(column.median(row) is None and not column.failed for column in columns):
            continue  # not measured (--rows)
        cells = []
        for column in columns:
            value = column.median(row)
            cells.append(column.failed[:30] if column.failed and value is None else
                         "-" if value is None else _figure(value))
        if base and ref:
            # The ratio within each repeat (ionet and pyftpdlib measured back
            # to back), then the median: steadier than a ratio of medians.
            pairs = zip(base.values.get(row, []), ref.values.get(row, []))
            # > 1: ionet better
            ratios = [(theirs / mine if row in LOWER_IS_BETTER else mine / theirs)
                      for mine, theirs in pairs if mine and theirs]
            cells.append(f"{statistics.median(ratios):.2f}" if ratios else "-")
        table.add_row(row, *cells)
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return table, "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/ftp.py", description="FTP on loopback: ionet vs pyftpdlib vs vsftpd.")
    parser.add_argument("--repeat", type=int, default=3, help="runs per server (median)")
    parser.add_argument("--engines", default="epoll",
                        help="ionet engines to measure, comma-separated (default: epoll)")
    parser.add_argument("--size", type=int, default=BIG_SIZE // MiB, help="big file, MiB (256)")
    parser.add_argument("--no-vsftpd", action="store_true", help="leave vsftpd out")
    parser.add_argument("--rows", default=",".join(ROW_GROUPS),
                        help="what to measure, comma-separated from retr, stor, many "
                             "(default: all)")
    parser.add_argument("--quick", action="store_true", help="one run, a 32 MiB file")
    parser.add_argument("--json", type=Path, help="also write the medians here")
    parser.add_argument("--realtime", action="store_true",
                        help="run everything under SCHED_FIFO (root): other processes on "
                             "the machine cannot preempt the servers and clients")
    parser.add_argument("--max-other", type=float, default=20.0,
                        help="before each run, wait (up to 30 s) until other processes use "
                             "less than this percent of a core (default: 20)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        args.repeat, args.size = 1, 32
    missing = [tool for tool in ("curl",) if shutil.which(tool) is None]
    if missing:
        console.print(f"[red]needs {', '.join(missing)}[/red]")
        return 2
    try:
        import pyftpdlib  # noqa: F401
    except ImportError:
        console.print("[red]needs pyftpdlib: pip install pyftpdlib[/red]")
        return 2
    groups = tuple(name.strip() for name in args.rows.split(",") if name.strip())
    unknown = sorted(set(groups) - set(ROW_GROUPS))
    if unknown or not groups:
        console.print(f"[red]--rows: unknown {', '.join(unknown) or '(none given)'}; "
                      f"choose from {', '.join(ROW_GROUPS)}[/red]")
        return 2
    if args.realtime:
        try:
            # Inherited by every server and client started from here on.
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
        except (AttributeError, PermissionError) as exc:
            console.print(f"[red]--realtime needs Linux and root: {exc}[/red]")
            return 2
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    columns = [Column(f"ionet {engine}") for engine in engines] + [Column("pyftpdlib")]
    vsftpd_reason = None if not args.no_vsftpd else "left out (--no-vsftpd)"
    vsftpd_reason = vsftpd_reason or vsftpd_missing()
    if vsftpd_reason is None:
        columns.append(Column("vsftpd"))
    with tempfile.TemporaryDirectory(prefix="ionet-ftp-bench-") as temp:
        site = make_site(Path(temp), args.size * MiB)
        title = (f"FTP on loopback, {args.size} MiB file, {CLIENTS} clients x "
                 f"(LIST + {SMALL_FILES} RETR of 4 KiB); median of {args.repeat}"
                 + (", SCHED_FIFO" if args.realtime else ""))
        for repeat in range(args.repeat):
            # Rotate the order: no server always runs right after the same one.
            shift = repeat % len(columns)
            for column in columns[shift:] + columns[:shift]:
                if column.failed:
                    continue
                # Under --realtime the others cannot run on our cores: no need to wait.
                busy = 0.0 if args.realtime else wait_for_quiet(args.max_other)
                console.print(f"run {repeat + 1}/{args.repeat}: {column.name}"
                              f" (other processes: {busy:.0f}% of a core)")
                try:
                    if column.name.startswith("ionet "):
                        context = ionet_server(site, column.name.split()[1])
                    elif column.name == "pyftpdlib":
                        context = pyftpdlib_server(site)
                    else:
                        context = vsftpd_server(site)
                    with context as server:
                        measure_server(column, server, site, repeat, groups)
                except (TimeoutError, RuntimeError, OSError, FtpError, AssertionError) as exc:
                    column.failed = f"failed: {exc}"
                    console.print(f"[red]{column.name} {column.failed}[/red]")
    table, markdown = build_table(columns, title)
    console.print(table)
    if vsftpd_reason:
        console.print(f"vsftpd: {vsftpd_reason}")
    console.print("\n" + markdown)
    if args.json:
        args.json.write_text(json.dumps(
            {c.name: {"median": {row: c.median(row) for row in ROWS}, "runs": c.values,
                      "failed": c.failed} for c in columns}, indent=2))
    return 0


if __name__ == "__main__":
    if sys.argv[1:3] == ["pyftpdlib", "serve"]:
        rest = sys.argv[3:]
        port = int(rest[rest.index("--port") + 1]) if "--port" in rest else 0
        raise SystemExit(run_pyftpdlib(rest[0], port))
    raise SystemExit(main())
