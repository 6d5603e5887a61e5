"""The thread engine: a thread per connection.

The main thread only accepts; each connection gets an OS thread of its own
that serves it with the blocking driver (``blocking.py``)::

    main thread                               one thread per connection
    -----------                               -------------------------
    while not stopped:                        connection_made
        select(listeners + stop pipe)         loop: poll -> recv -> data_received
        accept                                      -> write (send, under a lock)
        over max_connections? busy_reply      connection_lost
        else start a thread ----------------> (the thread ends with its connection)

Each UDP listener gets one thread too, running ``serve_datagrams``.

What it costs: a thread per connection, idle or busy.  Each has a stack
(virtual memory, of which a few pages are touched) and a kernel task, and the
GIL lets only one of them run Python code at a time, so threads buy
concurrency for waiting (network, disk, a database), not parallel CPU work.
Thousands of mostly idle connections cost far more than on a loop engine.

What it gives: a protocol may block (a database query, ``time.sleep``)
without stalling anyone else, and code reads top to bottom.  The price is
that shared state (a chat room) *is* shared between threads: transports
lock their writes, services lock their own shared objects, and a protocol
hands work to another connection with ``call_soon_threadsafe`` (each
connection has a waker, an eventfd, that pokes its thread).

Stopping: the listeners close; every connection is told (its waker pokes
it), and calls ``server_stopping()`` on its protocol *in its own thread*, so
the protocol needs no lock for it; the main thread waits for them up to
``Limits.shutdown_timeout``, then aborts what is left (``shutdown`` wakes a
thread blocked in recv or send) and waits a little more.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time

from ionet.core.config import Endpoint
from ionet.core.engines.base import ACCEPT_BACKOFF, Engine, peer_label, refuse
from ionet.core.engines.blocking import BlockingTransport
from ionet.core.engines.blocking_connections import ABORT_GRACE, Connections, accept_pending
from ionet.core.engines.blocking_udp import serve_datagrams
from ionet.core.engines.blocking_wait import ShutdownNotice
from ionet.core.listeners import Listener
from ionet.core.stop import StopSignal

log = logging.getLogger("ionet.engine")


class ThreadEngine(Engine):
    """Accept in the main thread; serve each connection in a thread of its own."""

    name = "thread"

    def run(self, listeners: list[Listener], stop: StopSignal) -> None:
        self._connections = Connections()
        streams = [listener for listener in listeners if listener.kind == "tcp"]
        udp_stop = ShutdownNotice()
        udp_threads = [
            threading.Thread(target=serve_datagrams, args=(listener, udp_stop, self.name),
                             name=f"ionet-udp-{listener.port}")
            for listener in listeners if listener.kind == "udp"
        ]
        for thread in udp_threads:
            thread.start()
        try:
            self._accept_until_stopped(streams, stop)
        finally:
            for listener in streams:
                listener.close()
            udp_stop.set()
            all_ended = self._connections.stop_all(self.limits.shutdown_timeout)
            for thread in udp_threads:
                thread.join(ABORT_GRACE)
                all_ended = all_ended and not thread.is_alive()
            if all_ended:
                udp_stop.close()  # a thread still polling it would see a reused fd

    def _accept_until_stopped(self, streams: list[Listener], stop: StopSignal) -> None:
        by_fd = {listener.sock.fileno(): listener for listener in streams}
        accept_again = 0.0  # after EMFILE, leave the listeners alone until then
        while not stop.is_set():
            if time.monotonic() >= accept_again:
                watched, timeout = [stop.fileno(), *by_fd], None
            else:
                watched, timeout = [stop.fileno()], accept_again - time.monotonic()
            # Listeners and the stop pipe were made at start-up: small
            # descriptors, so select's FD_SETSIZE does not limit us here.
            readable, _, _ = select.select(watched, [], [], timeout)
            if stop.fileno() in readable:
                stop.drain()
                continue
            for fd in readable:
                if not accept_pending(by_fd[fd], self._start):
                    accept_again = time.monotonic() + ACCEPT_BACKOFF

    def _start(self, sock: socket.socket, endpoint: Endpoint) -> None:
        """Refuse the connection, or start a thread serving it."""
        if len(self._connections) >= self.limits.max_connections:
            refuse(sock, endpoint.busy_reply)
            return
        try:
            transport = BlockingTransport(sock, endpoint.factory(), self.limits, engine=self.name,
                                          ssl_context=endpoint.ssl, spawn=self._connections.start,
                                          own_timeouts=endpoint.own_timeouts)
        except Exception:
            log.exception("%s: could not build the %s protocol", peer_label(sock), endpoint.service)
            sock.close()
            return
        if not self._connections.start(transport):
            refuse(sock, endpoint.busy_reply)
