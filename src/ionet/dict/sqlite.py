"""The SQLite store: one file in the data folder, safe under every engine.

Why these settings:

* ``journal_mode=WAL``: readers and the one writer do not block each other,
  so look-ups go on while someone registers or an import runs; the mode is
  stored in the file, every later connection inherits it.
* ``busy_timeout``: when two processes (the fork engine, ``--workers``) write
  at the same moment, the second waits for the lock instead of failing at
  once with "database is locked".
* ``synchronous=NORMAL``: with WAL, a commit is durable against a crash of
  the process, and the file stays consistent after a power cut; only the
  last commits may be lost then.  A history line is worth that.
* autocommit (``isolation_level=None``) and an explicit ``BEGIN IMMEDIATE``
  for multi-statement writes: the write lock is taken up front, so two
  transactions never deadlock upgrading from read to write, which the busy
  timeout cannot resolve.
* ``check_same_thread=False``: a connection moves between worker threads,
  but the pool in ``store.py`` hands it to one thread at a time.

Connections are opened lazily, in the process that uses them: a forked child
opens its own (never one inherited from the parent, which SQLite forbids).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ionet.dict.store import SqlStore

#: Milliseconds a connection waits for another process's write lock.
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS dbs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        short TEXT NOT NULL,
        info TEXT NOT NULL,
        keyrule TEXT NOT NULL DEFAULT 'fold',
        entries INTEGER NOT NULL DEFAULT 0,
        generation INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS words (
        id INTEGER PRIMARY KEY,
        db_id INTEGER NOT NULL,
        word TEXT NOT NULL,
        norm TEXT NOT NULL,
        mean TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS words_norm ON words (db_id, norm)",
    """CREATE TABLE IF NOT EXISTS user (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        passwd TEXT NOT NULL,
        created REAL NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0,
        locked_until REAL NOT NULL DEFAULT 0,
        dict_key TEXT)""",
    """CREATE TABLE IF NOT EXISTS hist (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        word TEXT NOT NULL,
        time REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS hist_name ON hist (name, id)",
]


class SQLiteStore(SqlStore):
    """The store in one SQLite file.

    Args:
        path: the database file (created if missing).
    """

    placeholder = "?"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        super().__init__()

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                               isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _schema(self) -> list[str]:
        return list(_SCHEMA)

    def _columns(self, cur: Any, table: str) -> set[str] | None:
        cur.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        if cur.fetchone() is None:
            return None
        cur.execute(f"PRAGMA table_info({table})")  # table: one of our own names
        return {str(row[1]) for row in cur.fetchall()}

    def _begin(self, cur: Any) -> None:
        cur.execute("BEGIN IMMEDIATE")

    def _is_duplicate(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)
