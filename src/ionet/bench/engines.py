"""Echo on every engine: messages per second and latency at 1, 64 and 1000
connections, and the memory of 10,000 idle connections.

Run it as ``python bench/engines.py``, ``ionet bench engines`` or
``python -m ionet bench engines``; ``--quick`` for a smoke run, ``--help`` for
the options.  It prints a table and draws a bar chart
(``bench/out/engines.png`` by default).

How each cell is measured (one engine, one connection count):

* a fresh ``ionet echo serve --engine E`` is started for the cell, pinned to
  core 0 (it is started while this process is pinned there, so every thread
  and forked child inherits the pin); the load generator runs on the other
  cores (``ionet.bench.loadgen``: a closed-loop epoll client, 64-byte
  messages);
* after one echo on every connection (a fork or thread server sets each one
  up first) and a warm-up (1 s), echoes are counted for ``--duration`` s (5);
  msg/s, p50 and p99 of the round trips are reported, with the CPU that the
  server (its whole process tree) and the load generator used in that window.
  A server near 100% was saturated; a load generator near 100% with a server
  below it means the load generator was the limit, not the server;
* "other CPU" is what every other process on the machine used meanwhile (a
  shared machine: someone's test suite).  A run above ``--max-other`` (20% of
  a core) is measured again after waiting for a quiet moment, up to
  ``--retries`` (2) times; the notes say how often that happened;
* cells run interleaved: repeat 1 of every engine at 1 connection, then at 64,
  ..., then repeat 2, and so on (BENCH.md: compare within one run,
  interleaved, and quote medians).  The table shows the median of the
  repeats of each figure and the min-max of msg/s;
* cells that cannot apply are "n/a": the iterative engine serves one
  connection at a time (others wait in the backlog), and select refuses
  connections beyond FD_SETSIZE (it accepts 960).

The headline is the epoll/asyncio msg/s ratio at 64 connections, taken within
each repeat and then the median (target >= 1.5).  The idle test starts the
epoll engine (and asyncio, to compare), opens 10,000 connections that send
nothing, and reads the server's RSS and USS (psutil) before and after
(target < 100 MB).

Needs Linux (epoll, CPU affinity), psutil (in the ``test`` extra) and, for
the chart, matplotlib (the ``chart`` extra).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ionet.bench.loadgen import LoadResult, connect_many, raise_fd_limit, run_echo_load
from ionet.core.engines import ENGINES
from ionet.core.testing import ServerProcess

__all__ = ["Cell", "IdleResult", "Placement", "Run", "build_table", "draw_chart", "main",
           "measure_cell", "measure_idle", "not_applicable"]

DEFAULT_CONNS = (1, 64, 1000)
QUICK_CONNS = (1, 64)
DEFAULT_OUT = Path("bench/out/engines.png")
DEFAULT_IDLE = 10_000
DEFAULT_IDLE_ENGINES = ("epoll", "asyncio")
#: select() watches descriptors below 1024; the select engine keeps 64 spare.
SELECT_MAX_CONNECTIONS = 1024 - 64
HEADLINE = ("epoll", "asyncio", 64)
RATIO_TARGET = 1.5
IDLE_TARGET_MB = 100.0
#: Percent of a core used by other processes during a run that makes it noisy.
NOISY_OTHER_CPU = 20.0

SERVER_ARGS = ["--no-udp", "--max-connections", "20000", "--idle-timeout", "0",
               "--first-bytes-timeout", "0"]


def _psutil() -> Any:
    try:
        import psutil
    except ImportError as exc:
        raise RuntimeError(
            "the engines benchmark reads server CPU and memory with psutil: "
            "pip install psutil (it is in the 'test' extra)"
        ) from exc
    return psutil


# -- results -----------------------------------------------------------------


@dataclass
class Run:
    """One measurement of one cell."""

    load: LoadResult
    server_cpu: float  # percent of one core, whole process tree
    other_cpu: float = 0.0  # percent of one core used by everything else

    @property
    def rate(self) -> float:
        return self.load.rate

    @property
    def server_us_per_message(self) -> float | None:
        """Server CPU microseconds per echo: its cost, whatever the load."""
        if not self.load.messages:
            return None
        return self.server_cpu / 100 * self.load.window / self.load.messages * 1e6


@dataclass
class Cell:
    """One engine at one connection count: its runs, or why there are none."""

    engine: str
    conns: int
    runs: list[Run] = field(default_factory=list)
    skipped: str = ""  # "n/a (...)" or "failed: ..."
    notes: list[str] = field(default_factory=list)
    reruns: int = 0  # runs measured again: other processes were busy
    noisy: int = 0  # runs kept although other processes were busy

    def median(self, value: Callable[[Run], float | None]) -> float | None:
        values = [v for v in map(value, self.runs) if v is not None]
        return statistics.median(values) if values else None

    @property
    def rate(self) -> float | None:
        return self.median(lambda run: run.rate)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


@dataclass
class IdleResult:
    """Memory of a server holding idle connections (bytes)."""

    engine: str
    asked: int
    connected: int = 0
    accepted: int = 0
    rss_before: int = 0
    rss_after: int = 0
    uss_after: int = 0
    failed: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def per_connection(self) -> float:
        """Bytes of RSS per accepted connection."""
        return (self.rss_after - self.rss_before) / self.accepted if self.accepted else 0.0


def not_applicable(engine: str, conns: int) -> str | None:
    """Why ``engine`` cannot be measured at ``conns`` connections, or None."""
    if engine == "iterative" and conns > 1:
        return "n/a (one at a time)"
    if engine == "select" and conns > SELECT_MAX_CONNECTIONS:
        return "n/a (FD_SETSIZE)"
    return None


# -- running servers -----------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Which CPUs the server and the load generator get."""

    server: frozenset[int] | None
    load: frozenset[int] | None

    @classmethod
    def split(cls, pin_server: bool) -> Placement:
        """Server on the first CPU, load on the rest; no pins on one CPU."""
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return cls(None, None)
        return cls(frozenset(cpus[:1]) if pin_server else None, frozenset(cpus[1:]))


def _server_argv(engine: str, workers: int) -> list[str]:
    argv = ["echo", "serve", "--engine", engine, *SERVER_ARGS]
    if workers > 1:
        argv += ["--workers", str(workers)]
    return argv


@contextmanager
def echo_server(engine: str, placement: Placement, workers: int = 1,
                problems: list[str] | None = None) -> Iterator[ServerProcess]:
    """Start an echo server on ``engine``, pinned per ``placement``; stop it after.

    The server is started while this process is pinned to the server's CPUs,
    so the server, its threads and its forked children inherit that pin.  On
    exit, a non-zero exit status, a hang on SIGTERM and anything on the
    server's stderr are appended to ``problems`` (not raised).

    Raises:
        RuntimeError: the server did not start (the last line of its stderr).
    """
    own = os.sched_getaffinity(0)
    server = ServerProcess(_server_argv(engine, workers), start_timeout=30.0, stop_timeout=20.0)
    try:
        if placement.server:
            os.sched_setaffinity(0, placement.server)
        try:
            server.start()
        except AssertionError as exc:
            server.stop(check=False)  # reap it, close its pipes
            raise RuntimeError(_last_line(str(exc))) from None
    finally:
        os.sched_setaffinity(0, placement.load or own)
    try:
        yield server
    finally:
        _stop(server, problems if problems is not None else [])


def _stop(server: ServerProcess, problems: list[str]) -> None:
    code: int | None
    try:
        server.signal(signal.SIGTERM)
        code = server.wait(server.stop_timeout)
    except Exception:  # noqa: BLE001 - TimeoutExpired, or already gone
        code = None
        problems.append(f"ignored SIGTERM for {server.stop_timeout:.0f}s (killed)")
        server.kill()
    # INFO lines ("shutting down: 0 connection(s) open") are the server
    # working as meant; warnings, errors and tracebacks are worth a note.
    lines = [line for line in server.stderr().splitlines()
             if line.strip() and not _QUIET_LOG.search(line)]
    server.stop(check=False)
    if code not in (0, None):
        problems.append(f"exit status {code}")
    if lines:
        problems.append(f"stderr ({len(lines)} lines): {_last_line(chr(10).join(lines))}")


_QUIET_LOG = re.compile(r"^\S+ \S+ (INFO|DEBUG) ")


def _last_line(text: str, width: int = 100) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else "?"
    return line if len(line) <= width else line[: width - 3] + "..."


def _tree_cpu(process: Any, psutil: Any) -> dict[int, float]:
    """CPU seconds of a process and each of its descendants, by pid.

    Read from ``/proc/PID/task/TID/schedstat`` (the scheduler's nanosecond
    count, summed over threads) where the kernel has it: the user and system
    times of ``/proc/PID/stat`` are sampled at each clock tick, and a fork
    engine's child that runs a few microseconds per message, well inside a
    tick, showed 0 there while the children together kept a core busy.
    """
    result: dict[int, float] = {}
    try:
        family = [process, *process.children(recursive=True)]
    except psutil.Error:
        return result
    for member in family:
        seconds = _schedstat_seconds(member.pid)
        if seconds is None:
            try:
                times = member.cpu_times()
            except psutil.Error:
                continue
            seconds = times.user + times.system
        result[member.pid] = seconds
    return result


def _schedstat_seconds(pid: int) -> float | None:
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    total = 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as file:
                total += int(file.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
    return total / 1e9


def _tree_memory(process: Any, psutil: Any) -> tuple[int, int, int]:
    """(RSS, USS, open file descriptors) summed over a process tree."""
    rss = uss = fds = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            info = member.memory_full_info()
            fds += member.num_fds()
        except psutil.Error:
            continue
        rss += info.rss
        uss += info.uss
    return rss, uss, fds


# -- measuring -----------------------------------------------------------------


def measure_cell(server: ServerProcess, conns: int, duration: float, warmup: float,
                 placement: Placement, load_procs: int = 1) -> Run:
    """Run the closed-loop load on a started server and sample its CPU."""
    psutil = _psutil()
    process = psutil.Process(server.pid)
    samples: dict[str, tuple[float, dict[int, float]]] = {}

    machine: dict[str, float] = {}

    def on_window(edge: str) -> None:
        samples[edge] = (time.monotonic(), _tree_cpu(process, psutil))
        machine[edge] = _busy_seconds(psutil)

    load = run_echo_load(server.address("tcp"), conns, duration=duration, warmup=warmup,
                         procs=load_procs, cpus=placement.load, on_window=on_window)
    (t0, before), (t1, after) = samples["start"], samples["end"]
    used = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
    # Whatever else ran meanwhile (other test suites, the CI, the system):
    # busy time of every CPU minus what the server and the load used.
    other = machine["end"] - machine["start"] - used - load.load_cpu
    return Run(load, 100.0 * used / (t1 - t0), max(0.0, 100.0 * other / (t1 - t0)))


def _busy_seconds(psutil: Any) -> float:
    """CPU seconds spent not idle, summed over every CPU, since boot."""
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system + getattr(times, "irq", 0.0)
                 + getattr(times, "softirq", 0.0) + getattr(times, "steal", 0.0))


def run_cell(cell: Cell, duration: float, warmup: float, placement: Placement,
             workers: int = 1, load_procs: int = 1, retries: int = 0,
             max_other: float = NOISY_OTHER_CPU) -> None:
    """Start a server, measure one run into ``cell``; failures become notes.

    A run during which other processes used more than ``max_other`` percent
    of a core is measured again, up to ``retries`` times, each time after
    waiting for a quiet moment; the last attempt is kept either way.
    """
    for attempt in range(retries + 1):
        if retries:
            wait_for_quiet(max_other)
        problems: list[str] = []
        try:
            with echo_server(cell.engine, placement, workers, problems) as server:
                run = measure_cell(server, cell.conns, duration, warmup, placement, load_procs)
        except RuntimeError as exc:
            if not cell.runs:
                cell.skipped = f"failed: {exc}"
            cell.note(f"failed: {exc}")
            return
        finally:
            for problem in problems:
                cell.note(f"server {problem}")
        if run.other_cpu <= max_other:
            break
        if attempt < retries:
            cell.reruns += 1
    if run.other_cpu > max_other:
        cell.noisy += 1
    cell.runs.append(run)
    load = run.load
    errors = {kind: n for kind, n in load.errors.items() if n}
    if errors:
        cell.note("errors: " + ", ".join(f"{n} {kind}" for kind, n in errors.items()))
    if load.starved:
        cell.note(f"{load.starved} of {load.connected} connections got no echo in a run")
    if load.messages == 0:
        cell.note("no echo completed: stalled")


def wait_for_quiet(max_other: float, patience: float = 30.0) -> float:
    """Wait (up to ``patience`` seconds) until the machine is nearly idle:
    under ``max_other`` percent of one core busy over half a second.  Returns
    the last reading."""
    psutil = _psutil()
    deadline = time.monotonic() + patience
    while True:
        busy = psutil.cpu_percent(interval=0.5) * psutil.cpu_count()
        if busy <= max_other or time.monotonic() >= deadline:
            return float(busy)


def measure_idle(engine: str, count: int, placement: Placement) -> IdleResult:
    """Open ``count`` idle connections to a fresh server; read its memory."""
    psutil = _psutil()
    result = IdleResult(engine, count)
    problems: list[str] = []
    try:
        with echo_server(engine, placement, 1, problems) as server:
            process = psutil.Process(server.pid)
            address = server.address("tcp")
            # One echo first, so the code paths of a connection are loaded
            # and the "before" figure is the server at work, not at start.
            warm, _ = connect_many(address, 1)
            for sock in warm:
                sock.setblocking(True)
                sock.sendall(b"x\n")
                sock.recv(16)
                sock.close()
            time.sleep(0.2)
            result.rss_before, _, fds_before = _tree_memory(process, psutil)
            socks, _failed = connect_many(address, count, batch=500, timeout=30.0)
            try:
                result.connected = len(socks)
                deadline = time.monotonic() + 60.0
                while time.monotonic() < deadline:
                    fds = _tree_memory(process, psutil)[2]
                    if fds - fds_before >= len(socks):
                        break
                    time.sleep(0.1)
                time.sleep(0.5)
                result.rss_after, result.uss_after, fds = _tree_memory(process, psutil)
                result.accepted = fds - fds_before
            finally:
                for sock in socks:
                    sock.close()
    except RuntimeError as exc:
        result.failed = str(exc)
    result.notes.extend(f"server {problem}" for problem in problems)
    return result


# -- reporting -----------------------------------------------------------------


def _fmt_rate(rate: float | None) -> str:
    if rate is None:
        return "—"
    if rate >= 10_000:
        return f"{rate / 1000:,.0f}k"
    if rate >= 1000:
        return f"{rate / 1000:,.1f}k"
    return f"{rate:,.0f}"


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _fmt_us(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def _fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


def headline_ratios(cells: dict[tuple[str, int], Cell]) -> list[float]:
    """epoll/asyncio msg/s at 64 connections, one ratio per repeat."""
    fast, slow, conns = HEADLINE
    a, b = cells.get((fast, conns)), cells.get((slow, conns))
    if a is None or b is None:
        return []
    return [x.rate / y.rate for x, y in zip(a.runs, b.runs) if y.rate > 0]


def build_table(cells: dict[tuple[str, int], Cell], engines: Sequence[str],
                conns: Sequence[int], repeat: int, duration: float,
                where: str = "pinned to core 0") -> Table:
    """Engine x connections: msg/s, p50, p99, server and load CPU, notes.

    ``where`` says where the server ran, for the caption.
    """
    table = Table(
        title="ionet echo: every engine, closed loop, 64-byte messages",
        caption=(
            f"median of {repeat} interleaved run(s) of {duration:g} s each; msg/s range = "
            "min-max over runs. µs/msg = server CPU time per echo (kernel TCP included). "
            "CPU = % of one core in the measured window (server: its "
            f"whole process tree, {where}; load: the epoll load generator on the "
            "other core(s); other: every other process on the machine, a sign of a noisy "
            "run). Load near 100% with the server below it: the load generator was the "
            "limit."
        ),
    )
    table.add_column("conns", justify="right")
    table.add_column("engine")
    table.add_column("msg/s", justify="right", style="bold")
    table.add_column("range", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("server CPU", justify="right")
    table.add_column("µs/msg", justify="right")
    table.add_column("load CPU", justify="right")
    table.add_column("other CPU", justify="right")
    table.add_column("notes")
    for index, n in enumerate(conns):
        if index:
            table.add_section()
        for engine in engines:
            cell = cells[engine, n]
            first = n if engine == engines[0] else ""
            if cell.skipped:
                row = [f"{first:,}" if first else "", engine, cell.skipped,
                       "", "", "", "", "", "", "",
                       "; ".join(note for note in cell.notes if note != cell.skipped)]
            else:
                rates = [run.rate for run in cell.runs]
                row = [
                    f"{first:,}" if first else "", engine, _fmt_rate(cell.rate),
                    f"{_fmt_rate(min(rates))}-{_fmt_rate(max(rates))}" if len(rates) > 1 else "",
                    _fmt_ms(cell.median(lambda r: r.load.latency_ms(0.50))),
                    _fmt_ms(cell.median(lambda r: r.load.latency_ms(0.99))),
                    _fmt_pct(cell.median(lambda r: r.server_cpu)),
                    _fmt_us(cell.median(lambda r: r.server_us_per_message)),
                    _fmt_pct(cell.median(lambda r: r.load.load_cpu_percent)),
                    _fmt_pct(cell.median(lambda r: r.other_cpu)),
                    "; ".join(_noise_notes(cell) + cell.notes),
                ]
            table.add_row(*(Text(str(value)) for value in row))
    return table


def _noise_notes(cell: Cell) -> list[str]:
    notes = []
    if cell.reruns:
        notes.append(f"{cell.reruns} noisy run(s) repeated")
    if cell.noisy:
        notes.append(f"{cell.noisy} run(s) with other processes busy")
    return notes


def headline_text(cells: dict[tuple[str, int], Cell]) -> str:
    fast, slow, conns = HEADLINE
    ratios = headline_ratios(cells)
    if not ratios:
        return f"{fast}/{slow} at {conns} connections: not measured"
    each = ", ".join(f"{r:.2f}" for r in ratios)
    verdict = "met" if statistics.median(ratios) >= RATIO_TARGET else "NOT met"
    return (f"{fast}/{slow} at {conns} connections: {statistics.median(ratios):.2f} "
            f"(target >= {RATIO_TARGET}; {verdict}; per run: {each})")


def idle_text(result: IdleResult) -> str:
    label = f"{result.engine}, {result.asked:,} idle connections"
    if result.failed:
        return "; ".join([f"{label}: failed: {result.failed}", *result.notes])
    mb = 1024 * 1024
    line = (f"{label}: {result.rss_after / mb:.1f} MB RSS, {result.uss_after / mb:.1f} MB USS "
            f"(before: {result.rss_before / mb:.1f} MB RSS; "
            f"{result.per_connection / 1024:.2f} KiB per connection)")
    if result.accepted < result.asked:
        line += f"; only {result.accepted:,} accepted, {result.connected:,} connected"
    if result.engine == "epoll":
        verdict = "met" if result.rss_after / mb < IDLE_TARGET_MB else "NOT met"
        line += f" (target < {IDLE_TARGET_MB:.0f} MB RSS; {verdict})"
    return "; ".join([line, *result.notes])


def draw_chart(cells: dict[tuple[str, int], Cell], engines: Sequence[str],
               conns: Sequence[int], out: Path, log_scale: bool = False) -> Path:
    """Bars of msg/s per engine, grouped by connection count, to a PNG.

    Raises:
        RuntimeError: matplotlib is missing (the ``chart`` extra).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise RuntimeError(
            "drawing the chart needs matplotlib, the 'chart' extra: "
            "pip install 'ionet[chart]' (or pass --no-chart)"
        ) from exc
    figure = Figure(figsize=(12, 6), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    width = 0.8 / max(1, len(engines))
    for i, engine in enumerate(engines):
        xs, heights, low, high = [], [], [], []
        for j, n in enumerate(conns):
            cell = cells[engine, n]
            x = j + (i - (len(engines) - 1) / 2) * width
            if cell.rate is None:
                label = "n/a" if cell.skipped.startswith("n/a") else "failed"
                ax.text(x, 0, f" {engine}: {label}", rotation=90, ha="center", va="bottom",
                        fontsize=7, color="gray")
                continue
            rates = [run.rate for run in cell.runs]
            xs.append(x)
            heights.append(cell.rate)
            low.append(cell.rate - min(rates))
            high.append(max(rates) - cell.rate)
        ax.bar(xs, heights, width, yerr=[low, high], capsize=2, label=engine)
    ax.set_xticks(range(len(conns)), [f"{n:,} connection{'s' if n > 1 else ''}" for n in conns])
    ax.set_ylabel("echoes per second (median; bars: min-max)")
    if log_scale:
        ax.set_yscale("log")
    else:
        ax.yaxis.set_major_formatter(lambda value, _pos: f"{value / 1000:,.0f}k")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(ncols=min(len(engines), 5), fontsize=9)
    ax.set_title("ionet echo, 64-byte messages, server on core 0, load on core 1 "
                 "(python bench/engines.py)")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    return out


# -- command line --------------------------------------------------------------


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in ENGINES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    return names


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.replace("_", "").split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("connection counts must be at least 1")
    return counts


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ionet bench engines",
        description="Echo throughput and latency on every engine, and idle-connection memory.",
    )
    parser.add_argument("--engines", type=_names, default=list(ENGINES),
                        help="comma-separated engines (default: all)")
    parser.add_argument("--conns", type=_counts, default=None,
                        help="comma-separated connection counts (default: 1,64,1000)")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds measured per cell (default: 5; 1 with --quick)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds of load before measuring (default: 1; 0.5 with --quick)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="interleaved runs per cell; the median is shown (default: 3)")
    parser.add_argument("--load-procs", type=int, default=1,
                        help="load generator processes (default: 1)")
    parser.add_argument("--workers", type=int, default=1,
                        help="server worker processes (loop engines); above 1 the server "
                        "is not pinned (default: 1)")
    parser.add_argument("--max-other", type=float, default=NOISY_OTHER_CPU, metavar="PCT",
                        help="a run during which other processes used more than this %% of a "
                        "core is noisy: it is measured again (default: %(default)g)")
    parser.add_argument("--retries", type=int, default=None,
                        help="times a noisy run is measured again (default: 2; 0 with --quick)")
    parser.add_argument("--idle", type=int, default=DEFAULT_IDLE,
                        help=f"idle connections for the memory test, 0 to skip "
                        f"(default: {DEFAULT_IDLE:,})")
    parser.add_argument("--idle-engines", type=_names, default=list(DEFAULT_IDLE_ENGINES),
                        help="engines for the memory test (default: epoll,asyncio)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="PNG",
                        help=f"where to write the chart (default: {DEFAULT_OUT})")
    parser.add_argument("--log", action="store_true", help="log scale on the chart")
    parser.add_argument("--no-chart", action="store_true", help="print the table only")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 s per cell, 1 repeat, 1 and 64 connections")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, the headline and the idle memory.

    Args:
        argv: the arguments (without the program name); ``sys.argv[1:]``
            when None.

    Returns:
        0 on success (whether or not the targets were met), 1 if the chart
        could not be drawn, 2 if psutil is missing.
    """
    args = _parser().parse_args(argv)
    conns = args.conns or list(QUICK_CONNS if args.quick else DEFAULT_CONNS)
    duration = args.duration or (1.0 if args.quick else 5.0)
    warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0)
    repeat = args.repeat or (1 if args.quick else 3)
    retries = args.retries if args.retries is not None else (0 if args.quick else 2)
    engines: list[str] = args.engines
    try:
        _psutil()
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Raised here, before any server starts, so that the servers inherit it.
    raise_fd_limit(max(max(conns), args.idle) * 2 + 256)
    own_affinity = os.sched_getaffinity(0)
    placement = Placement.split(pin_server=args.workers == 1)
    console = Console()
    if not console.is_terminal:  # a file or a pipe: do not squeeze to 80 columns
        console = Console(width=max(console.width, 180))
    status_console = Console(stderr=True)

    cells = {(e, n): Cell(e, n) for e in engines for n in conns}
    for cell in cells.values():
        cell.skipped = not_applicable(cell.engine, cell.conns) or ""
    idle_results: list[IdleResult] = []
    try:
        if placement.load:
            os.sched_setaffinity(0, placement.load)
        with status_console.status("measuring") as status:

            def progress(message: str) -> None:
                if status_console.is_terminal:
                    status.update(message)
                else:  # a log file: one line per step, to follow with tail -f
                    print(message, file=sys.stderr, flush=True)

            for r in range(repeat):
                for n in conns:
                    for engine in engines:
                        cell = cells[engine, n]
                        if cell.skipped:
                            continue
                        progress(f"run {r + 1}/{repeat}: {engine}, {n:,} connection(s)")
                        run_cell(cell, duration, warmup, placement, args.workers,
                                 args.load_procs, retries, args.max_other)
                        if cell.skipped.startswith("failed"):
                            # An engine that cannot start will not start later.
                            for other in conns:
                                later = cells[engine, other]
                                if not later.runs and not later.skipped:
                                    later.skipped = cell.skipped
            if args.idle > 0:
                for engine in args.idle_engines:
                    progress(f"{engine}: {args.idle:,} idle connections")
                    idle_results.append(measure_idle(engine, args.idle, placement))
    finally:
        os.sched_setaffinity(0, own_affinity)

    if placement.server is not None:
        where = f"pinned to core {','.join(map(str, sorted(placement.server)))}"
    else:
        where = f"not pinned ({'--workers ' + str(args.workers) if args.workers > 1 else 'one CPU'})"
    console.print(build_table(cells, engines, conns, repeat, duration, where))
    console.print(Text(headline_text(cells)))
    for result in idle_results:
        console.print(Text(idle_text(result)))
    if args.no_chart:
        return 0
    try:
        path = draw_chart(cells, engines, conns, args.out, args.log)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    console.print(f"chart written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
