"""Measure ``ionet.ds`` against Python's built-ins, so that the big-O of the
course shows up in data.

Run it as ``python bench/ds.py``, ``python -m ionet bench ds`` or
``ionet bench ds``; ``--quick`` for a fast run, ``--help`` for options. It
prints a table and draws a log-log chart (``bench/out/ds.png`` by default).

What is measured, for each size n from 10^2 to 10^6:

* **per-operation costs** (insert at the head, append, read the middle item,
  search): a structure of n items is built, a batch of operations is timed,
  and the time is divided by the batch size. The batch grows (1, 2, 4, ...
  operations) until it has run for ``min_time``; for operations that add
  items, the structure is rebuilt (untimed) before it grows by more than
  10%, so every operation really runs at size about n.
* **whole-run costs** (the sorts): the time to sort n random integers, best
  of several runs (a single run once it takes over a second).

The garbage collector is paused while measuring, as ``timeit`` does, so that
its occasional full scans of millions of nodes do not land in one batch.

The **growth exponent** of each row is the least-squares slope of log(time)
against log(n). If time ~ c * n^k, then log(time) = log(c) + k log(n), a
straight line of slope k on a log-log chart: about 0 for O(1) per operation,
1 for O(n), a little above 1 for O(n log n) (log n grows slowly), 2 for
O(n^2). Small sizes pull the slope down, because a fixed cost per call
(the interpreter's overhead) dominates when n is small.

Quadratic rows are capped (bubble sort stops at 10^4, 10^3 with
``--quick``): at 10^5 a pure-Python bubble sort would run for over ten
minutes. The table says so.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ionet.ds import LinkedList, binary_search, bubble_sort, quicksort

__all__ = ["Case", "Result", "CASES", "growth_exponent", "measure", "main"]

DEFAULT_SIZES = (10**2, 10**3, 10**4, 10**5, 10**6)
QUICK_SIZES = (10**2, 10**3, 10**4)
DEFAULT_OUT = Path("bench/out/ds.png")


@dataclass(frozen=True)
class Case:
    """One row of the table: an operation on one structure.

    ``setup(n)`` builds the input (untimed). For a per-operation case,
    ``run(state, k)`` performs k operations on it; for a whole-run case,
    ``run(copy_of_state, 0)`` does the whole job once.
    """

    group: str
    label: str
    expected: str
    setup: Callable[[int], Any]
    run: Callable[[Any, int], object]
    per_op: bool = True
    grows: bool = False  # does each operation add an item?
    max_n: int | None = None
    quick_max_n: int | None = None
    why_capped: str = ""


@dataclass
class Result:
    """The measured times of one case: size -> seconds (per op or per run)."""

    case: Case
    times: dict[int, float] = field(default_factory=dict)

    @property
    def exponent(self) -> float | None:
        """Least-squares growth exponent, or ``None`` with under two sizes."""
        if len(self.times) < 2:
            return None
        return growth_exponent(list(self.times), list(self.times.values()))


def growth_exponent(sizes: Sequence[float], times: Sequence[float]) -> float:
    """The least-squares slope of log(time) against log(size).

    Args:
        sizes: At least two distinct positive sizes.
        times: The positive time measured at each size.

    Raises:
        ValueError: With fewer than two points, distinct sizes, or a
            non-positive value.
    """
    if len(sizes) != len(times) or len(sizes) < 2:
        raise ValueError("growth_exponent needs two or more (size, time) pairs")
    if min(sizes) <= 0 or min(times) <= 0:
        raise ValueError("growth_exponent needs positive sizes and times")
    xs = [math.log(n) for n in sizes]
    ys = [math.log(t) for t in times]
    mean_x = sum(xs) / len(xs)
    mean_y = sum(ys) / len(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("growth_exponent needs at least two different sizes")
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sxx


# -- the operations --------------------------------------------------------


def _random_ints(n: int) -> list[int]:
    rng = random.Random(n)  # a local generator: reproducible, no global state
    return [rng.randrange(n) for _ in range(n)]


def _each(method: str) -> Callable[[Any, int], None]:
    """A batch: call ``state.<method>(0)`` k times, the bound method looked
    up once (so the loop costs the same for every structure)."""

    def run(state: Any, k: int) -> None:
        call = getattr(state, method)
        for _ in range(k):
            call(0)

    return run


def _list_insert0(items: list[int], k: int) -> None:
    insert = items.insert
    for _ in range(k):
        insert(0, 0)


def _read_middle(items: Any, k: int) -> None:
    middle = len(items) // 2
    for _ in range(k):
        items[middle]


def _search_absent(items: Any, k: int) -> None:
    for _ in range(k):
        -1 in items  # noqa: B015 - the scan is what is being timed


def _lookups(find: Callable[[list[int], int], object]) -> Callable[[list[int], int], None]:
    """A batch: ``find(items, target)`` k times in a sorted list."""

    def run(items: list[int], k: int) -> None:
        target = len(items) // 3
        for _ in range(k):
            find(items, target)

    return run


def _linked(n: int) -> LinkedList[int]:
    return LinkedList(range(n))


def _list(n: int) -> list[int]:
    return list(range(n))


def _sorted_ints(n: int) -> list[int]:
    return sorted(_random_ints(n))


CASES: tuple[Case, ...] = (
    Case("insert at head", "LinkedList.prepend(x)", "O(1)", _linked, _each("prepend"), grows=True),
    Case("insert at head", "list.insert(0, x)", "O(n)", _list, _list_insert0, grows=True),
    Case("insert at head", "deque.appendleft(x)", "O(1)", lambda n: deque(range(n)), _each("appendleft"), grows=True),
    Case("append", "LinkedList.append(x)", "O(1)", _linked, _each("append"), grows=True),
    Case("append", "list.append(x)", "O(1)*", _list, _each("append"), grows=True),
    Case("index", "LinkedList[n // 2]", "O(n)", _linked, _read_middle),
    Case("index", "list[n // 2]", "O(1)", _list, _read_middle),
    Case("search", "x in LinkedList", "O(n)", _linked, _search_absent),
    Case("search", "x in list", "O(n)", _list, _search_absent),
    Case("search", "binary_search(sorted list, x)", "O(log n)", _sorted_ints, _lookups(binary_search)),
    Case("search", "bisect_left(sorted list, x)", "O(log n)", _sorted_ints, _lookups(bisect_left)),
    Case(
        "sort", "bubble_sort", "O(n^2)", _random_ints, lambda a, _: bubble_sort(a),
        per_op=False, max_n=10**4, quick_max_n=10**3,
        why_capped="O(n^2): 10x n = 100x time",
    ),
    Case("sort", "quicksort", "O(n log n)", _random_ints, lambda a, _: quicksort(a), per_op=False),
    Case(
        "sort", "quicksort, sorted input", "O(n log n)", _list,
        lambda a, _: quicksort(a), per_op=False,
    ),
    Case("sort", "sorted()", "O(n log n)", _random_ints, lambda a, _: sorted(a), per_op=False),
)


# -- measuring ---------------------------------------------------------------


def _time_per_op(case: Case, n: int, min_time: float, repeats: int) -> float:
    """Best-of-``repeats`` seconds per operation at size ``n``."""
    cap = max(1, n // 10) if case.grows else None  # stay within 10% of n
    state = case.setup(n)
    added = 0
    # Each timed batch also pays a fixed cost (two timer reads, one call).
    # Measure it on empty batches and subtract it: at n = 100 a growing
    # structure allows batches of only 10 operations, and that fixed cost
    # would otherwise show up as a fake slowdown at small n.
    overhead = math.inf
    for _ in range(50):
        start = time.perf_counter()
        case.run(state, 0)
        overhead = min(overhead, time.perf_counter() - start)
    best = math.inf
    for _ in range(repeats):
        elapsed, ops, chunk = 0.0, 0, 1
        while elapsed < min_time:
            if cap is not None and added >= cap:
                state, added = case.setup(n), 0  # untimed rebuild
            k = chunk if cap is None else min(chunk, cap - added)
            start = time.perf_counter()
            case.run(state, k)
            elapsed += max(time.perf_counter() - start - overhead, 0.0)
            ops += k
            added += k
            chunk *= 2
        best = min(best, elapsed / ops)
    return best


def _time_whole(case: Case, n: int, min_time: float, repeats: int) -> float:
    """Best time of one run at size ``n``: at least ``repeats`` runs and
    ``min_time`` in total, or a single run if it takes over a second."""
    data = case.setup(n)
    best, total, runs = math.inf, 0.0, 0
    while runs < repeats or total < min_time:
        work = list(data)  # sorts work in place: give each run a fresh copy
        start = time.perf_counter()
        case.run(work, 0)
        took = time.perf_counter() - start
        best, total, runs = min(best, took), total + took, runs + 1
        if took > 1.0:
            break
    return best


def measure(
    cases: Sequence[Case],
    sizes: Sequence[int],
    *,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[Result]:
    """Time every case at every size it is not capped at.

    Args:
        cases: The rows to measure, usually ``CASES``.
        sizes: The sizes n.
        quick: Shorter timings, one repeat, lower caps.
        progress: Called with a short message before each measurement.
    """
    min_time, repeats = (0.002, 1) if quick else (0.02, 3)
    results = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for case in cases:
            result = Result(case)
            cap = case.quick_max_n if quick and case.quick_max_n else case.max_n
            for n in sizes:
                if cap is not None and n > cap:
                    continue
                if progress is not None:
                    progress(f"{case.group}: {case.label}, n = {n:,}")
                timer = _time_per_op if case.per_op else _time_whole
                result.times[n] = timer(case, n, min_time, repeats)
                gc.collect()  # free this size's structures before the next
            results.append(result)
    finally:
        if gc_was_enabled:
            gc.enable()
    return results


# -- reporting ---------------------------------------------------------------


def _format_time(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _format_size(n: int) -> str:
    exponent = round(math.log10(n))
    return f"10^{exponent}" if 10**exponent == n else f"{n:,}"


def build_table(results: Sequence[Result], sizes: Sequence[int], *, quick: bool) -> Table:
    """A rich table: one row per case, one column per size, and the slope."""
    table = Table(
        title="ionet.ds vs Python built-ins",
        caption=(
            "time per operation, except 'sort': time per sort of n random ints "
            "(one row: already-sorted input). slope = least-squares exponent k "
            "in time ~ n^k: ~0 is O(1), ~1 O(n), a bit over 1 O(n log n), ~2 O(n^2). "
            "* amortized."
        ),
    )
    table.add_column("measures")
    table.add_column("operation")
    table.add_column("expected")
    for n in sizes:
        table.add_column(f"n={_format_size(n)}", justify="right")
    table.add_column("slope", justify="right", style="bold")
    table.add_column("note")
    group = None
    for result in results:
        case = result.case
        if group is not None and case.group != group:
            table.add_section()
        cells = [_format_time(result.times[n]) if n in result.times else "—" for n in sizes]
        exponent = result.exponent
        note = ""
        if any(n not in result.times for n in sizes):
            cap = case.quick_max_n if quick and case.quick_max_n else case.max_n
            note = f"capped at n={_format_size(cap or 0)} ({case.why_capped})"
        table.add_row(
            *(
                Text(cell)  # plain text: "[n // 2]" is not rich markup
                for cell in (
                    case.group if case.group != group else "",
                    case.label,
                    case.expected,
                    *cells,
                    "—" if exponent is None else f"{exponent:.2f}",
                    note,
                )
            )
        )
        group = case.group
    return table


def draw_chart(results: Sequence[Result], out: Path) -> Path:
    """Draw one log-log panel per group, with the slopes in the legends.

    Raises:
        RuntimeError: If matplotlib is not installed (it is the ``chart``
            extra: ``pip install 'ionet[chart]'``).
    """
    try:
        import matplotlib  # noqa: F401 - fails fast if missing
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise RuntimeError(
            "drawing the chart needs matplotlib, the 'chart' extra: "
            "pip install 'ionet[chart]' (or pass --no-chart)"
        ) from exc

    groups: dict[str, list[Result]] = {}
    for result in results:
        groups.setdefault(result.case.group, []).append(result)
    # The object-oriented API (Figure + Agg canvas) draws off-screen without
    # touching pyplot's global state or the user's backend.
    figure = Figure(figsize=(15, 9), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 3).flatten()
    for ax, (group, rows) in zip(axes, groups.items()):
        for result in rows:
            if not result.times:
                continue
            exponent = result.exponent
            slope = "" if exponent is None else f", slope {exponent:.2f}"
            ax.loglog(
                list(result.times), list(result.times.values()), marker="o",
                label=f"{result.case.label} [{result.case.expected}{slope}]",
            )
        times = [t for result in rows for t in result.times.values()]
        if times and max(times) < 1000 * min(times):
            # Show at least three decades, so that flat lines look flat
            # instead of noise blown up to fill the panel.
            middle = math.sqrt(min(times) * max(times))
            ax.set_ylim(middle / 10**1.5, middle * 10**1.5)
        per = "sort" if group == "sort" else "operation"
        ax.set_title(f"{group}: seconds per {per}")
        ax.set_xlabel("n")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[len(groups):]:
        ax.axis("off")
        ax.text(
            0.0, 0.5,
            "On a log-log chart, time ~ n^k\nis a straight line of slope k.\n\n"
            "slope ≈ 0    O(1)\nslope ≈ 1    O(n)\nslope ≈ 1.1  O(n log n)\n"
            "slope ≈ 2    O(n²)\n\nslope: least-squares fit of\nlog(time) on log(n).",
            family="monospace", fontsize=11, va="center",
        )
    figure.suptitle("ionet.ds: measured costs (python bench/ds.py)")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    return out


# -- command line ------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    """Parse ``1000``, ``1e3``, ``10^3`` or a comma-separated list of them."""
    sizes = []
    for part in filter(None, text.replace("_", "").split(",")):
        try:
            if "^" in part:
                base, power = part.split("^")
                value = int(base) ** int(power)
            else:
                value = int(float(part)) if part.lower().count("e") else int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a size: {part!r}") from None
        if value < 2:
            raise argparse.ArgumentTypeError(f"sizes must be at least 2, got {value}")
        sizes.append(value)
    return sizes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ionet bench ds",
        description="Time ionet.ds against Python built-ins and chart the growth.",
    )
    parser.add_argument(
        "--sizes", nargs="+", type=_sizes, metavar="N",
        help="sizes n, e.g. '100 1000 1e4' or '10^2,10^3' "
        "(default 10^2..10^6; 10^2..10^4 with --quick)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="PNG",
        help=f"where to write the chart (default {DEFAULT_OUT})",
    )
    parser.add_argument("--quick", action="store_true", help="a fast, rougher run")
    parser.add_argument("--no-chart", action="store_true", help="print the table only")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, draw the chart.

    Args:
        argv: The arguments (without the program name); ``sys.argv[1:]``
            when ``None``.

    Returns:
        0 on success, 1 if the chart could not be drawn.
    """
    args = _parser().parse_args(argv)
    if args.sizes:
        sizes = sorted({n for group in args.sizes for n in group})
    else:
        sizes = list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    console = Console()
    if not console.is_terminal:  # a file or a pipe: do not squeeze to 80 columns
        console = Console(width=max(console.width, 160))
    status_console = Console(stderr=True)
    with status_console.status("measuring") as status:
        results = measure(
            CASES, sizes, quick=args.quick,
            progress=lambda message: status.update(f"measuring {message}"),
        )
    console.print(build_table(results, sizes, quick=args.quick))
    if args.no_chart:
        return 0
    try:
        path = draw_chart(results, args.out)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    console.print(f"chart written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
