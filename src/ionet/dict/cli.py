"""``ionet dict serve | client | import | lookup``: the dictionary on the command line.

``serve`` listens on two ports, both announced on one line (``dict``): the
JSON protocol (8888) first, DICT (2628) second.  Before it serves, it sets
up the schema, loads CC-CEDICT on the first start, loads every dictionary's
key index (so fork and ``--workers`` children share it), and closes its
database connections, so no connection crosses a ``fork``.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import time
from pathlib import Path

from ionet.core.config import Endpoint
from ionet.core.errors import UserError
from ionet.dict import cedict, importers
from ionet.dict.protocol import BUSY_REPLY as JSON_BUSY_REPLY
from ionet.dict.protocol import DEFAULT_PORT, DictJsonProtocol
from ionet.dict.rfc2229 import BUSY_REPLY, DictProtocol
from ionet.dict.rfc2229 import DEFAULT_PORT as DICT_PORT
from ionet.dict.service import DictService
from ionet.dict.store import open_store
from ionet.serve_options import (
    add_data_dir,
    add_serve_options,
    add_service,
    serve_from_args,
    ssl_from_args,
)

log = logging.getLogger("ionet.dict")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    commands = add_service(
        subparsers, "dict", help="the online dictionary (JSON protocol and DICT, RFC 2229)",
        description="An online dictionary: accounts, look-ups with suggestions, history; "
                    "a JSON line protocol and the DICT protocol over SQLite or MySQL.")

    serve_parser = commands.add_parser(
        "serve", help="run the dictionary server",
        description=f"Serve the JSON protocol (default port {DEFAULT_PORT}) and DICT "
                    f"(RFC 2229, default port {DICT_PORT}) over one store.")
    add_serve_options(serve_parser, DEFAULT_PORT)
    serve_parser.add_argument("--dict-port", type=int, default=DICT_PORT,
                              help=f"port for the DICT protocol; 0 picks one "
                                   f"(default: {DICT_PORT})")
    _add_store_options(serve_parser)
    serve_parser.set_defaults(handler=run_serve)

    client = commands.add_parser("client", help="the interactive terminal client",
                                 description="Register, log in, look words up, see history.")
    client.add_argument("--host", default="127.0.0.1", help="server (default: 127.0.0.1)")
    client.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"server port (default: {DEFAULT_PORT})")
    client.add_argument("--lang", choices=["en", "zh"],
                        help="interface language (default: from the locale)")
    client.set_defaults(handler=run_client)

    imp = commands.add_parser(
        "import", help="import a dictionary file",
        description="Import a dictionary file into the store (replacing a dictionary of "
                    "the same name): dictd .index/.dict[.dz], StarDict .ifo, ECDICT or "
                    "word,translation CSV, CC-CEDICT, or 'word   meaning' lines.")
    imp.add_argument("file", nargs="?", type=Path,
                     help="the file (for dictd and StarDict: any of its files)")
    imp.add_argument("--format", default="auto", choices=importers.FORMATS,
                     help="file format (default: guess)")
    imp.add_argument("--name", help="dictionary name (default: from the file name)")
    imp.add_argument("--default", action="store_true",
                     help="(re)load the packaged CC-CEDICT as cedict and cedict-en")
    _add_store_options(imp, default_data=False)
    imp.set_defaults(handler=run_import)

    lookup = commands.add_parser("lookup", help="look a word up locally (no server)",
                                 description="Look a word up in the local store and print "
                                             "its definitions, or suggestions.")
    lookup.add_argument("word", help="the word")
    lookup.add_argument("--dictionary", default="*",
                        help="a dictionary name, '*' for all, '!' for the first that "
                             "has it (default: *)")
    _add_store_options(lookup)
    lookup.set_defaults(handler=run_lookup)


def _add_store_options(parser: argparse.ArgumentParser, default_data: bool = True) -> None:
    parser.add_argument("--db", metavar="URL",
                        help="mysql://user:pass@host:port/db or an SQLite file "
                             "(default: dict.sqlite3 in the data folder)")
    add_data_dir(parser)
    if default_data:
        parser.add_argument("--no-default-data", action="store_true",
                            help="do not load CC-CEDICT into an empty store")


def prepare(db: str | None, data_dir: Path, default_data: bool = True) -> DictService:
    """Open and set up the store, load CC-CEDICT the first time, warm the indexes.

    The store's connections are closed before returning: the caller may fork.
    """
    store = open_store(db, data_dir)
    store.setup()
    if default_data:
        cedict.ensure_default_data(store)
    service = DictService(store)
    started = time.monotonic()
    service.warm()
    log.debug("key indexes loaded in %.2f s", time.monotonic() - started)
    store.close()
    return service


def dict_endpoints(service: DictService, host: str, port: int = DEFAULT_PORT,
                   dict_port: int = DICT_PORT, ssl_context: object = None) -> list[Endpoint]:
    """The JSON endpoint, then the DICT endpoint, both serving ``service``."""
    hostname = socket.gethostname()
    return [
        Endpoint("dict", "tcp", host, port, lambda: DictJsonProtocol(service),
                 ssl=ssl_context, busy_reply=JSON_BUSY_REPLY),  # type: ignore[arg-type]
        Endpoint("dict", "tcp", host, dict_port, lambda: DictProtocol(service, hostname),
                 busy_reply=BUSY_REPLY),
    ]


def run_serve(args: argparse.Namespace) -> int:
    service = prepare(args.db, args.data_dir, not args.no_default_data)
    endpoints = dict_endpoints(service, args.host, args.port, args.dict_port, ssl_from_args(args))
    return serve_from_args(endpoints, args)


def up_endpoints(args: argparse.Namespace) -> list[Endpoint]:
    """The dictionary's part of ``ionet up``: JSON on 8888, DICT on 2628."""
    service = prepare(getattr(args, "db", None), args.data_dir)
    return dict_endpoints(service, args.host, DEFAULT_PORT, DICT_PORT, ssl_from_args(args))


def run_client(args: argparse.Namespace) -> int:
    from ionet.dict.client import run
    return run(args.host, args.port, args.lang)


def run_import(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    if args.default == (args.file is not None):
        raise UserError("give either a FILE to import or --default")
    store = open_store(args.db, args.data_dir)
    store.setup()
    console = Console(stderr=True)
    if args.default:
        items = importers.read(cedict.default_data_file(), "cedict")
    else:
        items = importers.read(args.file, args.format, args.name)
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as progress:
            for item in items:
                task = progress.add_task(item.meta.name, total=item.total)

                def advance(n: int, task: TaskID = task) -> None:
                    progress.advance(task, n)

                started = time.monotonic()
                count = store.replace_dictionary(item.meta, item.entries, advance)
                progress.update(task, total=count, completed=count)
                progress.console.print(f"imported {count} entries into '{item.meta.name}' "
                                       f"({item.meta.short}) in {time.monotonic() - started:.1f} s")
        if args.default:
            store.set_meta(cedict.DEFAULT_MARKER, "cc-cedict (ionet dict import --default)")
    finally:
        store.close()
    return 0


def run_lookup(args: argparse.Namespace) -> int:
    from ionet.dict.service import UnknownDatabase

    service = DictService(open_store(args.db, args.data_dir))
    try:
        service.store.setup()
        if not args.no_default_data:
            cedict.ensure_default_data(service.store)
        try:
            result = service.define(args.word, args.dictionary)
        except UnknownDatabase:
            names = ", ".join(db.name for db in service.databases()) or "none"
            raise UserError(f"no dictionary called {args.dictionary!r} (there are: {names})"
                            ) from None
    finally:
        service.store.close()
    for definition in result.definitions:
        print(f"[{definition.db}] {definition.word}")
        print(definition.text)
        print()
    if result.definitions:
        return 0
    print(f"no match for {result.word!r}", file=sys.stderr)
    if result.suggestions:
        print("did you mean: " + ", ".join(result.suggestions))
    return 1
