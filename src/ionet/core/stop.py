"""A stop request that any engine can wait on: a pipe plus a flag.

Signals and threads meet here.  A SIGTERM may be delivered to any thread of
the process, while an engine's main thread sits in ``epoll_wait`` or
``select``; Python runs its signal handler only later, in the main thread.
``signal.set_wakeup_fd`` makes the C-level handler write the signal number
to our pipe at once, so the engine wakes because the pipe became readable,
whichever thread took the signal.  ``StopSignal.set()`` writes to the same
pipe, so another thread (a test, ``ionet up``) can stop a server the same way.
"""

from __future__ import annotations

import builtins
import os
import signal
import threading

#: The byte ``set()`` writes; signal numbers are what the C handler writes.
_STOP_BYTE = 0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignal:
    """A one-way latch: once set, the server stops accepting and winds down."""

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._event = threading.Event()
        self._closed = False

    def fileno(self) -> int:
        """The read end: readable once a stop (or another signal) arrived."""
        return self._read_fd

    def set(self) -> None:
        """Request a stop; safe from any thread and from signal handlers."""
        self._event.set()
        self._poke(_STOP_BYTE)

    def _poke(self, byte: int) -> None:
        try:
            os.write(self._write_fd, bytes([byte]))
        except (BlockingIOError, OSError):
            pass  # the pipe is full or closed: a wakeup is already pending

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is requested (for threads that only wait)."""
        return self._event.wait(timeout)

    def drain(self) -> builtins.set[int]:
        """Empty the pipe; return the signal numbers that were written to it.

        Sets the latch if a stop byte, SIGINT or SIGTERM was among them.
        """
        seen: builtins.set[int] = builtins.set()
        while True:
            try:
                data = os.read(self._read_fd, 512)
            except (BlockingIOError, InterruptedError):
                break
            if not data:
                break
            seen.update(data)
        if seen & {_STOP_BYTE, *STOP_SIGNALS}:
            self._event.set()
        return seen - {_STOP_BYTE}

    def install_signal_handlers(self) -> bool:
        """Route SIGINT/SIGTERM to this stop signal.  Main thread only.

        Returns False (and does nothing) when called from another thread, as
        Python allows signal handlers only in the main thread.
        """
        if threading.current_thread() is not threading.main_thread():
            return False
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        return True

    def _on_signal(self, signum: int, frame: object) -> None:
        self.set()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if threading.current_thread() is threading.main_thread():
                signal.set_wakeup_fd(-1)
            os.close(self._read_fd)
            os.close(self._write_fd)
