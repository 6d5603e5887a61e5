"""Accounts: name rules, argon2id hashes, login, lockout, DICT keys, the race."""

from __future__ import annotations

import hashlib
import threading

import pytest

from ionet.dict.accounts import (
    AccountError,
    Accounts,
    check_name,
    check_password,
    default_hasher,
)
from ionet.dict.store import SqlStore
from tests.dict.conftest import cheap_hasher


@pytest.mark.parametrize("name", ["a", "alice", "Ünïcödé", "李雷", "x" * 32, "o'brien", "a-b_c.d"])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 33, "two words", "tab\there", "new\nline",
                                  "zero\u200bwidth", "bell\x07", "nbsp\u00a0", None, 42])
def test_bad_names(name: object) -> None:
    with pytest.raises(AccountError) as info:
        check_name(name)
    assert info.value.code == "bad-name"


def test_names_are_nfc_normalised() -> None:
    assert check_name("e\u0301") == "\u00e9"


@pytest.mark.parametrize("password", ["short", "", "x" * 1025, None])
def test_bad_passwords(password: object) -> None:
    with pytest.raises(AccountError) as info:
        check_password(password)
    assert info.value.code == "bad-password"


def test_register_stores_an_argon2id_hash_never_the_password(accounts: Accounts) -> None:
    assert accounts.register("ann", "correct horse") == "ann"
    record = accounts.store.user("ann")
    assert record is not None
    assert record.passwd.startswith("$argon2id$") and "correct horse" not in record.passwd
    with pytest.raises(AccountError) as info:
        accounts.register("ann", "another password")
    assert info.value.code == "name-taken"


def test_login(accounts: Accounts) -> None:
    accounts.register("ann", "correct horse")
    assert accounts.login("ann", "correct horse") == "ann"
    for name, password in [("ann", "wrong horse"), ("nobody", "correct horse"),
                           ("bad name", "x"), ("ann", None), ("ann", "y" * 5000)]:
        with pytest.raises(AccountError) as info:
            accounts.login(name, password)
        assert info.value.code == "login-failed"
        assert "horse" not in info.value.message  # passwords are never echoed


def test_lockout_after_repeated_failures_then_unlock(any_store: SqlStore) -> None:
    now = [1_000_000.0]
    accounts = Accounts(any_store, hasher=cheap_hasher(), max_failures=3, lock_seconds=300,
                        clock=lambda: now[0])
    accounts.register("ann", "correct horse")
    for _ in range(2):
        with pytest.raises(AccountError, match="wrong"):
            accounts.login("ann", "bad guess!")
    with pytest.raises(AccountError) as info:
        accounts.login("ann", "bad guess!")
    assert info.value.code == "locked" and "5 minutes" in info.value.message
    with pytest.raises(AccountError) as info:
        accounts.login("ann", "correct horse")  # even the right password, while locked
    assert info.value.code == "locked"
    now[0] += 301
    assert accounts.login("ann", "correct horse") == "ann"


def test_success_resets_the_failure_count(accounts: Accounts) -> None:
    accounts.register("ann", "correct horse")
    for _ in range(4):
        with pytest.raises(AccountError):
            accounts.login("ann", "bad guess!")
    accounts.login("ann", "correct horse")
    record = accounts.store.user("ann")
    assert record is not None and record.failures == 0


def test_weak_hashes_are_upgraded_at_login(any_store: SqlStore) -> None:
    Accounts(any_store, hasher=cheap_hasher()).register("ann", "correct horse")
    strong = Accounts(any_store, hasher=default_hasher())
    strong.login("ann", "correct horse")
    record = any_store.user("ann")
    assert record is not None and "m=19456,t=2,p=1" in record.passwd


def test_dict_auth_is_md5_of_msgid_and_the_dict_key(accounts: Accounts) -> None:
    accounts.register("ann", "correct horse")
    msg_id = "<1.2.3@host>"
    with pytest.raises(AccountError):  # no key made yet
        accounts.check_dict_auth("ann", msg_id, "0" * 32)
    key = accounts.new_dict_key("ann")
    answer = hashlib.md5((msg_id + key).encode()).hexdigest()
    assert accounts.check_dict_auth("ann", msg_id, answer) == "ann"
    assert accounts.check_dict_auth("ann", msg_id, answer.upper()) == "ann"
    for name, msg, ans in [("ann", "<other@host>", answer), ("bob", msg_id, answer),
                           ("ann", msg_id, "zz")]:
        with pytest.raises(AccountError):
            accounts.check_dict_auth(name, msg, ans)
    newer = accounts.new_dict_key("ann")
    assert newer != key
    with pytest.raises(AccountError):
        accounts.check_dict_auth("ann", msg_id, answer)  # the old key is gone


def test_simultaneous_registrations_of_one_name(accounts: Accounts) -> None:
    barrier = threading.Barrier(6)
    results: list[str] = []

    def register() -> None:
        barrier.wait()
        try:
            accounts.register("racer", "correct horse")
            results.append("ok")
        except AccountError as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=register) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["name-taken"] * 5 + ["ok"]
