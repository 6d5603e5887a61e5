"""The ds benchmark: the slope fit, and a tiny end-to-end run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ionet.bench import ds as bench


@pytest.mark.parametrize("k", [0.0, 0.5, 1.0, 2.0])
def test_growth_exponent_recovers_a_power_law(k: float) -> None:
    sizes = [100, 1_000, 10_000, 100_000]
    times = [3e-8 * n**k for n in sizes]
    assert bench.growth_exponent(sizes, times) == pytest.approx(k)


def test_growth_exponent_of_n_log_n_is_a_bit_above_one() -> None:
    import math

    sizes = [10**p for p in range(2, 7)]
    slope = bench.growth_exponent(sizes, [n * math.log(n) for n in sizes])
    assert 1.05 < slope < 1.2


def test_growth_exponent_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        bench.growth_exponent([100], [1.0])
    with pytest.raises(ValueError):
        bench.growth_exponent([100, 100], [1.0, 2.0])
    with pytest.raises(ValueError):
        bench.growth_exponent([100, 1000], [0.0, 1.0])


def test_quick_run_prints_the_table_and_writes_a_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "charts" / "ds.png"
    assert bench.main(["--quick", "--sizes", "100,1000", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    for label in ("LinkedList.prepend(x)", "list.insert(0, x)", "LinkedList[n // 2]", "bubble_sort", "slope"):
        assert label in printed


def test_caps_leave_quadratic_rows_out_and_say_so(capsys: pytest.CaptureFixture[str]) -> None:
    bubble = next(c for c in bench.CASES if c.label == "bubble_sort")
    results = bench.measure([bubble], [100, 1000, 2000], quick=True)
    assert sorted(results[0].times) == [100, 1000]
    bench.Console(width=200).print(bench.build_table(results, [100, 1000, 2000], quick=True))
    assert "capped at n=10^3" in capsys.readouterr().out


def test_missing_matplotlib_names_the_chart_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    code = bench.main(["--quick", "--sizes", "100,200", "--out", str(tmp_path / "x.png")])
    assert code == 1
    assert "ionet[chart]" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(("text", "sizes"), [("1000", [1000]), ("1e3,10^4", [1000, 10_000]), ("1_000", [1000])])
def test_size_parsing(text: str, sizes: list[int]) -> None:
    assert bench._sizes(text) == sizes
