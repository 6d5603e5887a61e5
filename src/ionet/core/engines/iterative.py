"""The iterative engine: one connection at a time, in the main thread.

This is the course's first server, the loop server::

    while not stopped:
        wait (select) until a listener, a UDP socket or the stop pipe is readable
        UDP socket readable  -> read its datagrams, answer them
        listener readable    -> accept ONE connection and serve it to its end
                                (recv, react, send ... until it closes)

How it behaves: while one client is served, the next ones wait in the
listening socket's backlog (the kernel completes their TCP handshakes and
queues them, up to ``listeners.BACKLOG``); they are accepted one by one as
each conversation ends.  So ``max_connections`` is 1 in effect, and nobody is
refused: waiting in the backlog *is* the model.  Datagrams are answered
between connections (the kernel buffers them meanwhile, and drops them when
that buffer is full, as UDP may).

Its costs: one slow or idle client (a keep-alive HTTP connection, a chat
member) stalls every other client until it closes or times out, so the idle
and first-bytes timeouts matter more here than anywhere.  A TLS handshake, too,
runs in the one thread.  It is the baseline the other engines are measured
against, and the easiest server to reason about: there is never a second
thread of control, so nothing can race.

One exception to "one thread": a data connection that a protocol opens
(FTP's ``open_listener``/``open_connection``) must run while its control
connection waits for it, so it gets a helper thread of its own.

Stopping: the connection being served watches the stop pipe too (see
``blocking.py``); on SIGINT/SIGTERM its protocol hears ``server_stopping()``
and gets ``Limits.shutdown_timeout`` to finish before it is aborted; then the
loop ends without accepting anything more.
"""

from __future__ import annotations

import logging
import select
import socket
import time

from ionet.core.config import Endpoint
from ionet.core.engines.base import ACCEPT_BACKOFF, Engine, peer_label
from ionet.core.engines.blocking import BlockingTransport
from ionet.core.engines.blocking_connections import Connections, accept_pending
from ionet.core.engines.blocking_udp import DatagramSet
from ionet.core.listeners import Listener
from ionet.core.stop import StopSignal

log = logging.getLogger("ionet.engine")


class IterativeEngine(Engine):
    """Serve connections one after another, in the calling thread."""

    name = "iterative"

    def run(self, listeners: list[Listener], stop: StopSignal) -> None:
        streams = {listener.sock.fileno(): listener for listener in listeners
                   if listener.kind == "tcp"}
        datagrams = DatagramSet(listeners, self.name)
        datagrams.start()
        accept_again = 0.0  # after EMFILE, leave the listeners alone until then
        self._stop = stop
        self._helpers = Connections()  # data connections that protocols open (FTP)
        try:
            while not stop.is_set():
                delays = datagrams.delays()
                watched = [stop.fileno(), *datagrams.fds()]
                if time.monotonic() >= accept_again:
                    watched += streams
                else:
                    delays.append(max(0.0, accept_again - time.monotonic()))
                # The listeners and UDP sockets were made at start-up, so
                # their descriptors are small: select's FD_SETSIZE is no limit here.
                readable, _, _ = select.select(watched, [], [], min(delays, default=None))
                if stop.fileno() in readable:
                    stop.drain()
                    continue
                datagrams.serve(readable)
                for fd in readable:
                    if fd in streams:
                        # One connection per turn, then select again: the stop
                        # pipe and the UDP sockets get their turn in between.
                        if not accept_pending(streams[fd], self._serve, most=1):
                            accept_again = time.monotonic() + ACCEPT_BACKOFF
                        break
        finally:
            if stop.is_set():
                log.info("shutting down")
            for listener in streams.values():
                listener.close()
            datagrams.stop()
            self._helpers.stop_all(self.limits.shutdown_timeout)

    def _serve(self, sock: socket.socket, endpoint: Endpoint) -> None:
        """Serve one connection to its end (or to the shutdown deadline)."""
        try:
            transport = BlockingTransport(sock, endpoint.factory(), self.limits, engine=self.name,
                                          ssl_context=endpoint.ssl, stopping=self._stop,
                                          spawn=self._helpers.start,
                                          own_timeouts=endpoint.own_timeouts)
        except Exception:
            log.exception("%s: could not build the %s protocol", peer_label(sock), endpoint.service)
            sock.close()
            return
        transport.serve_connection()
