"""The dictionary's own protocol (port 8888): one JSON object per line, each way.

The course's protocol was one letter and space-separated fields
(``L name pwd``), which breaks on a password with a space and cannot carry a
multi-line definition.  Here every request and every reply is one JSON
object on one line (UTF-8, ending with ``\\n``; JSON escapes any newline
inside a string), framed by :class:`ionet.core.framing.LineFramer`, so
requests may arrive split or merged in any way.

Requests (``"id"`` is optional; a reply repeats it, for clients that
pipeline)::

    {"op": "register", "name": "alice", "password": "s3cret-pw"}
    {"op": "login", "name": "alice", "password": "s3cret-pw"}
    {"op": "logout"}
    {"op": "lookup", "word": "apple", "db": "*"}     db: a name, "*" all, "!" first match
    {"op": "history", "limit": 10}                   limit 0: all; needs a login
    {"op": "databases"}                              the dictionaries, with descriptions
    {"op": "about"}                                  data sources and licences
    {"op": "dict_key"}                               a new secret for DICT AUTH; needs a login
    {"op": "help"}                                   the operations, from the command table
    {"op": "quit"}                                   the server answers, then closes

Replies::

    {"ok": true, "name": "alice"}                                     register, login
    {"ok": true, "word": "apple", "definitions": [{"db": "cedict-en", "word": "apple",
     "text": "apple\\n   苹果 ..."}], "suggestions": []}                 lookup
    {"ok": true, "word": "appel", "definitions": [], "suggestions": ["apple", ...]}
    {"ok": true, "history": [{"name": "alice", "word": "apple",
     "time": "2024-05-01T12:00:00Z"}]}                                 history, newest first
    {"ok": false, "error": "login-failed", "message": "wrong user name or password"}

Error codes: ``bad-json`` (not a JSON object, or not UTF-8), ``too-long``
(a line over 16 KiB), ``unknown-op``, ``bad-request`` (a field missing or of
the wrong type), ``bad-name``, ``bad-password``, ``name-taken``,
``login-failed``, ``locked``, ``not-logged-in``, ``no-such-db``,
``server-error``, and ``busy`` (sent alone, then the connection closes, when
the server is at its connection limit).  After any error the connection stays usable.

A look-up while logged in is recorded in that user's history.  A failed
login is answered after a delay (one second by default) during which the
connection reads nothing more.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ionet.core.errors import FrameTooLarge, UserError
from ionet.core.protocol import Outcome
from ionet.dict.accounts import AccountError
from ionet.dict.serial import SerialLineProtocol
from ionet.dict.service import MAX_WORD, DictService, LookupResult, UnknownDatabase, iso_time

log = logging.getLogger("ionet.dict.protocol")

DEFAULT_PORT = 8888
#: The longest request line (bytes, newline excluded).
MAX_REQUEST = 16 * 1024
#: Sent to a connection refused at the connection limit.
BUSY_REPLY = (b'{"ok":false,"error":"busy","message":"the server is at its connection limit; '
              b'try again later"}\n')

Request = dict[str, Any]


@dataclass(frozen=True)
class Op:
    """One operation of the protocol and what it needs.

    Attributes:
        handler: the ``op_*`` method answering it.
        fields: required field -> type (checked before the handler runs).
        login: the operation needs a logged-in user.
        help: one line for ``{"op": "help"}``.
    """

    handler: str
    fields: tuple[tuple[str, type], ...] = ()
    login: bool = False
    help: str = ""


#: The command table (pyftpdlib's ``proto_cmds`` shape): validation, login
#: checks and help all come from here.
OPS: dict[str, Op] = {
    "register": Op("op_register", (("name", str), ("password", str)),
                   help="create an account: name (1-32 characters, no spaces), password"),
    "login": Op("op_login", (("name", str), ("password", str)), help="log in"),
    "logout": Op("op_logout", login=True, help="log out"),
    "lookup": Op("op_lookup", (("word", str),),
                 help="look a word up; db: a dictionary name, '*' (all) or '!' (first match)"),
    "history": Op("op_history", login=True,
                  help="your look-ups, newest first; limit: how many (10), 0 for all"),
    "databases": Op("op_databases", help="the dictionaries on this server"),
    "about": Op("op_about", help="where the data comes from, and its licences"),
    "dict_key": Op("op_dict_key", login=True,
                   help="make a new secret for DICT AUTH (dict --user NAME --key SECRET)"),
    "help": Op("op_help", help="this list"),
    "quit": Op("op_quit", help="end the session"),
}


def encode(message: dict[str, Any]) -> bytes:
    """One JSON line: compact, UTF-8 (not \\u escapes), newline-terminated."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class DictJsonProtocol(SerialLineProtocol):
    """One client connection of the JSON dictionary protocol.

    Args:
        service: the shared dictionary service.
    """

    def __init__(self, service: DictService) -> None:
        super().__init__(MAX_REQUEST)
        self.service = service
        self.user: str | None = None

    # -- framing and dispatch ----------------------------------------------------

    def line_too_long(self, exc: FrameTooLarge) -> None:
        self.error(None, "too-long", f"request longer than {MAX_REQUEST} bytes")

    def handle_line(self, line: bytes) -> None:
        if not line.strip():
            return  # blank lines are keep-alives
        try:
            request = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self.error(None, "bad-json", "a request is one JSON object per line, in UTF-8")
            return
        if not isinstance(request, dict):
            self.error(None, "bad-json", "a request must be a JSON object")
            return
        req_id = request.get("id")
        op_name = request.get("op")
        op = OPS.get(op_name) if isinstance(op_name, str) else None
        if op is None:
            self.error(req_id, "unknown-op", f"unknown op {op_name!r}; try {{\"op\": \"help\"}}")
            return
        for name, kind in op.fields:
            if not isinstance(request.get(name), kind):
                self.error(req_id, "bad-request", f"{op_name} needs {name!r} "
                                                  f"({kind.__name__})")
                return
        if op.login and self.user is None:
            self.error(req_id, "not-logged-in", f"log in first to use {op_name}")
            return
        getattr(self, op.handler)(request, req_id)

    # -- replies -------------------------------------------------------------------

    def reply(self, req_id: Any, **data: Any) -> None:
        message: dict[str, Any] = {"ok": True, **data}
        if req_id is not None:
            message["id"] = req_id
        self.write(encode(message))

    def error(self, req_id: Any, code: str, message: str) -> None:
        reply: dict[str, Any] = {"ok": False, "error": code, "message": message}
        if req_id is not None:
            reply["id"] = req_id
        self.write(encode(reply))

    def run(self, req_id: Any, func: Callable[[], Any], then: Callable[[Any], None],
            on_account_error: Callable[[AccountError], None] | None = None) -> None:
        """Run ``func`` in a worker; ``then(value)``, or an error reply."""
        def finished(outcome: Outcome[Any]) -> None:
            try:
                value = outcome.unwrap()
            except AccountError as exc:
                if on_account_error is not None:
                    on_account_error(exc)
                else:
                    self.error(req_id, exc.code, exc.message)
            except UnknownDatabase as exc:
                self.error(req_id, "no-such-db", f"no dictionary called {exc.args[0]!r}; "
                                                 "try {\"op\": \"databases\"}")
            except UserError as exc:
                log.error("dictionary store unavailable: %s", exc)
                self.error(req_id, "server-error", "the dictionary database is unavailable")
            except Exception:
                log.exception("a dictionary request failed")
                self.error(req_id, "server-error", "internal error")
            else:
                then(value)

        self.defer(func, finished)

    # -- the operations ------------------------------------------------------------

    def op_register(self, request: Request, req_id: Any) -> None:
        accounts = self.service.accounts
        self.run(req_id, lambda: accounts.register(request["name"], request["password"]),
                 lambda name: self.reply(req_id, name=name))

    def op_login(self, request: Request, req_id: Any) -> None:
        accounts = self.service.accounts
        self.user = None  # a new login ends the old one, whatever its outcome

        def logged_in(name: str) -> None:
            self.user = name
            log.debug("user %s logged in from %s", name, self._peer())
            self.reply(req_id, name=name)

        def refused(exc: AccountError) -> None:
            # Answer later, reading nothing meanwhile: guessing gets slow.
            self.hold(self.service.login_delay, lambda: self.error(req_id, exc.code, exc.message))

        self.run(req_id, lambda: accounts.login(request["name"], request["password"]),
                 logged_in, refused)

    def op_logout(self, request: Request, req_id: Any) -> None:
        name, self.user = self.user, None
        self.reply(req_id, name=name)

    def op_lookup(self, request: Request, req_id: Any) -> None:
        word = request["word"].strip()
        db = request.get("db", "*")
        if not word or len(word) > MAX_WORD:
            self.error(req_id, "bad-request", f"a word has 1 to {MAX_WORD} characters")
            return
        if not isinstance(db, str):
            self.error(req_id, "bad-request", "db must be a string")
            return
        service, user = self.service, self.user

        def found(result: LookupResult) -> None:
            self.reply(req_id, word=result.word,
                       definitions=[{"db": d.db, "word": d.word, "text": d.text}
                                    for d in result.definitions],
                       suggestions=result.suggestions)

        self.run(req_id, lambda: service.define(word, db, user), found)

    def op_history(self, request: Request, req_id: Any) -> None:
        limit = request.get("limit", 10)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            self.error(req_id, "bad-request", "limit must be 0 (all) or a positive integer")
            return
        service, user = self.service, self.user
        assert user is not None
        self.run(req_id, lambda: service.history(user, limit),
                 lambda rows: self.reply(req_id, history=[
                     {"name": h.name, "word": h.word, "time": iso_time(h.time)} for h in rows]))

    def op_databases(self, request: Request, req_id: Any) -> None:
        service = self.service
        self.run(req_id, service.databases, lambda dbs: self.reply(req_id, databases=[
            {"name": db.name, "short": db.short, "entries": db.entries} for db in dbs]))

    def op_about(self, request: Request, req_id: Any) -> None:
        self.run(req_id, self.service.about, lambda text: self.reply(req_id, about=text))

    def op_dict_key(self, request: Request, req_id: Any) -> None:
        accounts, user = self.service.accounts, self.user
        assert user is not None
        self.run(req_id, lambda: accounts.new_dict_key(user),
                 lambda key: self.reply(req_id, name=user, key=key))

    def op_help(self, request: Request, req_id: Any) -> None:
        self.reply(req_id, ops={name: {"fields": [f for f, _ in op.fields], "login": op.login,
                                       "help": op.help} for name, op in OPS.items()})

    def op_quit(self, request: Request, req_id: Any) -> None:
        self.reply(req_id, bye=True)
        self.close()

    def server_stopping(self) -> None:
        if not self._busy:
            self.close()

    def _peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
