"""The access log, in Common Log Format (what Apache and nginx write by default)::

    127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 200 2326

Every line goes out in one ``os.write`` on a file descriptor: a single small
write to a pipe or an ``O_APPEND`` file is atomic, so lines from the threads
of the thread engine, or from the processes of the fork engine and
``--workers``, never interleave, and no lock is needed.  The time stamp is
formatted once per second (:class:`~ionet.http.status.HttpClock`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ionet.http.status import HttpClock

if TYPE_CHECKING:
    from ionet.http.parser import Request
    from ionet.http.protocol import HttpProtocol

__all__ = ["AccessLog"]


class AccessLog:
    """Write one Common Log Format line per response.

    Args:
        path: the file to append to; None for standard error.
        clock: formats the time stamp (a shared :class:`HttpClock`).
    """

    def __init__(self, path: str | Path | None = None, clock: HttpClock | None = None) -> None:
        self.clock = clock or HttpClock()
        if path is None:
            self._fd = sys.stderr.fileno()
            self._owned = False
        else:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._owned = True

    def __call__(self, conn: HttpProtocol, request: Request, status: int, size: int) -> None:
        line = (f'{conn.peer()} - - [{self.clock.log_time()}] "{request.request_line()}" '
                f'{status} {size if size else "-"}\n')
        try:
            os.write(self._fd, line.encode("utf-8", "backslashreplace"))
        except OSError:
            pass  # a full disk or closed stderr must not take requests down

    def close(self) -> None:
        if self._owned:
            os.close(self._fd)
            self._owned = False
