"""What the reactor's loop and the handlers in it share: readiness events.

A :class:`Poller` says which descriptors are ready, as ``(fd, mask)`` pairs;
the loop (``reactor.py``) passes each event to the :class:`Handler` watching
that descriptor: a listener, a connection, a UDP socket, the stop signal.
The poller is all that differs between the select, poll and epoll engines
(``select.py``, ``poll.py``, ``epoll.py``); the handlers serve all three.

Event masks use the poll/epoll bit values (they are the same on Linux):
READ = POLLIN = EPOLLIN, WRITE = POLLOUT = EPOLLOUT, and error or hang-up
bits count as both, so that the handler's next recv/send reports the error.

These few names live apart from the loop because the loop imports its
handlers' modules and each of those needs them: kept here, the imports run
one way, without a cycle.
"""

from __future__ import annotations

import select
from abc import ABC, abstractmethod

READ = select.POLLIN
WRITE = select.POLLOUT
#: Bits that mean "something happened, let recv/send find out what".
ERROR_BITS = select.POLLERR | select.POLLHUP | select.POLLNVAL
READ_EVENTS = READ | ERROR_BITS
WRITE_EVENTS = WRITE | ERROR_BITS


class Poller(ABC):
    """The readiness system call of one engine, behind one small interface."""

    @abstractmethod
    def register(self, fd: int, events: int) -> None:
        """Watch ``fd`` for ``events`` (READ, WRITE or both)."""

    @abstractmethod
    def modify(self, fd: int, events: int) -> None:
        """Change what ``fd`` is watched for (0: nothing, but stay registered)."""

    @abstractmethod
    def unregister(self, fd: int) -> None:
        """Stop watching ``fd`` (before it is closed)."""

    @abstractmethod
    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Wait up to ``timeout`` seconds (None: forever) for events.

        Returns ``(fd, mask)`` pairs for the descriptors that are ready.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the poller's own resources (nothing by default)."""


class Handler(ABC):
    """Whatever sits behind one file descriptor in the loop."""

    @abstractmethod
    def handle_read(self) -> None: ...

    def handle_write(self) -> None:  # noqa: B027 - optional hook
        """The descriptor is writable (only handlers that asked for WRITE)."""
