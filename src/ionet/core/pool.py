"""A worker pool that a single-threaded event loop can wait on.

A loop engine must never block: a WSGI app that sleeps 2 s or a MySQL query
would freeze every connection.  ``run_in_worker`` hands such a call to a
thread of this pool; when it finishes, the pool queues the callback and
writes a byte to a pipe that the loop watches, and the loop runs the callback
on its own thread.  Protocols thus never see a second thread.
"""

from __future__ import annotations

import collections
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, TypeVar

from ionet.core.protocol import Outcome

T = TypeVar("T")


class WorkerPool:
    """Threads for blocking calls, with results delivered to one loop thread."""

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._executor: ThreadPoolExecutor | None = None  # started on first use
        self._ready: collections.deque[Callable[[], None]] = collections.deque()
        self._lock = threading.Lock()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self.pending = 0  # calls submitted and not yet delivered

    def fileno(self) -> int:
        """Readable when finished calls wait for ``run_ready``."""
        return self._read_fd

    def submit(self, func: Callable[[], T], callback: Callable[[Outcome[T]], None]) -> None:
        """Run ``func`` on a worker thread; ``callback(outcome)`` later runs on
        the loop thread, from ``run_ready``."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="ionet-worker")
        self.pending += 1
        future = self._executor.submit(func)
        future.add_done_callback(lambda f: self._finished(f, callback))

    def _finished(self, future: Future[T], callback: Callable[[Outcome[T]], None]) -> None:
        # Runs on the worker thread: only queue, never call protocol code here.
        error = future.exception()
        outcome: Outcome[T] = Outcome(None, error) if error else Outcome(future.result())
        with self._lock:
            wake = not self._ready  # the loop drains the whole queue per wakeup
            self._ready.append(lambda: callback(outcome))
        if wake:
            try:
                os.write(self._write_fd, b"\0")
            except (BlockingIOError, OSError):
                pass  # a wakeup is already pending

    def run_ready(self) -> None:
        """Run the callbacks of finished calls (on the loop thread)."""
        try:
            while os.read(self._read_fd, 4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while True:
            with self._lock:
                if not self._ready:
                    return
                deliver = self._ready.popleft()
            self.pending -= 1
            deliver()

    def close(self) -> None:
        """Wait for running calls to finish, then release the threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        os.close(self._read_fd)
        os.close(self._write_fd)
