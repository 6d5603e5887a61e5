"""The gevent engine: a greenlet per connection on gevent's hub.

A greenlet is a thread of control that the program switches itself, not the
kernel: thousands fit in one OS thread, each costs a few kilobytes, and they
switch only where they would block.  gevent's *hub* is an event loop (libev
or libuv) in a greenlet of its own; when a greenlet calls ``sock.recv`` on
a gevent socket and there is nothing to read, it registers interest with the
hub and switches to it, and the hub switches back once the socket is ready::

    StreamServer (in the hub)             one greenlet per connection
    -------------------------             ---------------------------
    listener readable -> accept           the blocking driver (blocking.py):
    spawn handle(sock) -----------------> poll -> recv -> data_received -> send
                                          each "blocking" call yields to the hub

So the code is the thread engine's, line for line, and the cost is the
reactor's: one OS thread, no locks contended, cheap idle connections.

``monkey.patch_all()`` at the start of ``run`` swaps the blocking pieces of the
standard library (socket, ssl, select, time.sleep, threading, ...) for
cooperative ones.  That is what makes the shared driver cooperative, and
also what lets the libraries services use (PyMySQL, redis, ``time.sleep``)
yield to the hub instead of freezing every greenlet.  gevent asks to patch
before anything else is imported; ``ionet`` runs each server in a process of
its own, and patches there before any connection is accepted, so patching
late is safe here (and emits no warning).  Two objects are made before
patching: the listening sockets, which ``StreamServer`` takes as they are, and
the TLS context, whose ``wrap_socket`` would build a *blocking*
``ssl.SSLSocket``, so TLS connections are wrapped with gevent's ``SSLSocket``
explicitly.

What it cannot do: C code that blocks without going through a patched
Python call (sqlite3, a CPU-bound loop, a C database driver) blocks the whole
hub.  ``run_in_worker`` therefore sends work to gevent's pool of real threads
(``hub.threadpool``), and the greenlet waits there cooperatively.  As in any
single-threaded engine, CPU-bound work gets one core (``--workers`` adds more).

Like the other engines, past ``max_connections`` a connection is refused at
once with the endpoint's ``busy_reply``.  (``StreamServer(spawn=Pool(n))``
would instead leave extra connections waiting, unanswered, in the backlog.)
Stopping: the listeners close, every connection greenlet is poked (its
waker) and calls ``server_stopping()``, and the engine waits for them up to
``Limits.shutdown_timeout`` before aborting the rest.  Data connections that
a protocol opens (FTP) get greenlets of their own, as every "thread" does
once ``threading`` is patched.
"""

from __future__ import annotations

import logging
import math
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import gevent  # ImportError(name="gevent") when missing: the registry names the extra
from gevent import monkey
from gevent.hub import Hub, Waiter
from gevent.server import StreamServer

from ionet.core.config import Endpoint
from ionet.core.engines.base import ACCEPT_CAPACITY_ERRNOS, Engine, peer_label, refuse
from ionet.core.engines.blocking import BlockingTransport
from ionet.core.engines.blocking_connections import ABORT_GRACE, Connections
from ionet.core.engines.blocking_udp import serve_datagrams
from ionet.core.engines.blocking_wait import ShutdownNotice
from ionet.core.listeners import Listener
from ionet.core.protocol import Outcome
from ionet.core.stop import StopSignal

log = logging.getLogger("ionet.engine")

#: The event mask of an io watcher that waits for "readable" (libev's EV_READ).
READ = 1


class _AcceptPaused(Exception):
    """accept() ran out of descriptors; gevent pauses accepting on any exception."""


class _StreamServer(StreamServer):
    """gevent's StreamServer, reporting accept() failures as log lines.

    When ``do_read`` (accept) raises, gevent stops accepting for a moment
    (10 ms, doubling up to 1 s) and prints a traceback.  We keep the pause for
    EMFILE and friends, as the other engines do, but log one line instead; an
    exception type listed in the hub's ``NOT_ERROR`` is not printed.
    """

    def do_read(self) -> Any:
        try:
            return super().do_read()
        except OSError as exc:
            if exc.errno not in ACCEPT_CAPACITY_ERRNOS:
                log.debug("accept failed: %s", exc)
                return None  # the peer gave up: nothing to pause for
            log.warning("accept failed (%s); pausing", exc)
            raise _AcceptPaused() from exc


def _capture(func: Callable[[], Any]) -> Outcome[Any]:
    """Run in a pool thread: return the result or the exception as a value
    (gevent's pool would print a traceback for an exception it carries)."""
    try:
        return Outcome(func())
    except Exception as exc:  # any failure of the work is its result, for the callback
        return Outcome(None, exc)


class HubPoller:
    """One greenlet's way to wait (a ``Poller``): io watchers on the hub.

    A wait starts one io watcher per descriptor and, with a timeout, a timer,
    each switching back to this greenlet through a ``Waiter``; whichever
    fires first ends the wait, and the io watchers are stopped again.  (The
    patched ``select.poll`` would work too, but builds a result object, an
    event and a timeout per call.)  Every echoed message costs one wait, so
    two habits keep it cheap (gevent's own sockets have the first):

    * a *steady* descriptor (the connection's socket, its waker) gets one
      watcher for the connection's whole life, started and stopped per wait.
      A watcher made afresh makes libev check its descriptor and register it
      with epoll again at the hub's next turn (an ``fcntl``, and an
      ``epoll_ctl`` that fails with EEXIST); with a fresh watcher for the
      socket and the waker in every wait, that was four system calls per
      echoed message beside its ``recv`` and ``send``.  A restarted watcher
      costs none.  Any other descriptor (an FTP data listener) gets a watcher
      for one wait only, because a number that is closed and opened again is
      a new file that epoll has to be told about, which a fresh watcher does;
    * the timer outlives the wait.  The timeout is usually the idle timeout,
      minutes away and moving a little later with each message, so a timer
      already running that fires *before* the new deadline is kept: at worst
      it wakes the greenlet early, with nothing ready, and the driver waits
      again (the lazy trick of ``core/timers.py``).  A new timer is made only
      when the deadline comes nearer than the running one, or that one fired.
    """

    def __init__(self, hub: Hub, steady: Sequence[int] = ()) -> None:
        self._hub = hub
        self._loop = hub.loop
        self._steady = {fd: hub.loop.io(fd, READ) for fd in steady}
        self._waiter: Waiter | None = None  # set while a wait is under way
        self._timer: Any = None  # a one-shot libev timer, perhaps still running
        self._timer_due = math.inf  # when it fires (time.monotonic); inf once it has

    def wait(self, fds: list[int], timeout: float | None) -> set[int]:
        """Switch to the hub until one of ``fds`` is readable or ``timeout`` passes."""
        waiter = self._waiter = Waiter(self._hub)
        watchers = []
        for fd in fds:
            watcher = self._steady.get(fd)
            if watcher is None:
                watcher = self._loop.io(fd, READ)  # for this wait only (see the class doc)
            watcher.start(waiter.switch, fd)
            watchers.append(watcher)
        if timeout is not None:
            self._arm(timeout)
        try:
            fd = waiter.get()  # to the hub, until a watcher or the timer fires
        finally:
            self._waiter = None
            for watcher in watchers:
                watcher.stop()  # a watcher that fired too, unseen, is not called now
                if watcher.fd not in self._steady:
                    watcher.close()
        return set() if fd is None else {fd}

    def _arm(self, timeout: float) -> None:
        """Make sure a timer fires ``timeout`` seconds from now, or earlier."""
        due = time.monotonic() + timeout
        if self._timer_due <= due:
            return  # the running timer comes first: at worst, an early wake
        if self._timer is not None:
            self._timer.stop()
            self._timer.close()
        self._timer = self._loop.timer(max(0.0, timeout))
        self._timer.start(self._time_up)
        self._timer_due = due  # libev counts from its cached time, never ahead of ours

    def _time_up(self) -> None:
        """The timer fired (in the hub): end the wait under way, if there is one."""
        self._timer_due = math.inf
        if self._waiter is not None:
            self._waiter.switch(None)

    def close(self) -> None:
        """Stop and free every watcher; the poller is not used again."""
        for watcher in self._steady.values():
            watcher.close()
        self._steady.clear()
        if self._timer is not None:
            self._timer.stop()
            self._timer.close()
            self._timer = None
        self._timer_due = math.inf


def _wrap_tls(sock: socket.socket, context: ssl.SSLContext) -> ssl.SSLSocket:
    """A cooperative server-side TLS socket, even for a context made before patching."""
    import gevent.ssl

    tls: ssl.SSLSocket = gevent.ssl.SSLSocket(sock=sock, server_side=True,
                                              do_handshake_on_connect=False, _context=context)
    return tls


class GeventEngine(Engine):
    """Greenlets on gevent's hub, each running the blocking driver."""

    name = "gevent"

    def run(self, listeners: list[Listener], stop: StopSignal) -> None:
        monkey.patch_all()
        hub = gevent.get_hub()
        hub.threadpool.maxsize = self.limits.worker_threads
        hub.NOT_ERROR = (*hub.NOT_ERROR, _AcceptPaused)
        self._run_blocking: Callable[[Callable[[], Any]], Any] = (
            lambda func: hub.threadpool.apply(_capture, (func,)).unwrap())
        self._hub = hub
        self._open_poller = partial(HubPoller, hub)  # one per connection, closed by it
        # Made after patching: its locks, events and threads are gevent's.
        self._connections = Connections()
        udp_stop = ShutdownNotice()
        servers = [_StreamServer(listener.sock, partial(self._handle, listener.endpoint))
                   for listener in listeners if listener.kind == "tcp"]
        datagram_greenlets = [gevent.spawn(self._serve_datagrams, listener, udp_stop)
                              for listener in listeners if listener.kind == "udp"]
        try:
            for server in servers:
                server.start()
            self._wait_for_stop(stop)
        finally:
            for server in servers:
                server.close()  # stop accepting; close the listening socket
            for listener in listeners:
                if listener.kind == "tcp":
                    listener.close()
            udp_stop.set()
            self._connections.stop_all(self.limits.shutdown_timeout)
            gevent.joinall(datagram_greenlets, timeout=ABORT_GRACE)
            gevent.killall(datagram_greenlets, timeout=1)
            udp_stop.close()

    @staticmethod
    def _wait_for_stop(stop: StopSignal) -> None:
        """Sleep (cooperatively) until SIGINT/SIGTERM or ``StopSignal.set()``.

        Signals reach us through the stop pipe: ``serve()`` made the C-level
        signal handler write to it (``signal.set_wakeup_fd``), so the hub sees
        the pipe readable however busy the greenlets are.
        """
        from gevent.socket import wait_read

        while not stop.is_set():
            wait_read(stop.fileno())
            stop.drain()

    def _serve_datagrams(self, listener: Listener, stop: ShutdownNotice) -> None:
        """One UDP listener's greenlet."""
        poller = HubPoller(self._hub, [listener.sock.fileno(), stop.fileno()])
        try:
            serve_datagrams(listener, stop, self.name, self._run_blocking, poller.wait)
        finally:
            poller.close()

    def _handle(self, endpoint: Endpoint, sock: socket.socket, address: Any) -> None:
        """One connection's greenlet (spawned by the StreamServer)."""
        if len(self._connections) >= self.limits.max_connections:
            refuse(sock, endpoint.busy_reply)
            return
        try:
            transport = BlockingTransport(
                sock, endpoint.factory(), self.limits, engine=self.name, ssl_context=endpoint.ssl,
                spawn=self._connections.start, run_blocking=self._run_blocking,
                wrap_tls=_wrap_tls, open_poller=self._open_poller, cooperative=True,
                own_timeouts=endpoint.own_timeouts)
        except Exception:
            log.exception("%s: could not build the %s protocol", peer_label(sock), endpoint.service)
            sock.close()
            return
        self._connections.serve(transport)
