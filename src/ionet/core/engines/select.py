"""The select engine: one event loop over ``select(2)``, the oldest of them.

``select`` takes three sets of descriptors (to read, to write, in error) as
bitmaps and returns the subsets that are ready.  Two costs follow:

* the sets are rebuilt and copied into the kernel on every call, and the
  kernel scans every watched descriptor: O(n) per call even when one is ready;
* the bitmaps have a fixed size, FD_SETSIZE (1024 on Linux): a process with
  a descriptor numbered 1024 or higher cannot use select at all.

So this engine refuses connections beyond what select can watch (clean
refusals, not crashes) and exists to be read and measured, beside poll and
epoll.  The loop itself is shared with them: see ``reactor.py``.
"""

from __future__ import annotations

import select
from dataclasses import replace

from ionet.core.config import Limits
from ionet.core.engines.reactor import READ, WRITE, Poller, ReactorEngine
from ionet.core.timers import Clock

#: select() cannot watch a descriptor numbered this or above (Linux glibc).
FD_SETSIZE = 1024


class SelectPoller(Poller):
    """``select.select``: interest kept here as two sets, sent on each call."""

    def __init__(self) -> None:
        self._readers: set[int] = set()
        self._writers: set[int] = set()

    def register(self, fd: int, events: int) -> None:
        if fd >= FD_SETSIZE:
            raise OSError(f"select() cannot watch descriptor {fd} (FD_SETSIZE is {FD_SETSIZE})")
        self.modify(fd, events)

    def modify(self, fd: int, events: int) -> None:
        (self._readers.add if events & READ else self._readers.discard)(fd)
        (self._writers.add if events & WRITE else self._writers.discard)(fd)

    def unregister(self, fd: int) -> None:
        self._readers.discard(fd)
        self._writers.discard(fd)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if not self._readers and not self._writers:
            # select() with empty sets is only a sleep; keep it bounded.
            select.select([], [], [], 0.1 if timeout is None else timeout)
            return []
        readable, writable, _ = select.select(self._readers, self._writers, [], timeout)
        events: dict[int, int] = {fd: READ for fd in readable}
        for fd in writable:
            events[fd] = events.get(fd, 0) | WRITE
        return list(events.items())


class SelectEngine(ReactorEngine):
    """One thread, one select loop: at most ~1000 connections."""

    name = "select"

    def __init__(self, limits: Limits, clock: Clock | None = None) -> None:
        # Leave room under FD_SETSIZE for listeners, pipes and log files.
        if limits.max_connections > FD_SETSIZE - 64:
            limits = replace(limits, max_connections=FD_SETSIZE - 64)
        super().__init__(limits, clock)

    def make_poller(self) -> Poller:
        return SelectPoller()
