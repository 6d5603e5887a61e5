"""Evaluating reverse Polish (postfix) notation with a stack.

In postfix notation the operator comes after its operands: ``3 4 + 2 *``
means ``(3 + 4) * 2``. No parentheses and no precedence rules are needed,
and evaluation is one left-to-right pass with a stack: push each number;
for an operator, pop the right operand, then the left one, and push the
result. A well-formed expression leaves exactly one value on the stack.

Numbers: tokens like ``42``, ``-7``, ``3.5``, ``.5``, ``1e3`` (a sign in
front of a digit makes a negative number, a lone ``-`` is the operator).
Operators: ``+ - * /``.

Division is *integer-safe*: when both operands are ``int`` and the division
is exact, the result is an ``int`` (``6 3 /`` gives ``2``, and stays exact
for integers far beyond float precision); otherwise it is true division,
a ``float`` (``7 2 /`` gives ``3.5``). ``+ - *`` follow Python: ``int``
with ``int`` stays ``int``, anything with a ``float`` gives a ``float``.

Errors are ``RPNError``, a ``ValueError``, with the 1-based position of the
offending token; division by zero raises ``RPNZeroDivisionError``, which is
both an ``RPNError`` and a ``ZeroDivisionError``, so either ``except``
catches it.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable

from ionet.ds.stack import ArrayStack

__all__ = ["eval_rpn", "RPNError", "RPNZeroDivisionError", "Number"]

Number = int | float

_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


class RPNError(ValueError):
    """A malformed RPN expression: unknown token, missing operand, ..."""


class RPNZeroDivisionError(RPNError, ZeroDivisionError):
    """Division by zero inside an RPN expression."""


def _divide(left: Number, right: Number) -> Number:
    """Integer-safe division: exact ``int`` when possible, else ``float``."""
    if isinstance(left, int) and isinstance(right, int):
        quotient, remainder = divmod(left, right)
        if remainder == 0:
            return quotient
    return left / right


_OPERATORS: dict[str, Callable[[Number, Number], Number]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
}


def _number(token: str | int | float, position: int) -> Number | None:
    """The number a token stands for, or ``None`` if it is an operator."""
    if isinstance(token, bool) or not isinstance(token, (str, int, float)):
        raise TypeError(
            f"RPN: token {position} is a {type(token).__name__}; "
            "expected a str, int or float"
        )
    if not isinstance(token, str):
        return token
    if token in _OPERATORS:
        return None
    if _INT.fullmatch(token):
        return int(token)
    if _FLOAT.fullmatch(token):
        return float(token)
    raise RPNError(f"RPN: unknown token {token!r} at token {position}")


def eval_rpn(expression: str | Iterable[str | int | float]) -> Number:
    """Evaluate a postfix expression and return its value.

    Args:
        expression: Either a string of whitespace-separated tokens, such as
            ``"3 4 + 2 *"``, or a sequence of tokens, such as
            ``["3", "4", "+", "2", "*"]`` (numbers may also be given as
            ``int`` or ``float``).

    Raises:
        RPNError: (a ``ValueError``) for an empty expression, an unknown
            token, an operator with fewer than two operands before it, or
            more than one value left at the end (an operator is missing).
        RPNZeroDivisionError: (a ``ZeroDivisionError`` and an ``RPNError``)
            on division by zero.
        TypeError: If a token is not a ``str``, ``int`` or ``float``.
    """
    tokens = expression.split() if isinstance(expression, str) else expression
    stack: ArrayStack[Number] = ArrayStack()
    position = 0
    for position, token in enumerate(tokens, start=1):
        value = _number(token, position)
        if value is not None:
            stack.push(value)
            continue
        assert isinstance(token, str)
        if len(stack) < 2:
            raise RPNError(
                f"RPN: not enough operands for {token!r} at token {position} "
                f"(needs 2, has {len(stack)})"
            )
        right = stack.pop()
        left = stack.pop()
        try:
            stack.push(_OPERATORS[token](left, right))
        except ZeroDivisionError:
            raise RPNZeroDivisionError(
                f"RPN: division by zero at token {position}"
            ) from None
    if position == 0:
        raise RPNError("RPN: empty expression")
    if len(stack) != 1:
        raise RPNError(
            f"RPN: {len(stack)} values left on the stack at the end, expected 1 "
            "(is an operator missing?)"
        )
    return stack.pop()
