"""Recursion, with the course's example: the factorial.

``n! = n * (n - 1)!`` and ``0! = 1``: a problem defined by a smaller copy of
itself plus a case that stops. ``factorial_recursive`` is that definition
written as code. Every call waits on the call below it, so computing ``n!``
keeps n + 1 Python frames alive at once, and Python refuses to go beyond
``sys.getrecursionlimit()`` (1,000 by default): ``factorial_recursive(5000)``
raises ``RecursionError``.

``factorial`` is the iterative version: a loop that multiplies up, with
one frame whatever ``n`` is. Any recursion that does its work on the way
down with a single recursive call at the end (a *tail call*) can be turned
into such a loop; Python does not do it for you. (``math.factorial`` is the
fast C version.)
"""

from __future__ import annotations

__all__ = ["factorial", "factorial_recursive"]


def _check(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"factorial() needs an integer, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"factorial() is not defined for negative numbers, got {n}")


def factorial(n: int) -> int:
    """Return ``n!`` with a loop.

    Args:
        n: A non-negative integer.

    Raises:
        TypeError: If ``n`` is not an ``int`` (``bool`` is refused too).
        ValueError: If ``n`` is negative.
    """
    _check(n)
    result = 1
    for k in range(2, n + 1):
        result *= k
    return result


def factorial_recursive(n: int) -> int:
    """Return ``n!`` by recursion, straight from the definition.

    Args:
        n: A non-negative integer.

    Raises:
        TypeError: If ``n`` is not an ``int``.
        ValueError: If ``n`` is negative.
        RecursionError: If ``n`` is close to ``sys.getrecursionlimit()``
            or above it.
    """
    _check(n)
    return _fact(n)


def _fact(n: int) -> int:
    return 1 if n <= 1 else n * _fact(n - 1)
