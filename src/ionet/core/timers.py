"""Timers for engines that run their own loop: a heap of deadlines.

The clock is injectable (``time.monotonic`` by default, never ``time.time``,
which jumps when the wall clock is set), so that timeouts can be tested with
a fake clock instead of sleeping.

Idle timeouts use a lazy trick worth knowing: re-arming a timer on every
``recv`` would cost a heap operation per read.  Instead the connection only
records when it last heard from the peer; when its timer fires, it checks
that time and, if the connection was active meanwhile, sets the timer again
for the remaining time.  A busy connection costs one heap entry per timeout
period, not one per read.
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Callable

from ionet.core.protocol import TimerHandle

Clock = Callable[[], float]


class Timer(TimerHandle):
    """One scheduled call; ordered by deadline, then by creation."""

    __slots__ = ("deadline", "callback", "cancelled", "_seq")

    def __init__(self, deadline: float, callback: Callable[[], None], seq: int) -> None:
        self.deadline = deadline
        self.callback: Callable[[], None] | None = callback
        self.cancelled = False
        self._seq = seq

    def cancel(self) -> None:
        self.cancelled = True
        self.callback = None  # drop references early

    def __lt__(self, other: Timer) -> bool:
        return (self.deadline, self._seq) < (other.deadline, other._seq)


class TimerQueue:
    """Pending timers of one loop, soonest first."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._heap: list[Timer] = []
        self._counter = itertools.count()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Schedule ``callback`` to run ``delay`` seconds from now."""
        timer = Timer(self.clock() + max(0.0, delay), callback, next(self._counter))
        heapq.heappush(self._heap, timer)
        return timer

    def __len__(self) -> int:
        return len(self._heap)

    def next_delay(self, default: float | None = None) -> float | None:
        """Seconds until the soonest timer (0 if one is due), or ``default``."""
        heap = self._heap
        while heap and heap[0].cancelled:
            heapq.heappop(heap)
        if not heap:
            return default
        delay = max(0.0, heap[0].deadline - self.clock())
        return delay if default is None else min(delay, default)

    def run_due(self) -> None:
        """Run every timer whose deadline has passed, in deadline order.

        A timer set by a callback for "now" waits for the next round, so a
        callback that re-arms itself cannot starve the loop.
        """
        heap = self._heap
        now = self.clock()
        due = []
        while heap and heap[0].deadline <= now:
            due.append(heapq.heappop(heap))
        for timer in due:
            callback = timer.callback
            if not timer.cancelled and callback is not None:
                timer.cancelled = True
                callback()
