"""A SIGTERM that reaches a fork-engine child before it has set its own
signal dispositions still ends it (core/engines/fork.py's module doc).

The window between ``fork`` and the child's ``signal.signal`` calls is a
fraction of a millisecond; the script below widens it to half a second,
sends SIGTERM to the child inside it, and reports whether the child's
connection was closed.  Without SIGINT/SIGTERM blocked across the fork, the
signal ran the parent's inherited handler on the child's copy of the
parent's stop latch, which the child never watches: the child served on.
It runs in a process of its own: the engine installs signal handlers and forks.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import os, signal, socket, sys, threading, time

    from ionet.core.config import Endpoint, Limits
    from ionet.core.engines.fork import ForkEngine
    from ionet.core.listeners import bind_all
    from ionet.core.stop import StopSignal
    from ionet.echo.protocol import EchoProtocol


    class SlowStartFork(ForkEngine):
        def _child_main(self, sock, endpoint, *rest):
            time.sleep(0.5)  # widen the window between fork and the child's dispositions
            return super()._child_main(sock, endpoint, *rest)


    engine = SlowStartFork(Limits())
    (listeners,) = bind_all([Endpoint("echo", "tcp", "127.0.0.1", 0, EchoProtocol)])
    port = listeners[0].port
    stop = StopSignal()
    stop.install_signal_handlers()  # the parent's handlers, which a child inherits
    outcome = []

    def client():
        try:
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            deadline = time.monotonic() + 5
            while not getattr(engine, "children", None) and time.monotonic() < deadline:
                time.sleep(0.01)
            (pid,) = engine.children
            os.kill(pid, signal.SIGTERM)  # inside the window
            conn.settimeout(5.0)
            try:
                conn.sendall(b"ping")
                data = conn.recv(16)
            except ConnectionResetError:
                data = b""
            except (socket.timeout, TimeoutError):
                data = None
            # b"": the child died of the SIGTERM; b"ping": it served on.
            outcome.append("closed" if data == b"" else "served on" if data else "hung")
        finally:
            stop.set()

    threading.Thread(target=client, daemon=True).start()
    engine.run(listeners, stop)
    print(outcome[0] if outcome else "no outcome")
""")


def test_a_sigterm_during_a_fork_childs_start_ends_it() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "closed", (result.stdout, result.stderr)
