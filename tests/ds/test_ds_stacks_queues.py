"""Stacks against list, queues against deque, operation by operation."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ionet.ds import (
    ArrayQueue,
    ArrayStack,
    FullError,
    LinkedQueue,
    LinkedStack,
    TwoStackQueue,
    reverse_queue,
)

values = st.integers(-3, 3)


def _ops(add: str, remove: str) -> st.SearchStrategy[list[tuple[str, int]]]:
    return st.lists(
        st.one_of(
            st.tuples(st.just(add), values),
            st.tuples(st.sampled_from([remove, "peek", "contains"]), values),
        ),
        max_size=80,
    )


def _outcome(action: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", action())
    except IndexError as exc:
        return (type(exc).__name__, None)


STACKS: dict[str, Callable[[], Any]] = {
    "ArrayStack": ArrayStack,
    "LinkedStack": LinkedStack,
    "ArrayStack(capacity=4)": lambda: ArrayStack(capacity=4),
}


@pytest.mark.parametrize("make", STACKS.values(), ids=STACKS.keys())
@settings(max_examples=150, deadline=None)
@given(ops=_ops("push", "pop"))
def test_stack_matches_list(make: Callable[[], Any], ops: list[tuple[str, int]]) -> None:
    stack = make()
    capacity = getattr(stack, "capacity", None)
    model: list[int] = []
    for op, x in ops:
        if op == "push":
            if capacity is not None and len(model) == capacity:
                with pytest.raises(FullError, match=f"full ArrayStack \\(capacity {capacity}\\)"):
                    stack.push(x)
                assert stack.is_full()
            else:
                stack.push(x)
                model.append(x)
        elif op == "pop":
            assert _outcome(stack.pop) == _outcome(model.pop)
        elif op == "peek":
            assert _outcome(stack.peek) == _outcome(lambda: model[-1])
        else:
            assert (x in stack) == (x in model)
        assert list(stack) == model[::-1]  # top first
        assert list(reversed(stack)) == model
        assert len(stack) == len(model)
        assert stack.is_empty() == (not model)
    assert stack == type(stack)(model)


QUEUES: dict[str, Callable[[], Any]] = {
    "ArrayQueue(1)": lambda: ArrayQueue(1),
    "ArrayQueue(5)": lambda: ArrayQueue(5),
    "LinkedQueue": LinkedQueue,
    "TwoStackQueue": TwoStackQueue,
}


@pytest.mark.parametrize("make", QUEUES.values(), ids=QUEUES.keys())
@settings(max_examples=150, deadline=None)
@given(ops=_ops("enqueue", "dequeue"))
def test_queue_matches_deque(make: Callable[[], Any], ops: list[tuple[str, int]]) -> None:
    queue = make()
    capacity = getattr(queue, "capacity", None)
    model: deque[int] = deque()
    for op, x in ops:
        if op == "enqueue":
            if capacity is not None and len(model) == capacity:
                with pytest.raises(FullError, match=f"ArrayQueue is full \\(capacity {capacity}\\)"):
                    queue.enqueue(x)
                assert queue.is_full()
            else:
                queue.enqueue(x)
                model.append(x)
        elif op == "dequeue":
            assert _outcome(queue.dequeue) == _outcome(model.popleft)
        elif op == "peek":
            assert _outcome(queue.peek) == _outcome(lambda: model[0])
        else:
            assert (x in queue) == (x in model)
        assert list(queue) == list(model)
        assert len(queue) == len(model)
        assert queue.is_empty() == (not model)


@pytest.mark.parametrize(
    "make",
    [lambda xs: ArrayQueue(max(1, len(xs)), xs), LinkedQueue, TwoStackQueue],
    ids=["ArrayQueue (full)", "LinkedQueue", "TwoStackQueue"],
)
@settings(max_examples=100, deadline=None)
@given(items=st.lists(values, max_size=30), dequeued=st.integers(0, 5))
def test_reverse_queue(make: Callable[[list[int]], Any], items: list[int], dequeued: int) -> None:
    queue = make(items)
    for _ in range(min(dequeued, len(items))):  # move the front away from slot 0
        queue.enqueue(queue.dequeue())
    model = deque(items)
    model.rotate(-min(dequeued, len(items)))
    reverse_queue(queue)
    assert list(queue) == list(reversed(model))


def test_two_stack_queue_equality_ignores_how_items_are_split() -> None:
    a = TwoStackQueue([0, 1, 2, 3])
    b = TwoStackQueue([9, 0, 1])
    assert b.dequeue() == 9  # moves everything into b's outbox
    b.enqueue(2)
    b.enqueue(3)
    assert a == b and list(a) == list(b) == [0, 1, 2, 3]
    assert a != TwoStackQueue([0, 1, 2])


def test_array_queue_wraps_round_and_reuses_every_slot() -> None:
    queue: ArrayQueue[int] = ArrayQueue(3)
    for i in range(10):
        queue.enqueue(i)
        assert queue.dequeue() == i
    for i in range(3):
        queue.enqueue(i)
    assert queue.is_full() and list(queue) == [0, 1, 2]
    with pytest.raises(FullError):
        queue.enqueue(3)
    with pytest.raises(IndexError):  # FullError is an IndexError
        queue.enqueue(3)


@pytest.mark.parametrize(
    ("build", "empty_call", "message"),
    [
        (ArrayStack, "pop", "pop from an empty stack"),
        (LinkedStack, "pop", "pop from an empty stack"),
        (ArrayStack, "peek", "peek at an empty stack"),
        (LinkedStack, "peek", "peek at an empty stack"),
        (lambda: ArrayQueue(2), "dequeue", "dequeue from an empty queue"),
        (LinkedQueue, "dequeue", "dequeue from an empty queue"),
        (TwoStackQueue, "dequeue", "dequeue from an empty queue"),
        (TwoStackQueue, "peek", "peek at an empty queue"),
    ],
)
def test_empty_errors_say_what_happened(build: Callable[[], Any], empty_call: str, message: str) -> None:
    with pytest.raises(IndexError, match=message):
        getattr(build(), empty_call)()


def test_bad_capacities() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ArrayQueue(0)
    with pytest.raises(ValueError, match="at least 1"):
        ArrayStack(capacity=0)
    with pytest.raises(FullError, match="capacity 2"):
        ArrayQueue(2, [1, 2, 3])


@pytest.mark.parametrize(
    "value",
    [
        ArrayStack([1, 2, 3]),
        ArrayStack([1, 2], capacity=5),
        LinkedStack(["a", "b"]),
        ArrayQueue(4, [1, 2]),
        LinkedQueue([1, 2]),
        TwoStackQueue([3, 4]),
    ],
    ids=repr,
)
def test_repr_round_trips(value: Any) -> None:
    namespace = {cls.__name__: cls for cls in (ArrayStack, LinkedStack, ArrayQueue, LinkedQueue, TwoStackQueue)}
    assert eval(repr(value), namespace) == value


def test_equality_is_per_type_and_ignores_capacity() -> None:
    assert ArrayStack([1, 2]) == ArrayStack([1, 2], capacity=2)
    assert ArrayStack([1, 2]) != LinkedStack([1, 2])
    assert ArrayQueue(2, [1]) == ArrayQueue(9, [1])
    assert LinkedQueue([1]) != [1]


def test_one_hundred_thousand_items() -> None:
    n = 100_000
    for stack in (ArrayStack(range(n)), LinkedStack(range(n))):
        assert len(stack) == n and stack.peek() == n - 1
        assert [stack.pop() for _ in range(n)] == list(range(n - 1, -1, -1))
    for queue in (ArrayQueue(n, range(n)), LinkedQueue(range(n)), TwoStackQueue(range(n))):
        reverse_queue(queue)
        assert [queue.dequeue() for _ in range(n)] == list(range(n - 1, -1, -1))
        assert queue.is_empty()
