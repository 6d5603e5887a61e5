"""``ionet echo serve``: the echo service on the command line."""

from __future__ import annotations

import argparse

from ionet.core.config import Endpoint
from ionet.echo.protocol import DEFAULT_PORT, echo_endpoints
from ionet.serve_options import add_serve_options, add_service, serve_from_args, ssl_from_args


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    commands = add_service(subparsers, "echo", help="the echo service (TCP, TLS and UDP)",
                           description="Echo every byte back: the engines' test subject.")
    serve_parser = commands.add_parser("serve", help="run the echo server",
                                       description="Run the echo server on TCP and UDP.")
    add_serve_options(serve_parser, DEFAULT_PORT)
    serve_parser.add_argument("--no-udp", action="store_true", help="listen on TCP only")
    serve_parser.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    endpoints = echo_endpoints(args.host, args.port, ssl_from_args(args), udp=not args.no_udp)
    return serve_from_args(endpoints, args)


def up_endpoints(args: argparse.Namespace) -> list[Endpoint]:
    """The echo service's part of ``ionet up``."""
    return echo_endpoints(args.host, DEFAULT_PORT, ssl_from_args(args))
