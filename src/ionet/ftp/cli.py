"""``ionet ftp serve | adduser | client | get | put``: the file server on the command line."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from pathlib import Path

from ionet.core.config import Endpoint
from ionet.core.errors import UserError
from ionet.ftp.accounts import PERMS, AccountError, LoginGuard, add_user, check_perm
from ionet.ftp.server import DEFAULT_PORT, FtpServer, build_server
from ionet.serve_options import (
    add_data_dir,
    add_serve_options,
    add_service,
    serve_from_args,
    ssl_from_args,
)

USERS_FILE = "ftp-users.json"

log = logging.getLogger("ionet.ftp")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    commands = add_service(subparsers, "ftp", help="the file server (FTP) and its client",
                           description="Serve a folder over FTP, manage accounts, "
                                       "and talk to any FTP server.")

    serve_parser = commands.add_parser(
        "serve", help="run the FTP server",
        description="Serve ROOT over FTP (RFC 959 and its extensions).  Accounts come from "
                    "the users file (see 'ionet ftp adduser'); anonymous access is off "
                    "unless --anonymous.  With --certfile, clients may use AUTH TLS (FTPS).")
    serve_parser.add_argument("root", nargs="?", type=Path,
                              help="folder to serve (default: <data-dir>/files)")
    add_data_dir(serve_parser)
    serve_parser.add_argument("--users", type=Path,
                              help=f"users file, JSON or TOML (default: <data-dir>/{USERS_FILE})")
    serve_parser.add_argument("--anonymous", action="store_true",
                              help="allow anonymous logins, read-only (default: off)")
    serve_parser.add_argument("--passive-ports", type=port_range, metavar="LOW-HIGH",
                              help="ports for passive data connections (default: any free port)")
    serve_parser.add_argument("--masquerade-address", metavar="IP",
                              help="IPv4 address to announce in PASV replies (behind NAT)")
    serve_parser.add_argument("--max-per-ip", type=int, default=0, metavar="N",
                              help="control connections per client address (default: no limit)")
    serve_parser.add_argument("--data-timeout", type=float, default=300.0, metavar="SECONDS",
                              help="drop a data connection making no progress (default: 300)")
    serve_parser.add_argument("--max-download-rate", type=byte_rate, metavar="BYTES/S",
                              help="bandwidth limit per download, e.g. 500K or 10M")
    serve_parser.add_argument("--max-upload-rate", type=byte_rate, metavar="BYTES/S",
                              help="bandwidth limit per upload, e.g. 500K or 10M")
    serve_parser.add_argument("--login-delay", type=float, default=1.0, metavar="SECONDS",
                              help="wait before answering a failed login (default: 1)")
    serve_parser.add_argument("--max-login-failures", type=int, default=5, metavar="N",
                              help="failed logins that get an address banned (default: 5)")
    serve_parser.add_argument("--ban-time", type=float, default=600.0, metavar="SECONDS",
                              help="how long a banned address is refused (default: 600)")
    add_serve_options(serve_parser, DEFAULT_PORT)
    serve_parser.set_defaults(handler=run_serve)

    adduser = commands.add_parser(
        "adduser", help="add or change an FTP account",
        description="Add an account to the users file, or change its password, home or "
                    "permissions.  The password is asked twice on a terminal (never echoed); "
                    "otherwise it is the first line of standard input.")
    adduser.add_argument("name", help="the user name")
    add_data_dir(adduser)
    adduser.add_argument("--users", type=Path,
                         help=f"users file, .json or .toml (default: <data-dir>/{USERS_FILE})")
    adduser.add_argument("--home", default=".",
                         help="home folder; relative to the served root (default: the root)")
    adduser.add_argument("--perm", default=PERMS,
                         help=f"permission letters (default: {PERMS}): e cd, l list, r download, "
                              "a append, d delete, f rename, m mkdir, w upload, M chmod, "
                              "T set times")
    adduser.set_defaults(handler=run_adduser)

    client = commands.add_parser(
        "client", help="an interactive FTP client",
        description="Connect to an FTP server and type commands: list, get FILE, put FILE, "
                    "cd DIR, pwd, mkdir DIR, rm FILE, help, quit.")
    client.add_argument("host", help="server name or address")
    client.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"server port (default: {DEFAULT_PORT}, ionet's; 21 for most servers)")
    client.add_argument("--user", help="account name (default: anonymous)")
    _add_client_options(client)
    client.set_defaults(handler=run_client)

    get = commands.add_parser(
        "get", help="download a file, over several connections",
        description="Download ftp://[user[:password]@]host[:port]/path.  With --connections N "
                    "the file is fetched in N byte ranges in parallel (REST), then checked.")
    get.add_argument("url")
    get.add_argument("-o", "--output", type=Path, help="local file (default: the remote name)")
    get.add_argument("-n", "--connections", type=int, default=1, help="parallel connections")
    _add_client_options(get)
    get.set_defaults(handler=run_get)

    put = commands.add_parser(
        "put", help="upload a file",
        description="Upload FILE to ftp://[user[:password]@]host[:port]/path "
                    "(a path ending in / keeps the local name).")
    put.add_argument("file", type=Path)
    put.add_argument("url")
    _add_client_options(put)
    put.set_defaults(handler=run_put)


def _add_client_options(parser: argparse.ArgumentParser) -> None:
    """--tls and --timeout: what ``client``, ``get`` and ``put`` share."""
    parser.add_argument("--tls", action="store_true", help="use AUTH TLS (FTPS)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per operation")


def port_range(text: str) -> tuple[int, ...]:
    """``60000-60100`` (or one port) as the tuple of ports."""
    low_text, _, high_text = text.partition("-")
    try:
        low = int(low_text)
        high = int(high_text) if high_text else low
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port range: {text!r} (use LOW-HIGH)") from None
    if not 1 <= low <= high <= 65535:
        raise argparse.ArgumentTypeError(f"bad port range {text!r}: need 1 <= LOW <= HIGH <= 65535")
    return tuple(range(low, high + 1))


def byte_rate(text: str) -> float:
    """``500K``, ``10M``, ``1G`` or a plain number of bytes per second."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    clean = text.strip().upper().removesuffix("/S").removesuffix("B")
    factor = units.get(clean[-1:], 1)
    try:
        value = float(clean[:-1] if factor != 1 else clean) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a rate: {text!r} (e.g. 500K, 10M)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("the rate must be positive")
    return value


def users_path(args: argparse.Namespace) -> Path:
    return Path(args.users) if args.users is not None else args.data_dir / USERS_FILE


def server_from_args(args: argparse.Namespace) -> FtpServer:
    root = args.root if args.root is not None else args.data_dir / "files"
    guard = LoginGuard(delay=max(0.0, args.login_delay),
                       max_failures=max(1, args.max_login_failures), ban=max(0.0, args.ban_time))
    try:
        return build_server(
            root, users_path(args), args.anonymous, guard=guard,
            passive_ports=args.passive_ports or (0,),
            masquerade_address=args.masquerade_address, tls=ssl_from_args(args),
            idle_timeout=args.idle_timeout if args.idle_timeout and args.idle_timeout > 0 else None,
            data_timeout=args.data_timeout if args.data_timeout > 0 else None,
            max_per_ip=max(0, args.max_per_ip), max_download_rate=args.max_download_rate,
            max_upload_rate=args.max_upload_rate)
    except AccountError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot use the root folder {root}: {exc.strerror}") from None


def per_process_warning(args: argparse.Namespace) -> str | None:
    """What the per-address limits cannot do with more than one process, if anything.

    ``--max-per-ip`` and the failed-login ban are counted in the server's
    memory, which every process has its own copy of: with the fork engine
    (a process per connection, as vsftpd) a count never reaches 2, and with
    ``--workers N`` each worker counts only its own connections.  The
    per-connection parts still hold: the delay after a failed login, and the
    close after three failures.
    """
    if args.engine != "fork" and args.workers <= 1:
        return None
    what = ["failed-login bans"] + (["--max-per-ip"] if args.max_per_ip > 0 else [])
    where = ("the fork engine serves each connection in a process of its own"
             if args.engine == "fork" else f"each of the {args.workers} workers counts its own")
    return (f"{' and '.join(what)} count per process, and {where}; "
            "run one process of a loop or thread engine where they matter")


def run_serve(args: argparse.Namespace) -> int:
    server = server_from_args(args)
    warning = per_process_warning(args)
    if warning is not None:
        log.warning("%s", warning)
    # The endpoint keeps its own time (FtpServer.endpoints): the engine's
    # idle and first-bytes timeouts leave FTP connections alone.
    endpoints = server.endpoints(args.host, args.port)
    return serve_from_args(endpoints, args)


def up_endpoints(args: argparse.Namespace) -> list[Endpoint]:
    """The FTP server's part of ``ionet up``: ``<data-dir>/files`` on port 2121.

    ``ionet up`` gives every service one :class:`~ionet.core.config.Limits`;
    the FTP endpoint keeps its own time (``own_timeouts``), so the engine's
    idle and first-bytes timeouts leave its connections alone.
    """
    users = args.data_dir / USERS_FILE
    root = args.data_dir / "files"
    try:
        server = build_server(root, users, tls=ssl_from_args(args))
    except AccountError as exc:
        raise UserError(str(exc)) from None
    return server.endpoints(args.host, DEFAULT_PORT)


def read_password(prompt: str = "Password: ", confirm: bool = False) -> str:
    """A password from the terminal (not echoed), or the first line of stdin.

    Raises:
        UserError: empty, or the two entries differ.
    """
    if sys.stdin.isatty():
        password = getpass.getpass(prompt)
        if confirm and getpass.getpass("Again: ") != password:
            raise UserError("the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UserError("no password given")
    return password


def run_adduser(args: argparse.Namespace) -> int:
    path = users_path(args)
    try:
        perm = check_perm(args.perm)
        password = read_password(f"Password for {args.name}: ", confirm=True)
        new = add_user(path, args.name, password, args.home, perm)
    except AccountError as exc:
        raise UserError(str(exc)) from None
    print(f"{'added' if new else 'updated'} user {args.name} "
          f"(home {args.home}, perm {perm}) in {path}")
    return 0


def run_client(args: argparse.Namespace) -> int:
    from ionet.ftp.client import run_shell

    return run_shell(args)


def run_get(args: argparse.Namespace) -> int:
    from ionet.ftp.client import run_get as get

    return get(args)


def run_put(args: argparse.Namespace) -> int:
    from ionet.ftp.client import run_put as put

    return put(args)
