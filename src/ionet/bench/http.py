"""HTTP: ionet beside uvicorn, gunicorn and nginx, measured with wrk.

Run it as ``python bench/http.py`` (``--help`` for the options; ``--quick``
for a smoke run).  It prints one table: requests per second and p99 latency
of every server for every case, and the ratios the targets are about.

The cases (keep-alive, 64 connections, ``wrk -t1 -c64 -d10s --latency``):

* ``hello``: a 13-byte ``Hello, World!``; for ionet and gunicorn a raw WSGI
  app, for uvicorn a raw ASGI app, for nginx ``return 200``;
* ``static 4K`` and ``static 1M``: a file of that size; ionet and nginx serve
  it as static files (nginx with ``sendfile on; tcp_nopush on``), gunicorn
  through a WSGI app returning ``wsgi.file_wrapper`` (which it sends with
  sendfile), uvicorn through a raw ASGI app that reads the file.

How a cell is measured (BENCH.md's rules):

* a fresh server per cell; with one worker the server is pinned to CPU 0
  and wrk to CPU 1 (``taskset``), with two workers neither is pinned (two
  CPUs: pinning both to 0-1 would be the same thing);
* a 1 s wrk warm-up, then the measured run;
* cells are interleaved: repeat 1 of every server for every case, then
  repeat 2, ...; the table shows medians, and each ratio is taken within a
  repeat before its median is taken, so that a slow moment of the machine
  moves both sides of a ratio;
* access logs are off everywhere.  gunicorn's sync worker closes every
  connection after its response (by design: it has no keep-alive), so its
  figures include a TCP handshake per request;
* the server's CPU time (its whole process group, from
  ``/proc/PID/task/TID/schedstat``) over the measured run, divided by the
  requests, is shown too: on a busy machine, where neither side gets a whole
  core, it is the steadier figure of what a request costs;
* ``--tree NAME=DIR`` adds ``ionet@NAME``: ionet run from another source tree
  (``DIR/src``), to measure a change before/after in one run.

Needs Linux, wrk and nginx on the PATH, and uvicorn (with uvloop and
httptools) and gunicorn installed (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

__all__ = ["CASES", "SERVERS", "Cell", "WrkResult", "main", "parse_wrk"]

HELLO = b"Hello, World!"
#: Case name -> (URL path, the size of the body it answers).
CASES: dict[str, tuple[str, int]] = {
    "hello": ("/", len(HELLO)),
    "static 4K": ("/4k.bin", 4 * 1024),
    "static 1M": ("/1m.bin", 1024 * 1024),
}
SERVERS = ("ionet", "uvicorn", "gunicorn", "nginx")
#: (case, other server) -> the ionet/other ratio to reach, one worker each.
TARGETS: dict[tuple[str, str], float] = {
    ("hello", "uvicorn"): 1.5,
    ("static 4K", "nginx"): 0.4,
    ("static 1M", "nginx"): 0.8,
}

# -- the apps the Python servers run -------------------------------------------

WSGI_APP = '''\
import os

HELLO = b"Hello, World!"
FILES = os.path.dirname(os.path.abspath(__file__))


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", "13")])
        return [HELLO]
    name = os.path.join(FILES, path.lstrip("/"))
    size = os.path.getsize(name)
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](open(name, "rb"))
'''

ASGI_APP = '''\
import os

HELLO = b"Hello, World!"
FILES = os.path.dirname(os.path.abspath(__file__))


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/":
        body, kind = HELLO, b"text/plain"
    else:
        with open(os.path.join(FILES, path.lstrip("/")), "rb") as file:
            body, kind = file.read(), b"application/octet-stream"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", kind),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
'''

NGINX_CONF = '''\
worker_processes {workers};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    server {{
        listen 127.0.0.1:{port} backlog=4096 reuseport;
        location = / {{
            default_type text/plain;
            return 200 "Hello, World!";
        }}
        location / {{ root {dir}; }}
    }}
}}
'''


# -- results -------------------------------------------------------------------


@dataclass
class WrkResult:
    """What one wrk run reported (and the server's CPU time meanwhile)."""

    rate: float  # requests per second
    p99_ms: float
    errors: str = ""  # "connect 0, read 12, ..." when wrk counted any
    non_2xx: int = 0
    requests: int = 0
    server_cpu: float = 0.0  # seconds, the server's whole process group

    @property
    def cpu_us(self) -> float:
        """Server CPU microseconds per request."""
        return self.server_cpu / self.requests * 1e6 if self.requests else float("nan")


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_wrk(output: str) -> WrkResult:
    """Read requests/s, p99, socket errors and non-2xx counts from wrk's output.

    Raises:
        ValueError: the output has no ``Requests/sec`` line (wrk failed).
    """
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise ValueError(f"wrk printed no rate: {output.strip()[-300:]!r}")
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\b", output, re.MULTILINE)
    errors = re.search(r"Socket errors:\s*(.+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    requests = re.search(r"(\d+) requests in", output)
    return WrkResult(
        float(rate[1]),
        float(p99[1]) * _UNITS_MS[p99[2]] if p99 else float("nan"),
        errors[1].strip() if errors else "",
        int(non_2xx[1]) if non_2xx else 0,
        int(requests[1]) if requests else 0,
    )


@dataclass
class Cell:
    """One server, one case, one worker count: its runs."""

    server: str
    case: str
    workers: int
    runs: list[WrkResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        return statistics.median(r.rate for r in self.runs) if self.runs else None

    @property
    def p99(self) -> float | None:
        return statistics.median(r.p99_ms for r in self.runs) if self.runs else None

    @property
    def cpu_us(self) -> float | None:
        return statistics.median(r.cpu_us for r in self.runs) if self.runs else None

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


# -- servers -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(server: str, case: str, workers: int, port: int, site: Path,
                   trees: dict[str, Path] | None = None) -> tuple[list[str], dict[str, str]]:
    """The command line (and extra environment) that starts ``server`` for ``case``."""
    env: dict[str, str] = {}
    python = sys.executable
    if server.startswith("ionet"):
        argv = [python, "-m", "ionet", "http", "serve"]
        argv += ["--app", "wsgi_app:app"] if case == "hello" else [str(site)]
        argv += ["--engine", "epoll", "--quiet", "--host", "127.0.0.1", "--port", str(port)]
        if workers > 1:
            argv += ["--workers", str(workers)]
        if server != "ionet":
            env["PYTHONPATH"] = str((trees or {})[server.partition("@")[2]] / "src")
        return argv, env
    if server == "uvicorn":
        return [python, "-m", "uvicorn", "asgi_app:app", "--loop", "uvloop", "--http",
                "httptools", "--no-access-log", "--log-level", "warning", "--workers",
                str(workers), "--host", "127.0.0.1", "--port", str(port)], env
    if server == "gunicorn":
        return [python, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
                "--log-level", "warning", "wsgi_app:app"], env
    if server == "nginx":
        conf = site / f"nginx-{port}.conf"
        conf.write_text(NGINX_CONF.format(workers=workers, dir=site, port=port))
        return ["nginx", "-p", str(site), "-c", str(conf)], env
    raise ValueError(f"unknown server {server!r}")


def _ready(port: int, path: str, size: int) -> bool:
    """One GET answered with 200 and a body of ``size`` bytes."""
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(request)
            data = b""
            while chunk := sock.recv(1 << 20):
                data += chunk
    except OSError:
        return False
    head, _, body = data.partition(b"\r\n\r\n")
    return head.startswith(b"HTTP/1.1 200") and len(body) == size


def group_cpu(pgid: int) -> float:
    """CPU seconds used so far by the live processes of a process group."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as file:
                fields = file.read().rpartition(b")")[2].split()
            if int(fields[2]) != pgid:  # the 5th field, pgrp
                continue
            for tid in os.listdir(f"/proc/{entry}/task"):
                with open(f"/proc/{entry}/task/{tid}/schedstat", "rb") as file:
                    total += int(file.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # it ended meanwhile
    return total / 1e9


@contextmanager
def running(argv: list[str], env: dict[str, str], cwd: Path, port: int, case: str,
            cpus: set[int] | None, problems: list[str]) -> Iterator[int]:
    """Start a server (pinned to ``cpus``), wait until it answers, stop it after.

    Yields the server's process group id.
    """
    path, size = CASES[case]

    command = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *argv] if cpus else argv
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    # Its own process group (setsid): stopped with its workers, and its CPU
    # time summed over them.
    proc = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env},
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not _ready(port, path, size):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                tail = log.read().decode(errors="replace").strip().splitlines()[-1:]
                raise RuntimeError(f"{argv[2] if argv[1] == '-m' else argv[0]} did not start: "
                                   f"{tail[0] if tail else proc.returncode}")
            time.sleep(0.1)
        yield proc.pid
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM if argv[0] != "nginx" else signal.SIGQUIT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                problems.append("ignored SIGTERM (killed)")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.seek(0)
        lines = [line for line in log.read().decode(errors="replace").splitlines()
                 if re.search(r"error|traceback|exception", line, re.IGNORECASE)]
        if lines:
            problems.append(f"server log: {lines[-1].strip()[:100]}")
        log.close()


def run_wrk(url: str, duration: float, conns: int, cpus: set[int] | None) -> WrkResult:
    # wrk takes whole seconds
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(duration))}s", "--latency", url]
    if cpus:
        argv = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60,
                          check=False)
    return parse_wrk(done.stdout + done.stderr)


def measure(cell: Cell, site: Path, duration: float, warmup: float, conns: int,
            trees: dict[str, Path]) -> None:
    """Start the cell's server, warm it up, run wrk once into ``cell``."""
    cpus = set(os.sched_getaffinity(0))
    pinned = cell.workers == 1 and len(cpus) >= 2
    server_cpus = {min(cpus)} if pinned else None
    load_cpus = cpus - {min(cpus)} if pinned else None
    for attempt in range(3):
        port = free_port()  # free now; someone else may take it before the server
        argv, env = server_command(cell.server, cell.case, cell.workers, port, site, trees)
        url = f"http://127.0.0.1:{port}{CASES[cell.case][0]}"
        problems: list[str] = []
        try:
            with running(argv, env, site, port, cell.case, server_cpus, problems) as pgid:
                if warmup > 0:
                    run_wrk(url, warmup, conns, load_cpus)
                cpu = group_cpu(pgid)
                result = run_wrk(url, duration, conns, load_cpus)
                result.server_cpu = group_cpu(pgid) - cpu
            break
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
            if "in use" in str(exc) and attempt < 2:
                continue  # the port was taken meanwhile: another one
            cell.note(f"failed: {exc}")
            return
        finally:
            for problem in problems:
                cell.note(problem)
    cell.runs.append(result)
    if result.errors:
        cell.note(f"socket errors: {result.errors}")
    if result.non_2xx:
        cell.note(f"{result.non_2xx} non-2xx responses")


def make_site(directory: Path) -> None:
    """The files and apps every server serves from."""
    directory.chmod(0o755)  # nginx's workers run as another user
    for case, (path, size) in CASES.items():
        if case != "hello":
            (directory / path.lstrip("/")).write_bytes(os.urandom(size))
    (directory / "wsgi_app.py").write_text(WSGI_APP)
    (directory / "asgi_app.py").write_text(ASGI_APP)
    (directory / "tmp").mkdir()
    for child in directory.iterdir():
        child.chmod(0o755 if child.is_dir() else 0o644)


# -- the report ----------------------------------------------------------------


def ratio(cells: dict[tuple[str, str, int], Cell], case: str, workers: int, mine: str,
          other: str, cpu: bool = False) -> float | None:
    """The median over repeats of mine/other, each ratio taken within one repeat
    (with ``cpu``: other's CPU per request over mine, so that higher is better)."""
    a, b = cells.get((mine, case, workers)), cells.get((other, case, workers))
    if a is None or b is None:
        return None
    if cpu:
        pairs = [y.cpu_us / x.cpu_us for x, y in zip(a.runs, b.runs) if x.cpu_us]
    else:
        pairs = [x.rate / y.rate for x, y in zip(a.runs, b.runs) if y.rate]
    return statistics.median(pairs) if pairs else None


def build_table(cells: dict[tuple[str, str, int], Cell], servers: list[str],
                cases: list[str], workers: list[int], repeat: int, duration: float,
                cpu: bool = False) -> Table:
    """Requests/s and p99 per cell, and the ratios; with ``cpu``, the server
    CPU microseconds per request instead (ratios: the other's over ionet's)."""
    what = ("server CPU us per request (lower is better)" if cpu
            else "requests/s (p99 ms)")
    table = Table(title=f"HTTP, keep-alive, wrk -t1 -c64 -d{duration:g}s: {what}, "
                        f"median of {repeat}",
                  caption="1 worker: server on CPU 0, wrk on CPU 1; 2 workers: not pinned. "
                          "Ratios: median of per-repeat ratios"
                          + (", as speed (other's CPU / ionet's)." if cpu else "."))
    table.add_column("case")
    table.add_column("workers", justify="right")
    for server in servers:
        table.add_column(server, justify="right")
    mine = "ionet"
    others = [s for s in servers if s in ("uvicorn", "nginx") or s.startswith("ionet@")]
    others = others if mine in servers else []
    for other in others:
        table.add_column(f"{mine}/{other}", justify="right")
    for n in workers:
        for case in cases:
            row = [case, str(n)]
            for server in servers:
                cell = cells[(server, case, n)]
                if cell.rate is None:
                    row.append("[red]failed[/red]")
                elif cpu:
                    row.append(f"{cell.cpu_us:.1f}")
                else:
                    row.append(f"{cell.rate:,.0f} ({cell.p99:.1f})")
            for other in others:
                value = ratio(cells, case, n, mine, other, cpu)
                target = TARGETS.get((case, other)) if n == 1 else None
                if value is None:
                    row.append("-")
                elif target is None:
                    row.append(f"{value:.2f}")
                else:
                    color = "green" if value >= target else "red"
                    row.append(f"[{color}]{value:.2f}[/{color}] (>= {target})")
            table.add_row(*row)
    return table


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/http.py", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--servers", nargs="+", default=list(SERVERS), choices=SERVERS,
                        help="servers to measure")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES),
                        metavar="CASE", help=f"cases to run ({', '.join(CASES)})")
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2],
                        help="worker counts to run (default: 1 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (default: 3)")
    parser.add_argument("--duration", type=int, default=10,
                        help="seconds per wrk run (default: 10)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="seconds of wrk before each measured run (default: 1; 0: none)")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default: 64)")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=DIR",
                        help="also run ionet from DIR/src, as 'ionet@NAME' (repeatable)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1 repeat of 2 s, no warm-up")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; 2 if a tool is missing."""
    args = _parser().parse_args(argv)
    if args.quick:
        args.repeat, args.duration, args.warmup = 1, 2, 0
    servers: list[str] = list(dict.fromkeys(args.servers))
    trees: dict[str, Path] = {}
    for spec in args.tree:
        name, eq, directory = spec.partition("=")
        if not eq or not name or not (Path(directory) / "src" / "ionet").is_dir():
            print(f"error: --tree wants NAME=DIR with DIR/src/ionet, not {spec!r}",
                  file=sys.stderr)
            return 2
        trees[name] = Path(directory).resolve()
        servers.insert(servers.index("ionet") + len(trees) if "ionet" in servers else 0,
                       f"ionet@{name}")
    missing = [tool for tool, server in (("wrk", None), ("nginx", "nginx"))
               if (server is None or server in servers) and shutil.which(tool) is None]
    if missing:
        print(f"error: not on the PATH: {', '.join(missing)}", file=sys.stderr)
        return 2
    console = Console()
    if not console.is_terminal:  # a file or a pipe: room for every column
        console = Console(width=max(console.width, 240))
    status_console = Console(stderr=True)
    cells = {(s, c, n): Cell(s, c, n)
             for s in servers for c in args.cases for n in args.workers}
    with tempfile.TemporaryDirectory(prefix="ionet-bench-http-") as tmp:
        site = Path(tmp)
        make_site(site)
        with status_console.status("measuring") as status:
            for r in range(args.repeat):
                for n in args.workers:
                    for case in args.cases:
                        for server in servers:
                            status.update(f"repeat {r + 1}/{args.repeat}: {server}, {case}, "
                                          f"{n} worker(s)")
                            measure(cells[(server, case, n)], site, args.duration, args.warmup,
                                    args.connections, trees)
    console.print(build_table(cells, servers, args.cases, args.workers, args.repeat,
                              args.duration))
    console.print(build_table(cells, servers, args.cases, args.workers, args.repeat,
                              args.duration, cpu=True))
    notes = [f"{c.server}, {c.case}, {c.workers}w: {'; '.join(c.notes)}"
             for c in cells.values() if c.notes]
    if "gunicorn" in servers:
        notes.insert(0, "gunicorn's sync worker closes the connection after each response "
                        "(no keep-alive, by design): a TCP handshake per request.")
    for line in notes:
        console.print(textwrap.fill(line, width=console.width, subsequent_indent="  "))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
