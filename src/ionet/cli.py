"""The ``ionet`` command: one sub-command per service, plus ``up`` and ``bench``.

Each service registers its own sub-commands from its ``cli`` module (listed
in :data:`SERVICE_CLIS`) and says what it adds to ``ionet up``.  User mistakes
(a bad flag value, a port in use, a missing extra) are
:class:`~ionet.core.errors.UserError` and end as one line on stderr and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import ModuleType

from ionet import __version__
from ionet.core.config import Endpoint
from ionet.core.errors import UserError
from ionet.core.server import serve
from ionet.serve_options import (
    add_data_dir,
    add_engine_options,
    announce,
    limits_from_args,
)

#: Modules with ``register(subparsers)`` and ``up_endpoints(args)``, in the
#: order of ``ionet --help`` and of the ports ``ionet up`` announces.
SERVICE_CLIS = ("ionet.echo.cli", "ionet.http.cli", "ionet.web.cli", "ionet.ftp.cli",
                "ionet.chat.cli", "ionet.dict.cli")
#: Built last by ``ionet up``: its server mounts the pages the others put in
#: ``args.http_mounts`` (the chat's ``/chat/``).
UP_LAST = "ionet.http.cli"


#: ``ionet bench NAME`` runs ``ionet.bench.NAME.main(args)``.
BENCHMARKS = ("engines", "ds", "http", "web", "dict", "ftp", "chat")


def _service_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in SERVICE_CLIS]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ionet",
        description="The network services of a Python IO course, made real: "
                    "every service on every concurrency engine.",
    )
    parser.add_argument("--version", action="version", version=f"ionet {__version__}")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"],
                        help="how much to log on stderr (default: info)")
    subparsers = parser.add_subparsers(dest="service", metavar="COMMAND", required=True)

    up = subparsers.add_parser(
        "up", help="run every service at once on its default port",
        description="Run every ionet service at once, each on its default port, "
                    "sharing one data folder.  Ctrl-C stops them all.",
    )
    up.add_argument("--host", default="127.0.0.1",
                    help="address every service listens on (default: 127.0.0.1)")
    add_data_dir(up)
    add_engine_options(up)
    up.set_defaults(handler=run_up)

    for module in _service_modules():
        module.register(subparsers)

    bench = subparsers.add_parser(
        "bench", help="measure the engines and data structures",
        description="Run a benchmark; the options after its name are its own (try --help).",
    )
    bench.add_argument("name", choices=BENCHMARKS, help="what to measure")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="options for that benchmark")
    bench.set_defaults(handler=run_bench)
    return parser


def up_endpoints(args: argparse.Namespace) -> list[Endpoint]:
    """Every service's endpoints for ``ionet up``, in :data:`SERVICE_CLIS` order.

    Services add pages for the HTTP server to ``args.http_mounts`` (a list
    of :class:`~ionet.http.mount.Site`); the HTTP service is built after
    them (:data:`UP_LAST`) and mounts them all.
    """
    args.data_dir.mkdir(parents=True, exist_ok=True)
    args.http_mounts = []
    modules = _service_modules()
    built = {module.__name__: module.up_endpoints(args)
             for module in sorted(modules, key=lambda module: module.__name__ == UP_LAST)}
    return [endpoint for module in modules for endpoint in built[module.__name__]]


def run_up(args: argparse.Namespace) -> int:
    """``ionet up``: every service's endpoints in one server, one engine."""
    endpoints = up_endpoints(args)
    return serve(endpoints, args.engine, limits_from_args(args), args.workers, announce=announce)


def run_bench(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"ionet.bench.{args.name}")
    result: int = module.main(args.args)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args))
    except UserError as exc:
        print(f"ionet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
