"""The engines benchmark: the load generator against a real epoll echo
server, the idle-connection count, the table and the chart."""

from __future__ import annotations

import io
from array import array
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from ionet.bench import engines as bench
from ionet.bench.loadgen import LoadResult, make_message, percentile, run_echo_load
from ionet.core.testing import ServerProcess


@pytest.fixture(scope="module")
def epoll_server() -> Iterator[ServerProcess]:
    with ServerProcess(["echo", "serve", "--engine", "epoll", *bench.SERVER_ARGS]) as server:
        yield server


def test_load_generator_measures_echoes(epoll_server: ServerProcess) -> None:
    edges: list[str] = []
    result = run_echo_load(epoll_server.address("tcp"), 4, duration=0.5, warmup=0.1,
                           on_window=edges.append)
    assert edges == ["start", "end"]
    assert result.connected == 4
    assert set(result.errors) == {"connect", "no first echo", "closed", "mismatch", "send"}
    assert not any(result.errors.values()), result.errors
    assert result.messages > 100
    assert result.messages == len(result.latencies_ns) == sum(result.per_connection)
    assert result.starved == 0
    assert list(result.latencies_ns) == sorted(result.latencies_ns)
    p50, p99 = result.latency_ms(0.50), result.latency_ms(0.99)
    assert p50 is not None and p99 is not None
    assert 0 < p50 <= p99 < 1000
    assert result.rate == pytest.approx(result.messages / 0.5)
    assert 0 < result.load_cpu_percent <= 110


def test_idle_connections_are_counted_on_the_server() -> None:
    result = bench.measure_idle("epoll", 50, bench.Placement(None, None))
    assert not result.failed, result.failed
    assert result.connected == result.accepted == 50
    assert result.rss_after >= result.rss_before > 0
    assert "50 idle connections" in bench.idle_text(result)


def test_a_server_that_cannot_start_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench, "_server_argv",
                        lambda engine, workers: ["echo", "serve", "--no-such-option"])
    cell = bench.Cell("epoll", 1)
    bench.run_cell(cell, 0.1, 0.0, bench.Placement(None, None))
    assert cell.skipped.startswith("failed:")
    assert not cell.runs


def test_helpers() -> None:
    assert percentile([1, 2, 3, 4], 0.5) == 2
    assert percentile([1, 2, 3, 4], 0.99) == 4
    assert percentile([7], 0.0) == 7
    message = make_message(64)
    assert len(message) == 64 and message.endswith(b"\n")
    assert bench.not_applicable("iterative", 64) == "n/a (one at a time)"
    assert bench.not_applicable("iterative", 1) is None
    assert bench.not_applicable("select", 1000) == "n/a (FD_SETSIZE)"
    assert bench.not_applicable("epoll", 1000) is None


def _run(rate: int, cpu: float = 90.0) -> bench.Run:
    latencies = array("q", sorted([100_000, 200_000, 5_000_000] * rate))
    load = LoadResult(connections=64, connected=64, window=1.0, messages=len(latencies),
                      latencies_ns=latencies, per_connection=[1] * 64, load_cpu=0.5)
    return bench.Run(load, cpu)


def test_table_headline_and_chart(tmp_path: Path) -> None:
    engines, conns = ["epoll", "asyncio", "iterative"], [1, 64]
    cells = {(e, n): bench.Cell(e, n) for e in engines for n in conns}
    for n in conns:
        cells["epoll", n].runs = [_run(300), _run(310), _run(290)]
        cells["asyncio", n].runs = [_run(150), _run(200), _run(100)]
    cells["iterative", 1].skipped = "failed: no module"
    cells["iterative", 64].skipped = "n/a (one at a time)"
    assert bench.headline_ratios(cells) == pytest.approx([2.0, 1.55, 2.9])
    assert "2.00 (target >= 1.5; met" in bench.headline_text(cells)

    buffer = io.StringIO()
    Console(file=buffer, width=200).print(
        bench.build_table(cells, engines, conns, repeat=3, duration=1.0))
    text = buffer.getvalue()
    assert "n/a (one at a time)" in text and "failed: no module" in text
    assert "900" in text  # epoll's median msg/s: 3 x 300 echoes in 1 s

    out = bench.draw_chart(cells, engines, conns, tmp_path / "charts" / "engines.png")
    assert out.read_bytes().startswith(b"\x89PNG")


def test_main_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "engines.png"
    code = bench.main(["--engines", "epoll", "--conns", "2", "--duration", "0.3",
                       "--warmup", "0.1", "--repeat", "1", "--idle", "20",
                       "--idle-engines", "epoll", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "epoll" in printed and "msg/s" in printed
    assert "epoll, 20 idle connections:" in printed
    assert "epoll/asyncio at 64 connections: not measured" in printed
    assert out.read_bytes().startswith(b"\x89PNG")
