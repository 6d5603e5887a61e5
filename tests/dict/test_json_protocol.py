"""The JSON line protocol, driven with plain bytes through the fake transport."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ionet.core.testing import FakeClock, FakeTransport, feed_split, random_pieces
from ionet.dict.accounts import Accounts
from ionet.dict.protocol import MAX_REQUEST, OPS, DictJsonProtocol
from ionet.dict.service import DictService
from ionet.dict.sqlite import SQLiteStore
from tests.dict.conftest import cheap_hasher

PASSWORD = "correct horse battery"


@pytest.fixture
def service(tmp_path: Path, sample_db: Path) -> Iterator[DictService]:
    shutil.copy(sample_db, tmp_path / "dict.sqlite3")
    store = SQLiteStore(tmp_path / "dict.sqlite3")
    yield DictService(store, Accounts(store, hasher=cheap_hasher(), max_failures=3),
                      login_delay=1.0)
    store.close()


class Session:
    """A protocol on a fake transport, with JSON helpers."""

    def __init__(self, service: DictService, **transport_options: Any) -> None:
        self.clock = FakeClock()
        self.transport = FakeTransport(clock=self.clock, **transport_options)
        self.protocol = DictJsonProtocol(service)
        self.transport.connect(self.protocol)

    def send(self, *requests: dict[str, Any]) -> None:
        self.transport.feed(b"".join(json.dumps(r).encode() + b"\n" for r in requests))

    def replies(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.transport.take().splitlines()]

    def ask(self, **request: Any) -> dict[str, Any]:
        self.send(request)
        [reply] = self.replies()
        return reply


def test_a_whole_session(service: DictService) -> None:
    s = Session(service)
    assert s.ask(op="register", name="ann", password=PASSWORD) == {"ok": True, "name": "ann"}
    assert s.ask(op="login", name="ann", password=PASSWORD) == {"ok": True, "name": "ann"}
    hit = s.ask(op="lookup", word="Apple")
    assert hit["ok"] and hit["suggestions"] == []
    assert [(d["db"], d["word"]) for d in hit["definitions"]] == [
        ("sample", "apple"), ("cedict-en", "apple")]
    chinese = s.ask(op="lookup", word="苹果", db="cedict")
    assert chinese["definitions"][0]["text"].startswith("苹果 (蘋果) [píng guǒ]")
    miss = s.ask(op="lookup", word="appel", db="sample")
    assert miss["definitions"] == [] and miss["suggestions"][:2] == ["apple", "appeal"]
    history = s.ask(op="history")["history"]
    assert [h["word"] for h in history] == ["appel", "苹果", "Apple"]
    assert all(h["name"] == "ann" and h["time"].endswith("Z") for h in history)
    assert s.ask(op="logout") == {"ok": True, "name": "ann"}
    assert s.ask(op="history")["error"] == "not-logged-in"
    assert s.ask(op="quit") == {"ok": True, "bye": True}
    assert s.transport.closed


def test_history_limit_and_isolation(service: DictService) -> None:
    ann, ben = Session(service), Session(service)
    for session, name in ((ann, "ann"), (ben, "ben")):
        session.ask(op="register", name=name, password=PASSWORD)
        session.ask(op="login", name=name, password=PASSWORD)
    for n in range(12):
        ann.ask(op="lookup", word=f"word{n}")
    ben.ask(op="lookup", word="banana")
    assert len(ann.ask(op="history")["history"]) == 10
    everything = ann.ask(op="history", limit=0)["history"]
    assert [h["word"] for h in everything] == [f"word{n}" for n in range(11, -1, -1)]
    assert [h["word"] for h in ann.ask(op="history", limit=2)["history"]] == ["word11", "word10"]
    assert [h["word"] for h in ben.ask(op="history", limit=0)["history"]] == ["banana"]
    for bad in (-1, "10", True, 1.5):
        assert ann.ask(op="history", limit=bad)["error"] == "bad-request"


def test_anonymous_lookups_are_not_recorded(service: DictService) -> None:
    s = Session(service)
    s.ask(op="lookup", word="apple")
    assert service.store.history("ann", 0) == []


@pytest.mark.parametrize("sizes", [[1], [2, 3, 7], [64]])
def test_requests_split_anywhere(service: DictService, sizes: list[int]) -> None:
    s = Session(service)
    data = (b'{"op": "lookup", "word": "banana"}\n'
            b'{"op": "lookup", "word": "\xe8\x8b\xb9\xe6\x9e\x9c"}\n')
    feed_split(s.transport, data, sizes)
    first, second = s.replies()
    assert first["definitions"][0]["word"] == "banana"
    assert second["definitions"][0]["db"] == "cedict"


def test_random_splits_and_merged_requests_keep_order(service: DictService) -> None:
    words = ["apple", "banana", "orange", "zebra", "python"] * 4
    data = b"".join(json.dumps({"op": "lookup", "word": w, "id": n}).encode() + b"\n"
                    for n, w in enumerate(words))
    for seed in range(5):
        s = Session(service)
        for piece in random_pieces(data, seed):
            s.transport.feed(piece)
        replies = s.replies()
        assert [r["id"] for r in replies] == list(range(len(words)))
        assert [r["definitions"][0]["word"].lower() for r in replies] == words


def test_one_request_in_flight_and_reading_paused(service: DictService) -> None:
    s = Session(service, run_workers=False)
    s.send({"op": "lookup", "word": "apple", "id": 1})
    assert len(s.transport.pending_workers) == 1
    s.send({"op": "lookup", "word": "banana", "id": 2}, {"op": "lookup", "word": "zebra", "id": 3})
    assert not s.transport.reading  # more arrived while busy: reading stops
    assert len(s.transport.pending_workers) == 1  # and the next waits its turn
    order = []
    while s.transport.pending_workers:
        s.transport.run_pending_workers()
        order += [r["id"] for r in s.replies()]
    assert order == [1, 2, 3] and s.transport.reading


@pytest.mark.parametrize("line, code", [
    (b"not json", "bad-json"),
    (b"[1, 2]", "bad-json"),
    (b'"just a string"', "bad-json"),
    (b"\xff\xfe{}", "bad-json"),
    (b'{"op": "fly"}', "unknown-op"),
    (b'{"word": "apple"}', "unknown-op"),
    (b'{"op": "lookup"}', "bad-request"),
    (b'{"op": "lookup", "word": 5}', "bad-request"),
    (b'{"op": "lookup", "word": "   "}', "bad-request"),
    (b'{"op": "lookup", "word": "apple", "db": 3}', "bad-request"),
    (b'{"op": "lookup", "word": "apple", "db": "nope"}', "no-such-db"),
    (b'{"op": "register", "name": "ann"}', "bad-request"),
    (b'{"op": "register", "name": "a b", "password": "long enough"}', "bad-name"),
    (b'{"op": "register", "name": "ann", "password": "short"}', "bad-password"),
    (b'{"op": "dict_key"}', "not-logged-in"),
    (b'{"op": "logout"}', "not-logged-in"),
])
def test_bad_requests_get_an_error_and_the_connection_stays(service: DictService, line: bytes,
                                                            code: str) -> None:
    s = Session(service)
    s.transport.feed(line + b"\n")
    [reply] = s.replies()
    assert reply["ok"] is False and reply["error"] == code and reply["message"]
    assert s.ask(op="lookup", word="apple")["ok"] is True
    assert not s.transport.closed


def test_an_oversized_request_is_refused_and_skipped(service: DictService) -> None:
    s = Session(service)
    s.transport.feed(b'{"op": "lookup", "word": "' + b"a" * (MAX_REQUEST + 10))
    assert s.replies()[0]["error"] == "too-long"
    s.transport.feed(b'aaa"}\n{"op": "lookup", "word": "apple", "id": 7}\n\n')
    [reply] = s.replies()
    assert reply["id"] == 7 and reply["ok"]


def test_a_failed_login_is_answered_late_and_locks(service: DictService,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    s = Session(service)
    s.ask(op="register", name="ann", password=PASSWORD)
    s.send({"op": "login", "name": "ann", "password": "wrong guess 1"},
           {"op": "lookup", "word": "apple"})
    assert s.transport.take() == b"" and not s.transport.reading  # nothing yet
    s.clock.advance(0.5)
    assert s.transport.take() == b""
    s.clock.advance(0.6)
    failed, lookup = s.replies()
    assert failed["error"] == "login-failed" and lookup["ok"]  # in order, after the delay
    for attempt in (2, 3):
        s.send({"op": "login", "name": "ann", "password": f"wrong guess {attempt}"})
        s.clock.advance(1.1)
    assert s.replies()[-1]["error"] == "locked"
    s.send({"op": "login", "name": "ann", "password": PASSWORD})
    s.clock.advance(1.1)
    assert s.replies()[0]["error"] == "locked"
    everything = caplog.text + s.transport.written().decode()
    assert "wrong guess" not in everything and PASSWORD not in everything


def test_eof_after_pipelined_requests_answers_them_all(service: DictService) -> None:
    s = Session(service, run_workers=False)
    s.send({"op": "lookup", "word": "apple"}, {"op": "lookup", "word": "banana"})
    assert s.transport.feed_eof() is True  # kept open to answer
    while s.transport.pending_workers:
        s.transport.run_pending_workers()
    assert len(s.replies()) == 2 and s.transport.closed


def test_a_store_failure_is_a_server_error(service: DictService,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    s = Session(service)

    def broken(*args: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service.store, "definitions", broken)
    reply = s.ask(op="lookup", word="apple")
    assert reply == {"ok": False, "error": "server-error", "message": "internal error"}
    monkeypatch.undo()
    assert s.ask(op="lookup", word="apple")["ok"]


def test_help_about_databases_and_dict_key(service: DictService) -> None:
    s = Session(service)
    assert set(s.ask(op="help")["ops"]) == set(OPS)
    about = s.ask(op="about")["about"]
    assert "CC BY-SA 4.0" in about and "MDBG" in about
    names = [d["name"] for d in s.ask(op="databases")["databases"]]
    assert names == ["sample", "cedict", "cedict-en"]
    s.ask(op="register", name="ann", password=PASSWORD)
    s.ask(op="login", name="ann", password=PASSWORD)
    reply = s.ask(op="dict_key", id="k")
    assert reply["ok"] and reply["id"] == "k" and len(reply["key"]) >= 20
