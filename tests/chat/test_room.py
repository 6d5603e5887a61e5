"""The lobby with plain calls: no sockets, a fake clock, sinks that record."""

from __future__ import annotations

from typing import Any

import pytest

from ionet.chat.messages import Encoded
from ionet.chat.room import (
    OVERFLOW,
    QUEUED,
    SCHEDULE,
    ChatError,
    Lobby,
    Member,
    TokenBucket,
    check_name,
    check_room,
)
from ionet.core.testing import FakeClock


class RecordingSink:
    """A member's outbox that keeps every object, and can play a slow reader."""

    def __init__(self, cap: int | None = None) -> None:
        self.got: list[Encoded] = []
        self.cap = cap
        self.scheduled = 0
        self.killed = False

    def deliver(self, message: Encoded) -> int:
        self.got.append(message)
        if self.cap is not None and len(self.got) > self.cap:
            return OVERFLOW
        return SCHEDULE if len(self.got) == 1 else QUEUED

    def schedule(self) -> None:
        self.scheduled += 1

    def kill(self) -> None:
        self.killed = True

    def backlog(self) -> int:
        return 0

    def unclaimed(self) -> int:
        return 0

    def objs(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [m.obj for m in self.got if kind is None or m.obj["type"] == kind]

    def texts(self) -> list[str]:
        return [f"{o['from']}: {o['text']}" for o in self.objs("message")]


def enter(lobby: Lobby, name: str, room: str = "#lobby", **kw: Any) -> tuple[Member, RecordingSink]:
    sink = RecordingSink(**kw)
    member = lobby.new_member(name, sink)
    lobby.reserve(member)
    lobby.enter(member, room)
    return member, sink


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def lobby(clock: FakeClock) -> Lobby:
    return Lobby(history=3, max_text=20, rate=1.0, burst=3, clock=clock, wall=lambda: 1234.5)


def test_join_notice_message_to_the_others_and_leave_notice(lobby: Lobby) -> None:
    ann, ann_sink = enter(lobby, "ann")
    bob, bob_sink = enter(lobby, "bob")
    assert ann_sink.objs("welcome") == [{"type": "welcome", "name": "ann", "room": "#lobby",
                                         "history": []}]
    assert ann_sink.objs("joined") == [{"type": "joined", "name": "bob", "room": "#lobby"}]
    lobby.say(ann, "hello")
    assert bob_sink.texts() == ["ann: hello"]
    assert ann_sink.texts() == []  # the sender does not get its own message
    assert bob_sink.objs("message")[0]["time"] == 1234.5
    assert lobby.leave(bob)
    assert ann_sink.objs("left") == [{"type": "left", "name": "bob", "room": "#lobby"}]
    assert not lobby.leave(bob)  # idempotent: one notice only
    assert len(ann_sink.objs("left")) == 1


def test_one_encoding_shared_by_every_receiver(lobby: Lobby) -> None:
    ann, _ = enter(lobby, "ann")
    sinks = [enter(lobby, f"m{i}")[1] for i in range(5)]
    lobby.say(ann, "hi")
    sent = [s.got[-1] for s in sinks]
    assert all(m is sent[0] for m in sent)
    assert all(m.line is sent[0].line for m in sent)


@pytest.mark.parametrize("name", ["ANN", "Ann", "ａｎｎ"])
def test_names_are_unique_case_insensitively(lobby: Lobby, name: str) -> None:
    enter(lobby, "ann")
    with pytest.raises(ChatError) as info:
        enter(lobby, name)
    assert info.value.code == "name_taken"


def test_a_name_is_free_again_after_its_owner_left(lobby: Lobby) -> None:
    ann, _ = enter(lobby, "ann")
    lobby.leave(ann)
    enter(lobby, "ANN")


def test_a_reserved_but_not_entered_name_is_taken(lobby: Lobby) -> None:
    first = lobby.new_member("ann", RecordingSink())
    lobby.reserve(first)
    with pytest.raises(ChatError):
        lobby.reserve(lobby.new_member("ann", RecordingSink()))
    lobby.unreserve(first)
    lobby.reserve(lobby.new_member("ann", RecordingSink()))


@pytest.mark.parametrize("name", ["admin", "ADMIN", "Administrator", "管理员", "server", "ＡＤＭＩＮ",
                                  "_admin_", "root"])
def test_nobody_takes_the_administrators_name(name: str) -> None:
    with pytest.raises(ChatError) as info:
        check_name(name)
    assert info.value.code == "reserved_name"


@pytest.mark.parametrize("name", ["", "x" * 33, "two words", "tab\there", "bell\x07", "#room",
                                  "/cmd", 42, None])
def test_malformed_names_are_refused(name: Any) -> None:
    with pytest.raises(ChatError) as info:
        check_name(name)
    assert info.value.code == "bad_name"


def test_good_names() -> None:
    for name in ("a", "x" * 32, "小明", "ann_1", "Émile"):
        check_name(name)


def test_rooms_are_checked_and_case_folded() -> None:
    assert check_room("#Games") == "#games"
    for bad in ("lobby", "#", "#two words", "#" + "x" * 33, 7):
        with pytest.raises(ChatError):
            check_room(bad)


def test_rooms_are_separate_and_switching_tells_both(lobby: Lobby) -> None:
    ann, ann_sink = enter(lobby, "ann")
    bob, bob_sink = enter(lobby, "bob")
    cat, cat_sink = enter(lobby, "cat", "#games")
    lobby.say(ann, "lobby talk")
    assert cat_sink.texts() == []
    lobby.switch(bob, "#games")
    assert ann_sink.objs("left")[-1] == {"type": "left", "name": "bob", "room": "#lobby"}
    assert cat_sink.objs("joined")[-1] == {"type": "joined", "name": "bob", "room": "#games"}
    assert bob_sink.objs("welcome")[-1]["room"] == "#games"
    lobby.say(bob, "games talk")
    assert cat_sink.texts() == ["bob: games talk"]
    assert ann_sink.texts() == []
    assert lobby.who(cat).obj["names"] == ["bob", "cat"]
    assert lobby.who(ann).obj["names"] == ["ann"]


def test_history_keeps_the_last_n_messages_and_replays_them(lobby: Lobby, clock: FakeClock) -> None:
    ann, _ = enter(lobby, "ann")
    for n in range(5):
        clock.advance(1)
        lobby.say(ann, f"m{n}")
    _, late_sink = enter(lobby, "late")
    history = late_sink.objs("welcome")[0]["history"]
    assert [h["text"] for h in history] == ["m2", "m3", "m4"]


def test_private_messages_reach_one_member(lobby: Lobby) -> None:
    ann, ann_sink = enter(lobby, "ann")
    _, bob_sink = enter(lobby, "bob", "#elsewhere")
    _, cat_sink = enter(lobby, "cat")
    assert lobby.private(ann, "BOB", "psst")
    assert bob_sink.objs("private") == [{"type": "private", "from": "ann", "text": "psst",
                                         "time": 1234.5}]
    assert cat_sink.objs("private") == []
    assert not lobby.private(ann, "nobody", "hello?")


def test_announcements_reach_every_room(lobby: Lobby) -> None:
    _, a = enter(lobby, "ann")
    _, b = enter(lobby, "bob", "#other")
    lobby.announce("maintenance at noon")
    for sink in (a, b):
        assert sink.objs("announce") == [{"type": "announce", "text": "maintenance at noon",
                                          "time": 1234.5}]


def test_rate_limit_refuses_with_a_clear_error_and_recovers(lobby: Lobby, clock: FakeClock) -> None:
    ann, _ = enter(lobby, "ann")
    _, bob_sink = enter(lobby, "bob")
    for n in range(3):
        lobby.say(ann, f"burst {n}")
    with pytest.raises(ChatError) as info:
        lobby.say(ann, "one too many")
    assert info.value.code == "rate_limited"
    assert "1 messages per second" in info.value.message
    clock.advance(1.0)
    lobby.say(ann, "after a second")
    assert bob_sink.texts()[-1] == "ann: after a second"
    assert len(bob_sink.texts()) == 4


def test_administrators_are_not_rate_limited(lobby: Lobby) -> None:
    sink = RecordingSink()
    boss = lobby.new_member("boss", sink, admin=True)
    lobby.reserve(boss)
    lobby.enter(boss, "#lobby")
    for n in range(20):
        lobby.say(boss, f"{n}")


def test_too_long_and_empty_messages_are_refused(lobby: Lobby) -> None:
    ann, _ = enter(lobby, "ann")
    with pytest.raises(ChatError) as info:
        lobby.say(ann, "x" * 21)
    assert info.value.code == "too_long"
    for text in ("", "   ", None, 5):
        with pytest.raises(ChatError) as info:
            lobby.say(ann, text)
        assert info.value.code == "bad_text"
    lobby.say(ann, "x" * 20)


def test_a_slow_receiver_is_dropped_with_one_notice_and_the_room_goes_on(lobby: Lobby) -> None:
    lobby.rate = 0
    ann, ann_sink = enter(lobby, "ann")
    ann.bucket = None
    slow, slow_sink = enter(lobby, "slow", cap=3)
    _, bob_sink = enter(lobby, "bob")
    for n in range(5):
        lobby.say(ann, f"m{n}")
    assert slow_sink.killed
    assert not slow.alive
    assert [o for o in ann_sink.objs("left")] == [{"type": "left", "name": "slow",
                                                    "room": "#lobby", "reason": "too slow"}]
    assert len(bob_sink.texts()) == 5


def test_sinks_are_scheduled_once_per_batch_and_outside_the_lock(lobby: Lobby) -> None:
    class LockCheckingSink(RecordingSink):
        def schedule(self) -> None:
            assert not lobby.lock.locked()
            super().schedule()

    ann, _ = enter(lobby, "ann")
    sink = LockCheckingSink()
    bob = lobby.new_member("bob", sink)
    lobby.reserve(bob)
    lobby.enter(bob, "#lobby")
    lobby.say(ann, "one")
    assert sink.scheduled == 1


def test_token_bucket(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=2.0, burst=2, clock=clock)
    assert bucket.take() and bucket.take() and not bucket.take()
    clock.advance(0.5)
    assert bucket.take() and not bucket.take()
    clock.advance(100)
    assert bucket.take() and bucket.take() and not bucket.take()


def test_two_lobbies_in_one_process_are_independent() -> None:
    one, two = Lobby(), Lobby()
    enter(one, "ann")
    enter(two, "ann")
    assert list(one.members) == list(two.members) == ["ann"]


def test_apply_remote_events(lobby: Lobby) -> None:
    _, a = enter(lobby, "ann")
    _, b = enter(lobby, "bob", "#other")
    message = {"type": "message", "from": "zed", "room": "#lobby", "text": "hi", "time": 1.0}
    lobby.apply_remote({"room": "#lobby", "exclude": "zed", "obj": message})
    assert a.texts() == ["zed: hi"] and b.texts() == []
    lobby.apply_remote({"to": "bob", "obj": {"type": "private", "from": "zed", "text": "p",
                                            "time": 1.0}})
    assert b.objs("private") and not a.objs("private")
    lobby.apply_remote({"obj": {"type": "announce", "text": "all", "time": 1.0}})
    assert a.objs("announce") and b.objs("announce")


def test_a_cascade_of_drops_in_a_big_room_does_not_recurse(lobby: Lobby) -> None:
    lobby.rate = 0
    sender, _ = enter(lobby, "sender")
    sender.bucket = None
    sinks = [enter(lobby, f"m{i}")[1] for i in range(1500)]
    for sink in sinks:
        sink.cap = len(sink.got)  # full: one more object overflows it
    lobby.say(sender, "the straw")
    assert all(s.killed for s in sinks)
    assert list(lobby.members) == ["sender"]


def test_the_number_of_rooms_is_capped(lobby: Lobby, monkeypatch: pytest.MonkeyPatch) -> None:
    import ionet.chat.room as room_module

    monkeypatch.setattr(room_module, "MAX_ROOMS", 2)
    enter(lobby, "ann", "#one")
    enter(lobby, "bob", "#two")
    lobby.check_capacity("#one")
    with pytest.raises(ChatError) as info:
        lobby.check_capacity("#three")
    assert info.value.code == "too_many_rooms"


def test_congestion_counts_a_majority_behind_or_anyone_whose_thread_has_not_run(
        lobby: Lobby) -> None:
    class Behind(RecordingSink):
        def __init__(self, backlog: int = 0, unclaimed: int = 0) -> None:
            super().__init__()
            self.bytes, self.not_picked_up = backlog, unclaimed

        def backlog(self) -> int:
            return self.bytes

        def unclaimed(self) -> int:
            return self.not_picked_up

    sender, _ = enter(lobby, "sender")
    sinks = [Behind() for _ in range(3)]
    for n, sink in enumerate(sinks):
        member = lobby.new_member(f"m{n}", sink)
        lobby.reserve(member)
        lobby.enter(member, "#lobby")
    sinks[0].bytes = 500  # blocked writing to a peer that reads nothing: a minority
    assert lobby.congested(sender, 100) == 0
    sinks[1].bytes = 300  # two of three: most of the room
    assert lobby.congested(sender, 100) == 800
    sinks[1].bytes, sinks[2].bytes, sinks[2].not_picked_up = 0, 200, 200
    assert lobby.congested(sender, 100) == 700  # its own thread has not run yet
