"""The poll engine: one event loop over ``poll(2)``.

``poll`` fixes select's worst limit: it takes an array of (fd, events) pairs
instead of fixed-size bitmaps, so descriptors above 1024 are fine.  But like
select, the whole array is passed to the kernel and scanned on every call:
the cost grows with the number of watched sockets, ready or not.  Python's
``select.poll`` object keeps that array for us between calls.

The loop itself is shared with select and epoll: see ``reactor.py``.
"""

from __future__ import annotations

import select

from ionet.core.engines.reactor import Poller, ReactorEngine


class PollPoller(Poller):
    """``select.poll``: an interest array passed to the kernel each call."""

    def __init__(self) -> None:
        self._poll = select.poll()

    def register(self, fd: int, events: int) -> None:
        self._poll.register(fd, events)

    def modify(self, fd: int, events: int) -> None:
        self._poll.modify(fd, events)

    def unregister(self, fd: int) -> None:
        self._poll.unregister(fd)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        # poll(2) takes milliseconds; round up so a timer is not woken early.
        return self._poll.poll(None if timeout is None else int(timeout * 1000 + 0.999))


class PollEngine(ReactorEngine):
    """One thread, one poll loop: portable to every POSIX system."""

    name = "poll"

    def make_poller(self) -> Poller:
        return PollPoller()
