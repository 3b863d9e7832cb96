"""Evaluation of static expressions: dimensions, params, bounds, hardware sizes.

A static value is an int, a float, a bool or a symbol (a str, for symbolic
params such as `q_outer`). Anything else (a tensor) is not static.
"""

from __future__ import annotations

import math
import operator
from typing import Mapping, Union

from .diagnostics import Diagnostic, Span, error
from .syntax import ast

Static = Union[int, float, bool, str]


class StaticError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic
        super().__init__(diagnostic.message)


_ARITH = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow,
}
_COMPARE = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}
_FUNCS = {"min": min, "max": max, "sqrt": math.sqrt, "abs": abs, "log": math.log, "exp": math.exp}


def _fail(span: Span, message: str) -> StaticError:
    return StaticError(error("E0301", message, span))


def _tidy(x):
    """Keep integers integral: 128 / 2 is 64, not 64.0."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 2**62:
        return int(x)
    return x


def static_eval(expr: ast.Expr, env: Mapping[str, Static]) -> Static:
    """Evaluate expr with the names in env; raises StaticError naming what is not static."""
    if isinstance(expr, ast.Num):
        return expr.value
    if isinstance(expr, ast.QuantityLit):
        return _tidy(expr.quantity.value)
    if isinstance(expr, ast.Name):
        if expr.id in env:
            return env[expr.id]
        if expr.id == "inf":
            return math.inf
        if expr.id in ("True", "False"):
            return expr.id == "True"
        raise _fail(expr.span, f"'{expr.id}' has no value here")
    if isinstance(expr, ast.Unary):
        v = static_eval(expr.operand, env)
        if expr.op == "not":
            return not v
        if isinstance(v, str):
            raise _fail(expr.span, f"cannot negate the symbol '{v}'")
        return -v
    if isinstance(expr, ast.Binary):
        left = static_eval(expr.left, env)
        if expr.op in ("and", "or"):
            if (expr.op == "and") != bool(left):
                return left
            return static_eval(expr.right, env)
        right = static_eval(expr.right, env)
        if expr.op in _COMPARE:
            if isinstance(left, str) != isinstance(right, str) and expr.op not in ("==", "!="):
                raise _fail(expr.span, f"cannot compare '{left}' with '{right}'")
            return _COMPARE[expr.op](left, right)
        if expr.op in _ARITH:
            if isinstance(left, str) or isinstance(right, str):
                raise _fail(expr.span, f"'{expr.op}' needs numbers, not '{left}' and '{right}'")
            if expr.op in ("/", "//", "%") and right == 0:
                raise _fail(expr.span, "division by zero")
            if (expr.op == "**" and isinstance(left, int) and isinstance(right, int) and right > 0
                    and abs(left).bit_length() * right > 100_000):
                # Python would compute the exact integer, taking unbounded time and memory.
                raise _fail(expr.span, "the power is too large to compute")
            try:
                return _tidy(_ARITH[expr.op](left, right))
            except (OverflowError, ValueError, ZeroDivisionError) as exc:
                raise _fail(expr.span, f"cannot evaluate: {exc}") from None
        raise _fail(expr.span, f"'{expr.op}' is a tensor operation, not a static one")
    if isinstance(expr, ast.Call) and expr.func in _FUNCS:
        args = [static_eval(a, env) for a in expr.args]
        if not args or any(isinstance(a, str) for a in args):
            raise _fail(expr.span, f"{expr.func}() needs numbers")
        try:
            return _tidy(_FUNCS[expr.func](*args))
        except (TypeError, ValueError, OverflowError) as exc:
            raise _fail(expr.span, f"cannot evaluate {expr.func}(): {exc}") from None
    raise _fail(expr.span, "this needs a value known before the kernel runs")


def static_int(expr: ast.Expr, env: Mapping[str, Static], what: str) -> int:
    """Evaluate to an integer, or fail saying what was expected."""
    v = static_eval(expr, env)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
        raise _fail(expr.span, f"{what} must be an integer, not {v!r}")
    return int(v)


def free_names(expr) -> set[str]:
    """Every name an expression (or slice) reads."""
    return {x.id for x in ast.subexprs(expr) if isinstance(x, ast.Name)}
