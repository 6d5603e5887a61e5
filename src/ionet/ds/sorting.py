"""Two classic sorts: bubble sort and quicksort, both in place.

Both sort a mutable sequence (usually a ``list``) in place and return
``None``, like ``list.sort``, and compare items with ``<`` only, like
``sorted``. For real work use ``sorted``/``list.sort`` (Timsort, written in
C, stable, O(n log n) worst case and O(n) on sorted input); these two are
here to be read and measured (``python -m ionet bench ds``).

**Bubble sort** walks the list comparing neighbours and swapping those out
of order, so each pass carries the largest remaining item to the end. That
is O(n^2) comparisons in general. Two small improvements, both standard:
a pass that swaps nothing proves the list sorted and stops the sort (*early
exit*: sorted input costs one pass, n - 1 comparisons), and everything
after the last swap of a pass is already in place, so the next pass stops
there. It only swaps strictly smaller items forward, so it is *stable*:
equal items keep their order.

**Quicksort** picks a *pivot*, partitions the items into those smaller than,
equal to and greater than it, and sorts the smaller and greater parts the
same way. Three choices keep it O(n log n) where the textbook version is
not:

* *Random pivot*. Always taking the first item makes sorted input (very
  common in practice) split into 0 and n - 1 items every time: O(n^2) time.
  Median-of-three (first, middle, last) fixes sorted input, but other
  orders still defeat it, including the half-rotated runs that the
  partition below leaves behind: we measured it going quadratic on sorted
  input. A pivot picked at random is good *on average for every input*,
  since no input order can predict it: expected O(n log n), whatever the
  data. Pass ``rng=random.Random(seed)`` for a reproducible run.
* *Three-way partition* (Dijkstra's "Dutch national flag"): items equal to
  the pivot are gathered in the middle and never looked at again, so a list
  of all-equal items is one O(n) pass instead of O(n^2).
* *Recurse on the smaller part, loop on the larger*: the recursive call gets
  at most half of the items, so the recursion is at most log2(n) deep, about
  20 frames for a million items, however unlucky the pivots; the larger part
  is handled by the next round of a ``while`` loop, which needs no stack
  frame.

Quicksort is not stable.
"""

from __future__ import annotations

import random
from collections.abc import MutableSequence

from ionet.ds._types import CT

__all__ = ["bubble_sort", "quicksort"]


def bubble_sort(items: MutableSequence[CT]) -> None:
    """Sort ``items`` in place by bubble sort, stably. O(n^2), O(n) if sorted.

    Args:
        items: A mutable sequence of mutually comparable items.
    """
    end = len(items) - 1  # items after index `end` are already in place
    while end > 0:
        last_swap = 0
        for i in range(end):
            if items[i + 1] < items[i]:
                items[i], items[i + 1] = items[i + 1], items[i]
                last_swap = i
        end = last_swap  # 0 when nothing was swapped: sorted, stop


def quicksort(items: MutableSequence[CT], *, rng: random.Random | None = None) -> None:
    """Sort ``items`` in place by quicksort. O(n log n) expected for any
    input, recursion depth at most log2(n).

    Args:
        items: A mutable sequence of mutually comparable items.
        rng: Where the random pivots come from; a fresh, OS-seeded
            ``random.Random()`` by default (never the shared global one).
    """
    _quicksort(items, 0, len(items) - 1, rng or random.Random())


def _quicksort(items: MutableSequence[CT], lo: int, hi: int, rng: random.Random) -> None:
    """Sort ``items[lo:hi + 1]``."""
    while lo < hi:
        lt, gt = _partition(items, lo, hi, items[rng.randint(lo, hi)])
        # Now items[lo:lt] < pivot == items[lt:gt + 1] < items[gt + 1:hi + 1].
        if lt - lo < hi - gt:
            _quicksort(items, lo, lt - 1, rng)  # the smaller part: recurse
            lo = gt + 1  # the larger part: loop
        else:
            _quicksort(items, gt + 1, hi, rng)
            hi = lt - 1


def _partition(items: MutableSequence[CT], lo: int, hi: int, pivot: CT) -> tuple[int, int]:
    """Three-way partition of ``items[lo:hi + 1]`` around ``pivot`` (one of
    them); return ``(lt, gt)``, the bounds of the block equal to it."""
    lt, i, gt = lo, lo, hi
    # Invariant: [lo, lt) < pivot, [lt, i) == pivot, (gt, hi] > pivot,
    # and [i, gt] is still to be looked at.
    while i <= gt:
        item = items[i]
        if item < pivot:
            items[lt], items[i] = item, items[lt]
            lt += 1
            i += 1
        elif pivot < item:
            items[gt], items[i] = item, items[gt]
            gt -= 1
        else:
            i += 1
    return lt, gt
