"""The blocking engines' framework pool (``upstream.BlockingPool``) against a
framework that restarted while its sockets sat idle in the pool.

When the framework dies, every idle pooled socket is stale, and one that
still looks alive when taken may be closing as the request goes out.  A
GET that got no byte back on a reused socket is sent once more, and that
second try must use a *fresh* connection: taking the next idle socket could
meet the same fate, and then no attempt was left to answer the client, who
waited for its own timeout (seen once in CI, on the thread engine, in
``test_framework_killed_and_restarted_mid_run``).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from typing import Any

from ionet.core.framing import LengthPrefixFramer, frame
from ionet.http.upstream import BlockingPool, UpstreamHandler


class RestartedFramework:
    """A listening socket; connections accepted before ``restart()`` are stale:
    each closes, without a reply, once a request reaches it.  Later ones answer."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.fresh_connections = 0
        self._restarted = False
        self._threads: list[threading.Thread] = []

    def connect_stale(self) -> socket.socket:
        """A client socket the framework will treat as from before the restart."""
        client = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        server, _ = self.listener.accept()
        self._serve_in_thread(server, stale=True)
        return client

    def restart(self) -> None:
        self._restarted = True
        thread = threading.Thread(target=self._accept_loop, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self) -> None:
        self.listener.settimeout(5)
        try:
            while True:
                server, _ = self.listener.accept()
                self.fresh_connections += 1
                self._serve_in_thread(server, stale=False)
        except OSError:
            return  # closed by the test, or no more connections

    def _serve_in_thread(self, sock: socket.socket, stale: bool) -> None:
        thread = threading.Thread(target=self._serve, args=(sock, stale), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _serve(self, sock: socket.socket, stale: bool) -> None:
        framer = LengthPrefixFramer()
        with sock:
            sock.settimeout(5)
            while (payload := framer.next_frame()) is None:
                data = sock.recv(65536)
                if not data:
                    return
                framer.append(data)
            if stale:
                return  # the old process is gone: the socket just closes
            head = {"id": json.loads(payload)["id"], "status": 200,
                    "headers": [["Content-Type", "text/plain"]],
                    "body": base64.b64encode(b"fresh").decode()}
            sock.sendall(frame(json.dumps(head).encode()))
            sock.recv(1)  # hold the connection until the pool closes it

    def close(self) -> None:
        self.listener.close()


class RecordingExchange:
    """What ``BlockingPool.run`` needs of an exchange, and what it answered."""

    def __init__(self, message_id: int) -> None:
        self.id = message_id
        self.idempotent = True  # a GET
        self.payload = frame(json.dumps({"id": message_id, "method": "GET"}).encode())
        self.answers: list[Any] = []

    def fail(self, status: int) -> None:
        self.answers.append(status)

    def complete(self, reply: Any, body: bytes) -> None:
        self.answers.append((reply.status, body))


def test_a_get_after_a_restart_is_retried_on_a_fresh_connection() -> None:
    framework = RestartedFramework()
    handler = UpstreamHandler("127.0.0.1", framework.port, timeout=10.0, mode="blocking")
    pool = BlockingPool(handler)
    idle = [framework.connect_stale(), framework.connect_stale()]
    try:
        for sock in idle:
            pool._give_back(sock)  # both look alive: nothing has arrived on them yet
        framework.restart()
        exchange = RecordingExchange(7)
        pool.run(exchange)
        assert exchange.answers == [(200, b"fresh")]
        assert framework.fresh_connections == 1
    finally:
        framework.close()
        for sock in idle:
            sock.close()
