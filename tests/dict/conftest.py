"""Dictionary fixtures: small sample data, stores on SQLite and MariaDB, servers.

Most tests use a small sample (a few dozen English words and ~2,000
CC-CEDICT entries in both directions), built once per session into an
SQLite file that each server test copies; one test imports the whole
default data.  The MySQL tests run against the real MariaDB server of the
machine, in a database of their own (created and dropped), and FAIL, not
skip, when it is not reachable: CI starts it.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pymysql
import pytest
from argon2 import PasswordHasher

from ionet.core.testing import ServerProcess
from ionet.dict import cedict
from ionet.dict.accounts import Accounts
from ionet.dict.mysql import MySQLStore
from ionet.dict.sqlite import SQLiteStore
from ionet.dict.store import DictionaryMeta, Entry, SqlStore, Store

#: Where the MariaDB tests connect (no database name): override with
#: IONET_TEST_MYSQL=mysql://user:password@host:port
MYSQL_URL = os.environ.get("IONET_TEST_MYSQL", "mysql://root@127.0.0.1:3306")
MYSQL_HINT = ("start it (as root): mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld && "
              "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd; "
              "or point IONET_TEST_MYSQL=mysql://user:pass@host:port at a server")

SAMPLE_WORDS = {
    "apple": "the round fruit of a tree of the rose family",
    "Apple pie": "a pie with apples inside",
    "apply": "put to use",
    "appeal": "an earnest request",
    "application": "the act of applying",
    "appliance": "a device for a household task",
    "banana": "a long curved fruit",
    "orange": "a round citrus fruit",
    "Zebra": "an African equine with stripes",
    "'hood": "a neighbourhood (slang)",
    "receive": "get something given",
    "separate": "set apart",
    "definitely": "without doubt",
    "python": "a large snake; a programming language",
}
SAMPLE_CHINESE = ("苹果", "苹", "吃", "行", "电脑", "中国", "你好", "学生", "老师", "谢谢", "水果")


def sample_meta(name: str = "sample") -> DictionaryMeta:
    return DictionaryMeta(name, "A small English sample", "Written by the ionet tests.\n"
                          ".a line starting with a dot")


def sample_entries() -> list[Entry]:
    entries = [Entry(word, f"{word}\n   {text}") for word, text in SAMPLE_WORDS.items()]
    entries.append(Entry(".dotted", ".dotted\n.this line starts with a dot\n..and two"))
    return entries


def load_sample(store: Store) -> None:
    """The sample dictionary, and a CC-CEDICT subset as cedict/cedict-en."""
    store.replace_dictionary(sample_meta(), sample_entries())
    header, entries = cedict.read_file(cedict.default_data_file())
    chosen = [e for e in entries if e.simplified in SAMPLE_CHINESE] + entries[5000:7000]
    zh, en = cedict.metas(header)
    store.replace_dictionary(zh, cedict.chinese_english(chosen))
    store.replace_dictionary(en, cedict.english_chinese(chosen))
    store.set_meta(cedict.DEFAULT_MARKER, "sample (tests)")


def cheap_hasher() -> PasswordHasher:
    """argon2id with tiny parameters: the tests hash hundreds of passwords."""
    return PasswordHasher(time_cost=1, memory_cost=256, parallelism=1)


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file with the sample data (copy it before writing)."""
    path = tmp_path_factory.mktemp("sample") / "dict.sqlite3"
    store = SQLiteStore(path)
    store.setup()
    load_sample(store)
    store.close()
    return path


@pytest.fixture
def data_dir(tmp_path: Path, sample_db: Path) -> Path:
    """A data folder holding a copy of the sample database (``--data-dir``)."""
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(sample_db, folder / "dict.sqlite3")
    return folder


def mysql_server_url() -> str:
    """The MariaDB URL without database, after checking the server answers.

    Fails the test (not a skip) when the server is unreachable.
    """
    parts = urlsplit(MYSQL_URL)
    try:
        conn = pymysql.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
                               user=parts.username or "root", password=parts.password or "",
                               connect_timeout=5)
    except pymysql.err.OperationalError as exc:
        pytest.fail(f"MariaDB/MySQL is not reachable at {MYSQL_URL} ({exc.args[-1]}): "
                    f"{MYSQL_HINT}", pytrace=False)
    conn.close()
    return MYSQL_URL


class MySQLDatabase:
    """A uniquely named database on the test server, dropped at the end."""

    def __init__(self) -> None:
        base = mysql_server_url()
        self.name = f"ionet_test_{os.getpid()}_{secrets.token_hex(4)}"
        parts = urlsplit(base)
        self._admin = pymysql.connect(host=parts.hostname or "127.0.0.1",
                                      port=parts.port or 3306, user=parts.username or "root",
                                      password=parts.password or "", autocommit=True)
        with self._admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {self.name} CHARACTER SET utf8mb4")
        self.url = f"{base.rstrip('/')}/{self.name}"

    def store(self) -> MySQLStore:
        return MySQLStore.from_url(self.url)

    def drop(self) -> None:
        with self._admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {self.name}")
        self._admin.close()


@pytest.fixture
def mysql_db() -> Iterator[MySQLDatabase]:
    database = MySQLDatabase()
    try:
        yield database
    finally:
        database.drop()


@pytest.fixture(params=["sqlite", "mysql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """An empty, set-up store on each backend in turn."""
    if request.param == "sqlite":
        store: SqlStore = SQLiteStore(tmp_path / "dict.sqlite3")
        store.setup()
        yield store
        store.close()
    else:
        database = MySQLDatabase()
        store = database.store()
        try:
            store.setup()
            yield store
        finally:
            store.close()
            database.drop()


@pytest.fixture
def accounts(any_store: SqlStore) -> Accounts:
    return Accounts(any_store, hasher=cheap_hasher())


class DictServer(ServerProcess):
    """``ionet dict serve`` on free ports: the JSON port, then the DICT port."""

    def __init__(self, data_dir: Path, engine: str = "epoll", *extra: str,
                 **kwargs: object) -> None:
        super().__init__(["dict", "serve", "--engine", engine, "--port", "0", "--dict-port", "0",
                          "--data-dir", str(data_dir), "--no-default-data", *extra],
                         **kwargs)  # type: ignore[arg-type]

    def __enter__(self) -> DictServer:
        self.start()
        return self

    @property
    def json_address(self) -> tuple[str, int]:
        return self.address("tcp", 0)

    @property
    def dict_address(self) -> tuple[str, int]:
        return self.address("tcp", 1)
