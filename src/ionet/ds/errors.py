"""Exceptions of ``ionet.ds`` that the standard library has no name for.

Everything else raises the usual built-ins: ``IndexError`` when there is no
item where one was asked for (pop from an empty stack, index out of range),
``ValueError`` when a value is wrong (a value that is not in the list, a
malformed tree, a bad RPN expression).
"""

from __future__ import annotations

__all__ = ["FullError"]


class FullError(IndexError):
    """A fixed-capacity container has no room for another item.

    It subclasses ``IndexError`` (the built-in for "no slot there", as in
    ``list.pop`` or ``deque.popleft`` on an empty container), so code that
    catches ``IndexError`` also catches overflow, and code that cares can
    catch ``FullError`` alone.
    """
