"""The MySQL / MariaDB store, with PyMySQL (as the course uses).

``--db mysql://user:password@host:port/database``.  The database must exist
(the server's administrator creates it); the tables are created or upgraded
on start.

Choices that keep it equivalent to the SQLite store:

* ``utf8mb4`` everywhere (MySQL's ``utf8`` cannot hold every character);
  the ``_bin`` collation, so names and keys compare exactly and sort by code
  point, as Python and SQLite do; keys are already case-folded
  (``ionet.dict.keys``), so a case-insensitive collation would only add
  surprises.
* ``norm`` is a ``VARCHAR(190)``: 190 characters of 4 bytes fit InnoDB's
  767-byte index prefix of older row formats, so ``(db_id, norm)`` is one
  index on any server.
* autocommit, and ``START TRANSACTION`` for multi-statement writes.
* one connection per worker thread at a time (the pool in ``store.py``); a
  connection the server dropped (restart, ``wait_timeout``) is discarded,
  and a read is retried once on a new one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql

from ionet.core.errors import UserError
from ionet.dict.store import SqlStore

#: PyMySQL error codes meaning the connection is gone: lost during a query,
#: server has gone away, cannot connect.
_DISCONNECT_CODES = {2003, 2006, 2013, 2055}
_DUPLICATE_KEY = 1062

_TABLE = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

_SCHEMA = [
    f"""CREATE TABLE IF NOT EXISTS meta (
        name VARCHAR(64) NOT NULL PRIMARY KEY,
        value TEXT NOT NULL) {_TABLE}""",
    f"""CREATE TABLE IF NOT EXISTS dbs (
        id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        name VARCHAR(64) NOT NULL UNIQUE,
        short VARCHAR(255) NOT NULL,
        info MEDIUMTEXT NOT NULL,
        keyrule VARCHAR(16) NOT NULL DEFAULT 'fold',
        entries INT NOT NULL DEFAULT 0,
        generation INT NOT NULL DEFAULT 0) {_TABLE}""",
    f"""CREATE TABLE IF NOT EXISTS words (
        id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        db_id INT NOT NULL,
        word TEXT NOT NULL,
        norm VARCHAR(190) NOT NULL,
        mean MEDIUMTEXT NOT NULL,
        INDEX words_norm (db_id, norm)) {_TABLE}""",
    f"""CREATE TABLE IF NOT EXISTS user (
        id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        name VARCHAR(32) NOT NULL UNIQUE,
        passwd VARCHAR(255) NOT NULL,
        created DOUBLE NOT NULL,
        failures INT NOT NULL DEFAULT 0,
        locked_until DOUBLE NOT NULL DEFAULT 0,
        dict_key VARCHAR(128) NULL) {_TABLE}""",
    f"""CREATE TABLE IF NOT EXISTS hist (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        name VARCHAR(32) NOT NULL,
        word TEXT NOT NULL,
        time DOUBLE NOT NULL,
        INDEX hist_name (name, id)) {_TABLE}""",
]


class MySQLStore(SqlStore):
    """The store in a MySQL or MariaDB database.

    Args:
        host, port, user, password, database: where to connect.
        connect_timeout: seconds to wait for the server.
    """

    placeholder = "%s"

    def __init__(self, host: str = "127.0.0.1", port: int = 3306, user: str = "root",
                 password: str = "", database: str = "ionet",
                 connect_timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.user_name = user
        self.password = password
        self.database = database
        self.connect_timeout = connect_timeout
        super().__init__()

    @classmethod
    def from_url(cls, url: str) -> MySQLStore:
        """``mysql://user:password@host:port/database`` (user, password, port optional).

        Raises:
            UserError: no database name in the URL, or a bad port.
        """
        parts = urlsplit(url)
        database = unquote(parts.path.lstrip("/"))
        if not database:
            raise UserError(f"no database name in {_hide_password(url)}: "
                            "use mysql://user:pass@host:port/database")
        try:
            port = parts.port or 3306
        except ValueError:
            raise UserError(f"bad port in {_hide_password(url)}") from None
        return cls(host=parts.hostname or "127.0.0.1", port=port,
                   user=unquote(parts.username or "root"),
                   password=unquote(parts.password or ""), database=database)

    def describe(self) -> str:
        return f"mysql://{self.user_name}@{self.host}:{self.port}/{self.database}"

    def _connect(self) -> pymysql.connections.Connection:  # type: ignore[type-arg]
        try:
            return pymysql.connect(
                host=self.host, port=self.port, user=self.user_name, password=self.password,
                database=self.database, charset="utf8mb4", autocommit=True,
                connect_timeout=self.connect_timeout,
            )
        except pymysql.err.OperationalError as exc:
            raise UserError(f"cannot connect to {self.describe()}: {exc.args[-1]}") from None

    def _schema(self) -> list[str]:
        return list(_SCHEMA)

    def _columns(self, cur: Any, table: str) -> set[str] | None:
        cur.execute("SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = DATABASE() AND table_name = %s", (table,))
        names = {str(row[0]) for row in cur.fetchall()}
        return names or None

    def _rename_table(self, cur: Any, old: str, new: str) -> None:
        cur.execute(f"RENAME TABLE {old} TO {new}")

    def _begin(self, cur: Any) -> None:
        cur.execute("START TRANSACTION")

    def _is_duplicate(self, exc: Exception) -> bool:
        return isinstance(exc, pymysql.err.IntegrityError) and exc.args[0] == _DUPLICATE_KEY

    def _is_disconnect(self, exc: Exception) -> bool:
        if isinstance(exc, pymysql.err.InterfaceError):
            return True
        return isinstance(exc, pymysql.err.OperationalError) and exc.args[0] in _DISCONNECT_CODES


def _hide_password(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
