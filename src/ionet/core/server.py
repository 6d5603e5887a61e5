"""``serve()``: bind a service's endpoints and run them on the chosen engine.

This is the one entry point every ``ionet ... serve`` command goes through:

1. look up the engine (a clear error if it is unknown or its extra missing);
2. bind every endpoint (``--workers N``: N sockets per endpoint, see
   ``listeners.py``);
3. announce the bound addresses, one line per service (tests and scripts
   read the ports from these lines when they asked for port 0);
4. route SIGINT/SIGTERM to a graceful stop, and run the engine, or N worker
   processes each running it (``supervisor.py``);
5. return 0 after a graceful shutdown.
"""

from __future__ import annotations

import gc
import logging
from typing import Callable

from ionet.core.config import Endpoint, Limits
from ionet.core.engines import get_engine
from ionet.core.engines.base import Engine
from ionet.core.errors import UserError
from ionet.core.listeners import Listener, bind_all
from ionet.core.stop import StopSignal

log = logging.getLogger("ionet.server")


def describe(listeners: list[Listener]) -> list[str]:
    """One line per service: its name and every address it listens on."""
    by_service: dict[str, list[str]] = {}
    for listener in listeners:
        by_service.setdefault(listener.endpoint.service, []).append(listener.url())
    return [f"{service:<6} {' '.join(urls)}" for service, urls in by_service.items()]


def serve(
    endpoints: list[Endpoint],
    engine: str,
    limits: Limits | None = None,
    workers: int = 1,
    announce: Callable[[str], None] | None = None,
    stop: StopSignal | None = None,
) -> int:
    """Serve ``endpoints`` on ``engine`` until SIGINT/SIGTERM (or ``stop``).

    Args:
        endpoints: what to listen on, and the protocol for each.
        engine: an engine name from ``ionet.core.engines.ENGINES``.
        limits: connection limits and timeouts (defaults if None).
        workers: processes to run the engine in; above 1, a supervisor
            pre-forks them, all sharing the ports, and restarts any that dies.
        announce: called with one line per service once the sockets are
            bound (``print`` in the CLI).
        stop: set it from another thread to stop the server; signals are
            only routed to it when ``serve`` runs in the main thread.

    Returns:
        0 after a graceful shutdown.

    Raises:
        UserError: unknown engine, missing extra, address in use, bad limits.
    """
    if not endpoints:
        raise UserError("nothing to serve: no endpoints given")
    if workers < 1:
        raise UserError(f"--workers must be at least 1, not {workers}")
    limits = limits or Limits()
    engine_cls = get_engine(engine)
    copies = bind_all(endpoints, workers)
    # Signals are routed before the addresses are announced: a script that
    # sends SIGTERM as soon as it reads them must get a graceful stop.
    if workers > 1:
        from ionet.core.supervisor import Supervisor

        supervisor = Supervisor(engine_cls, limits, copies)
        supervisor.prepare()
    else:
        stop = stop or StopSignal()
        stop.install_signal_handlers()
    if announce is not None:
        suffix = f"({engine} engine{f', {workers} workers' if workers > 1 else ''})"
        for line in describe(copies[0]):
            announce(f"{line}  {suffix}")
    settle_heap()
    if workers > 1:
        return supervisor.run()
    assert stop is not None
    try:
        run_engine(engine_cls, limits, copies[0], stop)
    finally:
        stop.close()
    return 0


def settle_heap() -> None:
    """Free the start-up garbage, then leave what remains out of future collections.

    What exists once the server is ready (modules, classes, the parsed
    arguments, the services' settings) lives until the end, yet every full
    collection of Python's cyclic garbage collector would walk all of it
    again: 20-30 ms during which no connection is served.  ``gc.freeze()``
    moves it to a generation the collector never scans.  Forked workers and
    fork-engine children also stop touching those objects' headers, so
    their pages stay shared with the parent (the ``gc`` module's advice for
    a process that forks).
    """
    gc.collect()
    gc.freeze()


def run_engine(
    engine_cls: type[Engine], limits: Limits, listeners: list[Listener], stop: StopSignal
) -> None:
    """Run one engine over ``listeners`` in this process until stopped."""
    engine = engine_cls(limits)
    log.debug("running the %s engine on %d listener(s)", engine.name, len(listeners))
    engine.run(listeners, stop)
