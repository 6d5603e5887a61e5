"""The administrator: announcements from the server's console or from afar.

The course's chat lets the server's operator type "管理员消息" lines that
everyone sees.  Here:

* lines typed on the console of ``ionet chat serve`` become announcements
  (:class:`Console`, a thread reading standard input);
* ``ionet chat announce TEXT`` sends one to a running server over its TCP
  port, as an authenticated administrator: ``{"type": "auth", "token": K}``
  then ``{"type": "announce", "text": T}``.  The token is a random secret
  the server writes to ``DATA_DIR/chat-admin-token`` (mode 0600) on its
  first start; whoever can read that file is the administrator.

The administrator's name is reserved (:data:`ionet.chat.room.RESERVED_NAMES`),
so no one in the chat can pass for them.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ionet.core.errors import UserError

__all__ = ["TOKEN_FILE", "token_path", "load_or_create_token", "read_token", "Console",
           "send_announcement"]

log = logging.getLogger("ionet.chat")

TOKEN_FILE = "chat-admin-token"


def token_path(data_dir: Path) -> Path:
    return Path(data_dir) / TOKEN_FILE


def load_or_create_token(data_dir: Path) -> str:
    """The administrator token in ``data_dir``, created (0600) if missing."""
    path = token_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_token(data_dir)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    return token


def read_token(data_dir: Path) -> str:
    """Raises UserError if the token file is missing or empty."""
    path = token_path(data_dir)
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise UserError(f"cannot read the administrator token {path}: {exc.strerror}; "
                        "start the server once with this --data-dir") from None
    if not token:
        raise UserError(f"the administrator token file {path} is empty")
    return token


class Console:
    """Read lines from ``stream`` (the server's stdin); each is announced.

    A daemon thread, so a server whose console never types stops anyway; it
    ends at end of input (stdin from /dev/null ends at once).
    """

    def __init__(self, announce: Callable[[str], None], stream: IO[str]) -> None:
        self.announce = announce
        self.stream = stream
        self.thread = threading.Thread(target=self._run, name="chat-console", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            for line in self.stream:
                text = line.strip()
                if text:
                    self.announce(text)
                    log.info("chat: announced %r", text)
        except (OSError, ValueError):
            pass  # the console went away


def send_announcement(host: str, port: int, token: str, text: str, timeout: float = 10.0) -> None:
    """Authenticate as the administrator and announce ``text``.

    Raises:
        UserError: the server is unreachable or refused the token or text.
    """
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise UserError(f"cannot reach the chat server at {host}:{port}: {exc}") from None
    with sock:
        requests = [{"type": "auth", "token": token}, {"type": "announce", "text": text}]
        try:
            sock.sendall(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
            reader = sock.makefile("rb")
            for request in requests:
                reply = json.loads(reader.readline() or b"null")
                if reply is None:
                    raise UserError("the chat server closed the connection")
                if reply.get("type") == "error":
                    raise UserError(f"the chat server refused: {reply.get('message')}")
                if reply.get("type") != "ok" or reply.get("what") != request["type"]:
                    raise UserError(f"unexpected reply from the chat server: {reply}")
            reader.close()
        except (OSError, ValueError) as exc:
            raise UserError(f"talking to the chat server failed: {exc}") from None
