"""``ionet chat serve | join | announce``: the chat on the command line."""

from __future__ import annotations

import argparse
import logging
import sys

from ionet.chat.admin import (
    Console,
    load_or_create_token,
    read_token,
    send_announcement,
)
from ionet.chat.bus import DEFAULT_PREFIX, RedisBus
from ionet.chat.room import (
    DEFAULT_BURST,
    DEFAULT_HISTORY,
    DEFAULT_MAX_TEXT,
    DEFAULT_RATE,
    DEFAULT_ROOM,
    Lobby,
)
from ionet.chat.service import DEFAULT_HTTP_PORT, DEFAULT_PORT, ChatService
from ionet.chat.udp import DEFAULT_UDP_TIMEOUT
from ionet.core.config import Endpoint
from ionet.core.errors import UserError
from ionet.serve_options import (
    add_data_dir,
    add_serve_options,
    add_service,
    serve_from_args,
    ssl_from_args,
)

log = logging.getLogger("ionet.chat")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    commands = add_service(
        subparsers, "chat", help="the chat room (TCP, UDP, WebSocket)",
        description="A group chat: rooms, private messages, announcements, over TCP, "
                    "UDP and WebSocket at once; several servers share rooms through Redis.")

    serve_parser = commands.add_parser(
        "serve", help="run the chat server",
        description="Run the chat on TCP and UDP (one port number) and its web page and "
                    "WebSocket on --http-port.  Lines typed on this console are announced "
                    "to everyone.  Engines: thread, gevent and the loop engines; fork "
                    "and --workers above 1 need --redis; not iterative.")
    add_serve_options(serve_parser, DEFAULT_PORT)
    add_data_dir(serve_parser)
    group = serve_parser.add_argument_group("chat")
    group.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT,
                       help="port of the page /chat/ and WebSocket /chat/ws; 0 picks a free "
                            "one, -1 serves none (default: %(default)s)")
    group.add_argument("--redis", metavar="URL",
                       help="share rooms with other servers through Redis, "
                            "e.g. redis://127.0.0.1:6379/0")
    group.add_argument("--redis-prefix", default=DEFAULT_PREFIX,
                       help="prefix of the Redis keys and channel (default: %(default)s)")
    group.add_argument("--history", type=int, default=DEFAULT_HISTORY,
                       help="messages per room replayed on join (default: %(default)s)")
    group.add_argument("--max-text", type=int, default=DEFAULT_MAX_TEXT,
                       help="longest message, in characters (default: %(default)s)")
    group.add_argument("--rate", type=float, default=DEFAULT_RATE,
                       help="messages per second per member, sustained; 0: no limit "
                            "(default: %(default)s)")
    group.add_argument("--burst", type=int, default=DEFAULT_BURST,
                       help="messages a member may send at once (default: %(default)s)")
    group.add_argument("--udp-timeout", type=float, default=DEFAULT_UDP_TIMEOUT,
                       help="seconds without a heartbeat before a UDP client is dropped "
                            "(default: %(default)s)")
    group.add_argument("--no-udp", action="store_true", help="no UDP front door")
    group.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                       help="a web origin whose pages may also open the WebSocket, such as "
                            "https://chat.example.com (repeatable; the page's own origin "
                            "always may)")
    serve_parser.set_defaults(handler=run_serve)

    join = commands.add_parser("join", help="chat in the terminal",
                               description="Join the chat from this terminal.  Type to talk; "
                                           "/who, /msg NAME text, /join #room; /quit or "
                                           "Ctrl-C to leave.")
    join.add_argument("--name", required=True, help="your nickname")
    join.add_argument("--room", default=DEFAULT_ROOM, help="(default: %(default)s)")
    join.add_argument("--host", default="127.0.0.1", help="(default: %(default)s)")
    join.add_argument("--port", type=int, default=DEFAULT_PORT, help="(default: %(default)s)")
    join.add_argument("--udp", action="store_true", help="over UDP, as the course's chat")
    join.set_defaults(handler=run_join)

    ann = commands.add_parser("announce", help="announce to everyone, as the administrator",
                              description="Send an administrator announcement to a running "
                                          "server (its token is read from --data-dir).")
    ann.add_argument("text", nargs="+", help="the announcement")
    ann.add_argument("--host", default="127.0.0.1", help="(default: %(default)s)")
    ann.add_argument("--port", type=int, default=DEFAULT_PORT, help="(default: %(default)s)")
    add_data_dir(ann)
    ann.set_defaults(handler=run_announce)


def check_engine(engine: str, workers: int, redis: str | None) -> None:
    """Refuse the engines a chat room cannot live on.

    Raises:
        UserError: iterative (one connection at a time), or separate
            processes (fork, --workers) without --redis.
    """
    if engine == "iterative":
        raise UserError("the chat room needs its members connected at once, and the "
                        "iterative engine serves one connection at a time: use thread, "
                        "gevent, or a loop engine (select, poll, epoll, asyncio, uvloop)")
    if (engine == "fork" or workers > 1) and not redis:
        what = "the fork engine" if engine == "fork" else "several workers"
        raise UserError(f"the chat room needs --redis with {what}: connections live in "
                        "separate processes")


def build_service(args: argparse.Namespace, bus: RedisBus | None = None) -> ChatService:
    for name in ("history", "max_text", "burst"):
        if getattr(args, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} must not be negative")
    if args.udp_timeout <= 0:
        raise UserError("--udp-timeout must be positive")
    lobby = Lobby(history=args.history, max_text=args.max_text, rate=args.rate,
                  burst=max(1, args.burst), bus=bus)
    return ChatService(lobby, load_or_create_token(args.data_dir), udp_timeout=args.udp_timeout,
                       allowed_origins=args.allow_origin)


def run_serve(args: argparse.Namespace) -> int:
    check_engine(args.engine, args.workers, args.redis)
    bus = None
    if args.redis:
        bus = RedisBus(args.redis, args.redis_prefix, history=args.history,
                       sync=args.engine == "fork")
        bus.check()
    service = build_service(args, bus)
    http_port = None if args.http_port < 0 else args.http_port
    endpoints = service.endpoints(args.host, args.port, http_port, ssl_from_args(args),
                                  udp=not args.no_udp)
    if bus is not None and args.engine not in ("fork", "gevent") and args.workers == 1:
        bus.start()  # subscribed before we announce the ports
    if args.engine == "gevent":
        # A console thread started before gevent patches would touch gevent
        # sockets from a foreign OS thread; `ionet chat announce` still works.
        log.info("chat: console announcements are off on the gevent engine")
    else:
        Console(service.lobby.announce, sys.stdin).start()
    try:
        return serve_from_args(endpoints, args)
    finally:
        if bus is not None:
            bus.close()


def up_endpoints(args: argparse.Namespace) -> list[Endpoint]:
    """The chat's part of ``ionet up``: TCP and UDP on 8889, and the page
    ``/chat/`` with its WebSocket ``/chat/ws`` in the HTTP server on 8000.

    One :class:`ChatService` serves every door, so they share one lobby;
    its page goes to the HTTP server through ``args.http_mounts``.
    """
    try:
        check_engine(args.engine, args.workers, None)
    except UserError as exc:
        log.warning("ionet up: no chat: %s", exc)
        return []
    service = ChatService(Lobby(), load_or_create_token(args.data_dir))
    if hasattr(args, "http_mounts"):
        args.http_mounts.append(service.http_site())
    return service.endpoints(args.host, DEFAULT_PORT, None, ssl_from_args(args))


def run_join(args: argparse.Namespace) -> int:
    from ionet.chat.client import TcpChatClient, UdpChatClient, run_terminal

    client: TcpChatClient | UdpChatClient
    client = UdpChatClient(args.host, args.port) if args.udp else TcpChatClient(args.host, args.port)
    return run_terminal(client, args.name, args.room)


def run_announce(args: argparse.Namespace) -> int:
    send_announcement(args.host, args.port, read_token(args.data_dir), " ".join(args.text))
    print("announced")
    return 0
