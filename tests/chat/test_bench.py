"""The chat benchmark's own machinery, small: a real ionet chat server, both modes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ionet.bench import chat as bench


@pytest.mark.parametrize("mode", ["flood", "paced"])
def test_measure_counts_every_delivery(tmp_path: Path, mode: str) -> None:
    server = bench.Ionet(tmp_path, "epoll")
    try:
        result = bench.measure(server, mode, 6, rate=200, duration=0.4)
    finally:
        server.stop()
    assert result.sent > 0
    assert result.delivered == result.sent * 6
    assert result.lost == 0 and result.dropped == 0
    assert result.latencies_ms and 0 <= result.percentile(50) <= result.percentile(99)
    if mode == "paced":
        assert 60 <= result.sent <= 90  # 200 a second for 0.4 s


def test_ngircd_side(tmp_path: Path) -> None:
    if shutil.which("ngircd") is None:
        pytest.fail("the benchmark's IRC side needs ngircd (apt-get install ngircd; .ci/run does)")
    server = bench.Ngircd(tmp_path)
    try:
        result = bench.measure(server, "paced", 4, rate=100, duration=0.3)
    finally:
        server.stop()
    assert result.delivered == result.sent * 4 > 0


def test_report_is_a_table_of_medians() -> None:
    runs = [bench.Result("ionet", "paced", 2, sent=10, delivered=20, seconds=s,
                         latencies_ms=[1.0, 2.0]) for s in (1.0, 2.0, 4.0)]
    table = bench.report(runs).splitlines()
    assert table[0].startswith("| mode | members | server | deliveries/s")
    assert table[2] == "| paced | 2 | ionet | 10 | 2.0 | 2.0 | 0 | 0 |"
