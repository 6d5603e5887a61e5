"""A binary tree in sequential (array) storage.

The nodes live in one list, level by level, with ``None`` for a missing
node. No links are stored: they are computed.

* the children of index ``i`` are at ``2*i + 1`` and ``2*i + 2``;
* its parent is at ``(i - 1) // 2``;
* the depth of index ``i`` is ``(i + 1).bit_length() - 1``.

This is perfect for *complete* trees, where every level is full except
perhaps the last, filled from the left: no slot is wasted and no memory goes
on pointers, which is why heaps (``heapq``) are stored this way. For thin
trees it is wasteful: every missing node below the last level still costs a
slot, up to ``2**h - 1`` slots for a tree of height ``h``.

That same fact makes the recursive traversals here safe: a tree stored in
an array of length L has at most ``L.bit_length()`` levels, so recursion
never goes deeper than about log2(L) frames (60 for any array that fits in
memory), far below Python's recursion limit. The linked ``BinaryTree`` needs
iterative traversals because it has no such bound.

An ``ArrayBinaryTree`` is immutable; convert with ``to_linked`` to edit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from ionet.ds.tree import DEFAULT_MAX_SLOTS, BinaryTree

T = TypeVar("T")

__all__ = ["ArrayBinaryTree"]


class ArrayBinaryTree(Generic[T]):
    """An immutable binary tree stored as a level-by-level array.

    Args:
        values: The array form: ``values[i]`` is the node at index ``i`` or
            ``None``. Trailing ``None``s are dropped.

    Raises:
        ValueError: If a value sits below a ``None`` (it has no parent).
    """

    __slots__ = ("_slots", "_count")

    def __init__(self, values: Iterable[T | None] = ()) -> None:
        slots = list(values)
        while slots and slots[-1] is None:
            slots.pop()
        for i in range(1, len(slots)):
            if slots[i] is not None and slots[(i - 1) // 2] is None:
                raise ValueError(
                    f"array form: the value at index {i} has no parent "
                    f"(index {(i - 1) // 2} is None)"
                )
        self._slots = slots
        self._count = sum(v is not None for v in slots)

    # -- index arithmetic ----------------------------------------------

    @staticmethod
    def left(index: int) -> int:
        """Index of the left child of ``index``."""
        return 2 * index + 1

    @staticmethod
    def right(index: int) -> int:
        """Index of the right child of ``index``."""
        return 2 * index + 2

    @staticmethod
    def parent(index: int) -> int:
        """Index of the parent of ``index`` (which must be at least 1).

        Raises:
            ValueError: For the root, which has no parent.
        """
        if index <= 0:
            raise ValueError(f"index {index} has no parent (the root is index 0)")
        return (index - 1) // 2

    def _has(self, index: int) -> bool:
        return index < len(self._slots) and self._slots[index] is not None

    def as_list(self) -> list[T | None]:
        """A copy of the array form."""
        return list(self._slots)

    # -- traversals ----------------------------------------------------

    def preorder(self) -> Iterator[T]:
        """Values in pre-order (recursive; depth at most log2 of the length)."""

        def visit(i: int) -> Iterator[T]:
            if self._has(i):
                yield self._slots[i]  # type: ignore[misc]
                yield from visit(2 * i + 1)
                yield from visit(2 * i + 2)

        return visit(0)

    def inorder(self) -> Iterator[T]:
        """Values in in-order (recursive)."""

        def visit(i: int) -> Iterator[T]:
            if self._has(i):
                yield from visit(2 * i + 1)
                yield self._slots[i]  # type: ignore[misc]
                yield from visit(2 * i + 2)

        return visit(0)

    def postorder(self) -> Iterator[T]:
        """Values in post-order (recursive)."""

        def visit(i: int) -> Iterator[T]:
            if self._has(i):
                yield from visit(2 * i + 1)
                yield from visit(2 * i + 2)
                yield self._slots[i]  # type: ignore[misc]

        return visit(0)

    def level_order(self) -> Iterator[T]:
        """Values level by level: the array is already in that order, so
        this is a plain scan that skips the gaps."""
        return (v for v in self._slots if v is not None)

    def height(self) -> int:
        """The number of levels: the depth of the last slot, plus one."""
        return len(self._slots).bit_length()

    # -- conversions -----------------------------------------------------

    def to_linked(self) -> BinaryTree[T]:
        """The same tree in linked storage."""
        return BinaryTree.from_array(self._slots)

    @classmethod
    def from_linked(
        cls, tree: BinaryTree[T], max_slots: int = DEFAULT_MAX_SLOTS
    ) -> ArrayBinaryTree[T]:
        """The same tree in sequential storage.

        Raises:
            ValueError: If the array would exceed ``max_slots`` slots.
        """
        return cls(tree.to_array(max_slots))

    # -- Python protocols ----------------------------------------------

    def __len__(self) -> int:
        """The number of nodes (not of slots). O(1)."""
        return self._count

    def __iter__(self) -> Iterator[T]:
        """Level order, like ``BinaryTree``."""
        return self.level_order()

    def __contains__(self, value: object) -> bool:
        return any(v is value or v == value for v in self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ArrayBinaryTree):
            return NotImplemented
        return self._slots == other._slots

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ArrayBinaryTree({self._slots!r})"
