"""``--workers N``: pre-forked worker processes, each running a loop engine.

A loop engine uses one core.  To use every core, the supervisor (the parent
process) forks N workers after binding the sockets; each worker runs the
engine on its own copy of the listening sockets (``SO_REUSEPORT``: the kernel
spreads connections between them).  The supervisor does no network work:

* it waits for a signal: SIGCHLD (a worker died) or SIGINT/SIGTERM (stop);
* a worker that died is reaped with ``waitpid`` (no zombie) and restarted on
  the same sockets, so connections queued meanwhile are not lost; one that
  keeps dying at start is restarted no faster than once a second;
* on stop it sends SIGTERM to every worker, which finish gracefully, waits
  for them up to the shutdown deadline, then sends SIGKILL to the stragglers.

One race needs care: a child starts with its parent's signal handlers, and
until it installs its own, a SIGTERM (``kill`` of the process group, or of
the new worker) would run the *parent's* handler on the child's copy of the
parent's stop latch, which nothing in the child watches: the worker would
serve on, ignoring the request, until the supervisor's SIGKILL.  So SIGINT
and SIGTERM are blocked across ``fork``; the child unblocks them once its
own handlers are in place, and a signal that arrived meanwhile is delivered
then, to the right latch.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import time

from ionet.core.config import Limits
from ionet.core.engines.base import Engine
from ionet.core.listeners import Listener
from ionet.core.stop import STOP_SIGNALS, StopSignal

log = logging.getLogger("ionet.supervisor")

#: A worker that dies sooner than this after its start is restarted only
#: after the same delay, so a crash at start-up does not become a fork loop.
RESTART_BACKOFF = 1.0
#: Extra seconds beyond the shutdown deadline before SIGKILL.
KILL_GRACE = 5.0


class Supervisor:
    """Starts, watches, restarts and stops N worker processes."""

    def __init__(self, engine_cls: type[Engine], limits: Limits,
                 listener_sets: list[list[Listener]]) -> None:
        self.engine_cls = engine_cls
        self.limits = limits
        self.listener_sets = listener_sets
        self.pids: dict[int, int] = {}  # pid -> worker index
        self.started: dict[int, float] = {}  # worker index -> start time
        self.stop = StopSignal()

    def prepare(self) -> None:
        """Route SIGINT/SIGTERM (stop) and SIGCHLD (a worker died) to us."""
        self.stop.install_signal_handlers()
        # A Python-level SIGCHLD handler makes the C handler write to the
        # stop pipe's wakeup fd, so a dying worker wakes us at once.
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def run(self) -> int:
        """Start the workers and watch them until stopped; returns 0."""
        try:
            for index in range(len(self.listener_sets)):
                self._spawn(index)
            restart_at: dict[int, float] = {}
            while not self.stop.is_set():
                delay = min((t - time.monotonic() for t in restart_at.values()), default=1.0)
                select.select([self.stop.fileno()], [], [], max(0.0, min(delay, 1.0)))
                self.stop.drain()
                for index in self._reap():
                    if time.monotonic() - self.started[index] < RESTART_BACKOFF:
                        restart_at[index] = time.monotonic() + RESTART_BACKOFF
                    else:
                        restart_at[index] = time.monotonic()
                for index, when in list(restart_at.items()):
                    if when <= time.monotonic() and not self.stop.is_set():
                        del restart_at[index]
                        self._spawn(index)
            self._stop_workers()
        finally:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for listeners in self.listener_sets:
                for listener in listeners:
                    listener.close()
            self.stop.close()
        return 0

    def _spawn(self, index: int) -> None:
        # Blocked across fork (see the module doc); pending ones wait, not lost.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                self._worker_main(index, mask)  # never returns
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self.pids[pid] = index
        self.started[index] = time.monotonic()
        log.info("worker %d started (pid %d)", index, pid)

    def _worker_main(self, index: int, mask: set[signal.Signals]) -> None:
        """The child: run the engine on this worker's sockets, then exit.

        Starts with SIGINT/SIGTERM blocked; ``mask`` is the signal mask to
        restore once this worker's own handlers are installed.
        """
        status = 1
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            self.stop.close()  # the parent's pipe; the worker gets its own
            for other, listeners in enumerate(self.listener_sets):
                if other != index:
                    for listener in listeners:
                        if listener.sock not in {mine.sock for mine in self.listener_sets[index]}:
                            listener.close()
            stop = StopSignal()
            stop.install_signal_handlers()
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a pending stop lands now
            engine = self.engine_cls(self.limits)
            engine.run(self.listener_sets[index], stop)
            status = 0
        except BaseException:
            log.exception("worker %d failed", index)
        finally:
            # Never return into the parent's code (CPython's ForkingMixIn does
            # the same): os._exit skips the parent's cleanup handlers.
            os._exit(status)

    def _reap(self) -> list[int]:
        """Collect dead workers; return their indexes."""
        dead = []
        while self.pids:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            index = self.pids.pop(pid, None)
            if index is None:
                continue
            log.warning("worker %d (pid %d) exited with status %d; restarting",
                        index, pid, os.waitstatus_to_exitcode(status))
            dead.append(index)
        return dead

    def _stop_workers(self) -> None:
        for pid in self.pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.limits.shutdown_timeout + KILL_GRACE
        while self.pids and time.monotonic() < deadline:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                self.pids.pop(pid, None)
            else:
                select.select([self.stop.fileno()], [], [], 0.05)
                self.stop.drain()
        for pid in self.pids:
            log.warning("worker pid %d did not stop in time; killing it", pid)
            _signal(pid, signal.SIGKILL)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.pids.clear()


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
