"""The DICT protocol (RFC 2229, port 2628) over the same dictionary service.

With this front door, the standard clients (Debian's ``dict``, GNU
``dico``, editors' dictionary plugins) query an ionet server as they would
dictd.  A session::

    S: 220 host ionet 0.1.0 <auth.mime> <4.17.1715000000.a1b2@host>
    C: DEFINE * apple
    S: 150 2 definitions retrieved
    S: 151 "apple" cedict-en "English-Chinese, reversed from CC-CEDICT"
    S: apple
    S:    苹果 (蘋果) [píng guǒ] apple
    S: .
    S: 151 ...
    S: .
    S: 250 ok
    C: MATCH * lev appel
    S: 152 1 matches found
    S: cedict-en "apple"
    S: .
    S: 250 ok
    C: QUIT
    S: 221 bye

The rules this module follows:

* Commands are case-insensitive; parameters are separated by spaces and may
  be quoted (``"apple pie"`` or ``'apple pie'``, with backslash escapes).
* A command line is at most 1024 bytes with its CRLF; a longer one is
  answered ``500`` and skipped, and the session goes on.  Text lines we send
  are cut below the same limit.
* A text body (definitions, lists, information) is UTF-8 lines ending in
  CRLF, then a line holding a single dot; a line that starts with a dot is
  sent with one more (dot-stuffing), which the client removes.
* After ``OPTION MIME`` every text body starts with MIME headers and a blank
  line.
* Each reply is sent in one write: dictd sends several small writes
  without TCP_NODELAY, so a client may wait ~40 ms for a delayed ACK on
  each query.
* ``AUTH user md5hex`` proves the user's DICT key (see
  ``ionet.dict.accounts``); after it, definitions looked up go into that
  user's history, as they would over the JSON protocol.

The commands are a table (:data:`COMMANDS`, pyftpdlib's ``proto_cmds``):
each names its handler, how many parameters it takes, its syntax and its
help line; dispatch, the ``501`` check and ``HELP`` all read it.

Status codes used: 110 111 112 113 114 150 151 152 210 220 221 230 250 420
500 501 502 503 531 550 551 552 554 555.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ionet import __version__
from ionet.core.errors import FrameTooLarge, UserError
from ionet.core.protocol import Outcome, Transport
from ionet.dict.accounts import AccountError
from ionet.dict.serial import SerialLineProtocol
from ionet.dict.service import (
    STRATEGIES,
    DictService,
    LookupResult,
    UnknownDatabase,
    UnknownStrategy,
)

log = logging.getLogger("ionet.dict.rfc2229")

DEFAULT_PORT = 2628
#: RFC 2229: a command line is at most 1024 characters, CRLF included.
MAX_COMMAND = 1024 - 2
#: Text lines we send are cut to this many bytes (plus CRLF).
MAX_TEXT_LINE = 1000
#: Sent to a connection refused at the connection limit.
BUSY_REPLY = b"420 Server temporarily unavailable\r\n"
MIME_HEADER = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"

_session_ids = itertools.count(1)


@dataclass(frozen=True)
class Command:
    """One DICT command.

    Attributes:
        handler: the ``cmd_*`` method.
        min_args / max_args: how many parameters (``max_args`` None: the
            rest of the line is one parameter, as CLIENT's text).
        syntax / help: the ``HELP`` line.
    """

    handler: str
    min_args: int
    max_args: int | None
    syntax: str
    help: str


COMMANDS: dict[str, Command] = {
    "DEFINE": Command("cmd_define", 2, 2, "DEFINE database word", "look up word in database"),
    "MATCH": Command("cmd_match", 3, 3, "MATCH database strategy word",
                     "match word in database using strategy"),
    "SHOW": Command("cmd_show", 1, 2, "SHOW DB | STRAT | INFO database | SERVER",
                    "list databases or strategies, describe a database or the server"),
    "CLIENT": Command("cmd_client", 1, None, "CLIENT info", "identify client to server"),
    "AUTH": Command("cmd_auth", 2, 2, "AUTH user string",
                    "authenticate: string = md5(msg-id + your DICT key)"),
    "OPTION": Command("cmd_option", 1, 1, "OPTION MIME", "use MIME headers"),
    "STATUS": Command("cmd_status", 0, 0, "STATUS", "display timing information"),
    "HELP": Command("cmd_help", 0, 0, "HELP", "display this help information"),
    "QUIT": Command("cmd_quit", 0, 0, "QUIT", "terminate connection"),
    "SASLAUTH": Command("cmd_not_implemented", 0, None, "SASLAUTH mechanism initial-response",
                        "SASL authentication (not implemented)"),
}


def split_params(text: str) -> list[str]:
    """Split a command's parameters: spaces separate, quotes group, ``\\`` escapes.

    >>> split_params('DEFINE wn "apple pie"')
    ['DEFINE', 'wn', 'apple pie']

    Raises:
        ValueError: an unterminated quote.
    """
    params: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t":
            i += 1
            continue
        buf: list[str] = []
        if ch in "\"'":
            quote, i = ch, i + 1
            while True:
                if i >= n:
                    raise ValueError("unterminated quote")
                ch = text[i]
                if ch == "\\" and i + 1 < n:
                    buf.append(text[i + 1])
                    i += 2
                elif ch == quote:
                    i += 1
                    break
                else:
                    buf.append(ch)
                    i += 1
        else:
            while i < n and text[i] not in " \t":
                if text[i] == "\\" and i + 1 < n:
                    buf.append(text[i + 1])
                    i += 2
                else:
                    buf.append(text[i])
                    i += 1
        params.append("".join(buf))
    return params


def quote(text: str) -> bytes:
    """A DICT quoted string: ``"..."`` with backslash before ``"`` and ``\\``."""
    return b'"' + text.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"'


def text_lines(text: str) -> list[bytes]:
    """A text body: CRLF lines, dot-stuffed, long lines cut, then the lone dot."""
    out = []
    for line in text.splitlines():
        data = line.encode()
        while len(data) > MAX_TEXT_LINE:
            cut = MAX_TEXT_LINE
            while cut > 0 and (data[cut] & 0xC0) == 0x80:  # not inside a UTF-8 character
                cut -= 1
            piece, data = data[:cut], data[cut:]
            out.append((b"." + piece if piece.startswith(b".") else piece) + b"\r\n")
        out.append((b"." + data if data.startswith(b".") else data) + b"\r\n")
    out.append(b".\r\n")
    return out


class DictProtocol(SerialLineProtocol):
    """One client connection of the DICT protocol.

    Args:
        service: the shared dictionary service.
        hostname: the name in the banner and in msg-ids.
    """

    def __init__(self, service: DictService, hostname: str | None = None) -> None:
        super().__init__(MAX_COMMAND + 1)  # the framer splits at LF: the CR counts
        self.service = service
        self.hostname = hostname or socket.gethostname()
        self.msg_id = (f"<{os.getpid()}.{next(_session_ids)}.{int(time.time())}."
                       f"{secrets.token_hex(4)}@{self.hostname}>")
        self.mime = False
        self.user: str | None = None
        self.client = ""
        self.defines = 0
        self.matches = 0
        self.started = time.monotonic()

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        self.write(f"220 {self.hostname} ionet {__version__} <auth.mime> {self.msg_id}\r\n"
                   .encode())

    # -- dispatch --------------------------------------------------------------------

    def line_too_long(self, exc: FrameTooLarge) -> None:
        self.status(500, "line too long")

    def handle_line(self, line: bytes) -> None:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self.status(500, "syntax error, command is not valid UTF-8")
            return
        if not text.strip():
            return
        name, _, rest = text.strip().partition(" ")
        command = COMMANDS.get(name.upper())
        if command is None:
            self.status(500, "unknown command")
            return
        if command.max_args is None:
            args = [rest.strip()] if rest.strip() else []
        else:
            try:
                args = split_params(rest)
            except ValueError:
                self.status(501, "syntax error, illegal parameters")
                return
        too_many = command.max_args is not None and len(args) > command.max_args
        if len(args) < command.min_args or too_many:
            self.status(501, "syntax error, illegal parameters")
            return
        getattr(self, command.handler)(*args)

    # -- replies -----------------------------------------------------------------------

    def status(self, code: int, text: str) -> None:
        self.write(f"{code} {text}\r\n".encode())

    def body(self, first: str, text_parts: list[bytes]) -> list[bytes]:
        """A reply line followed by a text body (MIME header first if asked)."""
        return [first.encode() + b"\r\n", *([MIME_HEADER] if self.mime else []), *text_parts]

    def stats(self) -> str:
        return (f"[d/m/c = {self.defines}/{self.matches}/0; "
                f"{time.monotonic() - self.started:.3f}r 0.000u 0.000s]")

    def run(self, func: Callable[[], Any], then: Callable[[Any], None]) -> None:
        """Run ``func`` in a worker; ``then(value)``, or the right error status."""
        def finished(outcome: Outcome[Any]) -> None:
            try:
                value = outcome.unwrap()
            except UnknownDatabase:
                self.status(550, "invalid database, use SHOW DB for list")
            except UnknownStrategy:
                self.status(551, "invalid strategy, use SHOW STRAT for a list")
            except UserError as exc:
                log.error("dictionary store unavailable: %s", exc)
                self.status(420, "server temporarily unavailable")
            except Exception:
                log.exception("a DICT request failed")
                self.status(420, "server temporarily unavailable")
            else:
                then(value)

        self.defer(func, finished)

    # -- the commands ------------------------------------------------------------------

    def cmd_define(self, database: str, word: str) -> None:
        service, user = self.service, self.user

        def lookup() -> tuple[LookupResult, dict[str, str]]:
            result = service.define(word, database, user, suggest=False)
            return result, {db.name: db.short for db in service.databases()}

        def found(answer: tuple[LookupResult, dict[str, str]]) -> None:
            result, names = answer
            if not result.definitions:
                self.status(552, "no match")
                return
            self.defines += len(result.definitions)
            parts = [f"150 {len(result.definitions)} definitions retrieved\r\n".encode()]
            for d in result.definitions:
                parts.append(b"151 " + quote(d.word) + b" " + d.db.encode() + b" "
                             + quote(names.get(d.db, d.db)) + b"\r\n")
                if self.mime:
                    parts.append(MIME_HEADER)
                parts.extend(text_lines(d.text))
            parts.append(f"250 ok {self.stats()}\r\n".encode())
            self.write(b"".join(parts))

        self.run(lookup, found)

    def cmd_match(self, database: str, strategy: str, word: str) -> None:
        service = self.service

        def found(pairs: list[tuple[str, str]]) -> None:
            if not pairs:
                self.status(552, "no match")
                return
            self.matches += len(pairs)
            lines = [f"{db} ".encode() + quote(word) + b"\r\n" for db, word in pairs]
            self.write(b"".join(self.body(f"152 {len(pairs)} matches found", lines)
                                + [b".\r\n", f"250 ok {self.stats()}\r\n".encode()]))

        self.run(lambda: service.match(database, strategy.lower(), word), found)

    def cmd_show(self, what: str, argument: str | None = None) -> None:
        what = what.upper()
        service = self.service
        if what in ("DB", "DATABASES") and argument is None:
            def listed(dbs: list[Any]) -> None:
                if not dbs:
                    self.status(554, "no databases present")
                    return
                lines = [db.name.encode() + b" " + quote(db.short) + b"\r\n" for db in dbs]
                self.write(b"".join(self.body(f"110 {len(dbs)} databases present", lines)
                                    + [b".\r\n", b"250 ok\r\n"]))
            self.run(service.databases, listed)
        elif what in ("STRAT", "STRATEGIES") and argument is None:
            lines = [name.encode() + b" " + quote(text) + b"\r\n"
                     for name, text in STRATEGIES.items()]
            self.write(b"".join(self.body(f"111 {len(lines)} strategies available", lines)
                                + [b".\r\n", b"250 ok\r\n"]))
        elif what == "INFO" and argument is not None:
            def described(dbs: list[Any]) -> None:
                db = dbs[0]
                text = f"============ {db.name} ============\n{db.short}\n\n{db.info}"
                self.write(b"".join(self.body("112 database information follows",
                                              text_lines(text)) + [b"250 ok\r\n"]))
            if argument in ("*", "!"):
                self.status(550, "invalid database, use SHOW DB for list")
                return
            self.run(lambda: service.select(argument), described)
        elif what == "SERVER" and argument is None:
            def server(dbs: list[Any]) -> None:
                uptime = time.time() - service.started
                rows = "\n".join(f"{db.name:<12} {db.entries:>9} entries  {db.short}"
                                 for db in dbs)
                text = (f"ionet {__version__} dictionary server on {self.hostname}\n"
                        f"up {uptime:.0f} s; store: {service.store.describe()}\n\n"
                        f"{rows}\n\nThe JSON protocol of the same server serves accounts "
                        "and history; 'SHOW INFO db' names each source and its licence.")
                self.write(b"".join(self.body("114 server information", text_lines(text))
                                    + [b"250 ok\r\n"]))
            self.run(service.databases, server)
        else:
            self.status(501, "syntax error, illegal parameters")

    def cmd_client(self, text: str) -> None:
        self.client = text[:200]
        self.status(250, "ok")

    def cmd_auth(self, name: str, answer: str) -> None:
        accounts, msg_id = self.service.accounts, self.msg_id

        def finished(outcome: Outcome[str]) -> None:
            try:
                self.user = outcome.unwrap()
            except AccountError:
                self.user = None
                self.hold(self.service.login_delay, lambda: self.status(
                    531, 'access denied, use "SHOW INFO" for server information'))
            except Exception:
                log.exception("DICT AUTH failed")
                self.status(420, "server temporarily unavailable")
            else:
                self.status(230, "authentication successful")

        self.defer(lambda: accounts.check_dict_auth(name, msg_id, answer), finished)

    def cmd_option(self, option: str) -> None:
        if option.upper() == "MIME":
            self.mime = True
            self.status(250, "ok - using MIME headers")
        else:
            self.status(503, "parameter not implemented")

    def cmd_status(self) -> None:
        self.status(210, f"status {self.stats()}")

    def cmd_help(self) -> None:
        lines = [f"{c.syntax:<40} -- {c.help}\r\n".encode() for c in COMMANDS.values()
                 if c.handler != "cmd_not_implemented"]
        self.write(b"".join(self.body("113 help text follows", lines)
                            + [b".\r\n", b"250 ok\r\n"]))

    def cmd_quit(self) -> None:
        self.status(221, f"bye {self.stats()}")
        self.close()

    def cmd_not_implemented(self, *args: str) -> None:
        self.status(502, "command not implemented")

    def server_stopping(self) -> None:
        if not self._busy:
            self.status(421, "server shutting down")
            self.close()
