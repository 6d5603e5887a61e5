"""WriteBuffer under partial sends, and the timer queue."""

from __future__ import annotations

import os
import socket
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from ionet.core.buffer import WriteBuffer, file_region
from ionet.core.timers import TimerQueue


class StingySocket:
    """Takes at most a few bytes per send, sometimes none (would block)."""

    def __init__(self, allowances: list[int]) -> None:
        self.allowances = allowances
        self.calls = 0
        self.received = bytearray()

    def send(self, data: bytes) -> int:
        allowance = self.allowances[self.calls % len(self.allowances)]
        self.calls += 1
        if allowance == 0:
            raise BlockingIOError
        taken = bytes(data[:allowance])
        self.received += taken
        return len(taken)


@settings(max_examples=100)
@given(chunks=st.lists(st.binary(min_size=1, max_size=200), max_size=30),
       allowances=st.lists(st.integers(0, 64), min_size=1, max_size=8).filter(any))
def test_partial_sends_lose_and_reorder_nothing(chunks: list[bytes], allowances: list[int]) -> None:
    buffer = WriteBuffer()
    sock = StingySocket(allowances)
    for chunk in chunks:
        buffer.append(chunk)
    assert buffer.size == sum(map(len, chunks))
    for _ in range(100_000):
        if buffer.flush(sock):  # type: ignore[arg-type]
            break
    assert bytes(sock.received) == b"".join(chunks)
    assert buffer.size == 0 and not buffer


def test_file_regions_are_sent_in_order_with_bytes_over_a_socket_pair() -> None:
    with tempfile.TemporaryFile() as file:
        file.write(bytes(range(256)) * 1000)
        file.flush()
        left, right = socket.socketpair()
        with left, right:
            left.setblocking(False)
            buffer = WriteBuffer()
            buffer.append(b"head")
            buffer.append_file(file_region(file, 10, 100_000))
            buffer.append(b"tail")
            received = bytearray()
            expected = b"head" + (bytes(range(256)) * 1000)[10:100_010] + b"tail"
            for use_sendfile in (True,):
                while not buffer.flush(left, use_sendfile):
                    received += right.recv(1 << 20)
            right.setblocking(False)
            while len(received) < len(expected):
                received += right.recv(1 << 20)
            assert bytes(received) == expected
            assert file.closed


def test_file_regions_without_sendfile_read_chunks() -> None:
    content = os.urandom(300_000)
    with tempfile.TemporaryFile() as file:
        file.write(content)
        file.flush()
        sock = StingySocket([70_000, 0])
        buffer = WriteBuffer()
        buffer.append_file(file_region(file))
        while not buffer.flush(sock, use_sendfile=False):  # type: ignore[arg-type]
            pass
        assert bytes(sock.received) == content
        assert file.closed, "the buffer owns the file and closes it once sent"


def test_clear_closes_queued_files() -> None:
    with tempfile.TemporaryFile() as file:
        file.write(b"x" * 10)
        file.flush()
        buffer = WriteBuffer()
        buffer.append_file(file_region(file))
        buffer.clear()
        assert file.closed


def test_timers_run_in_deadline_order_and_skip_cancelled() -> None:
    now = [0.0]
    timers = TimerQueue(lambda: now[0])
    fired: list[str] = []
    timers.call_later(2, lambda: fired.append("b"))
    timers.call_later(1, lambda: fired.append("a"))
    timers.call_later(1.5, lambda: fired.append("x")).cancel()
    assert timers.next_delay() == 1
    now[0] = 5
    timers.run_due()
    assert fired == ["a", "b"]
    assert timers.next_delay() is None


def test_a_timer_set_by_a_timer_waits_for_the_next_round() -> None:
    now = [0.0]
    timers = TimerQueue(lambda: now[0])
    fired: list[int] = []

    def again() -> None:
        fired.append(1)
        timers.call_later(0, again)

    timers.call_later(0, again)
    timers.run_due()
    assert fired == [1]
