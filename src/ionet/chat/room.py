"""The chat's state: members, rooms, history, rate limits.  No IO at all.

One :class:`Lobby` holds every room of a server process and is shared by all
its front doors (TCP, UDP, WebSocket), as miniircd's ``Server`` holds its
``Channel`` objects: state lives in objects, never in module globals, so a
test builds two lobbies in one process and drives them with plain calls.

How a message reaches the others
--------------------------------
A front door gives each member a *sink*, the member's outbox.  The lobby
encodes a message once (:class:`~ionet.chat.messages.Encoded`) and, under its
lock, appends the same bytes to every receiver's sink; that is all it does
under the lock: nothing there blocks, yields or writes to a socket.  After
the lock is released, each sink that was idle is asked to ``schedule()`` a
flush in its own connection's context (the loop thread, or the receiver's
own thread or greenlet), where the queued messages go out in one write.

So a slow receiver costs the sender nothing: its bytes pile up in its own
outbox and write buffer, and once they pass the sink's cap (1 MiB) the sink
reports an overflow and the member is dropped with a leave notice, as ngircd
drops a client whose 32 KiB send queue fills.  And a burst of messages from
one sender, read in one ``recv``, is one :class:`~ionet.chat.messages.Batch`:
one queue entry per receiver, their bytes joined once and shared
(:meth:`Lobby.say_many`).  When a sender outruns most of its room rather
than one member, the door stops reading it for a moment instead
(:meth:`Lobby.congested`), so a flood slows down rather than drops everyone;
only while those members catch up, though: late members that take nothing
hold it a second at a time, one turn in between, until they reach their cap
and are dropped (``Session.congested``).

The lock is a plain ``threading.Lock``: uncontended (loop engines) it costs
about 50 ns; on the thread engine it orders the room's events, so every
member sees messages in the same order.

Names
-----
A nickname is 1-32 printable characters without whitespace, not starting
with ``#`` or ``/`` (rooms and commands), unique case-insensitively after
NFKC normalisation (so "ＡＤＭＩＮ" is "admin"), and never one of the
reserved names (:data:`RESERVED_NAMES`): nobody may pass for the
administrator.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from ionet.chat import messages
from ionet.chat.messages import Encoded, Obj

if TYPE_CHECKING:
    from ionet.chat.bus import Bus

log = logging.getLogger("ionet.chat")

__all__ = [
    "ChatError", "Lobby", "Member", "Room", "Sink", "TokenBucket", "check_name", "check_room",
    "name_key", "DEFAULT_ROOM", "RESERVED_NAMES", "QUEUED", "SCHEDULE", "OVERFLOW",
]

DEFAULT_ROOM = "#lobby"
MAX_NAME = 32
MAX_ROOM = 32
MAX_ROOMS = 1000
RESERVED_NAMES = ("admin", "administrator", "管理员", "server", "system", "root")
DEFAULT_HISTORY = 50
DEFAULT_MAX_TEXT = 2000
DEFAULT_RATE = 5.0  # messages per second, sustained
DEFAULT_BURST = 10  # messages at once

_ROOM = re.compile(r"#[^\s,#/]{1,%d}" % MAX_ROOM)

# What Sink.deliver returns.
QUEUED = 0  #: queued; a flush is already scheduled
SCHEDULE = 1  #: queued; call ``schedule()`` once the lobby's lock is released
OVERFLOW = 2  #: over the sink's cap: drop this member


class ChatError(Exception):
    """A request the lobby refuses; the client gets ``{"type": "error", ...}``.

    Attributes:
        code: a short machine-readable reason ("name_taken", "rate_limited").
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def encoded(self) -> Encoded:
        return messages.error(self.code, self.message)


def name_key(name: str) -> str:
    """The identity of a name: NFKC-normalised and case-folded."""
    return unicodedata.normalize("NFKC", name).casefold()


_RESERVED = frozenset(name_key(n) for n in RESERVED_NAMES)


def check_name(name: Any) -> str:
    """Validate a nickname and return its key (see :func:`name_key`).

    Raises:
        ChatError: "bad_name" or "reserved_name", with a message saying why.
    """
    if not isinstance(name, str) or not name:
        raise ChatError("bad_name", "a name is 1 to 32 characters")
    if len(name) > MAX_NAME:
        raise ChatError("bad_name", f"a name is at most {MAX_NAME} characters")
    if not name.isprintable() or any(ch.isspace() for ch in name):
        raise ChatError("bad_name", "a name has printable characters and no spaces")
    if name[0] in "#/@":
        raise ChatError("bad_name", "a name may not start with #, / or @")
    key = name_key(name)
    if key in _RESERVED or name_key(name.strip("_-.")) in _RESERVED:
        raise ChatError("reserved_name", f"{name!r} is reserved for the administrator")
    return key


def check_room(room: Any) -> str:
    """Validate a room name ("#" and 1-32 characters) and return it case-folded.

    Raises:
        ChatError: "bad_room".
    """
    if not isinstance(room, str) or not _ROOM.fullmatch(room) or not room.isprintable():
        raise ChatError("bad_room", f"a room is '#' and 1 to {MAX_ROOM} characters, e.g. #lobby")
    return room.casefold()


class TokenBucket:
    """A rate limit: ``burst`` messages at once, ``rate`` per second after that."""

    __slots__ = ("rate", "burst", "tokens", "last", "clock")

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.clock = clock
        self.last = clock()

    def take(self) -> bool:
        """Spend one token if there is one."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Sink(Protocol):
    """A member's outbox, provided by its front door.

    ``deliver`` is called with the lobby's lock held and must only queue;
    ``schedule``, ``flush`` and ``kill`` are called without it.
    """

    def deliver(self, message: Encoded) -> int:
        """Queue ``message``; return QUEUED, SCHEDULE or OVERFLOW."""

    def schedule(self) -> None:
        """Arrange for the queue to be flushed in the member's own context."""

    def kill(self) -> None:
        """Disconnect the member at once (it was dropped)."""

    def backlog(self) -> int:
        """Bytes queued for the member and not yet taken by its peer."""

    def unclaimed(self) -> int:
        """Bytes queued that the member's own context (its thread, its
        greenlet, its loop's flusher) has not started to write: 0 while it
        is writing, for then it waits on its peer."""


class Member:
    """One person in the chat, as this process sees them.

    Attributes:
        name: the nickname as typed; ``key`` its identity.
        room: the room's name while in one, else None.
        alive: False once the member left (or was dropped): the leave
            notice is sent only by whoever turns it False.
        admin: authenticated as the administrator (no rate limit).
    """

    __slots__ = ("name", "key", "sink", "bucket", "admin", "room", "alive", "door")

    def __init__(self, name: str, key: str, sink: Sink, bucket: TokenBucket | None = None,
                 admin: bool = False, door: str = "?") -> None:
        self.name = name
        self.key = key
        self.sink = sink
        self.bucket = bucket
        self.admin = admin
        self.room: str | None = None
        self.alive = True
        self.door = door

    def __repr__(self) -> str:
        return f"<Member {self.name} {self.room} via {self.door}{'' if self.alive else ' (gone)'}>"


class Room:
    """One room: its members (by key) and its last messages."""

    __slots__ = ("name", "members", "history")

    def __init__(self, name: str, history: int) -> None:
        self.name = name
        self.members: dict[str, Member] = {}
        # collections.deque(maxlen=N) rather than ionet.ds's queue: a bounded
        # ring that drops the oldest entry on append is exactly what "the last
        # N messages" means, and deque does it in C with O(1) appends.
        self.history: collections.deque[Obj] = collections.deque(maxlen=history or 0)


class _Batch:
    """What one lobby operation decided, carried out once the lock is released."""

    __slots__ = ("sinks", "drops", "events")

    def __init__(self) -> None:
        self.sinks: list[Sink] = []
        self.drops: list[Member] = []
        self.events: list[Callable[[], None]] = []

    def send(self, member: Member, message: Encoded) -> None:
        status = member.sink.deliver(message)
        if status == SCHEDULE:
            self.sinks.append(member.sink)
        elif status == OVERFLOW:
            self.drops.append(member)


class Lobby:
    """Every room of one server process, and the rules they follow.

    Args:
        history: messages kept per room and replayed on join (0: none).
        max_text: the longest message text, in characters.
        rate / burst: each member's rate limit (``rate`` 0: none).
        clock: a monotonic clock for rate limits (injectable for tests).
        wall: the wall clock for message times.
        bus: a :class:`~ionet.chat.bus.RedisBus` shared with other server
            processes, or None for a single process.
    """

    def __init__(self, history: int = DEFAULT_HISTORY, max_text: int = DEFAULT_MAX_TEXT,
                 rate: float = DEFAULT_RATE, burst: int = DEFAULT_BURST,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, bus: Bus | None = None) -> None:
        self.history = max(0, history)
        self.max_text = max_text
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.wall = wall
        self.bus = bus
        self.lock = threading.Lock()
        self._local = threading.local()
        self.rooms: dict[str, Room] = {}
        self.members: dict[str, Member] = {}  # joined here, by key
        self._pending: set[str] = set()  # names claimed, join not yet complete
        if bus is not None:
            bus.attach(self)

    # -- the lock and what follows it ---------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[_Batch]:
        batch = _Batch()
        try:
            with self.lock:
                yield batch
        finally:
            self._carry_out(batch)

    def _carry_out(self, batch: _Batch) -> None:
        for sink in batch.sinks:
            sink.schedule()
        for event in batch.events:
            event()
        if not batch.drops:
            return
        # Dropping a member tells the others, which may overflow them too: a
        # cascade handled as a worklist by the outermost call in this thread,
        # not by recursion (500 members would pass Python's recursion limit).
        local = self._local
        queue: collections.deque[Member] | None = getattr(local, "drops", None)
        if queue is not None:
            queue.extend(batch.drops)
            return
        local.drops = queue = collections.deque(batch.drops)
        try:
            while queue:
                member = queue.popleft()
                if self.leave(member, "too slow"):
                    log.info("chat: dropped %s (%s): too slow", member.name, member.door)
                    member.sink.kill()
        finally:
            local.drops = None

    def _room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = Room(name, self.history)
        return room

    # -- names ----------------------------------------------------------------

    def new_member(self, name: Any, sink: Sink, admin: bool = False, door: str = "?") -> Member:
        """A member object for ``name`` (validated), not yet in any room.

        Raises:
            ChatError: the name is malformed or reserved.
        """
        key = check_name(name)
        assert isinstance(name, str)
        bucket = None if admin or self.rate <= 0 else TokenBucket(self.rate, self.burst, self.clock)
        return Member(name, key, sink, bucket, admin, door)

    def reserve(self, member: Member) -> None:
        """Claim ``member``'s name in this process (racing joins: one wins).

        Raises:
            ChatError: "name_taken".
        """
        with self.lock:
            if member.key in self.members or member.key in self._pending:
                raise ChatError("name_taken", f"the name {member.name!r} is taken")
            self._pending.add(member.key)

    def unreserve(self, member: Member) -> None:
        """Give a reserved name back (the join failed or the peer went away)."""
        with self.lock:
            self._pending.discard(member.key)

    def check_capacity(self, room_name: str) -> None:
        """Refuse a new room past MAX_ROOMS (each keeps a history).

        Raises:
            ChatError: "too_many_rooms".
        """
        with self.lock:
            if room_name not in self.rooms and len(self.rooms) >= MAX_ROOMS:
                raise ChatError("too_many_rooms", f"this server has {MAX_ROOMS} rooms already; "
                                                  "join one of them")

    # -- membership -------------------------------------------------------------

    def enter(self, member: Member, room_name: str, history: list[Obj] | None = None) -> None:
        """Put a reserved member in a room: a welcome to them, a notice to the others.

        ``history`` is the replay for the welcome; None means this process's
        own (the Redis bus fetches it from Redis instead).
        """
        with self._locked() as batch:
            self._pending.discard(member.key)
            if not member.alive:
                return
            self.members[member.key] = member
            self._enter(batch, member, room_name, history)

    def _enter(self, batch: _Batch, member: Member, room_name: str,
               history: list[Obj] | None) -> None:
        room = self._room(room_name)
        member.room = room.name
        if history is None:
            history = list(room.history)
        batch.send(member, messages.welcome(member.name, room.name, history))
        notice = messages.joined(member.name, room.name)
        for other in room.members.values():
            batch.send(other, notice)
        room.members[member.key] = member
        if self.bus is not None:
            bus = self.bus
            bus_event = {"room": room.name, "exclude": member.key, "obj": notice.obj}
            batch.events.append(lambda: bus.entered(member.key, member.name, room.name, bus_event))

    def switch(self, member: Member, room_name: str, history: list[Obj] | None = None) -> None:
        """Move a member to another room (``/join #room``): notices in both."""
        with self._locked() as batch:
            if not member.alive:
                raise ChatError("not_joined", "join first")
            if member.room == room_name:
                batch.send(member, messages.welcome(
                    member.name, room_name,
                    list(self._room(room_name).history) if history is None else history))
                return
            self._exit(batch, member, None)
            self._enter(batch, member, room_name, history)

    def leave(self, member: Member, reason: str | None = None) -> bool:
        """Take a member out; True if this call did it (the notice went out).

        Idempotent: a connection that both says "leave" and then drops, or a
        slow receiver dropped while its connection closes, gets one notice.
        """
        with self._locked() as batch:
            self._pending.discard(member.key)
            if not member.alive:
                return False
            member.alive = False
            if self.members.get(member.key) is member:
                del self.members[member.key]
            if member.room is not None:
                self._exit(batch, member, reason, release=True)
            return True

    def _exit(self, batch: _Batch, member: Member, reason: str | None,
              release: bool = False) -> None:
        room = self.rooms.get(member.room or "")
        if room is None:
            return
        room.members.pop(member.key, None)
        notice = messages.left(member.name, room.name, reason)
        for other in room.members.values():
            batch.send(other, notice)
        if not room.members and not room.history:
            del self.rooms[room.name]
        member.room = None
        if self.bus is not None:
            bus = self.bus
            bus_event = {"room": room.name, "exclude": member.key, "obj": notice.obj}
            batch.events.append(lambda: bus.departed(member.key, member.name, room.name, bus_event,
                                                     release))

    # -- talking -------------------------------------------------------------------

    def check_text(self, member: Member, text: Any) -> str:
        """Validate a text and spend a rate-limit token.

        Raises:
            ChatError: "bad_text", "too_long" or "rate_limited".
        """
        if not isinstance(text, str) or not text.strip():
            raise ChatError("bad_text", "a message needs some text")
        if len(text) > self.max_text:
            raise ChatError("too_long", f"a message is at most {self.max_text} characters "
                                        f"(this one has {len(text)})")
        if member.bucket is not None and not member.bucket.take():
            raise ChatError("rate_limited",
                            f"slow down: at most {self.rate:g} messages per second")
        return text

    def say(self, member: Member, text: Any) -> None:
        """Send ``text`` to everyone else in the member's room.

        Raises:
            ChatError: not in a room, or the text is refused (see check_text).
        """
        errors = self.say_many(member, [text])
        if errors:
            raise errors[0]

    def say_many(self, member: Member, texts: list[Any]) -> list[ChatError]:
        """Send several texts, in order, as one delivery (see ``messages.Batch``).

        Texts refused by :meth:`check_text` are skipped; their errors are
        returned, for the sender.

        Raises:
            ChatError: not in a room.
        """
        errors: list[ChatError] = []
        accepted = []
        for text in texts:
            try:
                accepted.append(self.check_text(member, text))
            except ChatError as exc:
                errors.append(exc)
        if not accepted:
            if not member.alive or member.room is None:
                raise ChatError("not_joined", "join a room first")
            return errors
        with self._locked() as batch:
            room = self.rooms.get(member.room or "")
            if not member.alive or room is None:
                raise ChatError("not_joined", "join a room first")
            when = messages.now(self.wall())
            objs = [messages.message_obj(member.name, room.name, text, when) for text in accepted]
            parts = [Encoded(obj) for obj in objs]
            encoded = parts[0] if len(parts) == 1 else messages.Batch(parts)
            # batch.send, inlined: this loop runs once per receiver per message.
            sinks, drops = batch.sinks, batch.drops
            for other in room.members.values():
                if other is not member:
                    status = other.sink.deliver(encoded)
                    if status:
                        if status == SCHEDULE:
                            sinks.append(other.sink)
                        else:
                            drops.append(other)
            if self.bus is None:
                room.history.extend(objs)
            else:
                bus = self.bus
                events = [{"room": room.name, "exclude": member.key, "obj": obj} for obj in objs]
                batch.events.append(lambda: bus.publish_many(events, history=True))
        return errors

    def private(self, member: Member, to: Any, text: Any) -> bool:
        """A private message; True if delivered here, False if ``to`` is not here.

        Raises:
            ChatError: not joined, a malformed name, or the text is refused.
        """
        if not isinstance(to, str) or not to:
            raise ChatError("bad_name", "say whom the message is for")
        text = self.check_text(member, text)
        key = name_key(to)
        with self._locked() as batch:
            if not member.alive or member.room is None:
                raise ChatError("not_joined", "join a room first")
            target = self.members.get(key)
            if target is None:
                return False
            batch.send(target, messages.private(member.name, text, messages.now(self.wall())))
            return True

    def private_remote(self, member: Member, to: str, text: str) -> None:
        """Send a private message through the bus to another process's member."""
        assert self.bus is not None
        obj = messages.private(member.name, text, messages.now(self.wall())).obj
        self.bus.publish({"to": name_key(to), "obj": obj})

    def who(self, member: Member) -> Encoded:
        """The names in the member's room, in this process."""
        with self.lock:
            room = self.rooms.get(member.room or "")
            if not member.alive or room is None:
                raise ChatError("not_joined", "join a room first")
            names = sorted((m.name for m in room.members.values()), key=name_key)
            return messages.who(room.name, names)

    def announce(self, text: str) -> None:
        """The administrator's announcement, to every member of every room."""
        encoded = messages.announce(text, messages.now(self.wall()))
        with self._locked() as batch:
            for member in self.members.values():
                batch.send(member, encoded)
            if self.bus is not None:
                bus = self.bus
                batch.events.append(lambda: bus.publish({"obj": encoded.obj}))

    def apply_remote(self, event: dict[str, Any]) -> None:
        """Deliver an event another server process published on the bus.

        ``{"room": R, "exclude": KEY, "obj": ...}`` goes to room R (but KEY);
        ``{"to": KEY, "obj": ...}`` to that member; ``{"obj": ...}`` to all.
        """
        encoded = Encoded(event["obj"])
        with self._locked() as batch:
            to = event.get("to")
            if to is not None:
                target = self.members.get(to)
                if target is not None:
                    batch.send(target, encoded)
                return
            room_name = event.get("room")
            if room_name is None:
                receivers: Any = self.members.values()
            else:
                room = self.rooms.get(room_name)
                receivers = room.members.values() if room is not None else ()
            exclude = event.get("exclude")
            for member in receivers:
                if member.key != exclude:
                    batch.send(member, encoded)

    def congested(self, member: Member, behind: int) -> int:
        """Whether enough of the others in ``member``'s room (over half of a
        small room, over a quarter of one of 8 or more) have more than
        ``behind`` bytes waiting for them: 0 if not, else the bytes waiting
        for those late members (which shrink while they catch up).

        Then a flooding sender is made to wait, so a room whose members read
        slower than it writes keeps them, instead of dropping them all.  A
        minority of slow members never makes the room wait (they are
        dropped at their sinks' cap); in a room of two, though, the one
        other member is the majority, so whoever holds the sender must also
        see that the late members take nothing (``Session.congested``).

        A late member whose bytes its own thread has not even picked up
        (``Sink.unclaimed``) also makes the room wait, whoever it is: it is
        not slow, its thread has not run yet.  On the thread engine a sender
        fills a 1 MiB outbox in a few milliseconds, about one switch of the
        GIL, and the cap is no place to learn that a busy machine schedules
        threads late.
        """
        with self.lock:
            room = self.rooms.get(member.room or "")
            if room is None or len(room.members) < 2:
                return 0
            others = len(room.members) - 1
            late = waiting = 0
            unclaimed = False
            for other in room.members.values():
                if other is not member:
                    backlog = other.sink.backlog()
                    if backlog > behind:
                        late += 1
                        waiting += backlog
                        unclaimed = unclaimed or other.sink.unclaimed() > behind
            # Over half of a small room; over a quarter of a big one (where a
            # minority of slow readers must not drag the flood into drops).
            if unclaimed or late * 2 > others or (others >= 8 and late * 4 > others):
                return waiting
            return 0

    def local_members(self) -> list[tuple[str, str, str]]:
        """``(key, name, room)`` of every member in this process."""
        with self.lock:
            return [(m.key, m.name, m.room) for m in self.members.values() if m.room]
