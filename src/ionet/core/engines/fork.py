"""The fork engine: a process per connection.

The parent process accepts; for each connection it calls ``os.fork()``, and
the child serves that one connection with the blocking driver
(``blocking.py``), then exits::

    parent                                      child (one per connection)
    ------                                      --------------------------
    while not stopped:                          close the listeners and the stop pipe
        select(listeners + UDP + stop pipe)     SIGINT ignored, SIGTERM default
        reap dead children: waitpid(WNOHANG)    serve the connection to its end
        UDP readable -> answer datagrams        os._exit(0)   (always, in a finally)
        accept; over max_connections? busy_reply
        else fork ------------------------->
        close the parent's copy of the socket

Like CPython's ``socketserver.ForkingMixIn``, whose habits this follows:

* a child never returns into the parent's code: ``os._exit`` in a
  ``finally``, so no parent cleanup (atexit, flushing buffers) runs twice;
* every child is reaped with ``waitpid(-1, WNOHANG)`` after each wakeup, or
  it stays a zombie holding a process-table slot.  A SIGCHLD handler makes
  the kernel's "a child died" wake the parent's ``select`` through the stop
  pipe (the same trick as ``supervisor.py``); a periodic timeout backs it up.
  ``waitpid(-1)`` collects *any* child, so the engine must own this process's
  children: do not run it next to other code that waits for its own children;
* the number of children is capped (``max_connections``); beyond, refuse;
* SIGINT and SIGTERM are blocked across ``fork``.  A child starts with its
  parent's Python signal handlers, and until it sets its own, a SIGTERM
  would run the parent's handler on the child's copy of the parent's stop
  latch, which nothing in the child watches: the child would serve on until
  SIGKILL.  Blocked, the signal waits; the child unblocks it once its own
  dispositions are set, and a pending one lands on those (as
  ``supervisor.py`` does for its workers).

What it costs: a ``fork`` per connection (copying page tables: a fraction
of a millisecond for a small Python process, more for a big one) and a
process per open connection.  What it gives: isolation.  A protocol that
crashes, leaks or blocks harms only its own process, and CPU-bound work runs
in parallel, free of the GIL.  What it cannot do: share memory.  Each child
has its own copy of everything, so a chat room cannot broadcast between
connections; shared state must live outside (a database, Redis).

A child inherits *every* descriptor its parent had open at the fork.  That
is why the parent closes its copy of each accepted socket at once, and the
child its copies of the listeners; it is also why a test must not run its
clients inside the server's own process: the next child would inherit the
client's end of an earlier connection and keep it open, so that server never
sees the client's EOF.

A data connection that a protocol opens (FTP's ``open_listener`` /
``open_connection``) is served by a thread in its control connection's
process, which waits for it before exiting.

UDP listeners are served by the parent itself, between accepts: one
protocol object per socket, as on the other engines.

Stopping: the parent stops accepting and sets a ``ShutdownNotice`` whose pipe
every child inherited, so each child's protocol hears ``server_stopping()``
and gets ``Limits.shutdown_timeout`` before it aborts itself.  The parent
waits (reaping) until the deadline, then sends SIGTERM to what is left, and
SIGKILL after a short grace.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import threading
import time
from types import FrameType
from typing import Any

from ionet.core.config import Endpoint
from ionet.core.engines.base import ACCEPT_BACKOFF, Engine, refuse
from ionet.core.engines.blocking import BlockingTransport
from ionet.core.engines.blocking_connections import Connections, accept_pending
from ionet.core.engines.blocking_udp import DatagramSet
from ionet.core.engines.blocking_wait import ShutdownNotice
from ionet.core.listeners import Listener
from ionet.core.stop import STOP_SIGNALS, StopSignal

log = logging.getLogger("ionet.engine")

#: The parent looks for dead children at least this often (seconds), in
#: case SIGCHLD could not be routed to its select (not the main thread).
REAP_INTERVAL = 1.0
#: After SIGTERM at the deadline, how long children get before SIGKILL.
KILL_GRACE = 2.0


def _on_sigchld(signum: int, frame: FrameType | None) -> None:
    """Does nothing: having a Python handler is what makes the C handler
    write to the wakeup fd (the stop pipe), which wakes our select."""


class ForkEngine(Engine):
    """Accept in the parent; serve each connection in a forked child."""

    name = "fork"

    def run(self, listeners: list[Listener], stop: StopSignal) -> None:
        self.children: dict[int, float] = {}  # pid -> when it was forked
        self._listeners = listeners
        self._stop = stop
        self._notice = ShutdownNotice()
        streams = {listener.sock.fileno(): listener for listener in listeners
                   if listener.kind == "tcp"}
        datagrams = DatagramSet(listeners, self.name)
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous: Any = signal.signal(signal.SIGCHLD, _on_sigchld) if in_main_thread else None
        try:
            datagrams.start()
            self._serve_until_stopped(streams, datagrams, stop)
        finally:
            for listener in streams.values():
                listener.close()
            datagrams.stop()
            self._notice.set()
            self._stop_children()
            self._notice.close()
            if in_main_thread:
                signal.signal(signal.SIGCHLD, previous if previous is not None else signal.SIG_DFL)

    def _serve_until_stopped(self, streams: dict[int, Listener], datagrams: DatagramSet,
                             stop: StopSignal) -> None:
        accept_again = 0.0  # after EMFILE, leave the listeners alone until then
        while not stop.is_set():
            delays = [REAP_INTERVAL]
            delays += datagrams.delays()
            watched = [stop.fileno(), *datagrams.fds()]
            if time.monotonic() >= accept_again:
                watched += streams
            else:
                delays.append(accept_again - time.monotonic())
            # Descriptors made at start-up are small: select's FD_SETSIZE is no limit here.
            readable, _, _ = select.select(watched, [], [], max(0.0, min(delays)))
            if stop.fileno() in readable:
                stop.drain()  # a stop, or SIGCHLD's byte
            self._reap()
            if stop.is_set():
                break
            datagrams.serve(readable)
            for fd in readable:
                if fd in streams and not accept_pending(streams[fd], self._fork):
                    accept_again = time.monotonic() + ACCEPT_BACKOFF

    def _fork(self, sock: socket.socket, endpoint: Endpoint) -> None:
        """Refuse the connection, or fork a child to serve it."""
        if len(self.children) >= self.limits.max_connections:
            self._reap()  # some may have ended since the last wakeup
            if len(self.children) >= self.limits.max_connections:
                refuse(sock, endpoint.busy_reply)
                return
        # Blocked across fork (see the module doc); pending ones wait, not lost.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                self._child_main(sock, endpoint, mask)  # never returns
        except OSError as exc:  # EAGAIN: the process limit; ENOMEM
            log.warning("refusing a connection: fork failed: %s", exc)
            refuse(sock, endpoint.busy_reply)
            return
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self.children[pid] = time.monotonic()
        sock.close()  # the child has its own copy; ours would keep the connection open

    def _child_main(self, sock: socket.socket, endpoint: Endpoint,
                    mask: set[signal.Signals]) -> None:
        """The child: serve one connection, then exit without returning.

        Starts with SIGINT/SIGTERM blocked; ``mask`` is the signal mask to
        restore once the child's own dispositions are set.
        """
        status = 1
        try:
            # The parent decides when to stop: Ctrl-C in a terminal reaches the
            # whole process group, and the parent's graceful shutdown covers
            # us; SIGTERM from the parent (at its deadline) ends us at once.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a pending SIGTERM lands now
            self._stop.close()  # our copy of the parent's pipe (and its wakeup fd)
            for listener in self._listeners:
                listener.close()
            helpers = Connections()  # data connections the protocol opens (FTP), as threads
            transport = BlockingTransport(sock, endpoint.factory(), self.limits, engine=self.name,
                                          ssl_context=endpoint.ssl, stopping=self._notice,
                                          spawn=helpers.start,
                                          own_timeouts=endpoint.own_timeouts)
            transport.serve_connection()
            helpers.wait_all()  # exiting would kill them mid-transfer
            status = 0
        except BaseException:
            log.exception("the connection's process failed")
        finally:
            os._exit(status)

    def _reap(self) -> None:
        """Collect every child that has ended, without waiting."""
        while self.children:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # no children at all
                self.children.clear()
                return
            if pid == 0:  # children remain, none has ended
                return
            self.children.pop(pid, None)

    def _stop_children(self) -> None:
        """Let the children finish until the deadline, then end them."""
        self._reap()
        if not self.children:
            return
        log.info("shutting down: %d connection(s) open", len(self.children))
        deadline = time.monotonic() + self.limits.shutdown_timeout
        self._wait_for_children(deadline)
        if not self.children:
            return
        log.warning("shutdown deadline passed: closing %d connection(s)", len(self.children))
        self._signal_children(signal.SIGTERM)
        self._wait_for_children(time.monotonic() + KILL_GRACE)
        if self.children:
            log.warning("%d connection process(es) ignored SIGTERM; killing them", len(self.children))
            self._signal_children(signal.SIGKILL)
            for pid in list(self.children):
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
            self.children.clear()

    def _wait_for_children(self, deadline: float) -> None:
        while self.children and time.monotonic() < deadline:
            # SIGCHLD writes to the stop pipe and wakes this select early.
            select.select([self._stop.fileno()], [], [],
                          max(0.0, min(0.05, deadline - time.monotonic())))
            self._stop.drain()
            self._reap()

    def _signal_children(self, signum: int) -> None:
        for pid in self.children:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
