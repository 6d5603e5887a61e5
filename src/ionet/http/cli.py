"""``ionet http serve``: static files, a WSGI app, or both, on the command line.

    ionet http serve [DIR] [--app module:callable | --upstream HOST:PORT]
                     [--static-prefix /static/] [--list]
                     [--access-log FILE | --quiet] [--max-body 16M] [engine options]

With DIR only (the current folder by default), its files are served; with
``--app`` only, the app; with both, the app, and DIR's files under the static
prefix.  ``--upstream`` takes the place of ``--app``: requests go to a
framework process (``ionet web serve PROJECT``, see ``upstream.py``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ionet.core.config import Endpoint
from ionet.core.errors import UserError
from ionet.http.accesslog import AccessLog
from ionet.http.limits import HttpLimits
from ionet.http.mount import Mount, compose
from ionet.http.protocol import Handler, HttpService
from ionet.http.static import StaticFiles
from ionet.http.status import BUSY_REPLY
from ionet.http.upstream import UpstreamHandler, parse_upstream
from ionet.http.wsgi import WSGIGateway, load_app
from ionet.serve_options import add_serve_options, add_service, serve_from_args, ssl_from_args

DEFAULT_PORT = 8000
WELCOME_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>ionet</title></head>
<body><h1>ionet is up</h1>
<p>This page is <code>www/index.html</code> in the ionet data folder: put your files beside it.</p>
</body></html>
"""

_SIZE = re.compile(r"(\d+)\s*([kmg]?)i?b?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"16M"`` -> 16777216; plain numbers are bytes."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 512K, 16M, 1G)")
    number, unit = int(match[1]), match[2].lower()
    return number * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    commands = add_service(subparsers, "http",
                           help="the HTTP/1.1 server (static files, WSGI apps)",
                           description="An HTTP/1.1 server for static files and WSGI apps.")
    parser = commands.add_parser(
        "serve", help="run the HTTP server",
        description="Serve DIR's files, a WSGI app (--app), or the app with DIR's files "
                    "under --static-prefix.")
    parser.add_argument("directory", nargs="?", type=Path,
                        help="folder of static files (default: the current folder, "
                             "unless --app is given)")
    parser.add_argument("--app", metavar="MODULE:CALLABLE",
                        help="a WSGI app to serve, such as hello:app (./hello.py)")
    parser.add_argument("--upstream", metavar="HOST:PORT",
                        help="forward requests to a framework process "
                             "('ionet web serve PROJECT' listening there)")
    parser.add_argument("--upstream-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="answer 504 when the framework has not replied in this time "
                             "(default: %(default)s)")
    parser.add_argument("--upstream-connections", type=int, default=64, metavar="N",
                        help="persistent connections to the framework per process "
                             "(default: %(default)s)")
    parser.add_argument("--static-prefix", default="/static/", metavar="PATH",
                        help="where DIR is served beside --app or --upstream (default: /static/)")
    parser.add_argument("--list", action="store_true", dest="listing",
                        help="list the files of folders without index.html")
    parser.add_argument("--access-log", type=Path, metavar="FILE",
                        help="append the access log to FILE (default: standard error)")
    parser.add_argument("--quiet", action="store_true", help="write no access log")
    limits = HttpLimits()
    parser.add_argument("--max-body", type=parse_size, default=limits.max_body, metavar="SIZE",
                        help="largest request body accepted (default: 16M)")
    parser.add_argument("--header-timeout", type=float, default=limits.header_timeout,
                        metavar="SECONDS",
                        help="time a client has to send a request's headers "
                             "(default: %(default)s)")
    parser.add_argument("--keepalive-timeout", type=float, default=limits.keepalive_timeout,
                        metavar="SECONDS",
                        help="close a connection idle between requests this long "
                             "(default: %(default)s)")
    add_serve_options(parser, DEFAULT_PORT)
    parser.set_defaults(handler=run_serve)


def build_handler(args: argparse.Namespace) -> Handler:
    """StaticFiles, a WSGIGateway, or a Mount of both, from the options.

    Raises:
        UserError: the folder is missing, or the app cannot be loaded.
    """
    static = None
    directory = args.directory
    upstream = getattr(args, "upstream", None)
    if args.app and upstream:
        raise UserError("--app and --upstream exclude each other: the app runs here, "
                        "or in the framework process")
    if directory is None and not args.app and not upstream:
        directory = Path(".")
    if directory is not None:
        prefix = args.static_prefix if args.app or upstream else "/"
        if not prefix.startswith("/"):
            prefix = "/" + prefix
        if not prefix.endswith("/"):
            prefix += "/"
        try:
            static = StaticFiles(directory, prefix=prefix, listing=args.listing)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot serve {directory}: {exc}") from None
    gateway: Handler
    if upstream:
        try:
            host, port = parse_upstream(upstream)
            gateway = UpstreamHandler(host, port, timeout=args.upstream_timeout,
                                      pool_size=args.upstream_connections)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    elif not args.app:
        assert static is not None
        return static
    else:
        try:
            app = load_app(args.app)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        gateway = WSGIGateway(app, multiprocess=args.workers > 1)
    if static is None:
        return gateway
    return Mount(static.prefix.decode(), static, gateway)


def build_service(args: argparse.Namespace) -> HttpService:
    """The HTTP service the options describe.

    Raises:
        UserError: a bad option value (see :func:`build_handler`).
    """
    try:
        limits = HttpLimits(max_body=args.max_body, header_timeout=args.header_timeout,
                            keepalive_timeout=args.keepalive_timeout)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    access_log = None
    if not args.quiet:
        try:
            access_log = AccessLog(args.access_log)
        except OSError as exc:
            raise UserError(f"cannot open the access log: {exc}") from None
    return HttpService(build_handler(args), limits, access_log=access_log)


def run_serve(args: argparse.Namespace) -> int:
    service = build_service(args)
    endpoint = Endpoint("http", "tcp", args.host, args.port, service, ssl=ssl_from_args(args),
                        busy_reply=BUSY_REPLY)
    return serve_from_args([endpoint], args)


def up_endpoints(args: argparse.Namespace) -> list[Endpoint]:
    """The HTTP service's part of ``ionet up``: ``DATA_DIR/www`` on port 8000,
    logging to ``DATA_DIR/logs/http-access.log``.

    Other services' pages are mounted beside the files: each service's
    ``up_endpoints`` appends a :class:`~ionet.http.mount.Site` to
    ``args.http_mounts`` (the chat: ``/chat/`` and its WebSocket), so
    ``ionet up`` builds this service after the others.
    """
    www = args.data_dir / "www"
    if not www.exists():
        www.mkdir(parents=True)
        (www / "index.html").write_text(WELCOME_PAGE, encoding="utf-8")
    logs = args.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    handler, upgrades = compose(getattr(args, "http_mounts", []), StaticFiles(www))
    service = HttpService(handler, upgrades=upgrades,
                          access_log=AccessLog(logs / "http-access.log"))
    return [Endpoint("http", "tcp", args.host, DEFAULT_PORT, service, ssl=ssl_from_args(args),
                     busy_reply=BUSY_REPLY)]
