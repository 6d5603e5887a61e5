"""A toy protocol driven with plain bytes, a fake transport and a fake clock."""

from __future__ import annotations

import io

import pytest

from ionet.core.framing import LineFramer
from ionet.core.protocol import Outcome, Protocol
from ionet.core.testing import ContractViolation, FakeClock, FakeTransport, feed_split
from ionet.echo import EchoProtocol


class UpperLines(Protocol):
    """Answers each line in upper case; 'SLOW' runs in a worker; times out idle."""

    def __init__(self) -> None:
        self.framer = LineFramer(max_line=16)
        self.lost: list[BaseException | None] = []
        self.timer = None

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        super().connection_made(transport)
        self.timer = transport.call_later(5, self.transport.close)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        for line in self.framer.feed(data):
            if line == b"SLOW":
                self.transport.run_in_worker(lambda: b"done", self.finished)
            else:
                self.transport.write(line.upper() + b"\n")

    def finished(self, outcome: Outcome[bytes]) -> None:
        assert self.transport is not None
        self.transport.write(outcome.unwrap() + b"\n")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)


def test_one_byte_at_a_time_gives_the_same_answer() -> None:
    transport = FakeTransport()
    transport.connect(UpperLines())
    feed_split(transport, b"ab\ncd\n", sizes=[1])
    assert transport.written() == b"AB\nCD\n"


def test_worker_result_arrives_later_and_in_the_protocol_context() -> None:
    transport = FakeTransport(run_workers=False)
    transport.connect(UpperLines())
    transport.feed(b"SLOW\nx\n")
    assert transport.take() == b"X\n"
    transport.run_pending_workers()
    assert transport.take() == b"done\n"


def test_worker_callback_dropped_after_connection_lost() -> None:
    transport = FakeTransport(run_workers=False)
    proto = UpperLines()
    transport.connect(proto)
    transport.feed(b"SLOW\n")
    transport.lose(None)
    transport.run_pending_workers()
    assert transport.written() == b""


def test_timers_fire_only_when_the_clock_moves() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock=clock)
    transport.connect(UpperLines())
    clock.advance(4.9)
    assert not transport.closed
    clock.advance(0.2)
    assert transport.closed


def test_cancelled_timer_does_not_fire() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock=clock)
    proto = UpperLines()
    transport.connect(proto)
    assert proto.timer is not None
    proto.timer.cancel()
    clock.advance(100)
    assert not transport.closed


def test_contract_order_is_enforced() -> None:
    transport = FakeTransport()
    with pytest.raises(ContractViolation):
        transport.feed(b"x")  # before connection_made
    transport.connect(EchoProtocol())
    transport.lose(None)
    with pytest.raises(ContractViolation):
        transport.feed(b"x")  # after connection_lost
    with pytest.raises(ContractViolation):
        transport.lose(None)


def test_echo_half_close_closes_after_flush() -> None:
    transport = FakeTransport()
    transport.connect(EchoProtocol())
    transport.feed(b"bytes")
    assert not transport.feed_eof()
    assert transport.closed and transport.written() == b"bytes"


def test_base_protocol_pauses_reading_on_high_water() -> None:
    transport = FakeTransport()
    proto = transport.connect(EchoProtocol())
    proto.pause_writing()
    assert not transport.is_reading()
    with pytest.raises(ContractViolation):
        transport.feed(b"x")
    proto.resume_writing()
    assert transport.is_reading()


def test_sendfile_keeps_order_with_writes() -> None:
    transport = FakeTransport()
    transport.connect(EchoProtocol())
    transport.write(b"<")
    transport.sendfile(io.BytesIO(b"0123456789"), 2, 3)
    transport.write(b">")
    assert transport.written() == b"<234>"
