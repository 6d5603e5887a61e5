"""Typing helpers shared by the sorting and searching modules.

The sorts and ``binary_search`` only ever compare items with ``<``, exactly
like ``sorted`` and ``bisect``; this protocol says so to the type checker.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

__all__ = ["SupportsLessThan", "CT"]


class SupportsLessThan(Protocol):
    """Anything that can be compared with ``<``."""

    def __lt__(self, other: Any, /) -> bool: ...


CT = TypeVar("CT", bound=SupportsLessThan)
"""A type variable for comparable items."""
