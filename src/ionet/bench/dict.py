"""DICT DEFINE queries per second: ionet beside dictd, on the same dict-wn data.

Run it as ``python bench/dict.py`` (``--quick`` for a smoke run, ``--help``
for the options).  It prints a Markdown table and writes it to
``bench/out/dict.md``.

What is compared:

* **dictd** (Debian's), serving ``/usr/share/dictd/wn.*`` (the ``dict-wn``
  package), configured as BENCH.md says: foreground (``-d nodetach``),
  ``-l none``, ``limit_childs`` raised above the connection count,
  ``limit_queries 0`` (its default closes a connection after 2000
  queries), ``depth 512`` (listen backlog).  It forks a process per
  connection.
* **ionet** ``dict serve`` (``--engine epoll`` by default, one process),
  on an SQLite file into which the same ``wn`` files were imported.

How a cell is measured (one server, one connection count, one client mode):

* both servers run for the whole benchmark, pinned to core 0 (each is
  started while this process is pinned there, so dictd's forked children
  and ionet's worker threads inherit the pin); the load generator runs in
  a process pinned to core 1.  Both servers thus get one core;
* the load generator opens N persistent connections, reads each banner,
  then runs a closed loop over epoll: each connection sends ``DEFINE wn
  <word>``, waits for the whole reply (``150 ... 250``, or ``552``), records
  the round trip, and sends the next word.  Words are a fixed random sample
  of wn's headwords, so every query finds a definition;
* after ``--warmup`` seconds, queries are counted for ``--duration``
  seconds: queries per second, and the p50/p99 of the round trips;
* client modes: *plain*, and *quickack*, which sets ``TCP_QUICKACK`` after
  every read.  dictd writes a reply in several small writes without
  ``TCP_NODELAY``, so a plain client's delayed ACK holds its second write
  for ~40 ms; a quick-ACK client shows what dictd itself can do;
* cells run interleaved (every server and mode at 1 connection, then 32,
  ..., then the next repeat), and the table shows the median of the
  repeats, with the ionet/dictd ratio taken within each repeat.

Linux only (epoll, CPU affinity, TCP_QUICKACK).  Needs the Debian packages
``dictd`` and ``dict-wn``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import select
import shutil
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

WN_INDEX = Path("/usr/share/dictd/wn.index")
WN_DATA = Path("/usr/share/dictd/wn.dict.dz")
DEFAULT_OUT = Path("bench/out/dict.md")
SERVERS = ("dictd", "ionet")
MODES = ("plain", "quickack")

DICTD_CONF = """\
global {{
  listen_to 127.0.0.1
  port {port}
  limit_childs {children}
  limit_queries 0
  depth 512
  timestamp 0
}}
access {{ allow 127.0.0.1 }}
database wn {{
  data  {data}
  index {index}
}}
"""


@dataclass
class Cell:
    """One measurement: a server, a connection count, a client mode."""

    server: str
    conns: int
    mode: str
    qps: float
    p50_ms: float
    p99_ms: float
    errors: int
    load_cpu: float  # the load generator's CPU use over the window, 0..1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


# -- the load generator ----------------------------------------------------------------------


def reply_complete(buf: bytes) -> bool:
    """True once ``buf`` holds a whole DEFINE reply: 150 ... 250, or one 5xx/4xx line."""
    if not buf.endswith(b"\r\n"):
        return False
    if buf.startswith(b"150"):
        return buf.rfind(b"\r\n.\r\n250 ") >= 0
    return buf[:1] in (b"4", b"5", b"2")


def run_load(address: tuple[str, int], conns: int, words: list[str], quickack: bool,
             warmup: float, duration: float, core: int | None, result: Connection) -> None:
    """The closed-loop client (a child process); sends its figures back on ``result``."""
    if core is not None:
        os.sched_setaffinity(0, {core})
    try:
        ep = select.epoll()
        socks: dict[int, list[Any]] = {}
        for n in range(conns):
            sock = socket.create_connection(address, timeout=30)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            banner = b""
            while not banner.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("closed before the banner")
                banner += chunk
            if not banner.startswith(b"220"):
                raise ConnectionError(f"refused: {banner[:60]!r}")
            sock.setblocking(False)
            # [socket, buffer, sent at, next word index]
            socks[sock.fileno()] = [sock, b"", 0, n * 7919]
            ep.register(sock.fileno(), select.EPOLLIN)
        queries = [f'DEFINE wn "{w}"\r\n'.encode() for w in words]

        def send(state: list[Any]) -> None:
            state[3] += 1
            state[2] = time.perf_counter_ns()
            state[0].send(queries[state[3] % len(queries)])

        latencies: list[float] = []
        errors = 0
        begin = time.monotonic() + warmup
        end = begin + duration
        for state in socks.values():
            send(state)
        cpu_start = None
        while True:
            now = time.monotonic()
            if cpu_start is None and now >= begin:
                cpu_start = time.process_time()
            if now >= end:
                break
            for fd, _ in ep.poll(0.5):
                state = socks[fd]
                data = state[0].recv(262144)
                if quickack:
                    state[0].setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                if not data:
                    raise ConnectionError("the server closed a connection")
                state[1] += data
                if reply_complete(state[1]):
                    done = time.perf_counter_ns()
                    if not state[1].startswith(b"150"):
                        errors += 1
                    if time.monotonic() >= begin:
                        latencies.append((done - state[2]) / 1e6)
                    state[1] = b""
                    send(state)
        cpu = time.process_time() - (cpu_start or time.process_time())
        for state in socks.values():
            state[0].close()
        ep.close()
        result.send(("ok", latencies, errors, cpu / duration))
    except Exception as exc:  # reported to the parent, which fails the cell
        result.send(("error", repr(exc), 0, 0.0))
    finally:
        result.close()


def measure(server: str, address: tuple[str, int], conns: int, mode: str, words: list[str],
            warmup: float, duration: float, core: int | None) -> Cell:
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=run_load, args=(address, conns, words, mode == "quickack",
                                              warmup, duration, core, send))
    proc.start()
    send.close()
    status, latencies, errors, cpu = receive.recv()
    proc.join(30)
    if status != "ok":
        raise RuntimeError(f"{server} at {conns} connections ({mode}): {latencies}")
    latencies.sort()
    return Cell(server, conns, mode, len(latencies) / duration, percentile(latencies, 0.50),
                percentile(latencies, 0.99), errors, cpu)


# -- the servers ---------------------------------------------------------------------------


def import_wn(path: Path) -> None:
    """Import the dict-wn files into an SQLite store at ``path`` (once)."""
    from ionet.dict import importers
    from ionet.dict.sqlite import SQLiteStore

    store = SQLiteStore(path)
    store.setup()
    if not any(db.name == "wn" for db in store.databases()):
        started = time.monotonic()
        [item] = importers.read(WN_INDEX)
        count = store.replace_dictionary(item.meta, item.entries)
        print(f"imported {count} wn entries into {path} in {time.monotonic() - started:.1f} s",
              file=sys.stderr)
    store.set_meta("default_data", "none (benchmark)")
    store.close()


def wait_for_banner(address: tuple[str, int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(address, timeout=5) as sock:
                if sock.recv(100).startswith(b"220"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no DICT banner at {address} after {timeout} s")
        time.sleep(0.1)


class Servers:
    """dictd and ionet, started pinned to ``core``, stopped on exit."""

    def __init__(self, work: Path, max_conns: int, engine: str, workers: int,
                 core: int | None) -> None:
        self.work = work
        self.max_conns = max_conns
        self.engine = engine
        self.workers = workers
        self.core = core
        self.addresses: dict[str, tuple[str, int]] = {}
        self._dictd: Any = None
        self._ionet: Any = None

    def __enter__(self) -> Servers:
        import subprocess

        from ionet.core.testing import ServerProcess

        dictd = shutil.which("dictd") or "/usr/sbin/dictd"
        if not Path(dictd).exists():
            raise SystemExit("dictd is missing: apt-get install dictd dict-wn")
        port = free_port()
        conf = self.work / "dictd.conf"
        conf.write_text(DICTD_CONF.format(port=port, children=self.max_conns + 64,
                                          data=WN_DATA, index=WN_INDEX))
        previous = os.sched_getaffinity(0)
        try:
            if self.core is not None:
                os.sched_setaffinity(0, {self.core})
            with (self.work / "dictd.log").open("wb") as log:
                self._dictd = subprocess.Popen(
                    [dictd, "-c", str(conf), "-d", "nodetach", "-l", "none",
                     "--pid-file", str(self.work / "dictd.pid")],
                    stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
            self.addresses["dictd"] = ("127.0.0.1", port)
            self._ionet = ServerProcess(
                ["--log-level", "warning", "dict", "serve", "--db", str(self.work / "wn.sqlite3"),
                 "--port", "0", "--dict-port", "0", "--no-default-data",
                 "--engine", self.engine, "--workers", str(self.workers),
                 "--max-connections", str(self.max_conns + 64), "--idle-timeout", "0"],
                start_timeout=60)
            self._ionet.start()
            self.addresses["ionet"] = self._ionet.address("tcp", 1)
        finally:
            os.sched_setaffinity(0, previous)
        try:
            wait_for_banner(self.addresses["dictd"])
        except RuntimeError:
            text = (self.work / "dictd.log").read_text(errors="replace")
            raise RuntimeError(f"dictd did not start; its log:\n{text}") from None
        wait_for_banner(self.addresses["ionet"])
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ionet is not None:
            self._ionet.stop(check=False)
        if self._dictd is not None:
            self._dictd.terminate()
            try:
                self._dictd.wait(10)
            except Exception:  # it ignored SIGTERM: do not leave it running
                self._dictd.kill()
                self._dictd.wait()


# -- the report ------------------------------------------------------------------------------


def table(cells: list[Cell], conns_list: list[int], modes: list[str]) -> str:
    """Medians over the repeats, and the ionet/dictd ratio per repeat, then median."""
    lines = ["| connections | client | dictd q/s | ionet q/s | ionet/dictd | dictd p50 / p99 ms "
             "| ionet p50 / p99 ms |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for conns in conns_list:
        for mode in modes:
            pick = {s: [c for c in cells if (c.server, c.conns, c.mode) == (s, conns, mode)]
                    for s in SERVERS}
            if not pick["dictd"] or not pick["ionet"]:
                continue
            ratios = [i.qps / d.qps for d, i in zip(pick["dictd"], pick["ionet"], strict=False)
                      if d.qps]

            def med(server: str, field: str, pick: dict[str, list[Cell]] = pick) -> float:
                return float(statistics.median(getattr(c, field) for c in pick[server]))

            lines.append(
                f"| {conns} | {mode} | {med('dictd', 'qps'):,.0f} | {med('ionet', 'qps'):,.0f} "
                f"| {statistics.median(ratios):.2f}x | {med('dictd', 'p50_ms'):.2f} / "
                f"{med('dictd', 'p99_ms'):.2f} | {med('ionet', 'p50_ms'):.2f} / "
                f"{med('ionet', 'p99_ms'):.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/dict.py",
        description="DICT DEFINE queries/s: ionet vs dictd on dict-wn (see the module doc).")
    parser.add_argument("--conns", default="1,32,256",
                        help="connection counts, comma-separated (default: 1,32,256)")
    parser.add_argument("--modes", default="plain,quickack",
                        help="client modes: plain, quickack (default: both)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (median)")
    parser.add_argument("--engine", default="epoll", help="ionet's engine (default: epoll)")
    parser.add_argument("--workers", type=int, default=1, help="ionet's --workers (default: 1)")
    parser.add_argument("--words", type=int, default=20_000,
                        help="distinct headwords queried (default: 20000)")
    parser.add_argument("--work-dir", type=Path,
                        help="keep the imported wn database here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"where to write the table (default: {DEFAULT_OUT})")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 repeat, 1 s per cell, 1 and 32 connections")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.duration, args.warmup, args.conns = 1, 1.0, 0.3, "1,32"
    conns_list = [int(c) for c in args.conns.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    if any(m not in MODES for m in modes):
        parser.error(f"--modes: choose from {', '.join(MODES)}")
    for path in (WN_INDEX, WN_DATA):
        if not path.exists():
            parser.error(f"{path} is missing: apt-get install dict-wn")

    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    cores = sorted(os.sched_getaffinity(0))
    server_core, load_core = (cores[0], cores[1]) if len(cores) >= 2 else (None, None)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="ionet-bench-dict-"))
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)  # dictd drops root for its own user, which must still read its files
    import_wn(work / "wn.sqlite3")
    headwords = [line.split("\t", 1)[0] for line in WN_INDEX.open(encoding="utf-8")
                 if not line.startswith("00") and '"' not in line.split("\t", 1)[0]]
    words = random.Random(2229).sample(headwords, min(args.words, len(headwords)))

    cells: list[Cell] = []
    try:
        with Servers(work, max(conns_list), args.engine, args.workers, server_core) as servers:
            for repeat in range(args.repeats):
                for conns in conns_list:
                    for mode in modes:
                        for server in SERVERS:
                            cell = measure(server, servers.addresses[server], conns, mode,
                                           words, args.warmup, args.duration, load_core)
                            cells.append(cell)
                            print(f"repeat {repeat + 1}: {server:<5} {conns:>4} conns {mode:<8} "
                                  f"{cell.qps:>8,.0f} q/s  p50 {cell.p50_ms:7.2f} ms  "
                                  f"p99 {cell.p99_ms:7.2f} ms  load cpu {cell.load_cpu:4.0%}"
                                  + (f"  errors {cell.errors}" if cell.errors else ""),
                                  file=sys.stderr, flush=True)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)

    report = table(cells, conns_list, modes)
    pinned = (f"servers pinned to core {server_core}, load generator to core {load_core}"
              if server_core is not None else "no pinning (one core)")
    header = (f"DICT `DEFINE wn <word>` over persistent connections, dict-wn data; ionet "
              f"`--engine {args.engine}` x{args.workers} on SQLite vs dictd (fork per "
              f"connection); {pinned}; median of {args.repeats} interleaved runs of "
              f"{args.duration:g} s.\n\n")
    print(header + report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(header + report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
