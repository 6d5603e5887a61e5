"""The Store on SQLite and on the machine's MariaDB: one suite, both backends."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from ionet.core.errors import UserError
from ionet.dict.keys import MAX_KEY
from ionet.dict.sqlite import SQLiteStore
from ionet.dict.store import (
    SCHEMA_VERSION,
    DictionaryMeta,
    Entry,
    NameTaken,
    SqlStore,
    open_store,
)
from tests.dict.conftest import MySQLDatabase, sample_entries, sample_meta


def test_setup_is_idempotent_and_records_the_version(any_store: SqlStore) -> None:
    any_store.setup()
    any_store.setup()
    assert any_store.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert any_store.databases() == []


def test_import_and_case_insensitive_definitions(any_store: SqlStore) -> None:
    count = any_store.replace_dictionary(sample_meta(), sample_entries())
    assert count == len(sample_entries())
    [db] = any_store.databases()
    assert (db.name, db.entries, db.generation) == ("sample", count, 1)
    for query in ("apple", "APPLE", "Apple"):
        [(db_id, word, text)] = any_store.definitions([db.id], query.casefold())
        assert (db_id, word) == (db.id, "apple") and "rose family" in text
    assert any_store.definitions([db.id], "apple pie")[0][1] == "Apple pie"
    assert any_store.definitions([db.id], "nothing") == []


def test_reimport_replaces_and_bumps_the_generation(any_store: SqlStore) -> None:
    any_store.replace_dictionary(sample_meta(), sample_entries())
    any_store.replace_dictionary(DictionaryMeta("sample", "v2", "second"), [Entry("kiwi", "k")])
    [db] = any_store.databases()
    assert (db.short, db.info, db.entries, db.generation) == ("v2", "second", 1, 2)
    assert any_store.definitions([db.id], "apple") == []
    assert any_store.keys(db.id) == ["kiwi"]
    assert any_store.remove_dictionary("sample") is True
    assert any_store.remove_dictionary("sample") is False
    assert any_store.databases() == []


def test_several_dictionaries_side_by_side(any_store: SqlStore) -> None:
    any_store.replace_dictionary(sample_meta("one"), [Entry("tea", "tea 1"), Entry("Tea", "tea 2")])
    any_store.replace_dictionary(sample_meta("two"), [Entry("tea", "tea 3")])
    one, two = any_store.databases()
    rows = any_store.definitions([two.id, one.id], "tea")
    assert [text for _, _, text in rows] == ["tea 3", "tea 1", "tea 2"]  # the order asked
    assert [text for _, _, text in any_store.definitions([one.id], "tea")] == ["tea 1", "tea 2"]


def test_keys_headwords_and_prefix_ranges(any_store: SqlStore) -> None:
    any_store.replace_dictionary(sample_meta(), sample_entries())
    [db] = any_store.databases()
    keys = any_store.keys(db.id)
    assert keys == sorted(keys) and "apple pie" in keys and "zebra" in keys
    assert any_store.headwords(db.id, ["zebra", "apple"]) == ["Zebra", "apple"]
    assert any_store.prefix_headwords(db.id, "appl", 10) == [
        "apple", "Apple pie", "appliance", "application", "apply"]
    assert any_store.prefix_headwords(db.id, "appl", 2) == ["apple", "Apple pie"]


def test_unicode_and_long_headwords(any_store: SqlStore) -> None:
    long_word = "x" * (MAX_KEY + 50)
    any_store.replace_dictionary(DictionaryMeta("zh", "中文", "信息"),
                                 [Entry("苹果", "苹果 [píng guǒ]\n   apple 🍎"),
                                  Entry(long_word, "long")])
    [db] = any_store.databases()
    assert db.short == "中文"
    [(_, word, text)] = any_store.definitions([db.id], "苹果")
    assert word == "苹果" and text.endswith("🍎")
    [(_, word, _)] = any_store.definitions([db.id], long_word)
    assert word == long_word  # stored whole; the key is capped


def test_an_unknown_key_rule_is_refused_before_writing(any_store: SqlStore) -> None:
    with pytest.raises(ValueError):
        any_store.replace_dictionary(DictionaryMeta("bad", "b", "b", "nope"), [Entry("a", "a")])
    assert any_store.databases() == []


def test_users_and_parameterised_sql(any_store: SqlStore) -> None:
    evil = "x'); DROP TABLE user; --"
    any_store.add_user(evil[:32], "hash1")
    any_store.add_user("bob", "hash2")
    with pytest.raises(NameTaken):
        any_store.add_user("bob", "other")
    record = any_store.user(evil[:32])
    assert record is not None and record.passwd == "hash1" and record.dict_key is None
    assert any_store.user("Bob") is None  # names are exact
    any_store.set_dict_key("bob", "k3y")
    assert any_store.user("bob").dict_key == "k3y"  # type: ignore[union-attr]


def test_failed_logins_lock_and_success_resets(any_store: SqlStore) -> None:
    any_store.add_user("carol", "h")
    assert any_store.login_failed("carol", 1000.0, 3, 60.0) == 0.0
    assert any_store.login_failed("carol", 1000.0, 3, 60.0) == 0.0
    assert any_store.login_failed("carol", 1000.0, 3, 60.0) == 1060.0
    record = any_store.user("carol")
    assert record is not None and record.failures == 0 and record.locked_until == 1060.0
    any_store.login_failed("carol", 2000.0, 3, 60.0)
    any_store.login_succeeded("carol", "new-hash")
    record = any_store.user("carol")
    assert record is not None and (record.failures, record.passwd) == (0, "new-hash")
    assert any_store.login_failed("nobody", 1.0, 3, 60.0) == 0.0


def test_history_newest_first_limited_and_per_user(any_store: SqlStore) -> None:
    for n in range(15):
        any_store.add_history("ann", f"word{n}", 1000.0 + n)
        if n % 5 == 0:
            any_store.add_history("ben", f"ben{n}", 1000.0 + n)
    latest = any_store.history("ann")
    assert [h.word for h in latest] == [f"word{n}" for n in range(14, 4, -1)]
    assert latest[0].time == 1014.0 and latest[0].name == "ann"
    assert len(any_store.history("ann", 0)) == 15
    assert [h.word for h in any_store.history("ann", 3)] == ["word14", "word13", "word12"]
    assert {h.name for h in any_store.history("ben", 0)} == {"ben"}
    assert any_store.history("nobody") == []
    with pytest.raises(ValueError):
        any_store.history("ann", -1)


def test_registration_race_has_one_winner(any_store: SqlStore) -> None:
    """Eight threads register one name at the same moment: the UNIQUE
    constraint, not a check-then-insert, picks exactly one."""
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def register(n: int) -> None:
        barrier.wait()
        try:
            any_store.add_user("racer", f"hash{n}")
            outcomes.append("won")
        except NameTaken:
            outcomes.append("taken")

    threads = [threading.Thread(target=register, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["taken"] * 7 + ["won"]


def test_sqlite_persists_and_uses_wal(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "d.sqlite3")
    store.setup()
    store.replace_dictionary(sample_meta(), sample_entries())
    store.add_user("ann", "h")
    store.add_history("ann", "apple", 5.0)
    store.close()
    again = open_store(str(tmp_path / "d.sqlite3"))
    again.setup()
    assert [db.name for db in again.databases()] == ["sample"]
    assert again.history("ann")[0].word == "apple"
    again.close()
    with sqlite3.connect(tmp_path / "d.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_sqlite_after_fork_children_use_their_own_connections(tmp_path: Path) -> None:
    """A parent with open connections forks; children write at once."""
    store = SQLiteStore(tmp_path / "d.sqlite3")
    store.setup()
    store.add_history("parent", "x", 1.0)  # the parent's pool now holds a connection
    pool_store = store

    def child(n: int) -> None:
        pool_store.add_history(f"child{n}", "from-child", 7.0)  # same object, new process

    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=child, args=(n,)) for n in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    assert store.history("child3")[0].word == "from-child"
    assert store.history("parent")[0].word == "x"  # the parent's connection still works
    store.close()


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(None, tmp_path), SQLiteStore)
    assert open_store(f"sqlite://{tmp_path}/a.db").describe() == f"sqlite:{tmp_path}/a.db"
    mysql = open_store("mysql://u:secret@db.example:3307/words")
    assert mysql.describe() == "mysql://u@db.example:3307/words"  # no password in logs
    for bad in ("postgres://x/y", "mysql://u@h:3306/", "sqlite:"):
        with pytest.raises(UserError):
            open_store(bad)


def test_the_course_schema_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "course.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE words (id INTEGER PRIMARY KEY, word TEXT, mean TEXT)")
        conn.execute("CREATE TABLE user (id INTEGER PRIMARY KEY, name TEXT, passwd TEXT)")
        conn.execute("CREATE TABLE hist (id INTEGER PRIMARY KEY, name TEXT, word TEXT, time TEXT)")
        conn.executemany("INSERT INTO words (word, mean) VALUES (?, ?)",
                         [("abandon", "v. go away from"), ("Able", "adj. having the power")])
        conn.execute("INSERT INTO user (name, passwd) VALUES ('old', 'md5md5')")
    conn.close()
    store = SQLiteStore(path)
    store.setup()
    [db] = store.databases()
    assert db.name == "course" and db.entries == 2
    assert store.definitions([db.id], "able")[0][2] == "adj. having the power"
    assert store.user("old") is None  # MD5 accounts are not carried over
    store.setup()  # a second start changes nothing
    assert len(store.databases()) == 1
    store.close()


def test_mysql_course_schema_is_upgraded(mysql_db: MySQLDatabase) -> None:
    store = mysql_db.store()
    conn = store._connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE words (id INT AUTO_INCREMENT PRIMARY KEY, word VARCHAR(64), "
                    "mean TEXT) CHARSET=utf8mb4")
        cur.execute("INSERT INTO words (word, mean) VALUES ('abandon', 'v. go away from')")
    conn.close()
    store.setup()
    [db] = store.databases()
    assert db.name == "course"
    assert store.definitions([db.id], "abandon")[0][1] == "abandon"
    store.close()


def test_mysql_reconnects_after_the_server_drops_the_connection(mysql_db: MySQLDatabase) -> None:
    store = mysql_db.store()
    store.setup()
    store.replace_dictionary(sample_meta(), sample_entries())
    assert store.databases()  # a pooled connection now exists
    conn = store._pool.acquire()
    thread_id = conn.thread_id()
    store._pool.release(conn)
    killer = mysql_db.store()._connect()
    with killer.cursor() as cur:
        cur.execute("KILL CONNECTION %s", (thread_id,))
    killer.close()
    assert [db.name for db in store.databases()] == ["sample"]  # retried on a new connection
    store.close()


def test_mysql_bad_credentials_are_a_clear_error(mysql_db: MySQLDatabase) -> None:
    store = open_store(mysql_db.url.replace("mysql://root@", "mysql://nobody:wrong@"))
    with pytest.raises(UserError, match="cannot connect"):
        store.setup()
