"""Several chat server processes, one chat: rooms shared through Redis.

With ``ionet chat serve --redis redis://127.0.0.1:6379/0`` every server
process (on one machine or several, and every worker or forked child)
keeps its own members in its own :class:`~ionet.chat.room.Lobby` and shares
the rest through Redis:

* **Messages and notices** are published on one pub/sub channel,
  ``PREFIX:events``, as ``{"origin": SERVER_ID, ...}``; each process
  delivers the events of the others to its own members (its own events it
  has already delivered locally, without the round trip).
* **Nicknames** stay unique across processes: ``SET PREFIX:nick:KEY
  SERVER_ID NX EX 30`` claims one atomically; the owner refreshes it every
  10 s while the member is in, and deletes it (only if still its own) when
  they leave.  A server that dies releases its names by expiry within 30 s.
* **Who is where**: each process keeps its members of a room in a set
  ``PREFIX:members:ROOM:SERVER_ID`` with the same expiry; ``/who`` unions
  the sets of the servers listed in ``PREFIX:servers:ROOM``.
* **History** is a list per room, ``PREFIX:history:ROOM``, trimmed to N.

Nothing here blocks the caller's event loop: what the lobby publishes goes
to a queue that a publisher thread sends in pipelines, and events from the
other servers arrive on a subscriber thread, which hands them to the lobby
(whose sinks then schedule flushes in each member's own context).  The calls
that need an answer (claim a name, fetch history, who, exists) block, and
the sessions call them through ``run_in_worker``.

Processes: every method first makes sure this process has its own Redis
connections and threads, so a bus built before ``fork`` (the fork engine,
``--workers``) works in each child.  With ``sync=True`` (the fork engine,
where a child serves one connection and exits when it closes) publications
are sent at once, so a leave notice is not lost when the child exits.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ionet.core.errors import UserError

if TYPE_CHECKING:
    from ionet.chat.room import Lobby

__all__ = ["Bus", "RedisBus", "DEFAULT_PREFIX"]

log = logging.getLogger("ionet.chat.bus")

DEFAULT_PREFIX = "ionet:chat"
NAME_TTL = 30.0
BATCH = 512

# Delete a key only if it still holds our server id (a name we claimed).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Extend our claim on a name; reclaim it if it expired meanwhile and is free.
_REFRESH = """
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1
end
return 0
"""

Op = Callable[[Any], None]  # given a pipeline


class Bus(Protocol):
    """What the lobby and the sessions need from a bus (see :class:`RedisBus`)."""

    def attach(self, lobby: Lobby) -> None: ...
    def start(self) -> None: ...
    def publish(self, event: dict[str, Any], history: bool = False) -> None: ...
    def publish_many(self, events: list[dict[str, Any]], history: bool = False) -> None: ...
    def entered(self, key: str, name: str, room: str, event: dict[str, Any]) -> None: ...
    def departed(self, key: str, name: str, room: str, event: dict[str, Any],
                 release: bool) -> None: ...
    def release_later(self, key: str) -> None: ...
    def claim(self, key: str, name: str) -> bool: ...
    def history(self, room: str) -> list[dict[str, Any]]: ...
    def who(self, room: str) -> list[str]: ...
    def exists(self, key: str) -> bool: ...


class RedisBus:
    """The Redis side of a chat server process.

    Args:
        url: ``redis://host:port/db``.
        prefix: the start of every key and of the channel name (tests use a
            fresh one to stay apart).
        history: messages kept per room.
        ttl: seconds a name or a membership lives without a refresh.
        sync: publish in the caller's thread (for the fork engine).
    """

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX, history: int = 50,
                 ttl: float = NAME_TTL, sync: bool = False) -> None:
        self.url = url
        self.prefix = prefix
        self.history_size = max(0, history)
        self.ttl = ttl
        self.sync = sync
        self.channel = f"{prefix}:events"
        self.lobby: Lobby | None = None
        self.server_id = ""
        self._pid = -1
        self._client: Any = None
        self._queue: queue.SimpleQueue[Op | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self._release: Any = None
        self._refresh: Any = None

    # -- life ------------------------------------------------------------------------

    def attach(self, lobby: Lobby) -> None:
        self.lobby = lobby

    def check(self) -> None:
        """Make sure Redis answers (at startup, for a clear error).

        Raises:
            UserError: unreachable, or not a redis:// URL.
        """
        import redis

        try:
            client = redis.Redis.from_url(self.url, socket_connect_timeout=5, socket_timeout=5)
        except ValueError as exc:
            raise UserError(f"--redis: {exc}") from None
        try:
            client.ping()
        except redis.RedisError as exc:
            raise UserError(f"cannot reach Redis at {self.url}: {exc}") from None
        finally:
            client.close()

    def start(self) -> None:
        """Connect and subscribe in this process (again after a fork); wait
        until the subscription is live, so no event published after a join
        that went through this bus can be missed."""
        if self._pid == os.getpid():
            return
        if self._pid != -1:  # forked: the parent's connections and threads are not ours
            self._start_lock = threading.Lock()
        with self._start_lock:
            if self._pid == os.getpid():
                return
            import redis

            self.server_id = uuid.uuid4().hex[:16]
            self._client = redis.Redis.from_url(self.url, socket_connect_timeout=5,
                                                socket_timeout=10, health_check_interval=30)
            self._release = self._client.register_script(_RELEASE)
            self._refresh = self._client.register_script(_REFRESH)
            self._queue = queue.SimpleQueue()
            self._stop = threading.Event()
            self._ready = threading.Event()
            self._threads = [
                threading.Thread(target=self._subscriber, name="chat-bus-sub", daemon=True),
                threading.Thread(target=self._publisher, name="chat-bus-pub", daemon=True),
            ]
            for thread in self._threads:
                thread.start()
            self._pid = os.getpid()
        if not self._ready.wait(10):
            raise ConnectionError(f"could not subscribe to {self.channel} on {self.url}")

    def close(self, timeout: float = 3.0) -> None:
        """Send what is queued, then stop this process's threads."""
        if self._pid != os.getpid():
            return
        self._queue.put(None)
        for thread in self._threads:
            if thread.name == "chat-bus-pub":
                thread.join(timeout)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        self._client.close()
        self._pid = -1

    # -- keys ------------------------------------------------------------------------

    def _nick(self, key: str) -> str:
        return f"{self.prefix}:nick:{key}"

    def _members(self, room: str, server: str | None = None) -> str:
        return f"{self.prefix}:members:{room}:{server or self.server_id}"

    def _servers(self, room: str) -> str:
        return f"{self.prefix}:servers:{room}"

    def _history(self, room: str) -> str:
        return f"{self.prefix}:history:{room}"

    # -- non-blocking: queued for the publisher thread ---------------------------------

    def _submit(self, *ops: Op) -> None:
        self.start()
        if self.sync:
            pipe = self._client.pipeline(transaction=False)
            for op in ops:
                op(pipe)
            pipe.execute()
            return
        for op in ops:
            self._queue.put(op)

    def _publish_op(self, event: dict[str, Any]) -> Op:
        data = json.dumps({"origin": self.server_id, **event}, ensure_ascii=False)
        return lambda pipe: pipe.publish(self.channel, data)

    def publish(self, event: dict[str, Any], history: bool = False) -> None:
        """Send an event to the other servers (and a message to the room's history)."""
        self.start()
        ops = [self._publish_op(event)]
        if history and self.history_size and event.get("room"):
            key, data = self._history(event["room"]), json.dumps(event["obj"], ensure_ascii=False)
            size = self.history_size
            ops.append(lambda pipe: pipe.rpush(key, data).ltrim(key, -size, -1))
        self._submit(*ops)

    def publish_many(self, events: list[dict[str, Any]], history: bool = False) -> None:
        for event in events:
            self.publish(event, history)

    def entered(self, key: str, name: str, room: str, event: dict[str, Any]) -> None:
        self.start()
        members, servers, ttl = self._members(room), self._servers(room), int(self.ttl)
        sid = self.server_id
        self._submit(
            lambda pipe: pipe.sadd(members, name).expire(members, ttl).sadd(servers, sid),
            self._publish_op(event))

    def departed(self, key: str, name: str, room: str, event: dict[str, Any],
                 release: bool) -> None:
        self.start()
        members = self._members(room)
        ops: list[Op] = [lambda pipe: pipe.srem(members, name), self._publish_op(event)]
        if release:
            ops.append(self._release_op(key))
        self._submit(*ops)

    def _release_op(self, key: str) -> Op:
        nick, sid, script = self._nick(key), self.server_id, self._release
        return lambda pipe: script(keys=[nick], args=[sid], client=pipe)

    def release_later(self, key: str) -> None:
        """Give up a name claimed for a join that did not complete."""
        self.start()
        self._submit(self._release_op(key))

    # -- blocking: called from workers -----------------------------------------------

    def claim(self, key: str, name: str) -> bool:
        """Claim a name for this server; False if another holds it."""
        self.start()
        return bool(self._client.set(self._nick(key), self.server_id, nx=True,
                                     ex=int(self.ttl)))

    def history(self, room: str) -> list[dict[str, Any]]:
        self.start()
        if not self.history_size:
            return []
        return [json.loads(item) for item in
                self._client.lrange(self._history(room), -self.history_size, -1)]

    def who(self, room: str) -> list[str]:
        """Every name in ``room``, on every server."""
        self.start()
        servers = sorted(s.decode() for s in self._client.smembers(self._servers(room)))
        pipe = self._client.pipeline(transaction=False)
        for server in servers:
            pipe.smembers(self._members(room, server))
        names: set[str] = set()
        for server, members in zip(servers, pipe.execute()):
            if not members and server != self.server_id:
                self._client.srem(self._servers(room), server)  # gone, or nobody left
            names.update(m.decode() for m in members)
        from ionet.chat.room import name_key

        return sorted(names, key=name_key)

    def exists(self, key: str) -> bool:
        self.start()
        return bool(self._client.exists(self._nick(key)))

    # -- the threads -------------------------------------------------------------------

    def _publisher(self) -> None:
        """Send queued operations in pipelines; refresh our names every ttl/3."""
        interval = self.ttl / 3
        next_refresh = time.monotonic() + interval
        client = self._client
        done = False
        while not done:
            timeout = max(0.0, next_refresh - time.monotonic())
            ops: list[Op] = []
            try:
                op = self._queue.get(timeout=timeout)
                while True:
                    if op is None:
                        done = True
                        break
                    ops.append(op)
                    if len(ops) >= BATCH:
                        break
                    op = self._queue.get_nowait()
            except queue.Empty:
                pass
            if ops:
                self._run(client, ops)
            if time.monotonic() >= next_refresh:
                next_refresh = time.monotonic() + interval
                self._run(client, self._refresh_ops())

    def _run(self, client: Any, ops: list[Op]) -> None:
        try:
            pipe = client.pipeline(transaction=False)
            for op in ops:
                op(pipe)
            pipe.execute()
        except Exception as exc:  # Redis down: the chat goes on locally
            log.warning("chat bus: %d Redis operation(s) lost: %s", len(ops), exc)

    def _refresh_ops(self) -> list[Op]:
        if self.lobby is None:
            return []
        ttl, sid, script = int(self.ttl), self.server_id, self._refresh
        ops: list[Op] = []
        rooms: set[str] = set()
        def refresh_name(nick: str) -> Op:
            return lambda pipe: script(keys=[nick], args=[sid, ttl], client=pipe)

        def refresh_room(members: str, servers: str) -> Op:
            return lambda pipe: pipe.expire(members, ttl).sadd(servers, sid)

        for key, _name, room in self.lobby.local_members():
            ops.append(refresh_name(self._nick(key)))
            rooms.add(room)
        for room in rooms:
            ops.append(refresh_room(self._members(room), self._servers(room)))
        return ops

    def _subscriber(self) -> None:
        """Deliver the other servers' events to our lobby, until stopped."""
        import redis

        backoff = 0.1
        while not self._stop.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=False)
            try:
                pubsub.subscribe(self.channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self._ready.set()
                        backoff = 0.1
                    elif message["type"] == "message":
                        self._deliver(message["data"])
            except redis.RedisError as exc:
                log.warning("chat bus: subscription lost (%s); retrying", exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                pubsub.close()

    def _deliver(self, data: bytes) -> None:
        try:
            event = json.loads(data)
        except ValueError:
            log.warning("chat bus: a malformed event was ignored")
            return
        if event.get("origin") == self.server_id or self.lobby is None:
            return
        try:
            self.lobby.apply_remote(event)
        except Exception:
            log.exception("chat bus: delivering an event failed")
