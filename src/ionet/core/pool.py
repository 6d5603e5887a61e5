"""A worker pool that a single-threaded event loop can wait on.

A loop engine must never block: a WSGI app that sleeps 2 s or a MySQL query
would freeze every connection.  ``run_in_worker`` hands such a call to a
thread of this pool; when it finishes, the pool queues the callback and
writes a byte to a pipe that the loop watches, and the loop runs the callback
on its own thread.  Protocols thus never see a second thread.

Waking a thread is the expensive part, in Python more than anywhere: a
system call, a context switch, and then a fight for the GIL with the loop
thread at every system call the loop makes.  ``concurrent.futures``' pool
pays it for every call (and a Future with its Condition besides), which made
a thread hand-off cost more than the HTTP request it served.  This pool
wakes as few threads as it can:

* calls wait in a queue; one thread, the *runner*, takes them one after the
  other, as long as there are any, and sleeps when the queue is empty.  The
  loop wakes it once per loop turn (``call_soon``), after the turn's events
  queued their calls: sixty requests read in one turn cost one wake-up;
* results go back the same way: the first one of a batch writes the byte
  that wakes the loop, the loop runs every result that is ready;
* a slow call (a sleeping app, a slow query) must not hold up the calls
  behind it.  While calls wait behind a busy runner, a second thread, the
  *watcher*, looks every ``STALL`` seconds whether the queue moved; when it
  did not, the runners are stuck in slow calls and the watcher becomes a
  runner too (and a new watcher is woken while calls still wait).  The
  watcher sleeps again after the queue was empty at several checks.  A call
  submitted when the queue has already been stuck that long wakes a runner
  at once.  So a slow call delays the others by at most ``STALL``, and
  blocking calls still get up to ``threads`` threads.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from typing import Callable, TypeVar

from ionet.core.protocol import Outcome

T = TypeVar("T")

#: Seconds without progress after which waiting calls get another thread.
STALL = 0.002
#: Empty-queue checks after which a watcher goes back to sleep: under steady
#: load it stays up (a wake-up every STALL) instead of being woken each turn.
WATCHER_PATIENCE = 5

# What a woken thread is asked to be.
_RUN, _WATCH = "run", "watch"


#: ``Outcome(value, None)`` without the Python-level ``__new__`` of a named
#: tuple: one C call, once per worker call.
_new_tuple = tuple.__new__


class _Worker:
    """One pool thread and the lock it sleeps on (held while asleep)."""

    __slots__ = ("role", "thread", "wake")

    def __init__(self) -> None:
        self.role = _RUN
        self.wake = threading.Lock()
        self.wake.acquire()  # locked: acquiring it again sleeps until released
        self.thread: threading.Thread | None = None


class WorkerPool:
    """Threads for blocking calls, with results delivered to one loop thread."""

    def __init__(self, threads: int,
                 call_soon: Callable[[Callable[[], None]], None] | None = None) -> None:
        """``threads`` at most; ``call_soon`` runs a callback at the end of the
        loop's current turn (without it, each call wakes a thread at once)."""
        self._max_threads = threads
        self._call_soon = call_soon
        self._flush_pending = False
        self._workers: list[_Worker] = []  # started on demand
        self._idle: list[_Worker] = []  # asleep, waiting to be woken
        self._watcher: _Worker | None = None
        self._lock = threading.Lock()  # guards everything above and below
        self._calls: collections.deque[tuple[Callable[[], object], Callable[[Outcome], None]]]
        self._calls = collections.deque()
        self._runners = 0  # threads taking calls (asleep ones excluded)
        self._progress = time.monotonic()  # when a call last started or ended
        self._closing = False
        self._ready: collections.deque[tuple[Callable[[Outcome], None], Outcome]]
        self._ready = collections.deque()
        self._signaled = False  # a wake-up byte is on its way to the loop
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self.pending = 0  # calls submitted and not yet delivered

    def fileno(self) -> int:
        """Readable when finished calls wait for ``run_ready``."""
        return self._read_fd

    # -- the loop side --------------------------------------------------------

    def submit(self, func: Callable[[], T], callback: Callable[[Outcome[T]], None]) -> None:
        """Run ``func`` on a worker thread; ``callback(outcome)`` later runs on
        the loop thread, from ``run_ready``."""
        self.pending += 1
        # No lock: deque.append is atomic, and _flush (which runs after it,
        # under the lock) wakes a runner if the runners went to sleep.
        self._calls.append((func, callback))  # type: ignore[arg-type]
        if self._call_soon is None:
            self._flush()
        elif not self._flush_pending:
            self._flush_pending = True
            self._call_soon(self._flush)

    def _flush(self) -> None:
        """Make sure a thread will take the queued calls."""
        self._flush_pending = False
        with self._lock:
            if not self._calls or self._closing:
                return
            if self._runners == 0 or time.monotonic() - self._progress > STALL:
                self._wake(_RUN)  # nobody runs calls, or the runners are stuck
            elif self._watcher is None:
                self._wake(_WATCH)

    def run_ready(self) -> None:
        """Run the callbacks of finished calls (on the loop thread)."""
        try:
            while len(os.read(self._read_fd, 4096)) == 4096:
                pass  # (one byte per batch of results: one read empties it)
        except (BlockingIOError, InterruptedError):
            pass
        # Cleared after draining the pipe: a result queued from here on
        # writes a new byte, one queued before is in the deque below.
        self._signaled = False
        ready = self._ready
        while ready:
            callback, outcome = ready.popleft()
            self.pending -= 1
            callback(outcome)

    def close(self) -> None:
        """Drop the calls not started, wait for running ones, end the threads."""
        with self._lock:
            self._closing = True
            self._calls.clear()
            for worker in self._idle + ([self._watcher] if self._watcher else []):
                if worker.wake.locked():  # (else a wake-up is on its way already)
                    worker.wake.release()
            self._idle.clear()
            self._watcher = None
        for worker in self._workers:
            assert worker.thread is not None
            worker.thread.join()
        os.close(self._read_fd)
        os.close(self._write_fd)

    # -- the thread side ------------------------------------------------------

    def _wake(self, role: str) -> None:
        """Give a sleeping (or new) thread ``role``.  Called with the lock held."""
        if self._idle:
            worker = self._idle.pop()
        elif len(self._workers) < self._max_threads:
            worker = _Worker()
            worker.thread = threading.Thread(target=self._work, args=(worker,), daemon=True,
                                             name=f"ionet-worker-{len(self._workers)}")
            self._workers.append(worker)
            worker.thread.start()  # it sleeps on its lock until released below
        else:
            return  # every thread is busy already
        worker.role = role
        if role == _RUN:
            self._runners += 1
        else:
            self._watcher = worker
        worker.wake.release()

    def _work(self, worker: _Worker) -> None:
        while True:
            worker.wake.acquire()  # asleep until _wake (or close) releases it
            if self._closing:
                return
            role: str | None = worker.role
            while role is not None:
                role = self._run(worker) if role == _RUN else self._watch(worker)
            if self._closing:
                return

    def _run(self, worker: _Worker) -> str | None:
        """Take calls until the queue is empty; then go to sleep (None)."""
        calls = self._calls
        while True:
            with self._lock:
                if not calls or self._closing:
                    self._runners -= 1
                    self._idle.append(worker)
                    return None
                func, callback = calls.popleft()
                self._progress = time.monotonic()
                if calls and self._watcher is None:
                    self._wake(_WATCH)  # someone must notice if this call is slow
            try:
                outcome: Outcome = _new_tuple(Outcome, (func(), None))
            except BaseException as exc:  # delivered to the caller, not raised here
                outcome = Outcome(None, exc)
            self._progress = time.monotonic()
            self._ready.append((callback, outcome))
            if not self._signaled:
                self._signaled = True
                try:
                    os.write(self._write_fd, b"\0")
                except OSError:
                    pass  # the pipe is full: the loop is awake anyway

    def _watch(self, worker: _Worker) -> str | None:
        """Look every STALL seconds whether waiting calls are stuck."""
        empty = 0  # checks in a row that found no call waiting
        while True:
            if worker.wake.acquire(timeout=STALL):  # released: close() wants us
                return None
            with self._lock:
                if self._closing:
                    return None
                if not self._calls:
                    empty += 1
                    if empty >= WATCHER_PATIENCE:
                        self._watcher = None
                        self._idle.append(worker)
                        return None
                    continue
                empty = 0
                if time.monotonic() - self._progress > STALL:
                    self._watcher = None
                    self._runners += 1
                    return _RUN
