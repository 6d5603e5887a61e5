"""eval_rpn against a reference evaluator on expression trees."""

from __future__ import annotations

import operator
from typing import Any, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ionet.ds import RPNError, RPNZeroDivisionError, eval_rpn

# An expression is an int or (op, left, right); + - * only, so the exact
# value is an int and there is a single right answer.
Expr = Union[int, tuple[str, Any, Any]]

exprs: st.SearchStrategy[Expr] = st.recursive(
    st.integers(-50, 50),
    lambda sub: st.tuples(st.sampled_from("+-*"), sub, sub),
    max_leaves=25,
)

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}


def postfix(expr: Expr) -> list[str]:
    if isinstance(expr, int):
        return [str(expr)]
    op, left, right = expr
    return [*postfix(left), *postfix(right), op]


def value(expr: Expr) -> int:
    if isinstance(expr, int):
        return expr
    op, left, right = expr
    return OPS[op](value(left), value(right))


@settings(max_examples=300, deadline=None)
@given(expr=exprs)
def test_matches_reference(expr: Expr) -> None:
    tokens = postfix(expr)
    result = eval_rpn(tokens)
    assert type(result) is int and result == value(expr)
    assert eval_rpn(" ".join(tokens)) == result


@settings(max_examples=300, deadline=None)
@given(a=st.integers(-10**30, 10**30), b=st.integers(-100, 100).filter(bool))
def test_division_is_exact_for_ints_when_it_can_be(a: int, b: int) -> None:
    result = eval_rpn([str(a), str(b), "/"])
    if a % b == 0:
        assert type(result) is int and result == a // b
    else:
        assert type(result) is float and result == a / b


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("3 4 + 2 *", 14),
        ("5 1 2 + 4 * + 3 -", 14),
        ("6 3 /", 2),
        ("7 2 /", 3.5),
        ("-6 -3 /", 2),
        ("1.5 2 *", 3.0),
        (".5 1e1 *", 5.0),
        ("+3 -4 -", 7),
        ("42", 42),
        ([2, 3.5, "*"], 7.0),
        ("99999999999999999999 3 /", 33333333333333333333),
    ],
)
def test_examples(expression: Any, expected: int | float) -> None:
    result = eval_rpn(expression)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "RPN: empty expression"),
        ("1 x +", "RPN: unknown token 'x' at token 2"),
        ("1 2 ^", "RPN: unknown token '\\^' at token 3"),
        ("1 --2 +", "unknown token '--2'"),
        ("1 nan +", "unknown token 'nan'"),
        ("1 +", "RPN: not enough operands for '\\+' at token 2 \\(needs 2, has 1\\)"),
        ("1 2 + *", "not enough operands for '\\*' at token 4"),
        ("1 2", "2 values left on the stack"),
    ],
)
def test_errors_are_value_errors_with_positions(expression: str, message: str) -> None:
    with pytest.raises(RPNError, match=message) as info:
        eval_rpn(expression)
    assert isinstance(info.value, ValueError)


def test_division_by_zero_is_both_kinds_of_error() -> None:
    with pytest.raises(ZeroDivisionError, match="RPN: division by zero at token 6"):
        eval_rpn("1 2 2 2 - / +")
    with pytest.raises(RPNError):
        eval_rpn("1.0 0.0 /")
    assert issubclass(RPNZeroDivisionError, ValueError)


def test_non_string_tokens_must_be_numbers() -> None:
    with pytest.raises(TypeError, match="token 2 is a list"):
        eval_rpn([1, [2], "+"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="bool"):
        eval_rpn([True, 1, "+"])
