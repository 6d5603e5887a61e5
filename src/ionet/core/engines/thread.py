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
lock their writes, and services lock their own shared objects.

Stopping: the listeners close; one ``ShutdownNotice`` wakes every connection
thread, which calls ``server_stopping()`` on its protocol *in its own thread*
(so the protocol needs no lock for it); the main thread waits for the threads
up to ``Limits.shutdown_timeout``, then aborts what is left (``shutdown``
wakes a thread blocked in recv or send) and joins them.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time

from ionet.core.config import Endpoint
from ionet.core.engines.base import ACCEPT_BACKOFF, Engine, peer_label
from ionet.core.engines.blocking import (
    ACCEPTS_PER_WAKEUP,
    BlockingTransport,
    ShutdownNotice,
    accept_one,
    refuse,
    serve_datagrams,
)
from ionet.core.listeners import Listener
from ionet.core.stop import StopSignal

log = logging.getLogger("ionet.engine")

#: After aborting the connections left at the deadline, how long to wait for
#: their threads to notice (seconds).
ABORT_GRACE = 5.0


class ThreadEngine(Engine):
    """Accept in the main thread; serve each connection in a thread of its own."""

    name = "thread"

    def run(self, listeners: list[Listener], stop: StopSignal) -> None:
        self._notice = ShutdownNotice()
        self._live: dict[BlockingTransport, threading.Thread] = {}
        self._live_lock = threading.Lock()
        streams = [listener for listener in listeners if listener.kind == "tcp"]
        udp_threads = [
            threading.Thread(target=serve_datagrams, args=(listener, self._notice, self.name),
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
            self._notice.set()  # wakes every connection and UDP thread
            all_ended = self._finish_connections()
            for thread in udp_threads:
                thread.join()
            if all_ended:
                self._notice.close()  # a thread still polling it would see a reused fd

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
                listener = by_fd[fd]
                for _ in range(ACCEPTS_PER_WAKEUP):
                    try:
                        sock = accept_one(listener)
                    except OSError as exc:
                        log.warning("accept failed (%s); retrying in %.1fs", exc, ACCEPT_BACKOFF)
                        accept_again = time.monotonic() + ACCEPT_BACKOFF
                        break
                    if sock is None:
                        break
                    self._start(sock, listener.endpoint)

    def _start(self, sock: socket.socket, endpoint: Endpoint) -> None:
        """Refuse the connection, or start a thread serving it."""
        with self._live_lock:
            full = len(self._live) >= self.limits.max_connections
        if full:
            refuse(sock, endpoint.busy_reply)
            return
        try:
            transport = BlockingTransport(sock, endpoint.factory(), self.limits, engine=self.name,
                                          ssl_context=endpoint.ssl, stopping=self._notice)
        except Exception:
            log.exception("%s: could not build the %s protocol", peer_label(sock), endpoint.service)
            sock.close()
            return
        thread = threading.Thread(target=self._serve, args=(transport,),
                                  name=f"ionet-{endpoint.service}-{peer_label(sock)}")
        with self._live_lock:
            self._live[transport] = thread
        try:
            thread.start()
        except RuntimeError as exc:  # "can't start new thread": out of memory or a ulimit
            log.warning("refusing a connection: %s", exc)
            with self._live_lock:
                del self._live[transport]
            refuse(sock, endpoint.busy_reply)

    def _serve(self, transport: BlockingTransport) -> None:
        """A connection thread's whole life."""
        try:
            transport.serve_connection()
        finally:
            with self._live_lock:
                del self._live[transport]

    def _finish_connections(self) -> bool:
        """Graceful shutdown of the open connections; False if a thread would not end."""
        with self._live_lock:
            live = dict(self._live)
        if not live:
            return True
        log.info("shutting down: %d connection(s) open", len(live))
        for transport in live:
            transport.notify_stopping()  # wakes those that are not reading
        deadline = time.monotonic() + self.limits.shutdown_timeout
        for thread in live.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        left = {t: thread for t, thread in live.items() if thread.is_alive()}
        if left:
            log.warning("shutdown deadline passed: closing %d connection(s)", len(left))
            for transport in left:
                transport.abort()
            grace_end = time.monotonic() + ABORT_GRACE
            for thread in left.values():
                thread.join(max(0.0, grace_end - time.monotonic()))
        stuck = [thread.name for thread in live.values() if thread.is_alive()]
        if stuck:
            # A protocol blocked outside any socket call (a query, a sleep)
            # cannot be interrupted; the process will wait for it at exit.
            log.error("%d connection thread(s) did not end: %s", len(stuck), ", ".join(stuck))
        return not stuck
