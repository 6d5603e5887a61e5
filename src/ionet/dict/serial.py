"""A line protocol that answers one request at a time, in order, off the loop.

Both dictionary front doors read lines and answer each with a database
call.  A loop engine must not wait for the database, so the call goes to a
worker (``transport.run_in_worker``) and the answer is written from its
callback.  Two things could then go wrong, and this base class prevents
both:

* *order*: a client may send several requests at once (pipelining; the
  Debian ``dict`` client does).  If each went to a worker as it arrived, a
  slow one could be answered after a fast one behind it.  So one request is
  in flight at a time: the next line is taken from the framer only when the
  previous answer has been written.
* *memory*: while a request is in flight, reading is paused
  (``pause_reading``) as soon as more bytes arrive, so a client that
  pipelines a million requests fills its own socket buffers, not ours.

A subclass implements :meth:`handle_line` and, for work that blocks, calls
:meth:`defer`; anything it answers at once it simply writes.  Lines longer
than the limit go to :meth:`line_too_long`, and the framer skips them, so the
connection stays usable.

The flow, for one connection::

    data_received -> framer -> handle_line(line) --defer--> worker: func()
                                  ^                          |
                                  |   reading paused         v
                                  +---- _drain() <-- then(outcome) writes the answer
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from ionet.core.errors import FrameTooLarge
from ionet.core.framing import LineFramer
from ionet.core.protocol import Outcome, Protocol, Transport

T = TypeVar("T")

log = logging.getLogger("ionet.dict")


class SerialLineProtocol(Protocol):
    """Lines in, one request at a time, answers in order.

    Args:
        max_line: the longest line accepted (terminator excluded).
    """

    def __init__(self, max_line: int) -> None:
        self.framer = LineFramer(b"\n", max_line=max_line)
        self._busy = False  # a deferred call or a delayed answer is pending
        self._eof = False  # the peer half-closed: finish, then close
        self._closing = False
        self._write_paused = False
        self._draining = False  # inside _drain: a nested call must not recurse

    # -- for subclasses -----------------------------------------------------------

    def handle_line(self, line: bytes) -> None:
        """Answer one line (terminator and a trailing CR removed)."""
        raise NotImplementedError

    def line_too_long(self, exc: FrameTooLarge) -> None:
        """A line passed ``max_line``; the framer skips it."""
        raise NotImplementedError

    def defer(self, func: Callable[[], T], then: Callable[[Outcome[T]], None]) -> None:
        """Run the blocking ``func`` in a worker; ``then(outcome)`` answers.

        No other line is handled until ``then`` has run (and, if it called
        :meth:`hold`, until the hold ends).
        """
        assert self.transport is not None
        self._busy = True
        if self.framer.pending:
            self.transport.pause_reading()  # more requests wait already: stop reading

        def done(outcome: Outcome[T]) -> None:
            self._busy = False
            then(outcome)
            self._resume()

        self.transport.run_in_worker(func, done)

    def hold(self, seconds: float, then: Callable[[], None]) -> None:
        """Answer after ``seconds`` (a failed login's delay), still in order."""
        assert self.transport is not None
        self._busy = True
        self.transport.pause_reading()

        def fire() -> None:
            self._busy = False
            if not self._closing:
                then()
            self._resume()

        self.transport.call_later(seconds, fire)

    def write(self, data: bytes) -> None:
        """Send bytes unless the connection is closing."""
        if self.transport is not None and not self._closing:
            self.transport.write(data)

    def close(self) -> None:
        """Flush and close; no further line is handled."""
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    # -- the Protocol events --------------------------------------------------------

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.framer.append(data)
        if self._busy:
            # A request is in flight: keep these bytes, read no more until it
            # is answered.  (Pausing only now, not for every request, saves
            # two system calls per request for clients that do not pipeline.)
            assert self.transport is not None
            self.transport.pause_reading()
            return
        self._drain()

    def eof_received(self) -> bool | None:
        # Keep our side open until the requests already received are answered.
        self._eof = True
        self._drain()
        return True

    def connection_lost(self, exc: BaseException | None) -> None:
        self._closing = True

    def pause_writing(self) -> None:
        self._write_paused = True
        super().pause_writing()

    def resume_writing(self) -> None:
        self._write_paused = False
        if not self._busy:
            super().resume_writing()

    # -- machinery --------------------------------------------------------------------

    def _resume(self) -> None:
        if self._closing:
            return
        self._drain()
        assert self.transport is not None
        if (not self._busy and not self._closing and not self._write_paused
                and not self.transport.is_reading()):
            self.transport.resume_reading()

    def _drain(self) -> None:
        """Handle complete lines until one needs a worker or none is left.

        A worker's answer may arrive while this loop is still running (a
        transport that runs workers in place, as the fake one can); the loop
        then simply goes on, instead of a nested call per pipelined line.
        """
        if self._draining:
            return
        self._draining = True
        try:
            while not self._busy and not self._closing:
                try:
                    line = self.framer.next_line()
                except FrameTooLarge as exc:
                    self.line_too_long(exc)
                    continue
                if line is None:
                    break
                if line.endswith(b"\r"):
                    line = line[:-1]
                self.handle_line(line)
        finally:
            self._draining = False
        if self._eof and not self._busy and not self._closing:
            self.close()
