"""LinkedList against Python's list, operation by operation."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ionet.ds import LinkedList

values = st.integers(0, 5)  # few distinct values, so duplicates are common
indexes = st.integers(-8, 8)


class LinkedListVsList(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ll: LinkedList[int] = LinkedList()
        self.model: list[int] = []

    @rule(x=values)
    def append(self, x: int) -> None:
        self.ll.append(x)
        self.model.append(x)

    @rule(x=values)
    def prepend(self, x: int) -> None:
        self.ll.prepend(x)
        self.model.insert(0, x)

    @rule(i=indexes, x=values)
    def insert(self, i: int, x: int) -> None:
        if -len(self.model) <= i <= len(self.model):
            self.ll.insert(i, x)
            self.model.insert(i, x)
        else:  # list.insert would clamp; LinkedList refuses
            with pytest.raises(IndexError, match="out of range"):
                self.ll.insert(i, x)

    @rule(i=indexes)
    def pop(self, i: int) -> None:
        try:
            expected = self.model.pop(i)
        except IndexError:
            with pytest.raises(IndexError):
                self.ll.pop(i)
        else:
            assert self.ll.pop(i) == expected

    @precondition(lambda self: self.model)
    @rule()
    def pop_default(self) -> None:
        assert self.ll.pop() == self.model.pop()

    @rule(i=indexes)
    def delitem(self, i: int) -> None:
        try:
            del self.model[i]
        except IndexError:
            with pytest.raises(IndexError):
                del self.ll[i]
        else:
            del self.ll[i]

    @rule(x=values)
    def remove(self, x: int) -> None:
        if x in self.model:
            self.model.remove(x)
            self.ll.remove(x)
        else:
            with pytest.raises(ValueError, match="not in list"):
                self.ll.remove(x)

    @rule(i=indexes)
    def getitem(self, i: int) -> None:
        try:
            expected = self.model[i]
        except IndexError:
            with pytest.raises(IndexError):
                self.ll[i]
        else:
            assert self.ll[i] == expected

    @rule(i=indexes, x=values)
    def setitem(self, i: int, x: int) -> None:
        try:
            self.model[i] = x
        except IndexError:
            with pytest.raises(IndexError):
                self.ll[i] = x
        else:
            self.ll[i] = x

    @rule(x=values)
    def search(self, x: int) -> None:
        assert (x in self.ll) == (x in self.model)
        expected = self.model.index(x) if x in self.model else -1
        assert self.ll.find(x) == expected
        if expected >= 0:
            assert self.ll.index(x) == expected
        else:
            with pytest.raises(ValueError):
                self.ll.index(x)

    @rule(items=st.lists(values, max_size=5))
    def join(self, items: list[int]) -> None:
        other = LinkedList(items)
        self.ll.join(other)
        self.model.extend(items)
        assert len(other) == 0 and list(other) == []

    @rule(items=st.lists(values, max_size=5))
    def extend(self, items: list[int]) -> None:
        self.ll.extend(items)
        self.model.extend(items)

    @rule()
    def reverse(self) -> None:
        self.ll.reverse()
        self.model.reverse()

    @rule()
    def copy_is_independent(self) -> None:
        clone = self.ll.copy()
        clone.append(99)
        assert list(self.ll) == self.model

    @rule()
    def clear(self) -> None:
        self.ll.clear()
        self.model.clear()

    @invariant()
    def same_items(self) -> None:
        assert list(self.ll) == self.model
        assert len(self.ll) == len(self.model)
        assert list(reversed(self.ll)) == self.model[::-1]
        assert self.ll == LinkedList(self.model)
        assert repr(self.ll) == f"LinkedList({self.model!r})"


LinkedListVsList.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_linked_list_matches_list = LinkedListVsList.TestCase


def test_tail_is_maintained_after_removing_the_last_node() -> None:
    ll = LinkedList([1, 2, 3])
    ll.remove(3)
    ll.append(4)
    assert list(ll) == [1, 2, 4]
    ll.pop()
    ll.append(5)
    assert list(ll) == [1, 2, 5]
    ll.reverse()
    ll.append(6)
    assert list(ll) == [5, 2, 1, 6]
    assert ll[-1] == 6


def test_join_is_constant_time_relinking_and_empties_the_other() -> None:
    a, b = LinkedList([1, 2]), LinkedList([3, 4])
    a.join(b)
    assert list(a) == [1, 2, 3, 4] and len(a) == 4
    assert list(b) == [] and len(b) == 0
    b.append(9)  # b is usable again and does not touch a
    assert list(a) == [1, 2, 3, 4]
    a.append(5)
    assert list(a) == [1, 2, 3, 4, 5]
    empty: LinkedList[int] = LinkedList()
    empty.join(LinkedList([7]))
    empty.append(8)
    assert list(empty) == [7, 8]


def test_join_refuses_itself_and_other_types() -> None:
    ll = LinkedList([1])
    with pytest.raises(ValueError, match="itself"):
        ll.join(ll)
    with pytest.raises(TypeError, match="list"):
        ll.join([2])  # type: ignore[arg-type]


def test_add_copies_and_iadd_extends() -> None:
    a, b = LinkedList([1]), LinkedList([2])
    c = a + b
    assert list(c) == [1, 2] and list(a) == [1] and list(b) == [2]
    a += [3, 4]
    assert list(a) == [1, 3, 4]
    a.extend(a)
    assert list(a) == [1, 3, 4, 1, 3, 4]


def test_protocols_and_messages() -> None:
    ll: LinkedList[int] = LinkedList()
    assert len(ll) == 0 and list(ll) == [] and not ll
    with pytest.raises(IndexError, match="pop from an empty LinkedList"):
        ll.pop()
    with pytest.raises(IndexError, match=r"index 0 out of range \(length 0\)"):
        ll[0]
    with pytest.raises(TypeError, match="integers"):
        LinkedList([1])["0"]  # type: ignore[index]
    assert LinkedList([1, 2]) != LinkedList([2, 1])
    assert LinkedList([1, 2]) != [1, 2]
    assert eval(repr(LinkedList(["a", 1])), {"LinkedList": LinkedList}) == LinkedList(["a", 1])
    with pytest.raises(TypeError):
        hash(ll)


def test_one_hundred_thousand_items() -> None:
    n = 100_000
    ll = LinkedList(range(n))
    for i in range(n):
        ll.prepend(-i)
    assert len(ll) == 2 * n
    assert ll[0] == -(n - 1) and ll[-1] == n - 1 and ll[n] == 0
    assert (n - 1) in ll and n not in ll
    assert ll.find(n - 1) == 2 * n - 1
    ll.reverse()
    assert list(ll) == list(range(n - 1, -1, -1)) + [-i for i in range(n)]
    other = LinkedList(range(n))
    ll.join(other)
    assert len(ll) == 3 * n and ll[-1] == n - 1
    for _ in range(n):
        ll.pop(0)
    assert len(ll) == 2 * n
    del ll  # a chain of 200,000 nodes must be freed without a stack overflow
