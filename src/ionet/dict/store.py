"""The dictionary's storage: one ``Store`` interface, SQLite and MySQL behind it.

Like pyftpdlib's authorizers (one interface, several backends), everything
the dictionary keeps goes through :class:`Store`: the dictionaries and their
entries, the user accounts and the look-up history.  Two backends implement
it, sharing the SQL in :class:`SqlStore`:

* :class:`ionet.dict.sqlite.SQLiteStore`, the default: one file in the data
  folder, WAL mode, so readers never wait for the writer;
* :class:`ionet.dict.mysql.MySQLStore`, with PyMySQL, as the course uses.

The tables keep the course's names and columns, with what a real service
needs added::

    words(id, word, mean, db_id, norm)     one row per entry; norm is the search key
    user(id, name, passwd, created, failures, locked_until, dict_key)
    hist(id, name, word, time)             time: seconds since the epoch (UTC)
    dbs(id, name, short, info, keyrule, entries, generation)   the dictionaries
    meta(name, value)                      schema version, markers

Several dictionaries ("databases" in RFC 2229's sense) live side by side in
``words``, told apart by ``db_id``; each has a name, a short description and
its full information (source, licence, attribution).  Look-ups compare the
normalised ``norm`` column (``ionet.dict.keys``) through the ``(db_id,
norm)`` index, so neither an exact look-up nor a prefix range scans the
table.

Every statement is parameterised: values never enter SQL text.  Statements
are written with ``?`` placeholders and rewritten for drivers that want
``%s``.

Threads and processes.  Every method blocks (it runs a query), so protocols
call it through ``transport.run_in_worker``.  A connection is never used by
two threads at once: each call takes one from a small pool and gives it back
(a ``deque``, whose ``append``/``pop`` are atomic, so the pool needs no lock,
which matters under gevent, where ``threading.Lock`` is patched but worker
threads are real).  The pool remembers the process it was filled in: after
a ``fork`` a child never touches its parent's connections (SQLite forbids it,
and two processes sharing one MySQL socket would interleave their packets)
but opens its own on first use.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ionet.core.errors import UserError
from ionet.dict.keys import MAX_KEY, key_for

log = logging.getLogger("ionet.dict.store")

#: The schema this code writes; ``setup()`` upgrades older ones to it.
SCHEMA_VERSION = 1
#: Rows sent to the database per ``executemany`` during an import.
IMPORT_BATCH = 5000
#: The file name of the default SQLite database inside the data folder.
SQLITE_FILE = "dict.sqlite3"
#: Idle connections a store keeps per process.
POOL_SIZE = 32


@dataclass(frozen=True)
class DictionaryMeta:
    """What describes a dictionary before its entries: name, descriptions, key rule.

    Attributes:
        name: the database name in RFC 2229's sense (no spaces): ``cedict``.
        short: a one-line description (``SHOW DB``).
        info: the full description, with source and licence (``SHOW INFO``).
        keyrule: how headwords become search keys (``ionet.dict.keys``).
    """

    name: str
    short: str
    info: str = ""
    keyrule: str = "fold"


@dataclass(frozen=True)
class DatabaseInfo:
    """A dictionary as stored: its metadata, size and generation.

    ``generation`` grows by one each time the dictionary is imported again, so
    a process holding a cached key list knows when to reload it.
    """

    id: int
    name: str
    short: str
    info: str
    keyrule: str
    entries: int
    generation: int


@dataclass(frozen=True)
class Entry:
    """One headword and its definition text, as an importer reads it."""

    word: str
    text: str


@dataclass(frozen=True)
class Definition:
    """One definition found by a look-up: which dictionary, which headword, the text."""

    db: str
    word: str
    text: str


@dataclass(frozen=True)
class UserRecord:
    """An account as stored (``passwd`` is an argon2id hash, never a password)."""

    name: str
    passwd: str
    failures: int
    locked_until: float
    dict_key: str | None


@dataclass(frozen=True)
class HistoryEntry:
    """One look-up in a user's history; ``time`` in seconds since the epoch."""

    name: str
    word: str
    time: float


class NameTaken(Exception):
    """``add_user`` found the name already registered (also under a race)."""


class Store(ABC):
    """Everything the dictionary service stores.  Every method may block.

    Implementations must be safe to call from several threads and, after a
    ``fork``, from several processes at once.
    """

    # -- lifecycle --------------------------------------------------------

    @abstractmethod
    def setup(self) -> None:
        """Create the tables, or upgrade an older schema (the course's too)."""

    @abstractmethod
    def close(self) -> None:
        """Close this process's idle connections (new calls reopen them)."""

    @abstractmethod
    def describe(self) -> str:
        """Where the data lives, for logs and messages (no password)."""

    @abstractmethod
    def get_meta(self, name: str) -> str | None:
        """A value from the ``meta`` table, or None."""

    @abstractmethod
    def set_meta(self, name: str, value: str) -> None:
        """Set a value in the ``meta`` table."""

    # -- dictionaries -----------------------------------------------------

    @abstractmethod
    def databases(self) -> list[DatabaseInfo]:
        """Every dictionary, in the order they were first imported."""

    @abstractmethod
    def replace_dictionary(self, meta: DictionaryMeta, entries: Iterable[Entry],
                           progress: Callable[[int], None] | None = None) -> int:
        """Import ``entries`` as dictionary ``meta.name``, replacing any old copy.

        All in one transaction: readers see the old dictionary or the new one,
        never half of it.  ``progress(n)`` is called after each batch with the
        number of entries just written.  Returns the number of entries.
        """

    @abstractmethod
    def remove_dictionary(self, name: str) -> bool:
        """Delete a dictionary and its entries; False if there was none."""

    @abstractmethod
    def definitions(self, db_ids: Sequence[int], key: str) -> list[tuple[int, str, str]]:
        """``(db_id, word, text)`` of every entry whose key is ``key``, in
        ``db_ids``; ordered by dictionary, then by the order of import."""

    @abstractmethod
    def headwords(self, db_id: int, keys: Sequence[str]) -> list[str]:
        """The distinct headwords of dictionary ``db_id`` with one of ``keys``."""

    @abstractmethod
    def prefix_headwords(self, db_id: int, prefix: str, limit: int) -> list[str]:
        """Headwords whose key starts with ``prefix`` (an index range), key order."""

    @abstractmethod
    def keys(self, db_id: int) -> list[str]:
        """Every distinct key of a dictionary, sorted (for ``ionet.dict.suggest``)."""

    # -- accounts ---------------------------------------------------------

    @abstractmethod
    def add_user(self, name: str, passwd: str) -> None:
        """Register ``name`` with the hash ``passwd``.

        Raises:
            NameTaken: the name exists, even if registered a moment ago by a
                concurrent call (the UNIQUE constraint decides, not a check).
        """

    @abstractmethod
    def user(self, name: str) -> UserRecord | None:
        """The account called ``name``, or None."""

    @abstractmethod
    def login_failed(self, name: str, now: float, max_failures: int, lock_for: float) -> float:
        """Count a failed login; lock after ``max_failures`` in a row.

        Returns ``locked_until`` (0 when not locked).
        """

    @abstractmethod
    def login_succeeded(self, name: str, new_hash: str | None = None) -> None:
        """Reset the failure count; store ``new_hash`` if the hash was upgraded."""

    @abstractmethod
    def set_dict_key(self, name: str, key: str | None) -> None:
        """Set (or clear) the user's shared secret for DICT ``AUTH``."""

    # -- history ----------------------------------------------------------

    @abstractmethod
    def add_history(self, name: str, word: str, when: float) -> None:
        """Record that ``name`` looked up ``word`` at ``when``."""

    @abstractmethod
    def history(self, name: str, limit: int = 10) -> list[HistoryEntry]:
        """``name``'s look-ups, newest first; ``limit`` 0 for all of them."""


class ConnectionPool:
    """Idle DB-API connections of one process, handed to one thread at a time.

    Args:
        connect: opens a new connection.
        size: idle connections kept; more are closed when given back.
    """

    def __init__(self, connect: Callable[[], Any], size: int = POOL_SIZE) -> None:
        self._connect = connect
        self._size = size
        self._idle: collections.deque[Any] = collections.deque()
        self._pid = os.getpid()

    def acquire(self) -> Any:
        """A connection for this thread alone until ``release`` or ``discard``."""
        if os.getpid() != self._pid:
            # Forked: the idle connections belong to the parent.  Forget them
            # without closing (closing could disturb the parent's session).
            self._idle = collections.deque()
            self._pid = os.getpid()
        try:
            return self._idle.pop()
        except IndexError:
            return self._connect()

    def release(self, conn: Any) -> None:
        """Give a healthy connection back."""
        if os.getpid() == self._pid and len(self._idle) < self._size:
            self._idle.append(conn)
        else:
            _close_quietly(conn)

    def discard(self, conn: Any) -> None:
        """Close a connection that failed; the next ``acquire`` opens a fresh one."""
        _close_quietly(conn)

    def close(self) -> None:
        """Close every idle connection of this process."""
        if os.getpid() != self._pid:
            self._idle = collections.deque()
            return
        while self._idle:
            _close_quietly(self._idle.pop())


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception as exc:  # a broken connection may fail to close; it is gone anyway
        log.debug("closing a database connection failed: %s", exc)


class SqlStore(Store):
    """The SQL every backend shares; subclasses connect and write the DDL.

    Subclasses set :attr:`placeholder`, implement :meth:`_connect`,
    :meth:`_schema`, :meth:`_columns`, :meth:`_begin`, and say which
    exceptions mean "duplicate key" and "connection lost".
    """

    #: The driver's parameter marker: "?" (sqlite3) or "%s" (PyMySQL).
    placeholder = "?"

    def __init__(self) -> None:
        self._pool = ConnectionPool(self._connect)

    # -- what a backend provides -----------------------------------------

    @abstractmethod
    def _connect(self) -> Any:
        """Open a new DB-API connection in autocommit mode."""

    @abstractmethod
    def _schema(self) -> list[str]:
        """The CREATE TABLE / CREATE INDEX statements (IF NOT EXISTS)."""

    @abstractmethod
    def _columns(self, cur: Any, table: str) -> set[str] | None:
        """The column names of ``table``, or None if it does not exist."""

    @abstractmethod
    def _begin(self, cur: Any) -> None:
        """Start a write transaction."""

    @abstractmethod
    def _is_duplicate(self, exc: Exception) -> bool:
        """True if ``exc`` is a UNIQUE constraint violation."""

    def _is_disconnect(self, exc: Exception) -> bool:
        """True if ``exc`` means the connection is unusable (retry on a new one)."""
        return False

    def _rename_table(self, cur: Any, old: str, new: str) -> None:
        cur.execute(f"ALTER TABLE {old} RENAME TO {new}")

    # -- running statements ----------------------------------------------

    def _q(self, sql: str) -> str:
        """Rewrite ``?`` placeholders for the driver."""
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    @contextmanager
    def _cursor(self, write: bool = False) -> Iterator[Any]:
        """A cursor on a pooled connection; ``write``: inside a transaction."""
        conn = self._pool.acquire()
        try:
            cur = conn.cursor()
            try:
                if write:
                    self._begin(cur)
                yield cur
                if write:
                    conn.commit()
            except BaseException:
                if write:
                    conn.rollback()
                raise
            finally:
                cur.close()
        except Exception as exc:
            if self._is_disconnect(exc):
                self._pool.discard(conn)
            else:
                self._pool.release(conn)
            raise
        except BaseException:
            self._pool.discard(conn)
            raise
        else:
            self._pool.release(conn)

    def _read(self, work: Callable[[Any], Any]) -> Any:
        """Run a read-only ``work(cursor)``, once more on a fresh connection if
        the first one turned out to be dead (MySQL's "server has gone away")."""
        try:
            with self._cursor() as cur:
                return work(cur)
        except Exception as exc:
            if not self._is_disconnect(exc):
                raise
            log.warning("database connection lost (%s); reconnecting", exc)
            with self._cursor() as cur:
                return work(cur)

    def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        def work(cur: Any) -> list[tuple[Any, ...]]:
            cur.execute(self._q(sql), tuple(params))
            return [tuple(row) for row in cur.fetchall()]
        result: list[tuple[Any, ...]] = self._read(work)
        return result

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement (autocommit); return the rows it changed."""
        with self._cursor() as cur:
            cur.execute(self._q(sql), tuple(params))
            return int(cur.rowcount)

    # -- lifecycle ----------------------------------------------------------

    def setup(self) -> None:
        with self._cursor(write=True) as cur:
            words = self._columns(cur, "words")
            if words is not None and "norm" not in words:
                self._adopt_course_tables(cur)
            for statement in self._schema():
                cur.execute(statement)
            cur.execute(self._q("SELECT value FROM meta WHERE name = ?"), ("schema_version",))
            row = cur.fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise UserError(f"the dictionary database {self.describe()} has schema "
                                f"version {version}; this ionet knows only {SCHEMA_VERSION}")
            if version < SCHEMA_VERSION:
                self._upgrade(cur, version)
                self._set_meta(cur, "schema_version", str(SCHEMA_VERSION))
        if words is not None and "norm" not in words:
            self._import_course_words()

    def _upgrade(self, cur: Any, version: int) -> None:
        """Bring a schema from ``version`` to :data:`SCHEMA_VERSION`.

        Version 0 is "no schema yet" or the course's tables (moved aside by
        :meth:`_adopt_course_tables`); the CREATE statements made version 1.
        Later versions add their ALTER statements here, one step each.
        """
        if version < 1:
            log.info("created the dictionary schema (version 1) in %s", self.describe())

    def _adopt_course_tables(self, cur: Any) -> None:
        """The course's ``words(id, word, mean)``, ``user(id, name, passwd)`` and
        ``hist`` tables are renamed ``course_*``; their words are imported
        afterwards as the dictionary ``course``.  Its accounts are not carried
        over: salted MD5 hashes cannot become argon2 hashes without the
        passwords, so users register again."""
        log.warning("found the course's tables in %s: renaming them course_words, "
                    "course_user, course_hist", self.describe())
        for table in ("words", "user", "hist"):
            if self._columns(cur, table) is not None:
                self._rename_table(cur, table, f"course_{table}")

    def _import_course_words(self) -> None:
        rows = self._fetchall("SELECT word, mean FROM course_words ORDER BY id")
        meta = DictionaryMeta("course", "The course's word list",
                              "Imported from the course project's words table.")
        count = self.replace_dictionary(
            meta, (Entry(str(word), str(mean)) for word, mean in rows if word))
        log.info("imported %d words of the course's table as dictionary 'course'", count)

    def close(self) -> None:
        self._pool.close()

    def get_meta(self, name: str) -> str | None:
        rows = self._fetchall("SELECT value FROM meta WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, name: str, value: str) -> None:
        with self._cursor(write=True) as cur:
            self._set_meta(cur, name, value)

    def _set_meta(self, cur: Any, name: str, value: str) -> None:
        cur.execute(self._q("DELETE FROM meta WHERE name = ?"), (name,))
        cur.execute(self._q("INSERT INTO meta (name, value) VALUES (?, ?)"), (name, value))

    # -- dictionaries -------------------------------------------------------

    def databases(self) -> list[DatabaseInfo]:
        rows = self._fetchall(
            "SELECT id, name, short, info, keyrule, entries, generation FROM dbs ORDER BY id")
        return [DatabaseInfo(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]),
                             int(r[5]), int(r[6])) for r in rows]

    def replace_dictionary(self, meta: DictionaryMeta, entries: Iterable[Entry],
                           progress: Callable[[int], None] | None = None) -> int:
        key_for("", meta.keyrule)  # an unknown rule fails before any write
        insert = self._q("INSERT INTO words (db_id, word, norm, mean) VALUES (?, ?, ?, ?)")
        count = 0
        with self._cursor(write=True) as cur:
            cur.execute(self._q("SELECT id FROM dbs WHERE name = ?"), (meta.name,))
            row = cur.fetchone()
            if row is None:
                cur.execute(self._q("INSERT INTO dbs (name, short, info, keyrule, entries, "
                                    "generation) VALUES (?, ?, ?, ?, 0, 0)"),
                            (meta.name, meta.short, meta.info, meta.keyrule))
                cur.execute(self._q("SELECT id FROM dbs WHERE name = ?"), (meta.name,))
                db_id = int(cur.fetchone()[0])
            else:
                db_id = int(row[0])
                cur.execute(self._q("DELETE FROM words WHERE db_id = ?"), (db_id,))
            batch: list[tuple[int, str, str, str]] = []
            for entry in entries:
                norm = key_for(entry.word, meta.keyrule)
                if not norm:
                    continue  # a headword of punctuation only has no key
                batch.append((db_id, entry.word, norm, entry.text))
                if len(batch) >= IMPORT_BATCH:
                    cur.executemany(insert, batch)
                    count += len(batch)
                    if progress is not None:
                        progress(len(batch))
                    batch = []
            if batch:
                cur.executemany(insert, batch)
                count += len(batch)
                if progress is not None:
                    progress(len(batch))
            cur.execute(self._q("UPDATE dbs SET short = ?, info = ?, keyrule = ?, entries = ?, "
                                "generation = generation + 1 WHERE id = ?"),
                        (meta.short, meta.info, meta.keyrule, count, db_id))
        return count

    def remove_dictionary(self, name: str) -> bool:
        with self._cursor(write=True) as cur:
            cur.execute(self._q("SELECT id FROM dbs WHERE name = ?"), (name,))
            row = cur.fetchone()
            if row is None:
                return False
            cur.execute(self._q("DELETE FROM words WHERE db_id = ?"), (row[0],))
            cur.execute(self._q("DELETE FROM dbs WHERE id = ?"), (row[0],))
        return True

    def definitions(self, db_ids: Sequence[int], key: str) -> list[tuple[int, str, str]]:
        if not db_ids or not key:
            return []
        marks = ", ".join("?" * len(db_ids))
        rows = self._fetchall(
            f"SELECT db_id, word, mean FROM words WHERE db_id IN ({marks}) AND norm = ? "
            "ORDER BY db_id, id", (*db_ids, key[:MAX_KEY]))
        order = {db_id: index for index, db_id in enumerate(db_ids)}
        found = [(int(r[0]), str(r[1]), str(r[2])) for r in rows]
        found.sort(key=lambda r: order[r[0]])  # stable: keeps import order within one
        return found

    def headwords(self, db_id: int, keys: Sequence[str]) -> list[str]:
        words: dict[str, None] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            marks = ", ".join("?" * len(chunk))
            rows = self._fetchall(
                f"SELECT norm, word FROM words WHERE db_id = ? AND norm IN ({marks}) "
                "ORDER BY id", (db_id, *chunk))
            by_key: dict[str, list[str]] = {}
            for norm, word in rows:
                by_key.setdefault(str(norm), []).append(str(word))
            for key in chunk:
                for word in by_key.get(key, ()):
                    words.setdefault(word, None)
        return list(words)

    def prefix_headwords(self, db_id: int, prefix: str, limit: int) -> list[str]:
        if not prefix:
            return []
        rows = self._fetchall(
            "SELECT word FROM words WHERE db_id = ? AND norm >= ? AND norm < ? "
            "ORDER BY norm, id LIMIT ?", (db_id, prefix, _after_prefix(prefix), limit))
        return list(dict.fromkeys(str(r[0]) for r in rows))

    def keys(self, db_id: int) -> list[str]:
        rows = self._fetchall("SELECT DISTINCT norm FROM words WHERE db_id = ?", (db_id,))
        return sorted(str(r[0]) for r in rows)

    # -- accounts -----------------------------------------------------------

    def add_user(self, name: str, passwd: str) -> None:
        try:
            self._execute("INSERT INTO user (name, passwd, created, failures, locked_until) "
                          "VALUES (?, ?, ?, 0, 0)", (name, passwd, time.time()))
        except Exception as exc:
            if self._is_duplicate(exc):
                raise NameTaken(name) from None
            raise

    def user(self, name: str) -> UserRecord | None:
        rows = self._fetchall("SELECT name, passwd, failures, locked_until, dict_key "
                              "FROM user WHERE name = ?", (name,))
        if not rows:
            return None
        r = rows[0]
        return UserRecord(str(r[0]), str(r[1]), int(r[2]), float(r[3]),
                          None if r[4] is None else str(r[4]))

    def login_failed(self, name: str, now: float, max_failures: int, lock_for: float) -> float:
        with self._cursor(write=True) as cur:
            cur.execute(self._q("UPDATE user SET failures = failures + 1 WHERE name = ?"), (name,))
            cur.execute(self._q("SELECT failures FROM user WHERE name = ?"), (name,))
            row = cur.fetchone()
            if row is None or int(row[0]) < max_failures:
                return 0.0
            until = now + lock_for
            cur.execute(self._q("UPDATE user SET failures = 0, locked_until = ? WHERE name = ?"),
                        (until, name))
            return until

    def login_succeeded(self, name: str, new_hash: str | None = None) -> None:
        if new_hash is None:
            self._execute("UPDATE user SET failures = 0 WHERE name = ? AND failures <> 0", (name,))
        else:
            self._execute("UPDATE user SET failures = 0, passwd = ? WHERE name = ?",
                          (new_hash, name))

    def set_dict_key(self, name: str, key: str | None) -> None:
        self._execute("UPDATE user SET dict_key = ? WHERE name = ?", (key, name))

    # -- history ------------------------------------------------------------

    def add_history(self, name: str, word: str, when: float) -> None:
        self._execute("INSERT INTO hist (name, word, time) VALUES (?, ?, ?)", (name, word, when))

    def history(self, name: str, limit: int = 10) -> list[HistoryEntry]:
        if limit < 0:
            raise ValueError(f"limit must be 0 (all) or positive, not {limit}")
        sql = "SELECT name, word, time FROM hist WHERE name = ? ORDER BY id DESC"
        params: tuple[Any, ...] = (name,)
        if limit:
            sql += " LIMIT ?"
            params += (limit,)
        return [HistoryEntry(str(r[0]), str(r[1]), float(r[2]))
                for r in self._fetchall(sql, params)]


def _after_prefix(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``
    (the upper bound of an index range): the last character incremented."""
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return prefix + "\U0010ffff"
    return prefix[:-1] + chr(last + 1)


def open_store(url: str | None, data_dir: Path | None = None) -> Store:
    """The store a ``--db`` option names.

    Args:
        url: ``mysql://user:password@host:port/database``, ``sqlite:///abs/path``,
            a plain file path, or None for ``dict.sqlite3`` in ``data_dir``.
        data_dir: the data folder (``--data-dir``), for the default.

    Raises:
        UserError: the URL cannot be understood.
    """
    if url is None or url == "":
        folder = data_dir if data_dir is not None else Path("ionet-data")
        folder.mkdir(parents=True, exist_ok=True)
        from ionet.dict.sqlite import SQLiteStore
        return SQLiteStore(folder / SQLITE_FILE)
    if url.startswith(("mysql://", "mariadb://", "mysql+pymysql://")):
        from ionet.dict.mysql import MySQLStore
        return MySQLStore.from_url(url)
    if url.startswith("sqlite:"):
        path = url[len("sqlite:"):]
        if path.startswith("//"):
            path = path[2:]  # sqlite:///abs/path -> /abs/path
        if not path:
            raise UserError(f"no file in the database URL {url!r}")
        url = path
    elif "://" in url:
        raise UserError(f"unknown database URL {url!r}: use mysql://user:pass@host:port/db, "
                        "sqlite:///path or a file path")
    from ionet.dict.sqlite import SQLiteStore
    file = Path(url).expanduser()
    file.parent.mkdir(parents=True, exist_ok=True)
    return SQLiteStore(file)
