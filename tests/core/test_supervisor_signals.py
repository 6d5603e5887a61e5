"""A stop signal that reaches a new ``--workers`` worker before its own
handlers are installed still stops it (core/supervisor.py's module doc).

The window between ``fork`` and the worker's ``install_signal_handlers`` is
a few milliseconds; the script below widens it to half a second, sends
SIGTERM to the worker inside it, and reports how the worker ended.  Without
the fix, the signal ran the parent's inherited handler on a latch the worker
never watches, and the worker served on until killed.  It runs in a process
of its own: the supervisor installs signal handlers and forks.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import os, signal, sys, time

    from ionet.core.config import Limits
    from ionet.core.engines.base import Engine
    from ionet.core.stop import StopSignal
    from ionet.core.supervisor import Supervisor


    class WaitForStop(Engine):
        name = "wait"

        def run(self, listeners, stop):
            if not stop.wait(10.0):
                os._exit(3)  # the stop never reached this worker's latch


    supervisor = Supervisor(WaitForStop, Limits(), [[]])
    supervisor.prepare()  # the parent's handlers, which a child inherits
    install = StopSignal.install_signal_handlers

    def slow_install(self):
        time.sleep(0.5)  # widen the window between fork and the worker's handlers
        return install(self)

    StopSignal.install_signal_handlers = slow_install
    supervisor._spawn(0)
    (pid,) = supervisor.pids
    os.kill(pid, signal.SIGTERM)  # inside the window
    deadline = time.monotonic() + 8.0
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print(os.waitstatus_to_exitcode(status))
            sys.exit(0)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    print("hung")
""")


def test_a_stop_signal_during_a_workers_start_stops_it_cleanly() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    # 0: the worker's own latch got the SIGTERM and the engine returned.
    assert result.stdout.strip() == "0", (result.stdout, result.stderr)
