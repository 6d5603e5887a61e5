"""One client's conversation, whatever its front door, and the stream outbox.

The three front doors differ only in how bytes become client objects (a
line, a datagram, a WebSocket message) and how server objects go back; all
the rest is here, once: :class:`Session` reads client objects and turns them
into :class:`~ionet.chat.room.Lobby` calls through a handler table (as
miniircd's command table), and :class:`StreamSink` is the outbox of a TCP or
WebSocket member.

Calls that must wait for Redis (claiming a name across servers, fetching the
history, ``/who`` and ``/msg`` across servers) go through the transport's
``run_in_worker``, so a loop engine is never frozen (under gevent they run in
place: Redis's sockets yield to the hub); objects that arrive meanwhile wait
in a small backlog, so a client may pipeline ``join`` and ``say`` in one
write and they still happen in order.
"""

from __future__ import annotations

import collections
import hmac
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ionet.chat import messages
from ionet.chat.messages import Encoded, Obj
from ionet.chat.room import (
    DEFAULT_ROOM,
    OVERFLOW,
    QUEUED,
    SCHEDULE,
    ChatError,
    Member,
    Sink,
    check_room,
    name_key,
)
from ionet.core.protocol import BaseTransport, Outcome, Transport

if TYPE_CHECKING:
    from ionet.chat.service import ChatService

log = logging.getLogger("ionet.chat")


def _nothing() -> None:
    """A callback of a connection that has ended."""

#: Bytes a member may have waiting (outbox + the transport's write buffer)
#: before it is dropped as too slow.  ngircd drops at 32 KiB; a browser tab
#: in the background can lag a little, so we allow more.
DEFAULT_SINK_CAP = 1024 * 1024
#: After a round of flushes that took T, the next waits HOLD_FACTOR * T:
#: writing then takes at most 1 / (1 + HOLD_FACTOR) of the loop's time.
HOLD_FACTOR = 0.5
#: Outbox bytes that end a flusher's wait at once.
URGENT = 64 * 1024
#: Bytes waiting for a receiver above which it counts as behind (see
#: ``Lobby.congested``).
SOFT = 64 * 1024
#: Seconds a congested room may hold a flooding sender while the members
#: behind take nothing; then the sender gets one turn (see ``Session.congested``).
STALL = 1.0
#: Client objects held while a Redis call is in flight.
MAX_BACKLOG = 64

HELP = "commands: /who, /msg NAME text, /join #room, /quit (and //text says /text)"


#: Engines that run every connection in one thread: their flushes are grouped.
SHARED_THREAD_ENGINES = frozenset({"select", "poll", "epoll", "asyncio", "uvloop", "fake"})


def _on_thread(owner: int) -> bool:
    return threading.get_ident() == owner


class Flusher:
    """Groups the flushes of every sink on one event loop, and paces them.

    A message to 500 members costs 500 ``send`` calls, about 3 ms of one
    core; at 500 messages a second that is more than the core has.  ngircd
    gets away with it because its loop writes each client's queue once per
    turn, however many messages arrived meanwhile.  We do the same, with a
    rule that adapts to the load: after a round of flushes that took T
    seconds, the next round waits until T/2 seconds have passed (at most
    ``max_hold``).  When the loop is idle, T is tiny and a message goes out
    at once; when it is busy, at most two thirds of its time go to writing,
    and each write carries every message that arrived since the last, so
    the room keeps up instead of falling further behind.  A sink holding
    ``URGENT`` bytes (a flooding sender) ends the wait at once, so outboxes
    stay small.
    """

    __slots__ = ("clock", "max_hold", "dirty", "timer", "not_before", "holding")

    def __init__(self, clock: Callable[[], float], max_hold: float = 0.05) -> None:
        self.clock = clock
        self.max_hold = max_hold
        self.dirty: list[StreamSink] = []
        self.timer: Any = None  # armed: the TimerHandle of the next round
        self.not_before = 0.0
        self.holding = False  # the armed round waits for not_before

    def add(self, sink: StreamSink, urgent: bool = False) -> None:
        if not sink.listed:
            sink.listed = True
            self.dirty.append(sink)
        if self.timer is None:
            delay = 0.0 if urgent else max(0.0, self.not_before - self.clock())
            self.holding = delay > 0
            self.timer = sink.transport.call_later(delay, self.run)
        elif urgent and self.holding:
            self.timer.cancel()
            self.holding = False
            self.timer = sink.transport.call_later(0, self.run)

    def run(self) -> None:
        self.timer = None
        self.holding = False
        dirty, self.dirty = self.dirty, []
        start = self.clock()
        for sink in dirty:
            sink.listed = False
            try:
                sink.flush()
            except Exception:
                log.exception("chat: a flush failed")
        end = self.clock()
        self.not_before = end + min(self.max_hold, (end - start) * HOLD_FACTOR)


class StreamSink:
    """The outbox of a member on a stream connection (TCP, WebSocket).

    ``deliver`` (under the lobby's lock) appends the shared bytes of a
    message; ``flush`` runs in the connection's own context and writes all
    that is queued in one ``transport.write``.  Who schedules the flush:

    * from the connection's own thread (every loop engine; a reply on the
      thread engine): the loop's :class:`Flusher` (``call_later(0, flush)``
      without one), which runs after the current batch of IO events, so the
      messages of one ``recv`` from a flooding sender reach each receiver in
      one write;
    * from another thread (the thread and gevent engines, the Redis bus, the
      console): ``call_soon_threadsafe(flush)``, so that a receiver that
      reads slowly blocks its own thread, never the sender's.  (A direct
      ``write`` from the sender's thread would be thread-safe on the thread
      engine too, but one receiver that reads nothing would then block every
      sender in turn.)
    """

    __slots__ = ("transport", "lock", "websocket", "cap", "owner", "outbox", "queued",
                 "scheduled", "urgent", "listed", "dead", "on_overflow", "_writing", "flusher",
                 "writing")

    def __init__(self, transport: Transport, lock: Any, websocket: bool = False,
                 cap: int = DEFAULT_SINK_CAP, flusher: Flusher | None = None) -> None:
        self.transport = transport
        self.flusher = flusher
        self.lock = lock  # the lobby's: it guards every sink's queue
        self.websocket = websocket
        self.cap = cap
        self.owner = threading.get_ident()
        self.outbox: list[bytes] = []
        self.queued = 0
        self.scheduled = False
        self.urgent = False  # asked its flusher to hurry
        self.listed = False  # in its flusher's list for the next round
        self.dead = False
        self.on_overflow: Callable[[], None] = lambda: None
        # One writer at a time (flushes queued from several threads may overlap).
        self._writing = threading.Lock()
        # Bytes handed to a transport.write that has not returned yet: on the
        # blocking engines (thread, gevent) write is a send loop that waits for
        # the peer, so these bytes are behind too, though in neither the
        # outbox nor the transport's (always empty) write buffer.
        self.writing = 0

    def deliver(self, message: Encoded) -> int:
        # The hot loop of a broadcast (once per receiver per message): the
        # common case is an append and two comparisons.
        data = message.ws if self.websocket else message.line
        outbox = self.outbox
        outbox.append(data)
        queued = self.queued = self.queued + len(data)
        if len(outbox) == 1:  # it was empty: a flush must be scheduled
            if self.dead:
                outbox.clear()
                self.queued = 0
                return QUEUED
            self.scheduled = True
            return SCHEDULE
        if queued < URGENT:
            return QUEUED
        if queued > self.cap:
            self.dead = True
            return OVERFLOW
        if not self.urgent and self.flusher is not None:
            self.urgent = True
            return SCHEDULE  # once more: hurry
        return QUEUED

    def schedule(self) -> None:
        transport = self.transport
        if _on_thread(self.owner):
            if self.flusher is not None:
                self.flusher.add(self, urgent=self.urgent)
            else:
                transport.call_later(0, self.flush)
            return
        transport.call_soon_threadsafe(self.flush)

    def flush(self) -> None:
        """Write everything queued, in one ``write``.

        Only one thread writes to a receiver at a time (``_writing``); a flush
        that finds another thread writing leaves its bytes to that writer,
        which looks again once done.  When a write blocks on a receiver that
        reads nothing (on the blocking engines), its queue grows past the cap,
        and the drop that follows aborts the connection, which ends the write.
        """
        transport = self.transport
        while self._writing.acquire(blocking=False):
            overflow = False
            try:
                with self.lock:
                    chunks, self.outbox = self.outbox, []
                    self.queued = 0
                    self.scheduled = self.urgent = False
                if not chunks or self.dead or transport.is_closing():
                    return
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                if transport.get_write_buffer_size() + len(data) > self.cap:
                    self.dead = overflow = True
                else:
                    self.writing = len(data)
                    try:
                        transport.write(data)
                    finally:
                        self.writing = 0
            finally:
                self._writing.release()
            if overflow:
                self.on_overflow()
                return
            with self.lock:
                if not self.outbox:  # nothing came while we wrote
                    return

    def backlog(self) -> int:
        """Bytes waiting for this receiver: queued here, in a write under way
        (a blocking engine's), and in the transport's write buffer."""
        return self.queued + self.writing + self.transport.get_write_buffer_size()

    def unclaimed(self) -> int:
        """Bytes queued here while no write is under way (see ``Sink.unclaimed``)."""
        return 0 if self.writing else self.queued

    def kill(self) -> None:
        self.dead = True
        transport = self.transport
        if _on_thread(self.owner) or \
                transport.get_extra_info("engine") not in SHARED_THREAD_ENGINES:
            # The blocking engines' abort is safe from any thread, and must be
            # called from here: the connection's own thread may be the one
            # stuck writing to this receiver, and abort is what unblocks it.
            transport.abort()
            return
        transport.call_soon_threadsafe(transport.abort)


class Session:
    """The chat conversation of one client.

    Args:
        service: the chat service (its lobby, admin token, bus).
        sink: where this client's messages queue.
        transport: for ``run_in_worker`` (Redis calls).
        door: "tcp", "udp" or "ws", for logs and ``Member.door``.
        close: ends the connection after what is queued went out; called in
            the connection's own context.
    """

    def __init__(self, service: ChatService, sink: Sink, transport: BaseTransport, door: str,
                 close: Callable[[], None]) -> None:
        self.service = service
        self.lobby = service.lobby
        self.sink = sink
        self.transport = transport
        self.door = door
        self._close = close
        self.member: Member | None = None
        self.entered = False  # the join completed (welcome sent)
        self.admin = False
        self.closed = False
        self.busy = False
        self.backlog: collections.deque[Obj] = collections.deque()
        self._held_since: float | None = None  # see congested()
        self._held_waiting = 0

    # -- input -------------------------------------------------------------------

    def receive(self, data: bytes | str) -> None:
        """One client object, as JSON text."""
        try:
            obj = messages.decode(data)
        except ValueError as exc:
            self.reply(messages.error("bad_json", str(exc)))
            return
        self.handle(obj)

    def receive_many(self, items: list[bytes] | list[str]) -> None:
        """Client objects that arrived together (one ``recv``), in order.

        Consecutive plain ``say`` objects go to the lobby as one batch
        (:meth:`~ionet.chat.room.Lobby.say_many`): a flooding sender's
        hundreds of lines then cost each receiver one queue entry.
        """
        texts: list[str] = []
        for data in items:
            if self.closed:
                break
            try:
                obj = messages.decode(data)
            except ValueError as exc:
                self._say_all(texts)
                self.reply(messages.error("bad_json", str(exc)))
                continue
            text = obj.get("text")
            if (obj["type"] == "say" and isinstance(text, str) and not text.startswith("/")
                    and self.entered and not self.busy):
                texts.append(text)
                continue
            self._say_all(texts)
            self.handle(obj)
        self._say_all(texts)

    def _say_all(self, texts: list[str]) -> None:
        if not texts:
            return
        batch = list(texts)
        texts.clear()
        try:
            errors = self.lobby.say_many(self._joined(), batch)
        except ChatError as refused:
            errors = [refused]
        for error in errors:
            self.reply(error.encoded())

    def handle(self, obj: Obj) -> None:
        """One decoded client object."""
        if self.closed:
            return
        if self.busy:
            if len(self.backlog) >= MAX_BACKLOG:
                self.reply(messages.error("busy", "too many requests at once"))
            else:
                self.backlog.append(obj)
            return
        handler = self.HANDLERS.get(obj["type"])
        if handler is None:
            self.reply(messages.error("unknown_type", f"unknown type {obj['type']!r}"))
            return
        try:
            handler(self, obj)
        except ChatError as exc:
            self.reply(exc.encoded())

    def reply(self, message: Encoded) -> None:
        """Queue a message for this client alone."""
        with self.lobby.lock:
            status = self.sink.deliver(message)
        if status == SCHEDULE:
            self.sink.schedule()
        elif status == OVERFLOW:
            self.sink.kill()

    # -- the end -------------------------------------------------------------------

    def disconnected(self, reason: str | None = None) -> None:
        """The connection is gone (or is going): leave, once."""
        if self.closed:
            return
        self.closed = True
        self.backlog.clear()
        member = self.member
        if member is not None:
            self.lobby.leave(member, reason)
            bus = self.lobby.bus
            if bus is not None and not self.entered:
                bus.release_later(member.key)  # a claim may be in flight

    def detach(self) -> None:
        """The connection is over: let go of its protocol's callbacks.

        The protocol keeps this session, which keeps the protocol's
        ``close`` and (through the sink's ``on_overflow``) is kept by its own
        sink: two reference cycles per connection, which only Python's cyclic
        garbage collector would free.  Nothing calls them after the end.
        """
        self._close = _nothing
        self.sink.on_overflow = _nothing

    def overflowed(self) -> None:
        """The sink found this client too slow: drop it with a notice."""
        if self.member is not None and self.lobby.leave(self.member, "too slow"):
            log.info("chat: dropped %s (%s): too slow", self.member.name, self.door)
        self.closed = True
        self.sink.kill()

    def server_stopping(self) -> None:
        if self.closed:
            return
        self.reply(messages.error("shutting_down", "the server is shutting down"))
        self.disconnected("server stopping")
        self._close()

    # -- Redis calls, off the loop ---------------------------------------------------

    def _offload(self, func: Callable[[], Any], then: Callable[[Any], None],
                 failed: Callable[[], None] | None = None) -> None:
        """Run ``func()`` in a worker, then ``then(result)`` here; ``failed()``
        if either raised (the client is told why)."""
        self.busy = True

        def done(outcome: Outcome[Any]) -> None:
            self.busy = False
            try:
                value = outcome.unwrap()
                if not self.closed:
                    then(value)
            except ChatError as exc:
                if failed is not None:
                    failed()
                self.reply(exc.encoded())
            except Exception as exc:
                log.warning("chat: a Redis call failed: %s", exc)
                if failed is not None:
                    failed()
                self.reply(messages.error("unavailable", "the chat's Redis is unavailable"))
            while self.backlog and not self.busy and not self.closed:
                self.handle(self.backlog.popleft())

        if self.transport.get_extra_info("engine") == "gevent":
            # Redis's sockets are gevent's here: a call yields to the hub by
            # itself, and must stay on the hub's thread (gevent's workers are
            # real threads, whose sockets belong to another hub).
            try:
                result: Outcome[Any] = Outcome(func())
            except Exception as exc:
                result = Outcome(None, exc)
            done(result)
            return
        self.transport.run_in_worker(func, done)

    # -- the client's requests ------------------------------------------------------

    def _joined(self) -> Member:
        if self.member is None or not self.entered or not self.member.alive:
            raise ChatError("not_joined", "join first: {\"type\": \"join\", \"name\": ...}")
        return self.member

    def congested(self) -> bool:
        """Should this client's door stop reading it for a moment?  (See
        ``ChatProtocol._turn``; the door asks again every few milliseconds.)

        Yes while most of its room is behind (``Lobby.congested``) and
        catching up.  A hold must not outlast that: it stops the deliveries
        that would take a receiver that reads nothing to its cap, the only
        thing that drops it, so a room whose late members are such readers
        (one is enough when it is the only other member) would hold the
        sender for ever.  So after ``STALL`` seconds in which the bytes the
        late members wait for did not shrink, the sender gets one turn, and
        one more every ``STALL`` seconds until they shrink or they are
        dropped.
        """
        member = self.member
        if member is None or not self.entered:
            return False
        waiting = self.lobby.congested(member, SOFT)
        if not waiting:
            self._held_since = None
            return False
        now = self.service.clock()
        if self._held_since is None or waiting < self._held_waiting:
            self._held_since = now  # a new hold, or the late members are catching up
        self._held_waiting = waiting
        if now - self._held_since < STALL:
            return True
        self._held_since = now  # stalled: one turn now, the next after another STALL
        return False

    def on_join(self, obj: Obj) -> None:
        room = check_room(obj.get("room") or DEFAULT_ROOM)
        name = obj.get("name")
        bus = self.lobby.bus
        self.lobby.check_capacity(room)
        if self.member is not None:
            member = self._joined()
            if name is not None and (not isinstance(name, str) or name_key(name) != member.key):
                raise ChatError("already_joined", f"you are in as {member.name}; leave first")
            if bus is None:
                self.lobby.switch(member, room)
            else:
                self._offload(lambda: bus.history(room),
                              lambda history: self.lobby.switch(member, room, history))
            return
        member = self.lobby.new_member(name, self.sink, self.admin, self.door)
        self.lobby.reserve(member)
        self.member = member
        if bus is not None:
            # Connect in this context, not in a worker: under gevent the bus's
            # threads must be greenlets of this hub (once per process).
            bus.start()
        if bus is None:
            self.entered = True
            self.lobby.enter(member, room)
            return

        def claim() -> tuple[bool, list[Obj]]:
            if not bus.claim(member.key, member.name):
                return False, []
            return True, bus.history(room)

        def claimed(result: tuple[bool, list[Obj]]) -> None:
            ok, history = result
            if not ok:
                raise ChatError("name_taken", f"the name {member.name!r} is taken")
            self.entered = True
            self.lobby.enter(member, room, history)

        def failed() -> None:
            self.lobby.unreserve(member)
            if self.member is member:
                self.member = None

        self._offload(claim, claimed, failed)

    def on_say(self, obj: Obj) -> None:
        text = obj.get("text")
        if isinstance(text, str) and text.startswith("/"):
            if text.startswith("//"):
                text = text[1:]
            else:
                command = self.parse_command(text)
                if command is None:
                    raise ChatError("unknown_command", HELP)
                self.handle(command)
                return
        self.lobby.say(self._joined(), text)

    @staticmethod
    def parse_command(text: str) -> Obj | None:
        """``/who``, ``/msg NAME text``, ``/join #room``, ``/quit`` as client objects."""
        word, _, rest = text[1:].partition(" ")
        word = word.lower()
        rest = rest.strip()
        if word == "who":
            return {"type": "who"}
        if word == "msg":
            to, _, body = rest.partition(" ")
            return {"type": "msg", "to": to, "text": body.strip()}
        if word == "join":
            return {"type": "join", "room": rest or DEFAULT_ROOM}
        if word in ("quit", "leave", "part"):
            return {"type": "leave"}
        return None

    def on_msg(self, obj: Obj) -> None:
        member = self._joined()
        to, text = obj.get("to"), obj.get("text")
        if self.lobby.private(member, to, text):
            return
        bus = self.lobby.bus
        if bus is None:
            raise ChatError("no_such_name", f"nobody called {to!r} is here")
        assert isinstance(to, str) and isinstance(text, str)

        def sent(exists: bool) -> None:
            if not exists:
                raise ChatError("no_such_name", f"nobody called {to!r} is here")
            self.lobby.private_remote(member, to, text)

        self._offload(lambda: bus.exists(name_key(to)), sent)

    def on_who(self, obj: Obj) -> None:
        member = self._joined()
        bus = self.lobby.bus
        if bus is None:
            self.reply(self.lobby.who(member))
            return
        room = member.room or DEFAULT_ROOM

        def answer(names: list[str]) -> None:
            # Our own members count even if the bus has not recorded them yet.
            here = self.lobby.who(member).obj["names"] if member.room == room else []
            merged = {name_key(n): n for n in [*names, *here]}
            self.reply(messages.who(room, sorted(merged.values(), key=name_key)))

        self._offload(lambda: bus.who(room), answer)

    def on_leave(self, obj: Obj) -> None:
        member = self.member
        if member is not None and self.entered and member.alive:
            room = member.room or DEFAULT_ROOM
            self.lobby.leave(member)
            self.reply(messages.left(member.name, room))
        self.closed = True
        self._close()

    def on_ping(self, obj: Obj) -> None:
        self.reply(messages.ok("ping"))

    def on_auth(self, obj: Obj) -> None:
        token = obj.get("token")
        expected = self.service.admin_token
        if not (isinstance(token, str) and expected
                and hmac.compare_digest(token.encode(), expected.encode())):
            log.warning("chat: a wrong administrator token (%s)", self.door)
            raise ChatError("bad_token", "wrong administrator token")
        self.admin = True
        if self.member is not None:
            self.member.admin = True
            self.member.bucket = None
        self.reply(messages.ok("auth"))

    def on_announce(self, obj: Obj) -> None:
        if not self.admin:
            raise ChatError("not_admin", "only the administrator announces")
        text = obj.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ChatError("bad_text", "an announcement needs some text")
        if len(text) > self.lobby.max_text:
            raise ChatError("too_long", f"at most {self.lobby.max_text} characters")
        self.lobby.announce(text)
        self.reply(messages.ok("announce"))

    HANDLERS: dict[str, Callable[[Session, Obj], None]] = {
        "join": on_join,
        "say": on_say,
        "msg": on_msg,
        "who": on_who,
        "leave": on_leave,
        "ping": on_ping,
        "auth": on_auth,
        "announce": on_announce,
    }
