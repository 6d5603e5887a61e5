"""The engine registry: ``--engine NAME`` to an Engine class, imported lazily.

Like bottle's ``server_names`` and uvicorn's ``loops/auto.py``: an engine's
module is imported only when chosen, so gevent is never imported (and never
patches anything) unless ``--engine gevent`` asks for it, and a missing
optional package is reported as the extra to install.

The engines' modules share machinery: iterative, thread, fork and gevent
serve each connection with the blocking driver (``blocking.py``, with its
neighbours ``blocking_wait``, ``blocking_send``, ``blocking_channels``,
``blocking_udp`` and ``blocking_connections``); select, poll and epoll are
one reactor over three selectors (``reactor.py``, with ``reactor_events``,
``reactor_connection``, ``reactor_channels`` and ``reactor_udp``); asyncio and
uvloop are one adapter over asyncio's loops (``aio.py``, with
``aio_connection``, ``aio_sendfile``, ``aio_channels`` and ``aio_udp``).
"""

from __future__ import annotations

import importlib
import importlib.util
import select as _select_module

from ionet.core.engines.base import Engine
from ionet.core.errors import UserError

#: name -> (module, class, the pip extra that provides it, or None)
_REGISTRY: dict[str, tuple[str, str, str | None]] = {
    "iterative": ("ionet.core.engines.iterative", "IterativeEngine", None),
    "fork": ("ionet.core.engines.fork", "ForkEngine", None),
    "thread": ("ionet.core.engines.thread", "ThreadEngine", None),
    "select": ("ionet.core.engines.select", "SelectEngine", None),
    "poll": ("ionet.core.engines.poll", "PollEngine", None),
    "epoll": ("ionet.core.engines.epoll", "EpollEngine", None),
    "asyncio": ("ionet.core.engines.aio", "AsyncioEngine", None),
    "uvloop": ("ionet.core.engines.aio", "UvloopEngine", "uvloop"),
    "gevent": ("ionet.core.engines.green", "GeventEngine", "gevent"),
}

#: Every engine name, in the order the docs list them.
ENGINES: tuple[str, ...] = tuple(_REGISTRY)

#: The engine used when none is named: the fastest that this system has.
DEFAULT_ENGINE = "epoll" if hasattr(_select_module, "epoll") else "poll"


def get_engine(name: str) -> type[Engine]:
    """Return the Engine class called ``name``.

    Raises:
        UserError: no such engine, the system lacks it (epoll off Linux), or
            its optional package is not installed (naming the extra).
    """
    try:
        module_name, class_name, extra = _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if extra is not None and exc.name == extra:
            raise UserError(
                f"the {name} engine needs the {extra!r} package: pip install 'ionet[{extra}]'"
            ) from None
        raise
    if extra is not None and importlib.util.find_spec(extra) is None:
        # The module imports its package lazily: check now, before the server
        # binds and announces, so the user gets the error at once.
        raise UserError(f"the {name} engine needs the {extra!r} package: pip install 'ionet[{extra}]'")
    engine: type[Engine] = getattr(module, class_name)
    return engine


def available_engines() -> list[str]:
    """The engines that can run here (their packages and system calls exist)."""
    names = []
    for name in ENGINES:
        try:
            get_engine(name)
        except UserError:
            continue
        names.append(name)
    return names
