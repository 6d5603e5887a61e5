"""A singly linked list: the *linked storage* of a linear list.

A Python ``list`` is the *sequential storage* of a linear list: one block of
memory holding the items side by side. Reading item ``i`` is one address
computation, O(1), but inserting at the front has to shift every item one
place to the right, O(n).

A linked list stores each item in its own node, and each node points to the
next one. The costs swap round:

=========================  ===========  =============
operation                  ``list``     ``LinkedList``
=========================  ===========  =============
insert at the head         O(n)         O(1)
append at the tail         O(1)*        O(1) (we keep a ``tail`` pointer)
read / write item ``i``    O(1)         O(i)
search for a value         O(n)         O(n)
join two lists             O(m)         O(1) (``join`` relinks, no copying)
=========================  ===========  =============

(* amortized). ``python -m ionet bench ds`` measures this table.

Deviation from ``list`` on purpose: ``insert(i, x)`` raises ``IndexError``
when ``i`` is out of range instead of silently clamping it, because in a
course exercise an out-of-range position is almost always a bug.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["LinkedList"]


class _Node(Generic[T]):
    """One cell of the list: a value and the link to the next cell."""

    __slots__ = ("value", "next")

    def __init__(self, value: T, next: _Node[T] | None = None) -> None:
        self.value = value
        self.next = next


class LinkedList(Generic[T]):
    """A singly linked list with ``head`` and ``tail`` pointers and a length.

    It supports ``len``, iteration (the traversal), ``in``, indexing with
    ``[i]`` (negative indexes too), ``==`` with another ``LinkedList`` and a
    ``repr`` that can be pasted back into Python.

    Args:
        items: Optional initial items, in order.
    """

    __slots__ = ("_head", "_tail", "_size")

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._head: _Node[T] | None = None
        self._tail: _Node[T] | None = None
        self._size = 0
        self.extend(items)

    # -- adding ---------------------------------------------------------

    def prepend(self, value: T) -> None:
        """Insert ``value`` at the head. O(1): only the head pointer moves."""
        self._head = _Node(value, self._head)
        if self._tail is None:
            self._tail = self._head
        self._size += 1

    def append(self, value: T) -> None:
        """Insert ``value`` at the tail. O(1) thanks to the tail pointer."""
        node = _Node(value)
        if self._tail is None:
            self._head = node
        else:
            self._tail.next = node
        self._tail = node
        self._size += 1

    def insert(self, index: int, value: T) -> None:
        """Insert ``value`` so that it ends up at position ``index``. O(index).

        Args:
            index: A position from ``-len(self)`` to ``len(self)`` inclusive;
                ``0`` is the head, ``len(self)`` appends.
            value: The item to insert.

        Raises:
            IndexError: If ``index`` is outside that range (``list.insert``
                would clamp it instead).
        """
        size = self._size
        position = index + size if index < 0 else index
        if not 0 <= position <= size:
            raise IndexError(
                f"LinkedList insert index {index} out of range (length {size})"
            )
        if position == 0:
            self.prepend(value)
        elif position == size:
            self.append(value)
        else:
            before = self._node_at(position - 1)
            before.next = _Node(value, before.next)
            self._size += 1

    def extend(self, items: Iterable[T]) -> None:
        """Append every item of ``items`` in order. O(len(items))."""
        if items is self:
            items = list(items)  # do not chase our own tail forever
        for item in items:
            self.append(item)

    def join(self, other: LinkedList[T]) -> None:
        """Move all the nodes of ``other`` to the end of this list, in O(1).

        This is the linked-storage way of joining two lists: one pointer
        changes and nothing is copied. The price is that the nodes now belong
        to this list, so ``other`` is left empty.

        Args:
            other: Another ``LinkedList``; it is emptied.

        Raises:
            TypeError: If ``other`` is not a ``LinkedList``.
            ValueError: If ``other`` is this very list (that would make a
                cycle).
        """
        if not isinstance(other, LinkedList):
            raise TypeError(
                f"can only join another LinkedList, not {type(other).__name__}"
            )
        if other is self:
            raise ValueError("cannot join a LinkedList to itself (it would make a cycle)")
        if other._head is None:
            return
        if self._tail is None:
            self._head = other._head
        else:
            self._tail.next = other._head
        self._tail = other._tail
        self._size += other._size
        other.clear()

    # -- removing -------------------------------------------------------

    def pop(self, index: int = -1) -> T:
        """Remove and return the item at ``index`` (default: the last one).

        ``pop(0)`` is O(1); any other position is O(index), including the
        default ``-1``, because a singly linked list has to walk to the node
        *before* the tail to unlink it.

        Raises:
            IndexError: If the list is empty or ``index`` is out of range.
        """
        if self._head is None:
            raise IndexError("pop from an empty LinkedList")
        position = self._position(index, "pop")
        if position == 0:
            node = self._head
            self._head = node.next
            if self._head is None:
                self._tail = None
        else:
            before = self._node_at(position - 1)
            assert before.next is not None
            node = before.next
            before.next = node.next
            if node is self._tail:
                self._tail = before
        self._size -= 1
        return node.value

    def remove(self, value: T) -> None:
        """Delete the first item equal to ``value``. O(n).

        Raises:
            ValueError: If no item equals ``value``.
        """
        before: _Node[T] | None = None
        node = self._head
        while node is not None:
            if node.value == value:
                if before is None:
                    self._head = node.next
                else:
                    before.next = node.next
                if node is self._tail:
                    self._tail = before
                self._size -= 1
                return
            before, node = node, node.next
        raise ValueError(f"LinkedList.remove(x): {value!r} not in list")

    def clear(self) -> None:
        """Remove every item. O(1): the nodes become garbage together."""
        self._head = self._tail = None
        self._size = 0

    def __delitem__(self, index: int) -> None:
        """``del lst[i]``: remove the item at ``index``. O(index)."""
        self.pop(self._position(index, "assignment"))

    # -- searching and reading ----------------------------------------

    def find(self, value: T) -> int:
        """Return the position of the first item equal to ``value``, or -1. O(n)."""
        for position, item in enumerate(self):
            if item == value:
                return position
        return -1

    def index(self, value: T) -> int:
        """Like ``find`` but raise ``ValueError`` when ``value`` is absent (as ``list.index``)."""
        position = self.find(value)
        if position < 0:
            raise ValueError(f"{value!r} is not in LinkedList")
        return position

    def __getitem__(self, index: int) -> T:
        """``lst[i]``: walk ``i`` links from the head. O(i)."""
        return self._node_at(self._position(index, "index")).value

    def __setitem__(self, index: int, value: T) -> None:
        """``lst[i] = x``: walk to the node and replace its value. O(i)."""
        self._node_at(self._position(index, "assignment")).value = value

    # -- whole-list operations -----------------------------------------

    def reverse(self) -> None:
        """Reverse the list in place by turning every link around. O(n)."""
        previous: _Node[T] | None = None
        node = self._head
        self._tail = node
        while node is not None:
            node.next, previous, node = previous, node, node.next
        self._head = previous

    def copy(self) -> LinkedList[T]:
        """Return a new list with the same items (a shallow copy). O(n)."""
        return LinkedList(self)

    def __add__(self, other: LinkedList[T]) -> LinkedList[T]:
        """``a + b``: a new list holding copies of both; ``a`` and ``b`` are unchanged."""
        if not isinstance(other, LinkedList):
            return NotImplemented
        result = self.copy()
        result.extend(other)
        return result

    def __iadd__(self, other: Iterable[T]) -> LinkedList[T]:
        """``a += items``: extend in place, like ``list``."""
        self.extend(other)
        return self

    # -- Python protocols ----------------------------------------------

    def __len__(self) -> int:
        """O(1): the list keeps count instead of walking the nodes."""
        return self._size

    def __iter__(self) -> Iterator[T]:
        """The traversal: follow the links from head to tail."""
        node = self._head
        while node is not None:
            yield node.value
            node = node.next

    def __reversed__(self) -> Iterator[T]:
        """Tail to head. A singly linked list cannot walk backwards, so this
        collects the items first: O(n) time and memory."""
        return reversed(list(self))

    def __contains__(self, value: object) -> bool:
        """``x in lst``: linear search, O(n)."""
        return any(item is value or item == value for item in self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LinkedList):
            return NotImplemented
        if len(self) != len(other):
            return False
        return all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # mutable, like list

    def __repr__(self) -> str:
        return f"LinkedList({list(self)!r})"

    # -- helpers -------------------------------------------------------

    def _position(self, index: int, what: str) -> int:
        """Turn a possibly negative ``index`` into a position, or raise."""
        if not isinstance(index, int):
            raise TypeError(
                f"LinkedList indices must be integers, not {type(index).__name__}"
            )
        position = index + self._size if index < 0 else index
        if not 0 <= position < self._size:
            raise IndexError(
                f"LinkedList {what} index {index} out of range (length {self._size})"
            )
        return position

    def _node_at(self, position: int) -> _Node[T]:
        """The node at a valid, non-negative ``position``. O(position)."""
        if position == self._size - 1:
            assert self._tail is not None
            return self._tail
        node = self._head
        for _ in range(position):
            assert node is not None
            node = node.next
        assert node is not None
        return node
