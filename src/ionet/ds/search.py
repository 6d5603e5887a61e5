"""Binary search: find an item in a sorted sequence in O(log n).

Each step compares the target with the middle of the range that may still
hold it and throws away the half that cannot, so a million items take at
most 20 steps where a linear scan (``x in list``) takes up to a million.
The price is that the sequence must be sorted, and that it must allow O(1)
access by index: on a linked list every "look at the middle" would itself
be O(n).

This version returns the *leftmost* position of the target, like
``bisect.bisect_left``: it keeps narrowing the range even after it meets an
equal item, so among duplicates it finds the first. It compares with ``<``
only while searching, and with ``==`` once, to check the final candidate.
"""

from __future__ import annotations

from collections.abc import Sequence

from ionet.ds._types import CT

__all__ = ["binary_search"]


def binary_search(items: Sequence[CT], target: CT) -> int:
    """Return the index of the first item equal to ``target``, or -1.

    Args:
        items: A sequence sorted in ascending order (if it is not, the
            answer is meaningless, as with ``bisect``).
        target: The value to look for.
    """
    lo, hi = 0, len(items)
    # Invariant: items[:lo] < target <= items[hi:].
    while lo < hi:
        mid = (lo + hi) // 2
        if items[mid] < target:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(items) and items[lo] == target:
        return lo
    return -1
