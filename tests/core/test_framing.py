"""Framing: any split or merge of the stream yields the same messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ionet.core.errors import FrameTooLarge, TruncatedFrame
from ionet.core.framing import LineFramer, LengthPrefixFramer, frame
from ionet.core.testing import random_pieces, split_points

lines_strategy = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30)


def feed_all(framer: LineFramer | LengthPrefixFramer, pieces: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for piece in pieces:
        out.extend(framer.feed(piece))
    return out


@given(lines=lines_strategy, cuts=st.lists(st.integers(1, 50), min_size=1, max_size=10))
def test_lines_survive_any_split(lines: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    assert feed_all(LineFramer(max_line=100), split_points(stream, cuts) if stream else []) == lines


@given(lines=st.lists(st.binary(max_size=30).filter(lambda b: b"\r\n" not in b and not b.endswith(b"\r")),
                      max_size=20),
       seed=st.integers(0, 10_000))
def test_crlf_terminator_split_between_its_two_bytes(lines: list[bytes], seed: int) -> None:
    stream = b"".join(line + b"\r\n" for line in lines)
    framer = LineFramer(b"\r\n", max_line=100)
    assert feed_all(framer, random_pieces(stream, seed, max_size=3)) == lines
    framer.close()


@given(payloads=st.lists(st.binary(max_size=300), max_size=20), seed=st.integers(0, 10_000))
def test_frames_survive_any_split(payloads: list[bytes], seed: int) -> None:
    stream = b"".join(frame(p) for p in payloads)
    framer = LengthPrefixFramer(max_size=300)
    assert feed_all(framer, random_pieces(stream, seed, max_size=17)) == payloads
    framer.close()


def test_lines_merged_in_one_chunk() -> None:
    assert LineFramer().feed(b"a\nbb\n\nccc\nrest") == [b"a", b"bb", b"", b"ccc"]


def test_keep_terminator() -> None:
    assert LineFramer(b"\r\n", keep_terminator=True).feed(b"x\r\ny\r\n") == [b"x\r\n", b"y\r\n"]


def test_oversized_line_raises_before_its_end_arrives() -> None:
    framer = LineFramer(max_line=10)
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"x" * 11)
    assert info.value.limit == 10
    assert "line too long" in str(info.value)


def test_line_at_the_limit_is_accepted() -> None:
    framer = LineFramer(b"\r\n", max_line=10)
    assert framer.feed(b"y" * 10 + b"\r") == []
    assert framer.feed(b"\n") == [b"y" * 10]


def test_framer_recovers_after_an_oversized_line() -> None:
    framer = LineFramer(max_line=5)
    framer.append(b"ok\n" + b"z" * 8)
    assert framer.next_line() == b"ok"
    with pytest.raises(FrameTooLarge):
        framer.next_line()
    framer.append(b"z" * 10_000)  # more of the same bad line: dropped, not held
    assert framer.next_line() is None
    assert framer.pending < 10
    framer.append(b"zz\nnext\n")
    assert framer.next_line() == b"next"
    assert framer.next_line() is None


def test_slow_sender_costs_linear_time() -> None:
    # One byte at a time: the search resumes where it stopped, so 50k bytes
    # stay fast (quadratic rescanning would take seconds).
    framer = LineFramer(max_line=100_000)
    for _ in range(50_000):
        assert framer.feed(b"a") == []
    assert framer.feed(b"\n") == [b"a" * 50_000]


def test_truncated_line_reported_at_close() -> None:
    framer = LineFramer()
    framer.feed(b"half")
    with pytest.raises(TruncatedFrame):
        framer.close()


def test_length_prefix_oversized_frame_is_skipped() -> None:
    framer = LengthPrefixFramer(max_size=4)
    framer.append(frame(b"too long") + frame(b"ok"))
    with pytest.raises(FrameTooLarge):
        framer.next_frame()
    assert framer.next_frame() == b"ok"


def test_length_prefix_checks_size_before_buffering_payload() -> None:
    framer = LengthPrefixFramer(max_size=1024)
    with pytest.raises(FrameTooLarge):
        framer.feed(b"\xff\xff\xff\xff")


def test_length_prefix_truncated_at_close() -> None:
    framer = LengthPrefixFramer()
    framer.feed(frame(b"abcdef")[:5])
    with pytest.raises(TruncatedFrame):
        framer.close()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        LineFramer(b"")
    with pytest.raises(ValueError):
        LineFramer(max_line=0)


@settings(max_examples=50)
@given(data=st.binary(max_size=2000), seed=st.integers(0, 1000))
def test_split_points_and_random_pieces_rejoin(data: bytes, seed: int) -> None:
    assert b"".join(random_pieces(data, seed)) == data
    assert b"".join(split_points(data, [3, 1, 7])) == data
