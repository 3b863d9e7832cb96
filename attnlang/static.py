"""Evaluation of static expressions: dimensions, params, bounds, hardware sizes.

A static value is an int, a float, a bool or a symbol (a str, for symbolic
params such as `q_outer`). Anything else (a tensor) is not static.
"""

from __future__ import annotations

import math
import operator
from typing import Callable, Mapping, Union

import numpy as np

from .diagnostics import Diagnostic, error
from .limits import MAX_INT, integer_error, show
from .syntax import ast

Static = Union[int, float, bool, str]


class StaticError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic
        super().__init__(diagnostic.message)


_DIVISIONS = ("/", "//", "%")
_ARITH = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow,
}
_COMPARE = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}
_FUNCS = {"min": min, "max": max, "sqrt": math.sqrt, "abs": abs, "log": math.log, "exp": math.exp}
# Over arrays (one entry per candidate) the same operations are NumPy's, with IEEE results
# (a zero divisor entry gives inf or nan, not an error): a bad candidate is pruned, not fatal.
_NP_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide, "//": np.floor_divide,
             "%": np.mod, "**": np.power}
_NP_COMPARE = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater,
               ">=": np.greater_equal}
_NP_FUNCS = {"min": np.minimum, "max": np.maximum, "sqrt": np.sqrt, "abs": np.abs, "log": np.log, "exp": np.exp}

Fail = Callable[[ast.Expr, str], Exception]


def _fail(expr: ast.Expr, message: str) -> StaticError:
    return StaticError(error("E0301", message, expr.span))


def _tidy(x):
    """Keep integers integral: 128 / 2 is 64, not 64.0 (and NumPy scalars become Python ones)."""
    t = type(x)
    if t is int:
        return x
    if t is float or isinstance(x, np.floating):
        return int(x) if x.is_integer() and abs(x) < 2**62 else x
    if isinstance(x, np.integer):
        return int(x)
    return x


def _tidy_array(x):
    """An integral float array as an integer array, as _tidy does for one number."""
    if isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.size and np.all(np.mod(x, 1) == 0) \
            and np.all(np.abs(x) < 2**62):
        return x.astype(np.int64)
    return x


def _is_symbol(v) -> bool:
    return isinstance(v, str) or (isinstance(v, np.ndarray) and v.dtype.kind in "USO")


def evaluator(fail: Fail, *, short_circuit: bool = False, tidy_arrays: bool = False):
    """A static evaluator: `evaluate(expr, env)`, where env's values may be NumPy arrays of candidates.

    The rules of arithmetic are the same for every engine; what differs is policy:
    `fail(expr, message)` makes the exception to raise (the interpreter's E0301,
    the model's E1401, the checker's Unknown); `short_circuit` gives `and`/`or`
    Python's meaning (the value of the operand that decides, the other one not
    evaluated) rather than a logical value with both sides evaluated;
    `tidy_arrays` turns integral float arrays into integer arrays.
    """

    def evaluate(expr: ast.Expr, env: Mapping):
        t = type(expr)
        if t is ast.Name:
            v = env.get(expr.id, _MISSING)
            if v is not _MISSING:
                return v
            if expr.id == "inf":
                return math.inf
            if expr.id in ("True", "False"):
                return expr.id == "True"
            raise fail(expr, f"'{expr.id}' has no value here")
        if t is ast.Num:
            return expr.value
        if t is ast.Binary:
            op = expr.op
            left = evaluate(expr.left, env)
            if op == "and" or op == "or":
                if short_circuit and not isinstance(left, np.ndarray):
                    return left if (op == "and") != bool(left) else evaluate(expr.right, env)
                return _logical(expr, left, evaluate(expr.right, env), fail)
            right = evaluate(expr.right, env)
            if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
                return _array_binary(expr, left, right, fail, tidy_arrays)
            return _scalar_binary(expr, left, right, fail)
        if t is ast.Unary:
            return _unary(expr, evaluate(expr.operand, env), fail)
        if t is ast.QuantityLit:
            return _tidy(expr.quantity.value)
        if t is ast.Call and expr.func in _FUNCS:
            return _call(expr, [evaluate(a, env) for a in expr.args], fail, tidy_arrays)
        raise fail(expr, "this needs a value known before the kernel runs")

    return evaluate


_MISSING = object()


def _scalar_binary(expr: ast.Binary, left, right, fail: Fail):
    op = expr.op
    fn = _ARITH.get(op)
    if fn is not None:
        if isinstance(left, str) or isinstance(right, str):
            raise fail(expr, f"'{op}' needs numbers, not '{left}' and '{right}'")
        if op in _DIVISIONS and right == 0:
            raise fail(expr, "division by zero")
        if (op == "**" and isinstance(left, int) and isinstance(right, int) and right > 0
                and abs(left).bit_length() * right > 1_000):
            # Python would compute the exact integer, taking unbounded time and memory.
            raise fail(expr, "the power is too large to compute")
        try:
            out = fn(left, right)
        except (OverflowError, ValueError, ZeroDivisionError, TypeError) as exc:
            raise fail(expr, f"cannot evaluate: {exc}") from None
        if type(out) is complex:  # a negative number to a fractional power
            raise fail(expr, f"cannot evaluate: {left} ** {right} is not a real number")
        if type(out) is int and abs(out) > MAX_INT:  # exact integers would grow without bound
            raise fail(expr, f"cannot evaluate: the result, {show(out)}, exceeds 2**53 in magnitude")
        return _tidy(out)
    fn = _COMPARE.get(op)
    if fn is not None:
        if isinstance(left, str) or isinstance(right, str):
            if op == "==":
                return left == right
            if op == "!=":
                return left != right
            raise fail(expr, f"cannot compare '{left}' with '{right}'")
        return bool(fn(left, right))
    raise fail(expr, f"'{op}' is a tensor operation, not a static one")


def _array_binary(expr: ast.Binary, left, right, fail: Fail, tidy: bool):
    op = expr.op
    fn = _NP_ARITH.get(op)
    if fn is not None:
        if _is_symbol(left) or _is_symbol(right):
            raise fail(expr, f"'{op}' needs numbers, not '{left}' and '{right}'")
        if op in _DIVISIONS and not isinstance(right, np.ndarray) and right == 0:
            raise fail(expr, "division by zero")
    else:
        fn = _NP_COMPARE.get(op)
        if fn is None:
            raise fail(expr, f"'{op}' is a tensor operation, not a static one")
        symbolic = _is_symbol(left), _is_symbol(right)
        if any(symbolic) and op not in ("==", "!="):
            raise fail(expr, f"cannot compare '{left}' with '{right}'")
        if symbolic[0] != symbolic[1]:  # a symbol is never equal to a number
            return np.full(np.broadcast_shapes(np.shape(left), np.shape(right)), op == "!=")
    try:
        with np.errstate(all="ignore"):
            out = fn(left, right)
            return _tidy_array(out) if tidy else out
    except (TypeError, ValueError, OverflowError) as exc:
        raise fail(expr, f"cannot evaluate: {exc}") from None


def _logical(expr: ast.Binary, left, right, fail: Fail):
    """`and`/`or` as a truth value (elementwise over arrays), both sides evaluated."""
    if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
        try:
            return np.logical_and(left, right) if expr.op == "and" else np.logical_or(left, right)
        except TypeError as exc:
            raise fail(expr, f"cannot evaluate: {exc}") from None
    return (bool(left) and bool(right)) if expr.op == "and" else (bool(left) or bool(right))


def _unary(expr: ast.Unary, v, fail: Fail):
    array = isinstance(v, np.ndarray)
    if expr.op == "not":
        if not array:
            return not v
        if v.dtype.kind in "USO":
            raise fail(expr, "'not' needs a truth value")
        return np.logical_not(v)
    if isinstance(v, str) or (array and v.dtype.kind in "USO"):
        raise fail(expr, f"cannot negate the symbol '{v}'")
    if expr.op == "+":
        return v
    try:
        return -v
    except TypeError as exc:  # NumPy will not negate an array of bools
        raise fail(expr, f"cannot evaluate: {exc}") from None


def _call(expr: ast.Call, args: list, fail: Fail, tidy: bool):
    name = expr.func
    if not args or any(_is_symbol(a) for a in args):
        raise fail(expr, f"{name}() needs numbers")
    if (len(args) < 2) if name in ("min", "max") else (len(args) != 1):
        raise fail(expr, f"{name}() takes {'two or more numbers' if name in ('min', 'max') else 'one number'}")
    if not any(isinstance(a, np.ndarray) for a in args):
        try:
            return _tidy(_FUNCS[name](*args))
        except (TypeError, ValueError, OverflowError) as exc:
            raise fail(expr, f"cannot evaluate {name}(): {exc}") from None
    fn = _NP_FUNCS[name]
    with np.errstate(all="ignore"):
        out = args[0] if len(args) > 1 else fn(args[0])
        for a in args[1:]:
            out = fn(out, a)
        return _tidy_array(out) if tidy else out


static_eval = evaluator(_fail, short_circuit=True)
static_eval.__doc__ = """Evaluate expr with the names in env; raises StaticError naming what is not static."""


def static_int(expr: ast.Expr, env: Mapping[str, Static], what: str) -> int:
    """Evaluate to an integer, or fail saying what was expected."""
    v = static_eval(expr, env)
    bad = integer_error(v, what, expr.span)
    if bad:
        raise StaticError(bad)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
        raise _fail(expr, f"{what} must be an integer, not {v!r}")
    return int(v)


def free_names(expr) -> set[str]:
    """Every name an expression (or slice) reads."""
    return {x.id for x in ast.subexprs(expr) if isinstance(x, ast.Name)}
