"""CPU time used by a server, read from /proc (Linux), for "CPU per unit of work" figures.

On a shared machine rates move with whatever else runs (BENCH.md: 10-35%
between runs), but the CPU a server spends on a fixed amount of work moves
much less.  Read :func:`tree_cpu` before and after the work; the difference
is what the server spent on it, whatever the wall time.

A server may be one process with threads (ionet, pyftpdlib) or fork a
process per session (vsftpd), so the whole tree under a pid is counted:

* live threads, from ``/proc/PID/task/TID/schedstat`` (run time in
  nanoseconds; falls back to ``utime + stime`` in ticks where absent), or
  the process's ``utime + stime`` (ticks) where that is more: it includes
  threads that have ended;
* children that have exited and been reaped, from ``cutime + cstime`` of
  their parent's ``/proc/PID/stat`` (ticks).  A reaped child's time moves
  into its parent's counters, so nothing is counted twice.

Not counted: a child reaped without ``wait`` accounting (vsftpd's session
processes vanish with their CPU time: its main process's ``cutime`` stays
0).  :class:`CpuMeter` covers that case: it samples the tree every 10 ms
while the work runs and keeps the last figure seen for each process, so a
process that ends meanwhile still counts (less its last few milliseconds).
"""

from __future__ import annotations

import os
import threading

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(path: str) -> list[bytes]:
    """The fields of a ``stat`` file after the ``(comm)`` one: index 0 is the state."""
    with open(path, "rb") as file:
        return file.read().rpartition(b")")[2].split()


def _thread_seconds(pid: int) -> float:
    """CPU seconds of process ``pid``'s live threads (exact, from ``schedstat``)."""
    live = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as file:
                live += int(file.read().split()[0]) / 1e9
        except FileNotFoundError:
            try:
                fields = _stat_fields(f"/proc/{pid}/task/{tid}/stat")
            except OSError:
                continue  # the thread ended meanwhile
            live += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    return live


def _process_seconds(pid: int) -> float:
    """CPU seconds of every thread process ``pid`` ever had, in ticks.

    A thread that has ended is gone from ``task/``, so the live threads'
    sum misses it: a thread-per-connection server (the thread engine, a
    fork child's data threads) would seem to cost almost nothing.  The
    process's own ``utime + stime`` keeps it, at the tick's precision.
    """
    fields = _stat_fields(f"/proc/{pid}/stat")
    return (int(fields[11]) + int(fields[12])) / _TICK


def _children() -> dict[int, list[int]]:
    """Every live process's children, by parent pid."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(_stat_fields(f"/proc/{entry}/stat")[1])
            except (OSError, ValueError, IndexError):
                continue  # it ended meanwhile
            children.setdefault(parent, []).append(int(entry))
    return children


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` and all its descendants.

    Returns 0.0 where /proc is missing (not Linux); raises nothing for
    processes that end while they are read.
    """
    if not os.path.isdir("/proc/self/task"):
        return 0.0
    children = _children()
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        pending.extend(children.get(current, ()))
        try:
            fields = _stat_fields(f"/proc/{current}/stat")
            total += (int(fields[13]) + int(fields[14])) / _TICK  # cutime, cstime: reaped children
            total += max(_thread_seconds(current), _process_seconds(current))
        except (OSError, ValueError, IndexError):
            continue
    return total


def _tree_threads(pid: int) -> dict[int, tuple[float, float]]:
    """For each live process under ``pid``, its own threads' CPU seconds: the
    live ones' exact sum, and every one's (ended too) in ticks."""
    found: dict[int, tuple[float, float]] = {}
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            found[current] = (_thread_seconds(current), _process_seconds(current))
            for tid in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{tid}/children", "rb") as file:
                    pending.extend(int(child) for child in file.read().split())
        except (OSError, ValueError):
            continue  # it ended meanwhile
    return found


class CpuMeter:
    """CPU seconds a process tree uses during a ``with`` block, processes that
    start and end inside it included.

    A thread samples the tree every ``interval`` seconds (reading only the
    processes under ``pid``, through ``/proc/PID/task/TID/children``) and
    keeps each process's last figure.  ``seconds`` is then the growth of
    the processes present at the start plus everything the others used.
    """

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid = pid
        self.interval = interval
        self.seconds = 0.0
        self._start: dict[int, tuple[float, float]] = {}
        self._last: dict[int, tuple[float, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        self._last.update(_tree_threads(self.pid))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> CpuMeter:
        if os.path.isdir("/proc/self/task") and self.pid:
            self._start = _tree_threads(self.pid)
            self._last = dict(self._start)
            self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._sample()
        # Per process, the larger growth: the exact live-thread sum, unless
        # threads that ended meanwhile took more (seen only in the ticks).
        total = 0.0
        for pid, (live, ticks) in self._last.items():
            live_start, ticks_start = self._start.get(pid, (0.0, 0.0))
            total += max(live - live_start, ticks - ticks_start)
        self.seconds = total
