"""The data structures and algorithms of the course, as a tested library.

Linear lists, stacks and queues, each in sequential (array) and linked
storage; binary trees in both storages with the four traversals; postfix
evaluation; recursion; bubble sort, quicksort and binary search.

Every container follows Python's protocols (``len``, iteration, ``in``,
``==``, a ``repr`` you can paste back), raises the built-in exceptions with
messages that say what went wrong (``IndexError`` for "no item there",
``ValueError`` for a wrong value; ``FullError`` is an ``IndexError`` for a
full fixed-capacity container), and is generic: ``LinkedList[int]``.

``python -m ionet bench ds`` measures the costs the course compares, such as
inserting at the head of a linked list versus a Python list.
"""

from __future__ import annotations

from ionet.ds.array_tree import ArrayBinaryTree
from ionet.ds.errors import FullError
from ionet.ds.linked_list import LinkedList
from ionet.ds.queue import ArrayQueue, LinkedQueue
from ionet.ds.recursion import factorial, factorial_recursive
from ionet.ds.rpn import RPNError, RPNZeroDivisionError, eval_rpn
from ionet.ds.search import binary_search
from ionet.ds.sorting import bubble_sort, quicksort
from ionet.ds.stack import ArrayStack, LinkedStack
from ionet.ds.stack_queue import TwoStackQueue, reverse_queue
from ionet.ds.traversal import (
    inorder,
    inorder_recursive,
    level_order,
    postorder,
    postorder_recursive,
    preorder,
    preorder_recursive,
)
from ionet.ds.tree import BinaryTree, TreeNode

__all__ = [
    "ArrayBinaryTree",
    "ArrayQueue",
    "ArrayStack",
    "BinaryTree",
    "FullError",
    "LinkedList",
    "LinkedQueue",
    "LinkedStack",
    "RPNError",
    "RPNZeroDivisionError",
    "TreeNode",
    "TwoStackQueue",
    "binary_search",
    "bubble_sort",
    "eval_rpn",
    "factorial",
    "factorial_recursive",
    "inorder",
    "inorder_recursive",
    "level_order",
    "postorder",
    "postorder_recursive",
    "preorder",
    "preorder_recursive",
    "quicksort",
    "reverse_queue",
]
