"""WebFrame's cost: one hello view through ionet.web, Flask and bottle, and the split.

    python bench/web.py [--duration 5] [--rounds 3] [--connections 64]

Every case answers ``GET /hello`` with ``Hello, World!`` (text/html), on the
ionet HTTP server (epoll engine, one process, access log off):

    raw        a bare WSGI function: the server's own cost, the baseline
    ionet.web  the hello view of a WebFrame project, in-process (--app)
    flask      the same view in Flask
    bottle     the same view in bottle
    split      the WebFrame project in its own process (ionet web serve),
               behind ionet http serve --upstream (HTTPServer 3.0)

Measured with wrk (keep-alive, ``-t1 -cN``), the servers pinned to core 0 and
wrk to core 1 (``taskset``) when the machine has two cores or more: the split's
two processes then share the one core the in-process server has, so its
figure is its cost in CPU, not a gain from a second core.  Cases run
interleaved, round after round, and the table gives each case's median
(docs: /work/shared/BENCH.md's rules).
"""

from __future__ import annotations

import argparse
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CASES = ("raw", "ionet.web", "flask", "bottle", "split")
HELLO = b"Hello, World!"

APPS = '''\
HELLO = b"Hello, World!"


def raw(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", "13")])
    return [HELLO]


def make_flask():
    import flask

    app = flask.Flask("hello")

    @app.route("/hello")
    def hello():
        return "Hello, World!"

    return app


def make_bottle():
    import bottle

    app = bottle.Bottle()

    @app.route("/hello")
    def hello():
        return "Hello, World!"

    return app


def make_web():
    from pathlib import Path

    from ionet.web import App

    return App.from_project(Path(__file__).parent / "project")
'''

PROJECT = {
    "settings.py": "SECRET_KEY = 'bench'\n",
    "urls.py": "from ionet.web import path\nfrom . import views\n"
               "urlpatterns = [path('/', views.home), path('/hello', views.hello, name='hello')]\n",
    "views.py": "def home(request):\n    return 'home'\n\n\n"
                "def hello(request):\n    return 'Hello, World!'\n",
}

_URL = re.compile(r"tcp://([^\s:]+):(\d+)")


@dataclass
class Run:
    requests: float
    p50_ms: float
    p99_ms: float


@dataclass
class Case:
    name: str
    runs: list[Run] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs)


def write_apps(folder: Path) -> None:
    (folder / "apps.py").write_text(APPS)
    project = folder / "project"
    project.mkdir()
    for name, text in PROJECT.items():
        (project / name).write_text(text)


def _pin(core: int | None) -> list[str]:
    if core is None or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", str(core)]


@contextmanager
def ionet_process(argv: list[str], cwd: Path, core: int | None) -> Iterator[tuple[str, int]]:
    """Run ``python -m ionet ARGV --port 0``; yield the address it announced."""
    proc = subprocess.Popen([*_pin(core), sys.executable, "-m", "ionet", *argv, "--port", "0"],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(cwd)})
    assert proc.stdout is not None
    try:
        deadline = time.monotonic() + 20
        line = b""
        while not (found := _URL.search(line.decode(errors="replace"))):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{argv} did not start")
            if select.select([proc.stdout], [], [], 0.2)[0]:
                line += proc.stdout.readline()
        yield found[1], int(found[2])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@contextmanager
def server(case: str, folder: Path, engine: str, core: int | None) -> Iterator[tuple[str, int]]:
    common = ["--engine", engine, "--quiet"]
    if case == "split":
        with ionet_process(["web", "serve", "project", "--engine", engine], folder,
                           core) as (host, port), \
                ionet_process(["http", "serve", "--upstream", f"{host}:{port}", *common],
                              folder, core) as address:
            yield address
        return
    spec = {"raw": "apps:raw", "ionet.web": "apps:make_web()", "flask": "apps:make_flask()",
            "bottle": "apps:make_bottle()"}[case]
    with ionet_process(["http", "serve", "--app", spec, *common], folder, core) as address:
        yield address


def hello_ok(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=5) as sock:
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    except OSError:
        return False
    return data.startswith(b"HTTP/1.1 200") and data.endswith(HELLO)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not found:
        raise ValueError(text)
    return float(found[1]) * _UNITS[found[2]]


def run_wrk(address: tuple[str, int], duration: float, connections: int,
            core: int | None) -> Run:
    url = f"http://{address[0]}:{address[1]}/hello"
    output = subprocess.run(
        [*_pin(core), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
         "--latency", url],
        capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    requests = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]
    if re.search(r"Non-2xx or 3xx responses", output) or re.search(r"Socket errors", output):
        raise RuntimeError(f"wrk saw errors:\n{output}")
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)[1])  # type: ignore[index]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)[1])  # type: ignore[index]
    return Run(requests, p50, p99)


def table(cases: dict[str, Case], reference: str) -> str:
    ref = cases[reference].median("requests") if reference in cases else None
    lines = ["| case | requests/s (median) | runs | vs ionet.web | p50 ms | p99 ms |",
             "|---|---:|---|---:|---:|---:|"]
    for case in cases.values():
        median = case.median("requests")
        runs = " ".join(f"{run.requests / 1000:.1f}k" for run in case.runs)
        ratio = f"{median / ref:.2f}x" if ref else "-"
        lines.append(f"| {case.name} | {median:,.0f} | {runs} | {ratio} | "
                     f"{case.median('p50_ms'):.2f} | {case.median('p99_ms'):.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/web.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per case, interleaved")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--engine", default="epoll", help="engine of the ionet processes")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--no-pin", action="store_true",
                        help="let the scheduler place servers and wrk (the split's two "
                             "processes may then use two cores)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench/web.py needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    two_cores = (os.cpu_count() or 1) >= 2
    server_core, load_core = (0, 1) if two_cores and not args.no_pin else (None, None)
    cases = {name: Case(name) for name in args.cases}
    with tempfile.TemporaryDirectory(prefix="ionet-bench-web-") as tmp:
        folder = Path(tmp)
        write_apps(folder)
        for round_number in range(1, args.rounds + 1):
            for name in args.cases:
                with ExitStack() as stack:
                    address = stack.enter_context(server(name, folder, args.engine, server_core))
                    deadline = time.monotonic() + 10
                    while not hello_ok(address):
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"{name}: /hello does not answer")
                        time.sleep(0.05)
                    if args.warmup > 0:
                        run_wrk(address, args.warmup, args.connections, load_core)
                    run = run_wrk(address, args.duration, args.connections, load_core)
                cases[name].runs.append(run)
                print(f"round {round_number} {name:>10}: {run.requests:>9,.0f} req/s  "
                      f"p50 {run.p50_ms:.2f} ms  p99 {run.p99_ms:.2f} ms", flush=True)
    print()
    print(f"wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.rounds} rounds, "
          f"{args.engine} engine, servers on core {server_core}, wrk on core {load_core}")
    print(table(cases, "ionet.web"))
    if "split" in cases and "ionet.web" in cases:
        split, inproc = cases["split"].median("requests"), cases["ionet.web"].median("requests")
        summary = (f"\nsplit vs in-process: {split / inproc:.2f}x the requests/s "
                   f"({(1 - split / inproc) * 100:.0f}% fewer), p50 "
                   f"{cases['split'].median('p50_ms'):.2f} ms vs "
                   f"{cases['ionet.web'].median('p50_ms'):.2f} ms")
        if server_core is not None:
            summary += (f"; on one core each split request costs {inproc / split:.1f}x "
                        f"the CPU of an in-process one")
        print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
