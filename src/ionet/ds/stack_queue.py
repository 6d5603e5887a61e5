"""Queues and stacks working together: a queue made of two stacks, and
reversing a queue with a stack.

Both rest on one fact: pushing items onto a stack and popping them off again
reverses their order.

``TwoStackQueue`` keeps an *inbox* stack, where ``enqueue`` pushes, and an
*outbox* stack, where ``dequeue`` pops. When the outbox is empty, the whole
inbox is poured into it, which reverses it, so the oldest item lands on top
of the outbox. One ``dequeue`` can then cost O(n), but every item is moved
from inbox to outbox at most once in its life, so n operations cost O(n) in
total: O(1) *amortized* per operation.

``reverse_queue`` empties a queue into a stack and then the stack back into
the queue: the item dequeued first is popped last.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, Protocol, TypeVar

from ionet.ds.stack import ArrayStack, LinkedStack

T = TypeVar("T")

__all__ = ["TwoStackQueue", "reverse_queue", "SupportsQueue"]


class TwoStackQueue(Generic[T]):
    """A FIFO queue built from two ``ArrayStack``s.

    Args:
        items: Optional initial items, enqueued in order.
    """

    __slots__ = ("_inbox", "_outbox")

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._inbox: ArrayStack[T] = ArrayStack()
        self._outbox: ArrayStack[T] = ArrayStack()
        for item in items:
            self.enqueue(item)

    def enqueue(self, item: T) -> None:
        """Add ``item`` at the rear: push it on the inbox. O(1)."""
        self._inbox.push(item)

    def dequeue(self) -> T:
        """Remove and return the front item. O(1) amortized.

        Raises:
            IndexError: If the queue is empty.
        """
        self._refill()
        if self._outbox.is_empty():
            raise IndexError("dequeue from an empty queue")
        return self._outbox.pop()

    def peek(self) -> T:
        """Return the front item without removing it. O(1) amortized.

        Raises:
            IndexError: If the queue is empty.
        """
        self._refill()
        if self._outbox.is_empty():
            raise IndexError("peek at an empty queue")
        return self._outbox.peek()

    def _refill(self) -> None:
        """If the outbox is empty, pour the inbox into it (reversing it)."""
        if self._outbox.is_empty():
            while not self._inbox.is_empty():
                self._outbox.push(self._inbox.pop())

    def is_empty(self) -> bool:
        """True if the queue holds no item."""
        return self._inbox.is_empty() and self._outbox.is_empty()

    def __len__(self) -> int:
        return len(self._inbox) + len(self._outbox)

    def __iter__(self) -> Iterator[T]:
        """Front to back: the outbox top first, then the inbox bottom first."""
        yield from self._outbox
        yield from reversed(self._inbox)

    def __contains__(self, item: object) -> bool:
        return any(x is item or x == item for x in self)

    def __eq__(self, other: object) -> bool:
        """Same items in the same order, however they are split between the
        two stacks."""
        if not isinstance(other, TwoStackQueue):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TwoStackQueue({list(self)!r})"


class SupportsQueue(Protocol[T]):
    """What ``reverse_queue`` needs: any of this package's queues will do."""

    def enqueue(self, item: T, /) -> None: ...

    def dequeue(self) -> T: ...

    def is_empty(self) -> bool: ...


def reverse_queue(queue: SupportsQueue[T]) -> None:
    """Reverse ``queue`` in place with the help of a stack. O(n).

    Args:
        queue: Any object with ``enqueue``, ``dequeue`` and ``is_empty``
            (``ArrayQueue``, ``LinkedQueue``, ``TwoStackQueue``). An
            ``ArrayQueue`` never overflows here: it gets back exactly the
            items it gave.
    """
    stack: LinkedStack[T] = LinkedStack()
    while not queue.is_empty():
        stack.push(queue.dequeue())
    while not stack.is_empty():
        queue.enqueue(stack.pop())
