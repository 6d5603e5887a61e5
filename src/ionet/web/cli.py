"""``ionet web serve PROJECT``: the WebFrame project as its own process (HTTPServer 3.0).

    ionet web serve examples/site [--host H] [--port 9000] [--engine E] [--debug]

The framework process speaks the framed JSON protocol of ``split.py``; put
the HTTP server in front of it::

    ionet http serve --upstream 127.0.0.1:9000

``--host`` and ``--port`` default to the project's HOST and PORT settings
(127.0.0.1 and 9000 unless it says otherwise).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ionet.core.config import Endpoint
from ionet.core.errors import UserError
from ionet.serve_options import add_engine_options, add_service, serve_from_args

DEFAULT_PORT = 9000


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    commands = add_service(
        subparsers, "web", help="WebFrame, the web framework, as its own process",
        description="WebFrame: run a project (settings.py, urls.py, views.py, templates/, "
                    "static/) as a framework process behind 'ionet http serve --upstream'.")
    parser = commands.add_parser(
        "serve", help="run a project as the framework process",
        description="Serve PROJECT's app over the framed JSON protocol (see "
                    "ionet.web.split) for 'ionet http serve --upstream HOST:PORT'.")
    parser.add_argument("project", type=Path, help="the project folder (with settings.py)")
    parser.add_argument("--host", default=None,
                        help="address to listen on (default: the project's HOST, else 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None,
                        help=f"port to listen on; 0 picks a free one (default: the project's "
                             f"PORT, else {DEFAULT_PORT})")
    parser.add_argument("--debug", action="store_true",
                        help="debug mode whatever settings.py says: tracebacks on error pages")
    add_engine_options(parser)
    parser.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from ionet.web.app import App, ProjectError
    from ionet.web.split import DEFAULT_MAX_FRAME, SplitService

    if args.certfile is not None or args.keyfile is not None:
        raise UserError("the framework protocol is plain TCP for a private network: "
                        "give --certfile/--keyfile to 'ionet http serve' instead")
    overrides = {"debug": True} if args.debug else {}
    try:
        app = App.from_project(args.project, **overrides)
    except ProjectError as exc:
        raise UserError(str(exc)) from None
    settings = app.settings
    host = args.host if args.host is not None else settings.host
    port = args.port if args.port is not None else settings.port
    max_frame = max(DEFAULT_MAX_FRAME, settings.max_upload_size + 64 * 1024,
                    settings.max_body_size + 64 * 1024)
    service = SplitService(app, max_frame=max_frame, multiprocess=args.workers > 1)
    endpoint = Endpoint("web", "tcp", host, port, service)
    return serve_from_args([endpoint], args)


def up_endpoints(args: argparse.Namespace) -> list[Endpoint]:
    """``ionet up`` runs no framework process: the HTTP service there serves
    static files, and a project is always named explicitly."""
    return []
