"""Sorts against sorted(), binary search against bisect, factorial against math."""

from __future__ import annotations

import math
import random
import sys
from bisect import bisect_left
from collections.abc import Callable
from functools import total_ordering

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ionet.ds import binary_search, bubble_sort, factorial, factorial_recursive, quicksort

SORTS = {"bubble_sort": bubble_sort, "quicksort": quicksort}

lists_of_items = st.one_of(
    st.lists(st.integers(-5, 5)),  # many duplicates
    st.lists(st.integers()),
    st.lists(st.floats(allow_nan=False)),
    st.lists(st.text(max_size=3)),
)


@pytest.mark.parametrize("sort", SORTS.values(), ids=SORTS.keys())
@settings(max_examples=300, deadline=None)
@given(items=lists_of_items)
def test_sorts_match_sorted(sort: Callable[[list], None], items: list) -> None:
    expected = sorted(items)
    result = list(items)
    assert sort(result) is None  # in place, like list.sort
    assert result == expected


@total_ordering
class Keyed:
    """Compares by key only, so equal keys can be told apart by tag."""

    comparisons = 0

    def __init__(self, key: int, tag: int) -> None:
        self.key, self.tag = key, tag

    def __lt__(self, other: Keyed) -> bool:
        Keyed.comparisons += 1
        return self.key < other.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Keyed) and self.key == other.key


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(st.integers(0, 3), max_size=40))
def test_bubble_sort_is_stable(keys: list[int]) -> None:
    items = [Keyed(k, i) for i, k in enumerate(keys)]
    expected = sorted(items)  # sorted() is stable
    bubble_sort(items)
    assert [(x.key, x.tag) for x in items] == [(x.key, x.tag) for x in expected]


def test_bubble_sort_exits_early_on_sorted_input() -> None:
    n = 100_000
    items = [Keyed(i, i) for i in range(n)]
    Keyed.comparisons = 0
    bubble_sort(items)
    assert Keyed.comparisons == n - 1  # one pass, no swap, stop
    items[10], items[11] = items[11], items[10]
    Keyed.comparisons = 0
    bubble_sort(items)
    # pass 1 swaps at index 10 only, so pass 2 looks at the first 10 pairs
    assert Keyed.comparisons == (n - 1) + 10
    assert [x.key for x in items] == list(range(n))


def _organ_pipe(n: int) -> list[int]:
    return list(range(n // 2)) + list(range(n // 2, 0, -1))


@pytest.mark.parametrize(
    "make",
    [
        lambda n: random.Random(1).sample(range(n), n),
        lambda n: list(range(n)),
        lambda n: list(range(n, 0, -1)),
        lambda n: [7] * n,
        _organ_pipe,
        lambda n: [random.Random(2).randrange(3) for _ in range(n)],
    ],
    ids=["random", "sorted", "reversed", "all-equal", "organ-pipe", "three-values"],
)
def test_quicksort_100_000_items_with_logarithmic_recursion(make: Callable[[int], list[int]]) -> None:
    n = 100_000
    items = make(n)
    expected = sorted(items)
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]
    old_limit = sys.getrecursionlimit()
    # log2(100,000) < 17 nested calls, plus a margin for what the deepest
    # call itself calls (random.randint is three frames deep). A quicksort
    # recursing on both sides would need about 40 on random input.
    sys.setrecursionlimit(depth + 17 + 8)
    try:
        quicksort(items, rng=random.Random(0))
    finally:
        sys.setrecursionlimit(old_limit)
    assert items == expected


@settings(max_examples=300, deadline=None)
@given(items=st.lists(st.integers(-20, 20)), target=st.integers(-22, 22))
def test_binary_search_matches_bisect(items: list[int], target: int) -> None:
    items.sort()
    i = bisect_left(items, target)
    expected = i if i < len(items) and items[i] == target else -1
    assert binary_search(items, target) == expected


def test_binary_search_finds_the_leftmost_of_many_duplicates() -> None:
    items = [0] * 50_000 + [1] * 50_000 + [3]
    assert binary_search(items, 0) == 0
    assert binary_search(items, 1) == 50_000
    assert binary_search(items, 3) == 100_000
    assert binary_search(items, 2) == -1
    assert binary_search(items, 4) == -1
    assert binary_search([], 1) == -1
    assert binary_search(["a", "b", "b"], "b") == 1


@given(n=st.integers(0, 300))
def test_factorial_matches_math(n: int) -> None:
    assert factorial(n) == factorial_recursive(n) == math.factorial(n)


def test_factorial_errors() -> None:
    with pytest.raises(ValueError, match="negative"):
        factorial(-1)
    with pytest.raises(ValueError, match="negative"):
        factorial_recursive(-1)
    with pytest.raises(TypeError, match="integer"):
        factorial(2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="integer"):
        factorial(True)
    assert factorial(5000) == math.factorial(5000)  # the loop has no depth limit
    with pytest.raises(RecursionError):
        factorial_recursive(5000)
