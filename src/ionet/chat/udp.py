"""The chat's UDP front door: one datagram per message, as in the course.

The course's chat sends each message as one UDP datagram.  UDP may lose,
duplicate and reorder datagrams and has no connections, so this door adds
what the course's version lacks: sequence numbers, acknowledgements and a
heartbeat.

Datagram format, both directions (UTF-8)::

    SEQ SP JSON [LF]
    1 {"type":"join","name":"ann","room":"#lobby"}

``SEQ`` is a decimal sequence number and ``JSON`` one object of
:mod:`ionet.chat.messages`.  ``SEQ`` 0 marks an *unsequenced* datagram.

Client to server
    A session is an address (IP, port).  It starts with a ``join`` datagram,
    whose SEQ (1, say) starts the count; every later datagram takes the next
    number.  The server acknowledges every sequenced datagram it accepts with
    ``0 {"type":"ack","seq":SEQ}`` and handles them once and in order:
    duplicates (a retransmission whose ack was lost) are acked again and
    dropped; a datagram that arrives early waits (up to 64 of them) for the
    missing ones, which the client retransmits until acked; if a gap is not
    filled within 2 s the server gives up on it and goes on.
    The heartbeat is ``0 {"type":"ping"}`` every 5 s (answered by
    ``0 {"type":"ok","what":"ping"}``); a session silent for 15 s (three
    missed heartbeats) is dropped, and the room is told once
    (``{"type":"left", ..., "reason":"timed out"}``).

Server to client
    Room traffic and replies are numbered 1, 2, 3... per session, so the
    client can drop duplicates, put reordered datagrams back in order and
    notice losses; the server does not retransmit them (a lost chat line is
    reported by the client as a gap, as UDP's nature demands).  Acks, ping
    answers and errors to an address without a session use SEQ 0.

A datagram is at most ~64 KiB: the welcome's history is trimmed to fit.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ionet.chat import messages
from ionet.chat.messages import Encoded
from ionet.chat.room import QUEUED, SCHEDULE
from ionet.chat.session import Session
from ionet.core.protocol import DatagramProtocol, DatagramTransport, TimerHandle

if TYPE_CHECKING:
    from ionet.chat.service import ChatService

__all__ = ["UdpChatProtocol", "HEARTBEAT_INTERVAL", "DEFAULT_UDP_TIMEOUT", "encode_datagram",
           "parse_datagram"]

log = logging.getLogger("ionet.chat")

HEARTBEAT_INTERVAL = 5.0
DEFAULT_UDP_TIMEOUT = 3 * HEARTBEAT_INTERVAL
GAP_TIMEOUT = 2.0
REORDER_WINDOW = 64
MAX_DATAGRAM = 65_000
MAX_SESSIONS = 10_000
_WAKE = b"\x00wake:"


def encode_datagram(seq: int, payload: bytes) -> bytes:
    return b"%d %s" % (seq, payload)


def parse_datagram(data: bytes) -> tuple[int, bytes]:
    """Split a datagram into its SEQ and JSON payload.

    Raises:
        ValueError: no valid sequence number.
    """
    head, _, payload = data.partition(b" ")
    if not head.isdigit() or len(head) > 18:
        raise ValueError("a datagram starts with a sequence number and a space")
    return int(head), payload


class UdpPeer:
    """One client address: its session and where its sequence numbers stand."""

    __slots__ = ("addr", "expected", "pending", "gap_since", "last_seen", "out_seq",
                 "session", "sink")

    def __init__(self, addr: Any, first_seq: int, now: float) -> None:
        self.addr = addr
        self.expected = first_seq  # the next client SEQ to handle
        self.pending: dict[int, bytes] = {}  # early datagrams, by SEQ
        self.gap_since: float | None = None
        self.last_seen = now
        self.out_seq = 0  # the last server SEQ sent
        self.session: Session | None = None
        self.sink: DatagramSink | None = None


class DatagramSink:
    """The outbox of a UDP member: numbered datagrams, queued on its door."""

    __slots__ = ("door", "peer", "dead")

    def __init__(self, door: UdpChatProtocol, peer: UdpPeer) -> None:
        self.door = door
        self.peer = peer
        self.dead = False

    def deliver(self, message: Encoded) -> int:
        if self.dead:
            return QUEUED
        peer = self.peer
        door = self.door
        for part in message.parts:  # a batch: one datagram per message
            line: bytes | None = part.line
            if len(line) > MAX_DATAGRAM:  # type: ignore[arg-type]
                line = _shrink(part)
                if line is None:
                    log.warning("chat: a %s too large for a datagram was not sent", part.type)
                    continue
            peer.out_seq += 1
            door.outbox.append((b"%d %s" % (peer.out_seq, line), peer.addr))  # type: ignore[str-bytes-safe]
        if door.scheduled:
            return QUEUED
        door.scheduled = True
        return SCHEDULE

    def schedule(self) -> None:
        self.door.run_soon(self.door.flush)

    def kill(self) -> None:
        self.dead = True
        self.door.run_soon(lambda: self.door.forget(self.peer))

    def backlog(self) -> int:
        return 0  # datagrams are sent at once, or dropped (as UDP may)

    def unclaimed(self) -> int:
        return 0


def _shrink(message: Encoded) -> bytes | None:
    """A welcome whose history does not fit a datagram: keep the newest that fit."""
    if message.type != "welcome":
        return None
    history = list(message.obj["history"])
    while history:
        history = history[len(history) // 4 + 1:] if len(history) > 8 else history[1:]
        line = Encoded({**message.obj, "history": history}).line
        if len(line) <= MAX_DATAGRAM:
            return line
    return Encoded({**message.obj, "history": []}).line


class UdpChatProtocol(DatagramProtocol):
    """Chat clients over UDP: one protocol object serves every address.

    Work from other threads (a TCP member's thread on the thread engine, the
    Redis bus, the console) reaches this door through :meth:`run_soon`: the
    call is queued and a small "wake" datagram (a NUL byte and a secret
    token) is sent to our own port, so the call runs where this protocol's
    callbacks run, on every engine.  (A datagram transport has no
    ``call_soon_threadsafe``; its socket can stand in for one.)
    """

    def __init__(self, service: ChatService) -> None:
        self.service = service
        self.lobby = service.lobby
        self.timeout = service.udp_timeout
        self.clock: Callable[[], float] = service.clock
        self.peers: dict[Any, UdpPeer] = {}
        self.outbox: list[tuple[bytes, Any]] = []  # guarded by the lobby's lock
        self.scheduled = False
        self.owner = threading.get_ident()
        self.calls: collections.deque[Callable[[], None]] = collections.deque()
        self._token = _WAKE + os.urandom(8).hex().encode()
        self._waker: socket.socket | None = None
        self._waker_lock = threading.Lock()
        self._wake_addr: Any = None
        self._timer: TimerHandle | None = None
        self.stopped = False

    # -- the transport's events ----------------------------------------------------

    def connection_made(self, transport: DatagramTransport) -> None:
        self.transport = self.udp = transport
        self.owner = threading.get_ident()
        sockname = transport.get_extra_info("sockname")
        if sockname:
            host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(sockname[0], sockname[0])
            self._wake_addr = (host, *sockname[1:])
        self._arm()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data[:1] == b"\x00":
            if data == self._token:
                self._run_calls()
            return
        try:
            seq, payload = parse_datagram(data)
        except ValueError as exc:
            self._send0(addr, messages.error("bad_datagram", str(exc)))
            return
        peer = self.peers.get(addr)
        now = self.clock()
        if peer is not None:
            peer.last_seen = now
        if seq == 0:
            self._unsequenced(peer, addr, payload)
            return
        if peer is None:
            try:
                kind = messages.decode(payload)["type"]
            except ValueError:
                kind = None
            if kind != "join":
                self._send0(addr, messages.error("not_joined", "join first (a datagram "
                                                 'like: 1 {"type":"join","name":"ann"})'))
                return
            if len(self.peers) >= MAX_SESSIONS:
                self._send0(addr, messages.error("busy", "too many UDP sessions"))
                return
            peer = self._new_peer(addr, seq, now)
        self._sequenced(peer, seq, payload, now)

    def error_received(self, exc: OSError) -> None:
        log.debug("chat udp: %s", exc)  # ICMP port unreachable: the heartbeat will tell

    def connection_lost(self, exc: BaseException | None) -> None:
        self._end_all("server stopping")
        if self._timer is not None:
            self._timer.cancel()
        with self._waker_lock:
            self.stopped = True
            if self._waker is not None:
                self._waker.close()
                self._waker = None

    def server_stopping(self) -> None:
        for peer in list(self.peers.values()):
            if peer.session is not None and not peer.session.closed:
                peer.session.server_stopping()
        self.flush()

    # -- sessions ------------------------------------------------------------------

    def _new_peer(self, addr: Any, seq: int, now: float) -> UdpPeer:
        peer = UdpPeer(addr, seq, now)
        peer.sink = DatagramSink(self, peer)
        peer.session = Session(self.service, peer.sink, self.udp, "udp",
                               lambda: self.forget(peer))
        self.peers[addr] = peer
        return peer

    def _sequenced(self, peer: UdpPeer, seq: int, payload: bytes, now: float) -> None:
        if seq < peer.expected or seq in peer.pending:
            self._ack(peer.addr, seq)  # a duplicate: its first ack may have been lost
            return
        if seq > peer.expected:
            if seq - peer.expected > REORDER_WINDOW:
                return  # too far ahead: no ack, the client sends it again later
            peer.pending[seq] = payload
            if peer.gap_since is None:
                peer.gap_since = now
            self._ack(peer.addr, seq)
            return
        self._ack(peer.addr, seq)
        self._handle(peer, payload)
        self._advance(peer, now)

    def _advance(self, peer: UdpPeer, now: float) -> None:
        """Handle the next expected SEQ and every early one that follows it."""
        peer.expected += 1
        while peer.expected in peer.pending and self.peers.get(peer.addr) is peer:
            self._handle(peer, peer.pending.pop(peer.expected))
            peer.expected += 1
        peer.gap_since = now if peer.pending else None

    def _handle(self, peer: UdpPeer, payload: bytes) -> None:
        session = peer.session
        assert session is not None
        session.receive(payload)
        if session.closed:
            self.forget(peer)

    def _unsequenced(self, peer: UdpPeer | None, addr: Any, payload: bytes) -> None:
        try:
            kind = messages.decode(payload)["type"]
        except ValueError as exc:
            self._send0(addr, messages.error("bad_json", str(exc)))
            return
        if kind != "ping":
            self._send0(addr, messages.error("bad_datagram", "SEQ 0 is for pings only"))
        elif peer is None:
            self._send0(addr, messages.error("not_joined", "no session: join again"))
        else:
            self._send0(addr, messages.ok("ping"))

    def forget(self, peer: UdpPeer) -> None:
        """End a session (left, or dropped); what is queued still goes out."""
        if self.peers.get(peer.addr) is peer:
            del self.peers[peer.addr]
        if peer.session is not None:
            peer.session.disconnected()
        self.flush()

    def _end_all(self, reason: str) -> None:
        for peer in list(self.peers.values()):
            if peer.session is not None:
                peer.session.disconnected(reason)
        self.peers.clear()

    # -- timers: heartbeats and gaps ---------------------------------------------------

    def _arm(self) -> None:
        interval = min(0.5, self.timeout / 4)
        self._timer = self.udp.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        now = self.clock()
        for peer in list(self.peers.values()):
            if now - peer.last_seen > self.timeout:
                log.info("chat udp: %s timed out", peer.addr)
                del self.peers[peer.addr]
                if peer.session is not None:
                    peer.session.disconnected("timed out")
                self._send0(peer.addr, messages.error("timed_out", "no heartbeat: you left"))
            elif peer.gap_since is not None and now - peer.gap_since >= GAP_TIMEOUT:
                # The missing datagrams are not coming: skip to the first we have.
                peer.expected = min(peer.pending)
                self._handle(peer, peer.pending.pop(peer.expected))
                self._advance(peer, now)
        self.flush()
        if not self.stopped:
            self._arm()

    # -- output --------------------------------------------------------------------

    def _ack(self, addr: Any, seq: int) -> None:
        self.udp.sendto(b'0 {"type":"ack","seq":%d}\n' % seq, addr)

    def _send0(self, addr: Any, message: Encoded) -> None:
        self.udp.sendto(b"0 " + message.line, addr)

    def flush(self) -> None:
        """Send every queued datagram (in this door's own context)."""
        with self.lobby.lock:
            items, self.outbox = self.outbox, []
            self.scheduled = False
        sendto = self.udp.sendto
        for data, addr in items:
            sendto(data, addr)

    def run_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` in this door's context: now if we are in it, else soon."""
        if threading.get_ident() == self.owner:
            callback()
            return
        self.calls.append(callback)
        with self._waker_lock:
            if self.stopped or self._wake_addr is None:
                return
            if self._waker is None:
                family = socket.AF_INET6 if ":" in self._wake_addr[0] else socket.AF_INET
                self._waker = socket.socket(family, socket.SOCK_DGRAM)
                self._waker.setblocking(False)
            try:
                self._waker.sendto(self._token, self._wake_addr)
            except OSError:
                pass  # the socket buffer is full: a wake is already on its way

    def _run_calls(self) -> None:
        calls = self.calls
        while calls:
            callback = calls.popleft()
            try:
                callback()
            except Exception:
                log.exception("chat udp: a queued call failed")
