"""How a blocking thread of control waits, and how it is woken early.

A connection served by the blocking driver (``blocking.py``) spends its life
in one call: wait until its socket is readable or the next deadline comes.
Two other things must be able to end that wait at once, and each is a
descriptor the wait watches beside the socket:

    Waker           another thread has work for this one (a chat room
                    broadcasting, ``close`` or ``resume_reading`` called from
                    elsewhere): an eventfd it pokes
    ShutdownNotice  the server is stopping: a pipe with one byte in it, that
                    every forked child sees

The wait itself is :func:`wait_readable`, a ``poll``.  A connection waits
through a :class:`Poller`, opened when its thread of control starts and
closed when it ends, so that an engine may prepare once what every wait
needs: the default, :class:`StatelessPoller`, prepares nothing and polls;
the gevent engine's keeps one io watcher per descriptor on its hub.
These pieces know nothing of protocols or transports, which is why they live
apart: the stream driver and the UDP driver (``blocking_udp.py``) both wait
this way.
"""

from __future__ import annotations

import math
import os
import select
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, Union

from ionet.core.stop import StopSignal

#: ``wait(fds, timeout)``: block until some of ``fds`` are readable or
#: ``timeout`` seconds pass (None: no limit); return the readable ones.
Wait = Callable[[list[int], float | None], set[int]]
#: What a connection may watch to learn that the server stops: ``fileno()``
#: turns readable, ``drain()`` takes what it can, ``is_set()`` says if it was a stop.
Stopping = Union["ShutdownNotice", StopSignal]


def wait_readable(fds: list[int], timeout: float | None) -> set[int]:
    """Wait up to ``timeout`` seconds (None: forever) until some of ``fds`` are readable.

    ``poll``, unlike ``select``, has no FD_SETSIZE limit on descriptor numbers.
    """
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    millis = None if timeout is None else max(0, math.ceil(timeout * 1000))
    return {fd for fd, _mask in poller.poll(millis)}


class Poller(Protocol):
    """How one thread of control waits, again and again, until it closes this.

    ``wait`` is a :data:`Wait`: it may wake early with nothing ready (the
    caller checks its clock and waits again), never late.
    """

    def wait(self, fds: list[int], timeout: float | None) -> set[int]: ...

    def close(self) -> None: ...


#: ``open_poller(steady)``: a :class:`Poller` for one thread of control.
#: ``steady`` are descriptors it will watch in most of its waits and that stay
#: open until the poller is closed (a connection's socket and waker), so the
#: poller may set up its interest in them once; others may come and go.
OpenPoller = Callable[[Sequence[int]], Poller]


class StatelessPoller:
    """The default :class:`Poller`: one ``poll`` per wait, nothing kept between.

    ``poll(2)`` is handed its whole list of descriptors on every call, so
    there is nothing worth keeping; an ``epoll`` set kept per connection would
    cost a descriptor more per connection and a system call per change.
    """

    def __init__(self, steady: Sequence[int] = ()) -> None:
        pass  # nothing to prepare: every wait names its descriptors

    def wait(self, fds: list[int], timeout: float | None) -> set[int]:
        return wait_readable(fds, timeout)

    def close(self) -> None:
        pass


class ShutdownNotice:
    """A stop that every forked child can see: one pipe, never drained.

    ``set()`` writes one byte and nobody reads it, so the pipe stays readable
    for every process that polls it; one write reaches all of them.
    """

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._set = False

    def fileno(self) -> int:
        return self._read_fd

    def set(self) -> None:
        if not self._set:
            self._set = True
            os.write(self._write_fd, b"!")

    def drain(self) -> None:
        self._set = True  # readable means set (a forked child's flag is a stale copy)

    def is_set(self) -> bool:
        return self._set

    def close(self) -> None:
        os.close(self._read_fd)
        os.close(self._write_fd)


class Waker:
    """Lets another thread wake a connection's thread out of its ``poll``.

    An eventfd: one descriptor holding a counter; ``wake`` adds to it (the
    descriptor turns readable), ``drain`` reads it back to zero.  Where there
    is no eventfd (off Linux), a pipe does the same with two descriptors.
    """

    def __init__(self) -> None:
        if hasattr(os, "eventfd"):
            self._read_fd = self._write_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:
            self._read_fd, self._write_fd = os.pipe()
            os.set_blocking(self._read_fd, False)
            os.set_blocking(self._write_fd, False)

    def fileno(self) -> int:
        return self._read_fd

    def wake(self) -> None:
        try:
            os.write(self._write_fd, (1).to_bytes(8, sys.byteorder))  # eventfd wants 8 bytes
        except BlockingIOError:
            pass  # already readable: a wakeup is pending

    def drain(self) -> None:
        try:
            os.read(self._read_fd, 4096)
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self._read_fd)
        if self._write_fd != self._read_fd:
            os.close(self._write_fd)
