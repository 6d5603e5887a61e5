"""Stacks: last in, first out, in sequential and in linked storage.

A stack only ever touches one end, its *top*, so both storages give O(1)
``push`` and ``pop``:

* ``ArrayStack`` (sequential storage) keeps the items in an array of slots
  and an integer ``top``. The top is the *end* of the array, because adding
  or removing there shifts nothing. With a ``capacity`` it is the textbook
  fixed-size stack and ``push`` on a full stack raises ``FullError``; without
  one it doubles its array when it fills up, which makes ``push`` O(1)
  amortized (n pushes copy at most 1 + 2 + 4 + ... + n < 2n slots).
* ``LinkedStack`` (linked storage) keeps the items in nodes, and the top is
  the *head* node, because a singly linked list can add and remove there in
  O(1). It never fills up and never copies, but pays one node per item.

Conventions shared by both: iterating a stack yields the items in the order
``pop`` would return them, top first. ``reversed(stack)`` goes bottom first,
which is also the order the constructor and the ``repr`` use, so that
``ArrayStack([1, 2, 3])`` pushes 1, then 2, then 3, and 3 is on top.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from ionet.ds.errors import FullError

T = TypeVar("T")

__all__ = ["ArrayStack", "LinkedStack"]


class ArrayStack(Generic[T]):
    """A stack stored in an array of slots, growing at the end.

    Args:
        items: Optional initial items, pushed bottom first.
        capacity: ``None`` (default) for a stack that grows as needed, or the
            fixed number of slots.

    Raises:
        ValueError: If ``capacity`` is given and is less than 1.
        FullError: If ``items`` does not fit in ``capacity``.
    """

    __slots__ = ("_slots", "_size", "_capacity")

    _INITIAL_SLOTS = 8

    def __init__(self, items: Iterable[T] = (), capacity: int | None = None) -> None:
        if capacity is not None and capacity < 1:
            raise ValueError(f"ArrayStack capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._slots: list[T | None] = [None] * (capacity or self._INITIAL_SLOTS)
        self._size = 0
        for item in items:
            self.push(item)

    @property
    def capacity(self) -> int | None:
        """The fixed capacity, or ``None`` for a growing stack."""
        return self._capacity

    def push(self, item: T) -> None:
        """Put ``item`` on top. O(1) (amortized when the stack grows).

        Raises:
            FullError: If the stack has a fixed capacity and is full.
        """
        if self._size == len(self._slots):
            if self._capacity is not None:
                raise FullError(f"push onto a full ArrayStack (capacity {self._capacity})")
            # Double the array: the copy is O(n), but it happens only after n
            # cheap pushes, so each push pays O(1) on average.
            self._slots.extend([None] * len(self._slots))
        self._slots[self._size] = item
        self._size += 1

    def pop(self) -> T:
        """Remove and return the top item. O(1).

        Raises:
            IndexError: If the stack is empty.
        """
        if self._size == 0:
            raise IndexError("pop from an empty stack")
        self._size -= 1
        item = self._slots[self._size]
        self._slots[self._size] = None  # let the item be garbage collected
        return item  # type: ignore[return-value]

    def peek(self) -> T:
        """Return the top item without removing it. O(1).

        Raises:
            IndexError: If the stack is empty.
        """
        if self._size == 0:
            raise IndexError("peek at an empty stack")
        return self._slots[self._size - 1]  # type: ignore[return-value]

    def is_empty(self) -> bool:
        """True if the stack holds no item."""
        return self._size == 0

    def is_full(self) -> bool:
        """True if the stack has a fixed capacity and no free slot."""
        return self._capacity is not None and self._size == self._capacity

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[T]:
        """Top first, the order ``pop`` would return the items."""
        for i in range(self._size - 1, -1, -1):
            yield self._slots[i]  # type: ignore[misc]

    def __reversed__(self) -> Iterator[T]:
        """Bottom first, the order the items were pushed."""
        for i in range(self._size):
            yield self._slots[i]  # type: ignore[misc]

    def __contains__(self, item: object) -> bool:
        return any(x is item or x == item for x in self)

    def __eq__(self, other: object) -> bool:
        """Same items in the same order; the capacity does not matter."""
        if not isinstance(other, ArrayStack):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        items = list(reversed(self))
        if self._capacity is None:
            return f"ArrayStack({items!r})"
        return f"ArrayStack({items!r}, capacity={self._capacity})"


class _Node(Generic[T]):
    __slots__ = ("value", "next")

    def __init__(self, value: T, next: _Node[T] | None) -> None:
        self.value = value
        self.next = next


class LinkedStack(Generic[T]):
    """A stack stored as a singly linked list whose head is the top.

    Args:
        items: Optional initial items, pushed bottom first.
    """

    __slots__ = ("_top", "_size")

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._top: _Node[T] | None = None
        self._size = 0
        for item in items:
            self.push(item)

    def push(self, item: T) -> None:
        """Put ``item`` on top: a new head node. O(1)."""
        self._top = _Node(item, self._top)
        self._size += 1

    def pop(self) -> T:
        """Remove and return the top item: unlink the head node. O(1).

        Raises:
            IndexError: If the stack is empty.
        """
        if self._top is None:
            raise IndexError("pop from an empty stack")
        node = self._top
        self._top = node.next
        self._size -= 1
        return node.value

    def peek(self) -> T:
        """Return the top item without removing it. O(1).

        Raises:
            IndexError: If the stack is empty.
        """
        if self._top is None:
            raise IndexError("peek at an empty stack")
        return self._top.value

    def is_empty(self) -> bool:
        """True if the stack holds no item."""
        return self._top is None

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[T]:
        """Top first, following the links."""
        node = self._top
        while node is not None:
            yield node.value
            node = node.next

    def __reversed__(self) -> Iterator[T]:
        """Bottom first. The links only point down, so this collects the
        items first: O(n) memory."""
        return reversed(list(self))

    def __contains__(self, item: object) -> bool:
        return any(x is item or x == item for x in self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LinkedStack):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LinkedStack({list(reversed(self))!r})"
