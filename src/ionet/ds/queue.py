"""Queues: first in, first out, in sequential and in linked storage.

A queue adds at its *rear* and removes at its *front*, so, unlike a stack, it
works at both ends.

* ``ArrayQueue`` (sequential storage) is a fixed array of slots used as a
  *circular buffer*. The naive array queue removes at index 0 and shifts
  everything left, O(n) per ``dequeue``; or it moves a ``front`` index
  forward, and then the free slots pile up at the start of the array where
  nothing can use them ("false overflow"). The circular buffer fixes both:
  the indexes wrap around with ``% capacity``, so ``front`` chases ``rear``
  round the ring, every slot is reused, and both operations are O(1). We keep
  an explicit ``size`` so that "full" (size == capacity) and "empty"
  (size == 0) are not confused, which is the classic pitfall when only the
  two indexes are stored.
* ``LinkedQueue`` (linked storage) keeps a singly linked list with a pointer
  to both ends: enqueue appends after the ``rear`` node, dequeue unlinks the
  ``front`` node. Both O(1), no capacity.

Iteration goes front to back, the order ``dequeue`` would return the items,
and the constructor enqueues its items in that same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from ionet.ds.errors import FullError

T = TypeVar("T")

__all__ = ["ArrayQueue", "LinkedQueue"]


class ArrayQueue(Generic[T]):
    """A fixed-capacity FIFO queue in a circular array.

    Args:
        capacity: The number of slots, at least 1.
        items: Optional initial items, enqueued in order.

    Raises:
        ValueError: If ``capacity`` is less than 1.
        FullError: If ``items`` does not fit.
    """

    __slots__ = ("_slots", "_front", "_size")

    def __init__(self, capacity: int, items: Iterable[T] = ()) -> None:
        if capacity < 1:
            raise ValueError(f"ArrayQueue capacity must be at least 1, got {capacity}")
        self._slots: list[T | None] = [None] * capacity
        self._front = 0  # index of the oldest item
        self._size = 0
        for item in items:
            self.enqueue(item)

    @property
    def capacity(self) -> int:
        """The number of slots."""
        return len(self._slots)

    def enqueue(self, item: T) -> None:
        """Add ``item`` at the rear. O(1).

        Raises:
            FullError: If all ``capacity`` slots are taken.
        """
        capacity = len(self._slots)
        if self._size == capacity:
            raise FullError(f"ArrayQueue is full (capacity {capacity})")
        rear = (self._front + self._size) % capacity  # wrap round the ring
        self._slots[rear] = item
        self._size += 1

    def dequeue(self) -> T:
        """Remove and return the front item. O(1).

        Raises:
            IndexError: If the queue is empty.
        """
        if self._size == 0:
            raise IndexError("dequeue from an empty queue")
        item = self._slots[self._front]
        self._slots[self._front] = None  # do not keep the item alive
        self._front = (self._front + 1) % len(self._slots)
        self._size -= 1
        return item  # type: ignore[return-value]

    def peek(self) -> T:
        """Return the front item without removing it. O(1).

        Raises:
            IndexError: If the queue is empty.
        """
        if self._size == 0:
            raise IndexError("peek at an empty queue")
        return self._slots[self._front]  # type: ignore[return-value]

    def is_empty(self) -> bool:
        """True if the queue holds no item."""
        return self._size == 0

    def is_full(self) -> bool:
        """True if every slot is taken."""
        return self._size == len(self._slots)

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[T]:
        """Front to back."""
        capacity = len(self._slots)
        for offset in range(self._size):
            yield self._slots[(self._front + offset) % capacity]  # type: ignore[misc]

    def __contains__(self, item: object) -> bool:
        return any(x is item or x == item for x in self)

    def __eq__(self, other: object) -> bool:
        """Same items in the same order; the capacity does not matter
        (as with ``deque`` and its ``maxlen``)."""
        if not isinstance(other, ArrayQueue):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ArrayQueue({self.capacity}, {list(self)!r})"


class _Node(Generic[T]):
    __slots__ = ("value", "next")

    def __init__(self, value: T) -> None:
        self.value = value
        self.next: _Node[T] | None = None


class LinkedQueue(Generic[T]):
    """An unbounded FIFO queue: a linked list with front and rear pointers.

    Args:
        items: Optional initial items, enqueued in order.
    """

    __slots__ = ("_front", "_rear", "_size")

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._front: _Node[T] | None = None
        self._rear: _Node[T] | None = None
        self._size = 0
        for item in items:
            self.enqueue(item)

    def enqueue(self, item: T) -> None:
        """Add ``item`` after the rear node. O(1)."""
        node = _Node(item)
        if self._rear is None:
            self._front = node
        else:
            self._rear.next = node
        self._rear = node
        self._size += 1

    def dequeue(self) -> T:
        """Remove and return the front item: unlink the front node. O(1).

        Raises:
            IndexError: If the queue is empty.
        """
        if self._front is None:
            raise IndexError("dequeue from an empty queue")
        node = self._front
        self._front = node.next
        if self._front is None:
            self._rear = None
        self._size -= 1
        return node.value

    def peek(self) -> T:
        """Return the front item without removing it. O(1).

        Raises:
            IndexError: If the queue is empty.
        """
        if self._front is None:
            raise IndexError("peek at an empty queue")
        return self._front.value

    def is_empty(self) -> bool:
        """True if the queue holds no item."""
        return self._front is None

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[T]:
        """Front to back, following the links."""
        node = self._front
        while node is not None:
            yield node.value
            node = node.next

    def __contains__(self, item: object) -> bool:
        return any(x is item or x == item for x in self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LinkedQueue):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LinkedQueue({list(self)!r})"
