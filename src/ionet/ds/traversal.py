"""The four traversals of a linked binary tree, iterative and recursive.

* pre-order: root, then the left subtree, then the right subtree;
* in-order: left subtree, root, right subtree;
* post-order: left subtree, right subtree, root;
* level-order: level by level from the root, left to right.

The recursive versions are the definitions above written as code, and are
the clearest. But each recursive call uses a Python stack frame, and Python
stops at about 1,000 nested frames (``sys.getrecursionlimit()``), so on a
*degenerate* tree (every node has a single child: a linked list in
disguise) of a few thousand nodes they raise ``RecursionError``.

The iterative versions replace the call stack with an explicit stack (a
Python ``list``, which is an array stack: ``append`` pushes, ``pop`` pops),
whose only limit is memory. Level-order uses a queue (``collections.deque``)
instead: the nodes come out in the order they were discovered. The
iterative versions are also lazy generators, so ``next(preorder(root))``
does O(1) work.

The recursive versions build and return a ``list``. They are kept to show
the definitions and to be checked against; ``BinaryTree`` uses the
iterative ones.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from ionet.ds.tree import TreeNode

T = TypeVar("T")

__all__ = [
    "preorder",
    "inorder",
    "postorder",
    "level_order",
    "preorder_recursive",
    "inorder_recursive",
    "postorder_recursive",
]


def preorder(root: TreeNode[T] | None) -> Iterator[T]:
    """Yield the values in pre-order (root, left, right), iteratively.

    Args:
        root: The root node, or ``None`` for an empty tree.
    """
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        yield node.value
        # Push right first so that left is popped, and visited, first.
        if node.right is not None:
            stack.append(node.right)
        if node.left is not None:
            stack.append(node.left)


def inorder(root: TreeNode[T] | None) -> Iterator[T]:
    """Yield the values in in-order (left, root, right), iteratively.

    Go as far left as possible, stacking the nodes passed on the way; the
    top of the stack is then the next node to visit, after which its right
    subtree is walked the same way.

    Args:
        root: The root node, or ``None`` for an empty tree.
    """
    stack: list[TreeNode[T]] = []
    node = root
    while stack or node is not None:
        while node is not None:
            stack.append(node)
            node = node.left
        node = stack.pop()
        yield node.value
        node = node.right


def postorder(root: TreeNode[T] | None) -> Iterator[T]:
    """Yield the values in post-order (left, right, root), iteratively.

    Like in-order, but a node on top of the stack may be visited only once
    its right subtree is done, which is the case when it has no right child
    or when that child was the last node visited.

    Args:
        root: The root node, or ``None`` for an empty tree.
    """
    stack: list[TreeNode[T]] = []
    node = root
    last_visited: TreeNode[T] | None = None
    while stack or node is not None:
        if node is not None:
            stack.append(node)
            node = node.left
            continue
        top = stack[-1]
        if top.right is not None and top.right is not last_visited:
            node = top.right
        else:
            yield top.value
            last_visited = stack.pop()


def level_order(root: TreeNode[T] | None) -> Iterator[T]:
    """Yield the values level by level, left to right (breadth first).

    Args:
        root: The root node, or ``None`` for an empty tree.
    """
    queue = deque([root]) if root is not None else deque()
    while queue:
        node = queue.popleft()
        yield node.value
        if node.left is not None:
            queue.append(node.left)
        if node.right is not None:
            queue.append(node.right)


def preorder_recursive(root: TreeNode[T] | None) -> list[T]:
    """Return the values in pre-order, by recursion.

    Raises:
        RecursionError: If the tree is deeper than about
            ``sys.getrecursionlimit()`` levels.
    """
    out: list[T] = []

    def visit(node: TreeNode[T] | None) -> None:
        if node is not None:
            out.append(node.value)
            visit(node.left)
            visit(node.right)

    visit(root)
    return out


def inorder_recursive(root: TreeNode[T] | None) -> list[T]:
    """Return the values in in-order, by recursion.

    Raises:
        RecursionError: If the tree is too deep (see ``preorder_recursive``).
    """
    out: list[T] = []

    def visit(node: TreeNode[T] | None) -> None:
        if node is not None:
            visit(node.left)
            out.append(node.value)
            visit(node.right)

    visit(root)
    return out


def postorder_recursive(root: TreeNode[T] | None) -> list[T]:
    """Return the values in post-order, by recursion.

    Raises:
        RecursionError: If the tree is too deep (see ``preorder_recursive``).
    """
    out: list[T] = []

    def visit(node: TreeNode[T] | None) -> None:
        if node is not None:
            visit(node.left)
            visit(node.right)
            out.append(node.value)

    visit(root)
    return out
