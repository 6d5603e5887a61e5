"""Binary trees: traversals against a reference written on nested tuples,
list-form round trips, and deep degenerate trees."""

from __future__ import annotations

from collections import deque
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ionet.ds import (
    ArrayBinaryTree,
    BinaryTree,
    TreeNode,
    inorder,
    inorder_recursive,
    level_order,
    postorder,
    postorder_recursive,
    preorder,
    preorder_recursive,
)

# A reference tree is None or (value, left, right): independent of ionet.ds.
Ref = Optional[tuple[int, Any, Any]]

ref_trees: st.SearchStrategy[Ref] = st.recursive(
    st.none(),
    lambda children: st.tuples(st.integers(0, 9), children, children),
    max_leaves=40,
)


def build(ref: Ref) -> TreeNode[int] | None:
    if ref is None:
        return None
    value, left, right = ref
    return TreeNode(value, build(left), build(right))


def ref_pre(ref: Ref) -> list[int]:
    return [] if ref is None else [ref[0], *ref_pre(ref[1]), *ref_pre(ref[2])]


def ref_in(ref: Ref) -> list[int]:
    return [] if ref is None else [*ref_in(ref[1]), ref[0], *ref_in(ref[2])]


def ref_post(ref: Ref) -> list[int]:
    return [] if ref is None else [*ref_post(ref[1]), *ref_post(ref[2]), ref[0]]


def ref_levels(ref: Ref) -> list[int]:
    out, queue = [], deque([ref])
    while queue:
        node = queue.popleft()
        if node is not None:
            out.append(node[0])
            queue.extend((node[1], node[2]))
    return out


def ref_height(ref: Ref) -> int:
    return 0 if ref is None else 1 + max(ref_height(ref[1]), ref_height(ref[2]))


@settings(max_examples=200, deadline=None)
@given(ref=ref_trees)
def test_traversals_match_the_definitions(ref: Ref) -> None:
    root = build(ref)
    tree = BinaryTree(root)
    assert list(preorder(root)) == preorder_recursive(root) == ref_pre(ref)
    assert list(inorder(root)) == inorder_recursive(root) == ref_in(ref)
    assert list(postorder(root)) == postorder_recursive(root) == ref_post(ref)
    assert list(level_order(root)) == list(tree) == ref_levels(ref)
    assert list(tree.preorder()) == list(tree.preorder(recursive=True)) == ref_pre(ref)
    assert list(tree.inorder()) == list(tree.inorder(recursive=True)) == ref_in(ref)
    assert list(tree.postorder()) == list(tree.postorder(recursive=True)) == ref_post(ref)
    assert len(tree) == len(ref_pre(ref))
    assert tree.height() == ref_height(ref)


@settings(max_examples=200, deadline=None)
@given(ref=ref_trees)
def test_level_order_list_round_trip(ref: Ref) -> None:
    tree = BinaryTree(build(ref))
    form = tree.to_level_order()
    assert form == [] or form[-1] is not None
    assert BinaryTree.from_level_order(form) == tree
    assert BinaryTree.from_level_order(form + [None, None]) == tree
    assert eval(repr(tree), {"BinaryTree": BinaryTree}) == tree


@settings(max_examples=200, deadline=None)
@given(a=ref_trees, b=ref_trees)
def test_equality_is_structural(a: Ref, b: Ref) -> None:
    assert (BinaryTree(build(a)) == BinaryTree(build(b))) == (a == b)


@settings(max_examples=150, deadline=None)
@given(ref=ref_trees.filter(lambda r: ref_height(r) <= 12))
def test_array_form_matches_linked_form(ref: Ref) -> None:
    tree = BinaryTree(build(ref))
    array = tree.to_array()
    assert BinaryTree.from_array(array) == tree
    stored = ArrayBinaryTree(array)
    assert stored == ArrayBinaryTree.from_linked(tree)
    assert stored.to_linked() == tree
    assert list(stored.preorder()) == ref_pre(ref)
    assert list(stored.inorder()) == ref_in(ref)
    assert list(stored.postorder()) == ref_post(ref)
    assert list(stored.level_order()) == list(stored) == ref_levels(ref)
    assert len(stored) == len(tree)
    assert stored.height() == ref_height(ref)
    for index, value in enumerate(array):
        if value is not None and index > 0:
            assert array[ArrayBinaryTree.parent(index)] is not None


def test_level_order_list_example() -> None:
    tree = BinaryTree.from_level_order([1, None, 2, 3])
    assert tree.root is not None and tree.root.left is None
    assert tree.root.right is not None and tree.root.right.value == 2
    assert tree.root.right.left is not None and tree.root.right.left.value == 3
    assert list(tree.inorder()) == [1, 3, 2]
    assert tree.to_array() == [1, None, 2, None, None, 3]
    assert 3 in tree and 4 not in tree


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([None, 1], "position 1 has no parent"),
        ([1, None, None, 2], "position 3 has no parent"),
    ],
)
def test_level_order_list_errors(values: list[Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BinaryTree.from_level_order(values)


def test_array_form_errors() -> None:
    with pytest.raises(ValueError, match=r"index 3 has no parent \(index 1 is None\)"):
        BinaryTree.from_array([1, None, 2, 4])
    with pytest.raises(ValueError, match="index 3 has no parent"):
        ArrayBinaryTree([1, None, 2, 4])
    with pytest.raises(ValueError, match="no parent"):
        ArrayBinaryTree.parent(0)
    assert BinaryTree.from_array([]) == BinaryTree() == BinaryTree.from_level_order([None])
    assert ArrayBinaryTree([1, None, None]) == ArrayBinaryTree([1])
    assert repr(ArrayBinaryTree([1, None, 2])) == "ArrayBinaryTree([1, None, 2])"


def _path(n: int, side: str) -> BinaryTree[int]:
    """A degenerate tree: n nodes, each the `side` child of the previous
    ("zigzag" alternates)."""
    root = node = TreeNode(0)
    for i in range(1, n):
        child = TreeNode(i)
        go_left = side == "left" or (side == "zigzag" and i % 2 == 0)
        if go_left:
            node.left = child
        else:
            node.right = child
        node = child
    return BinaryTree(root)


@pytest.mark.parametrize("side", ["left", "right", "zigzag"])
def test_deep_degenerate_tree_of_100_000_nodes(side: str) -> None:
    n = 100_000
    tree = _path(n, side)
    top_down = list(range(n))
    assert list(tree.preorder()) == top_down  # iterative by default
    assert list(tree.level_order()) == top_down
    assert list(tree.postorder()) == top_down[::-1]
    expected_inorder = {
        "left": top_down[::-1],
        "right": top_down,
        # zigzag: even nodes have a right child, odd ones a left child, so
        # each even node comes before its subtree and each odd one after it
        "zigzag": top_down[0::2] + top_down[1::2][::-1],
    }[side]
    assert list(tree.inorder()) == expected_inorder
    assert len(tree) == n and tree.height() == n
    assert (n - 1) in tree
    assert tree == _path(n, side) and tree != _path(n - 1, side)
    assert BinaryTree.from_level_order(tree.to_level_order()) == tree
    assert repr(tree).startswith("BinaryTree.from_level_order([0, ")
    for recursive in (preorder_recursive, inorder_recursive, postorder_recursive):
        with pytest.raises(RecursionError):
            recursive(tree.root)
    with pytest.raises(RecursionError):
        tree.preorder(recursive=True)
    with pytest.raises(ValueError, match="more than 1000 slots"):
        tree.to_array(max_slots=1000)
    with pytest.raises(ValueError, match="slots"):
        ArrayBinaryTree.from_linked(tree)
