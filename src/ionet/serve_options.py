"""The options every ``ionet ... serve`` command shares, and what they build.

``--host --port --engine --workers`` and the limits live here once, so every
service spells them the same way and turns them into the same
:class:`~ionet.core.config.Limits` and ``ssl.SSLContext``.  A service's
``cli`` module uses :func:`add_service` for its ``ionet NAME COMMAND`` group
and ends its ``serve`` command with :func:`serve_from_args`.
"""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

from ionet.core.config import Endpoint, Limits
from ionet.core.engines import DEFAULT_ENGINE, ENGINES
from ionet.core.errors import UserError
from ionet.core.server import serve

DEFAULT_DATA_DIR = "ionet-data"


def add_service(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                help: str, description: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add ``ionet NAME`` and return its group of commands (``serve``, ...).

    A command is required: ``ionet NAME`` alone prints the usage and fails.
    """
    parser = subparsers.add_parser(name, help=help, description=description)
    return parser.add_subparsers(dest="command", metavar="COMMAND", required=True)


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=Path(DEFAULT_DATA_DIR),
        help=f"folder for databases, files and logs (default: ./{DEFAULT_DATA_DIR})",
    )


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """--engine, --workers and the limits: what ``ionet up`` shares too."""
    group = parser.add_argument_group("engine and limits")
    group.add_argument("--engine", default=DEFAULT_ENGINE, choices=ENGINES,
                       help=f"concurrency model (default: {DEFAULT_ENGINE})")
    group.add_argument("--workers", type=int, default=1,
                       help="processes running the engine, sharing the ports (default: 1)")
    group.add_argument("--max-connections", type=int, default=Limits.max_connections,
                       help="open connections per process; more are refused (default: %(default)s)")
    group.add_argument("--idle-timeout", type=float, default=Limits.idle_timeout,
                       help="close a connection silent this many seconds (default: %(default)s)")
    group.add_argument("--first-bytes-timeout", type=float, default=Limits.first_bytes_timeout,
                       help="close a new connection that sends nothing this long (default: %(default)s)")
    group.add_argument("--shutdown-timeout", type=float, default=Limits.shutdown_timeout,
                       help="seconds in-flight connections get after SIGTERM (default: %(default)s)")
    group.add_argument("--threads", type=int, default=Limits.worker_threads,
                       help="worker threads for blocking work on loop engines (default: %(default)s)")
    group.add_argument("--certfile", type=Path, help="TLS certificate chain (PEM): serve TLS")
    group.add_argument("--keyfile", type=Path, help="TLS private key (PEM), if not in --certfile")


def add_serve_options(parser: argparse.ArgumentParser, default_port: int,
                      host: str = "127.0.0.1") -> None:
    """--host, --port, then the engine options."""
    parser.add_argument("--host", default=host,
                        help=f"address to listen on; '::' for all IPv4 and IPv6 (default: {host})")
    parser.add_argument("--port", type=int, default=default_port,
                        help=f"port to listen on; 0 picks a free one (default: {default_port})")
    add_engine_options(parser)


def limits_from_args(args: argparse.Namespace) -> Limits:
    """Build Limits from the parsed options.

    Raises:
        UserError: a value is out of range (zero timeouts mean "none").
    """
    def timeout(value: float | None) -> float | None:
        return None if value is None or value <= 0 else value

    try:
        return Limits(
            max_connections=args.max_connections,
            idle_timeout=timeout(args.idle_timeout),
            first_bytes_timeout=timeout(args.first_bytes_timeout),
            shutdown_timeout=max(0.0, args.shutdown_timeout),
            worker_threads=max(1, args.threads),
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None


def ssl_from_args(args: argparse.Namespace) -> ssl.SSLContext | None:
    """A server TLS context from --certfile/--keyfile, or None.

    Raises:
        UserError: the files cannot be read or do not match.
    """
    if args.certfile is None:
        if args.keyfile is not None:
            raise UserError("--keyfile needs --certfile")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.certfile, args.keyfile)
    except FileNotFoundError as exc:
        raise UserError(f"cannot read the TLS certificate or key: {exc.filename}") from None
    except (ssl.SSLError, OSError) as exc:
        raise UserError(f"cannot load the TLS certificate/key: {exc}") from None
    return context


def announce(line: str) -> None:
    """Print a server's "listening on" line at once (scripts wait for it)."""
    print(line, flush=True)


def serve_from_args(endpoints: list[Endpoint], args: argparse.Namespace) -> int:
    """Serve ``endpoints`` with the engine, workers and limits of the options.

    Returns:
        0 after a graceful shutdown (see :func:`ionet.core.server.serve`).

    Raises:
        UserError: a bad limit, an unknown engine, an address in use.
    """
    return serve(endpoints, args.engine, limits_from_args(args), args.workers, announce=announce)
