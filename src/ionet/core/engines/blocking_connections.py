"""The engine's side of its connections: taking them in, and letting them go.

The blocking driver (``blocking.py``) serves one connection; an engine has
many.  This module holds what an engine does with them as a whole:

* :func:`accept_one` takes a connection from a listener, telling "none after
  all" (another process took it) apart from "out of descriptors" (back off);
  :func:`accept_pending` takes what is waiting, a batch at a time;
* :class:`Connections` is the set of live connections, one thread (greenlet)
  each, that a graceful shutdown walks: tell them all, wait until the
  deadline, abort the rest, wait a little more.

It is apart from the driver because it never touches a connection's socket
or protocol: it only starts, counts and stops transports.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ionet.core.config import Endpoint
from ionet.core.engines.base import ACCEPT_BACKOFF, ACCEPT_CAPACITY_ERRNOS, tune_accepted
from ionet.core.listeners import Listener

if TYPE_CHECKING:
    from ionet.core.engines.blocking import BlockingTransport

log = logging.getLogger("ionet.engine")

#: Connections accepted each time a listener is readable, before looking at
#: the stop pipe again.
ACCEPTS_PER_WAKEUP = 64
#: After aborting the connections left at the shutdown deadline, how long
#: to wait for their threads to notice (seconds).
ABORT_GRACE = 5.0


def accept_one(listener: Listener) -> socket.socket | None:
    """Accept one pending connection from a (non-blocking) listener.

    Returns None when there is none after all (another process took it, or
    the peer gave up).  Raises the OSError when the process is out of file
    descriptors or memory (``ACCEPT_CAPACITY_ERRNOS``): back off and retry.
    """
    try:
        sock, _addr = listener.sock.accept()
    except (BlockingIOError, InterruptedError):
        return None
    except OSError as exc:
        if exc.errno in ACCEPT_CAPACITY_ERRNOS:
            raise
        log.debug("accept failed: %s", exc)
        return None
    tune_accepted(sock)
    return sock


def accept_pending(listener: Listener, serve: Callable[[socket.socket, Endpoint], None],
                   most: int = ACCEPTS_PER_WAKEUP) -> bool:
    """Accept up to ``most`` waiting connections, handing each to ``serve``.

    Returns False when the process is out of descriptors or memory: the
    caller should leave its listeners alone for ``ACCEPT_BACKOFF`` seconds.
    """
    for _ in range(most):
        try:
            sock = accept_one(listener)
        except OSError as exc:
            log.warning("accept failed (%s); retrying in %.1fs", exc, ACCEPT_BACKOFF)
            return False
        if sock is None:
            break
        serve(sock, listener.endpoint)
    return True


def _wait_for(events: Iterable[threading.Event], seconds: float) -> None:
    """Wait until every event is set, or ``seconds`` have passed."""
    end = time.monotonic() + seconds
    for done in events:
        done.wait(max(0.0, end - time.monotonic()))


class Connections:
    """The live connections of an engine that gives each its own thread (greenlet).

    Each connection has a "done" event, so an engine can stop them all
    gracefully: tell them, wait until the deadline, abort the rest.
    """

    def __init__(self) -> None:
        self._done: dict[BlockingTransport, threading.Event] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._done)

    def serve(self, transport: BlockingTransport) -> None:
        """Serve ``transport`` in the calling thread, tracked meanwhile."""
        done = threading.Event()
        with self._lock:
            self._done[transport] = done
        self._run(transport, done)

    def start(self, transport: BlockingTransport) -> bool:
        """Serve ``transport`` in a new (non-daemon) thread; False if none can start."""
        done = threading.Event()
        with self._lock:
            self._done[transport] = done  # counted at once, before the thread runs
        thread = threading.Thread(target=self._run, args=(transport, done),
                                  name=f"ionet-{transport.label}")
        try:
            thread.start()
        except RuntimeError as exc:  # "can't start new thread": memory or a ulimit
            log.warning("%s: refusing the connection: %s", transport.label, exc)
            with self._lock:
                del self._done[transport]
            return False
        return True

    def _run(self, transport: BlockingTransport, done: threading.Event) -> None:
        try:
            transport.serve_connection()
        finally:
            with self._lock:
                del self._done[transport]
            done.set()

    def wait_all(self) -> None:
        """Wait until every connection has ended on its own."""
        while True:
            with self._lock:
                pending = list(self._done.values())
            if not pending:
                return
            for done in pending:
                done.wait()

    def stop_all(self, shutdown_timeout: float) -> bool:
        """Graceful shutdown; False if a connection would not end even aborted."""
        with self._lock:
            live = dict(self._done)
        if not live:
            return True
        log.info("shutting down: %d connection(s) open", len(live))
        for transport in live:
            transport.notify_stopping()
        _wait_for(live.values(), shutdown_timeout)
        left = [transport for transport, done in live.items() if not done.is_set()]
        if not left:
            return True
        log.warning("shutdown deadline passed: closing %d connection(s)", len(left))
        for transport in left:
            transport.abort()
        _wait_for([live[transport] for transport in left], ABORT_GRACE)
        stuck = [t.label for t in left if not live[t].is_set()]
        if stuck:
            # A protocol blocked outside any socket call (a query, a sleep)
            # cannot be interrupted; the process will wait for it at exit.
            log.error("%d connection(s) did not end: %s", len(stuck), ", ".join(stuck))
        return not stuck
