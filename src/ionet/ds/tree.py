"""A binary tree in linked storage, and its conversions to list forms.

Each ``TreeNode`` holds a value and links to a left and a right child.
``BinaryTree`` wraps the root and offers the traversals of
``ionet.ds.traversal``; its methods use the iterative versions by default,
so a degenerate tree 100,000 levels deep is as fine as a balanced one.
Everything else here (``len``, ``==``, ``repr``, ``height``, the
conversions) is iterative for the same reason.

Two list forms describe a tree, both in level order with ``None`` for "no
node here" (so ``None`` itself cannot be stored as a value):

* the **level-order list** (the form LeetCode uses): the children of every
  *existing* node, in turn. A gap has no children listed, so a degenerate
  tree of n nodes takes about 2n entries. ``[1, None, 2, 3]`` is 1 with
  right child 2, whose left child is 3.
* the **array form**: the sequential storage of a binary tree. The node at
  index ``i`` has its children at ``2*i + 1`` and ``2*i + 2`` and its parent
  at ``(i - 1) // 2``, so no links are stored at all. It is ideal for
  complete trees (heaps) and hopeless for degenerate ones: a path of n nodes
  needs up to ``2**n - 1`` slots. See ``ionet.ds.array_tree``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Generic, TypeVar

from ionet.ds import traversal

T = TypeVar("T")

__all__ = ["TreeNode", "BinaryTree", "DEFAULT_MAX_SLOTS"]

DEFAULT_MAX_SLOTS = 1 << 24
"""``to_array`` refuses to build an array form longer than this (16 Mi)."""


class TreeNode(Generic[T]):
    """A node of a linked binary tree.

    Its ``repr`` shows only its value, and it compares by identity: comparing
    or printing whole subtrees recursively would overflow the Python stack
    on deep trees. Compare trees with ``BinaryTree.__eq__`` instead.
    """

    __slots__ = ("value", "left", "right")

    def __init__(
        self,
        value: T,
        left: TreeNode[T] | None = None,
        right: TreeNode[T] | None = None,
    ) -> None:
        self.value = value
        self.left = left
        self.right = right

    def __repr__(self) -> str:
        return f"TreeNode({self.value!r})"


class BinaryTree(Generic[T]):
    """A binary tree in linked storage.

    Iterating a tree yields its values in level order, the order of
    ``from_level_order``. ``len`` counts the nodes by walking the tree, O(n):
    the nodes are plain objects anyone holding ``root`` may relink, so a
    cached count could go stale.

    Args:
        root: The root node, or ``None`` (default) for an empty tree.
    """

    __slots__ = ("root",)

    def __init__(self, root: TreeNode[T] | None = None) -> None:
        self.root = root

    # -- building ------------------------------------------------------

    @classmethod
    def from_level_order(cls, values: Iterable[T | None]) -> BinaryTree[T]:
        """Build a tree from a level-order list with ``None`` gaps.

        Args:
            values: The root, then the left and right child of each existing
                node in level order; ``None`` where a child is missing.
                Trailing ``None`` entries may be left out.

        Raises:
            ValueError: If a value has no parent to hang from (it comes after
                a ``None`` root, or after every node's children are filled).
        """
        items = iter(values)
        first = next(items, None)
        root = None if first is None else TreeNode(first)
        waiting: deque[TreeNode[T]] = deque([root] if root is not None else [])
        left_side = True  # is the next value the left child of waiting[0]?
        for position, value in enumerate(items, start=1):
            if not waiting:
                if value is None:
                    continue
                raise ValueError(
                    f"level-order list: the value {value!r} at position {position} "
                    "has no parent node to hang from"
                )
            parent = waiting[0]
            child = None if value is None else TreeNode(value)
            if child is not None:
                waiting.append(child)
            if left_side:
                parent.left = child
            else:
                parent.right = child
                waiting.popleft()
            left_side = not left_side
        return cls(root)

    def to_level_order(self) -> list[T | None]:
        """Return the level-order list with ``None`` gaps, trailing ``None``s
        removed, so that ``from_level_order`` rebuilds an equal tree."""
        if self.root is None:
            return []
        out: list[T | None] = [self.root.value]
        queue = deque([self.root])
        while queue:
            node = queue.popleft()
            for child in (node.left, node.right):
                if child is None:
                    out.append(None)
                else:
                    out.append(child.value)
                    queue.append(child)
        while out[-1] is None:
            out.pop()
        return out

    @classmethod
    def from_array(cls, values: Sequence[T | None]) -> BinaryTree[T]:
        """Build a linked tree from its array form (children of ``i`` at
        ``2i+1`` and ``2i+2``).

        Raises:
            ValueError: If a value sits below an empty slot (it has no
                parent).
        """
        nodes = [None if v is None else TreeNode(v) for v in values]
        for i in range(1, len(nodes)):
            node = nodes[i]
            if node is None:
                continue
            parent = nodes[(i - 1) // 2]
            if parent is None:
                raise ValueError(
                    f"array form: the value at index {i} has no parent "
                    f"(index {(i - 1) // 2} is None)"
                )
            if i % 2 == 1:
                parent.left = node
            else:
                parent.right = node
        return cls(nodes[0] if nodes else None)

    def to_array(self, max_slots: int = DEFAULT_MAX_SLOTS) -> list[T | None]:
        """Return the array form, trailing ``None``s removed.

        Args:
            max_slots: Refuse to build an array longer than this.

        Raises:
            ValueError: If the array would need more than ``max_slots`` slots,
                which happens quickly for deep, thin trees (a path of 30
                nodes can need 2**30 - 1 slots).
        """
        if self.root is None:
            return []
        placed: list[tuple[int, T]] = []
        queue = deque([(0, self.root)])
        while queue:
            index, node = queue.popleft()
            if index >= max_slots:
                raise ValueError(
                    f"the array form of this tree needs more than {max_slots} slots "
                    "(sequential storage suits complete trees, not deep thin ones)"
                )
            placed.append((index, node.value))
            if node.left is not None:
                queue.append((2 * index + 1, node.left))
            if node.right is not None:
                queue.append((2 * index + 2, node.right))
        out: list[T | None] = [None] * (max(i for i, _ in placed) + 1)
        for index, value in placed:
            out[index] = value
        return out

    # -- traversals ----------------------------------------------------

    def preorder(self, recursive: bool = False) -> Iterator[T]:
        """Values in pre-order; iterative unless ``recursive`` is true
        (which raises ``RecursionError`` on very deep trees)."""
        if recursive:
            return iter(traversal.preorder_recursive(self.root))
        return traversal.preorder(self.root)

    def inorder(self, recursive: bool = False) -> Iterator[T]:
        """Values in in-order; see ``preorder`` for ``recursive``."""
        if recursive:
            return iter(traversal.inorder_recursive(self.root))
        return traversal.inorder(self.root)

    def postorder(self, recursive: bool = False) -> Iterator[T]:
        """Values in post-order; see ``preorder`` for ``recursive``."""
        if recursive:
            return iter(traversal.postorder_recursive(self.root))
        return traversal.postorder(self.root)

    def level_order(self) -> Iterator[T]:
        """Values level by level, left to right."""
        return traversal.level_order(self.root)

    def height(self) -> int:
        """The number of levels: 0 for an empty tree, 1 for a lone root."""
        levels = 0
        level = [self.root] if self.root is not None else []
        while level:
            levels += 1
            level = [c for n in level for c in (n.left, n.right) if c is not None]
        return levels

    # -- Python protocols ----------------------------------------------

    def __len__(self) -> int:
        return sum(1 for _ in traversal.preorder(self.root))

    def __iter__(self) -> Iterator[T]:
        return traversal.level_order(self.root)

    def __contains__(self, value: object) -> bool:
        return any(v is value or v == value for v in self)

    def __eq__(self, other: object) -> bool:
        """Same shape and equal values at the same places."""
        if not isinstance(other, BinaryTree):
            return NotImplemented
        pairs = [(self.root, other.root)]
        while pairs:
            a, b = pairs.pop()
            if a is None or b is None:
                if a is not b:
                    return False
                continue
            if not (a.value is b.value or a.value == b.value):
                return False
            pairs.append((a.left, b.left))
            pairs.append((a.right, b.right))
        return True

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BinaryTree.from_level_order({self.to_level_order()!r})"
