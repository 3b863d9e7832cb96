"""Static values over arrays of candidates, and what in a kernel depends on what.

`aeval` is `attnlang.static.static_eval` with NumPy arrays allowed wherever a
number or a symbol may be: a param's value is one array entry per candidate
(or an open-grid array whose broadcast is the candidate set), so one
evaluation answers for every candidate.

The structural analysis says which loops are *regular* (every iteration costs
the same: nothing that decides a cost — an `if`, a nested loop's trip count, a
slice's size, a shape — depends on the loop's index) and which params must
be single values while the model runs (`split_params`): those that choose an
`if` branch, and those that bound loops whose iterations differ.
"""

from __future__ import annotations

import math
import operator
from dataclasses import fields, is_dataclass
from typing import Mapping

import numpy as np

from ..diagnostics import AttnError, Span, error
from ..static import free_names
from ..syntax import ast

_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide, "//": np.floor_divide,
          "%": np.mod, "**": np.power}
_COMPARE = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater,
            ">=": np.greater_equal}
_FUNCS = {"sqrt": np.sqrt, "abs": np.abs, "log": np.log, "exp": np.exp}


def model_error(message: str, span: Span, *notes: str) -> AttnError:
    """A program the model cannot cost (E1401); the interpreter may still run it."""
    return AttnError(error("E1401", message, span, *notes))


def _tidy(x):
    """Keep integral results integral (128 / 2 is 64, not 64.0), as static_eval does."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind == "f" and x.size and np.all(np.mod(x, 1) == 0) and np.all(np.abs(x) < 2**62):
            return x.astype(np.int64)
        return x
    if isinstance(x, (float, np.floating)) and float(x).is_integer() and abs(x) < 2**62:
        return int(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def aeval(expr: ast.Expr, env: Mapping):
    """A static expression's value: a Python number, bool or symbol, or an array of them."""
    t = type(expr)
    if t is ast.Name:
        v = env.get(expr.id, _MISSING)
        if v is not _MISSING:
            return v
        if expr.id == "inf":
            return math.inf
        if expr.id in ("True", "False"):
            return expr.id == "True"
        raise model_error(f"'{expr.id}' has no value here", expr.span)
    if t is ast.Num:
        return int(expr.value) if expr.is_int else expr.value
    if t is ast.Binary:
        op = expr.op
        left = aeval(expr.left, env)
        right = aeval(expr.right, env)
        if op in _COMPARE:
            if not isinstance(left, np.ndarray) and not isinstance(right, np.ndarray):
                return bool(_COMPARE[op](left, right)) if not (isinstance(left, str) or isinstance(right, str)) \
                    else (left == right if op == "==" else left != right)
            return _COMPARE[op](left, right)
        if op == "and":
            return np.logical_and(left, right) if _arr(left, right) else bool(left) and bool(right)
        if op == "or":
            return np.logical_or(left, right) if _arr(left, right) else bool(left) or bool(right)
        if op in _ARITH:
            if isinstance(left, str) or isinstance(right, str):
                raise model_error(f"'{op}' needs numbers, not '{left}' and '{right}'", expr.span)
            if not _arr(left, right):
                if op in ("/", "//", "%") and right == 0:
                    raise model_error("division by zero", expr.span)
                return _tidy(_PY[op](left, right))
            with np.errstate(all="ignore"):
                return _tidy(_ARITH[op](left, right))
        raise model_error(f"'{op}' is a tensor operation, not a static one", expr.span)
    if t is ast.Unary:
        v = aeval(expr.operand, env)
        if expr.op == "not":
            return np.logical_not(v) if isinstance(v, np.ndarray) else not v
        if isinstance(v, str):
            raise model_error(f"cannot negate the symbol '{v}'", expr.span)
        return -v if expr.op == "-" else v
    if t is ast.QuantityLit:
        return _tidy(expr.quantity.value)
    if t is ast.Call and expr.func in ("min", "max", *_FUNCS):
        args = [aeval(a, env) for a in expr.args]
        if not args:
            raise model_error(f"{expr.func}() needs numbers", expr.span)
        if expr.func in ("min", "max"):
            if not _arr(*args):
                return _tidy((min if expr.func == "min" else max)(*args))
            f = np.minimum if expr.func == "min" else np.maximum
            out = args[0]
            for a in args[1:]:
                out = f(out, a)
            return out
        with np.errstate(all="ignore"):
            return _tidy(_FUNCS[expr.func](args[0]))
    raise model_error("this needs a value known before the kernel runs", expr.span)


_MISSING = object()


def _arr(*xs) -> bool:
    return any(isinstance(x, np.ndarray) for x in xs)


_PY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "//": operator.floordiv,
       "%": operator.mod, "**": operator.pow}


def scalar(v):
    """A Python value when every candidate agrees (a 0-d or constant array), else None."""
    if not isinstance(v, np.ndarray):
        return v
    if v.size == 0:
        return None
    flat = v.reshape(-1)
    first = flat[0]
    if v.size == 1 or bool(np.all(flat == first)):
        return first.item() if hasattr(first, "item") else first
    return None


# ---------------------------------------------------------------- structure


def same(a, b) -> bool:
    """Structural equality of two expressions, spans aside."""
    return structure_key(a) == structure_key(b)


def structure_key(node):
    if isinstance(node, tuple):
        return tuple(structure_key(n) for n in node)
    if is_dataclass(node):
        return (type(node).__name__,) + tuple(structure_key(getattr(node, f.name)) for f in fields(node)
                                              if not f.name.endswith("span"))
    return node


def size_of(lo: ast.Expr | None, hi: ast.Expr | None, span: Span) -> ast.Expr | None:
    """hi - lo as an expression, simplified for the tiling idiom `x : x + E` (size E)."""
    if hi is None:
        return None
    if lo is None:
        return hi
    if isinstance(lo, ast.Num) and lo.value == 0:
        return hi
    if isinstance(hi, ast.Binary) and hi.op == "+":
        if same(hi.left, lo):
            return hi.right
        if same(hi.right, lo):
            return hi.left
    if same(hi, lo):
        return ast.Num(0, True, span)
    return ast.Binary("-", hi, lo, span)


walk = ast.walk_statements


def _slice_sizes(items) -> list:
    out = []
    for it in items or ():
        if isinstance(it, ast.Slice):
            out.append(size_of(it.lo, it.hi, it.span))
    return out


def _expr_structure(e, out: list) -> None:
    """The parts of a tensor expression whose values decide a cost: slice sizes, shapes, unit indices."""
    stack = [e]
    while stack:
        x = stack.pop()
        t = type(x)
        if t is ast.Index:
            out += _slice_sizes(x.items)
            stack.append(x.base)
        elif t is ast.Call:
            if x.func in ("full", "zeros", "ones") and x.args:
                out.append(x.args[0])
            elif x.func != "causal":  # causal's offsets decide which entries, not how many
                stack += list(x.args)
            else:
                stack.append(x.args[0])
        elif t is ast.Binary:
            stack += [x.left, x.right]
        elif t is ast.Unary:
            stack.append(x.operand)
        elif t is ast.Attr:
            stack.append(x.base)
        elif t is ast.OnUnit:
            out.append(x.unit.index)
            stack.append(x.expr)


def structure(stmt) -> list:
    """The expressions in one statement (not nested ones) that decide what it costs."""
    out: list = []
    t = type(stmt)
    if t is ast.If:
        out.append(stmt.cond)
    elif t is ast.For:
        out += [size_of(stmt.lo, stmt.hi, stmt.span), stmt.step]
        for a in stmt.annotations:
            out += list(a.args)
    elif t is ast.Load:
        out += _slice_sizes(stmt.index)
        out += _slice_sizes(stmt.target.index)
    elif t is ast.Store:
        out += _slice_sizes(stmt.index)
        _expr_structure(stmt.expr, out)
    elif t is ast.Assign:
        out += _slice_sizes(stmt.target.index)
        _expr_structure(stmt.expr, out)
    return [e for e in out if e is not None]


def _bound_vars(body) -> set[str]:
    return {s.var for s in walk(body) if isinstance(s, ast.For)}


class LoopShape:
    """What the model needs to know about one loop, worked out once."""

    def __init__(self, loop: ast.For):
        self.loop = loop
        inner = _bound_vars(loop.body)
        exprs = [e for s in walk(loop.body) for e in structure(s)]
        uses = [e for e in exprs if loop.var in free_names(e)]
        #: every iteration costs the same
        self.regular = not uses
        #: the expressions whose values tell iterations apart, when they name no inner index
        self.signature = None if any(free_names(e) & inner for e in uses) else uses
        #: names the body writes (whole values), for the history of buffer copies
        self.assigned = sorted({s.target.name for s in walk(loop.body)
                                if isinstance(s, (ast.Assign, ast.Load)) and s.target.index is None})
        par = next((a for a in loop.annotations if a.name == "parallel"), None)
        self.parallel = par is not None
        #: the unit array a @parallel loop names (its instances bound how many iterations overlap)
        self.parallel_arg = par.args[0].id if par is not None and par.args and isinstance(par.args[0], ast.Name) \
            else None
        self.pipeline = next((a for a in loop.annotations if a.name == "pipeline"), None)


_SHAPES: dict[int, LoopShape] = {}


def loop_shape(loop: ast.For) -> LoopShape:
    """The (cached) LoopShape of a loop; the cache keeps the node alive, so ids stay unique."""
    got = _SHAPES.get(id(loop))
    if got is None or got.loop is not loop:
        got = _SHAPES[id(loop)] = LoopShape(loop)
    return got


_PIPELINES: dict[int, tuple] = {}


def pipeline_annotations(kernel: ast.Kernel) -> list:
    """Every `@pipeline` annotation of the kernel's loops (cached like loop_shape)."""
    got = _PIPELINES.get(id(kernel))
    if got is None or got[0] is not kernel:
        found = [a for s in walk(kernel.body) if isinstance(s, ast.For) for a in s.annotations
                 if a.name == "pipeline"]
        got = _PIPELINES[id(kernel)] = (kernel, found)
    return got[1]


def split_params(kernel: ast.Kernel, params: set[str]) -> set[str]:
    """Params that must take one value at a time while the model runs.

    Those that choose `if` branches, units (`on U[i]`), and those that bound
    loops whose iterations differ (or that spread over unit arrays), with the
    bounds of the loops enclosing them.
    """
    out: set[str] = set()
    for s in walk(kernel.body):
        if isinstance(s, ast.If):
            out |= free_names(s.cond) & params
        for e in _unit_indices(s):
            out |= free_names(e) & params
    bounds: dict[str, set[str]] = {}
    _loop_bounds(kernel.body, bounds)
    need: set[str] = set()
    for s in walk(kernel.body):
        if isinstance(s, ast.For):
            shape = loop_shape(s)
            if not shape.regular or shape.parallel:
                need |= free_names(s.lo) | free_names(s.hi) | (free_names(s.step) if s.step else set())
    seen: set[str] = set()
    while need - seen:
        name = (need - seen).pop()
        seen.add(name)
        need |= bounds.get(name, set())
    return out | (need & params)


def _unit_indices(stmt) -> list:
    """The unit indices (`e on U[i]`) in one statement's expressions."""
    out = []
    stack = [getattr(stmt, "expr", None)]
    while stack:
        x = stack.pop()
        if x is None or isinstance(x, (str, int, float)):
            continue
        if isinstance(x, ast.OnUnit):
            if x.unit.index is not None:
                out.append(x.unit.index)
            stack.append(x.expr)
        elif isinstance(x, (ast.Binary,)):
            stack += [x.left, x.right]
        elif isinstance(x, ast.Unary):
            stack.append(x.operand)
        elif isinstance(x, ast.Call):
            stack += list(x.args)
        elif isinstance(x, (ast.Index, ast.Attr)):
            stack.append(x.base)
    return out


def _loop_bounds(body, out: dict[str, set[str]]) -> None:
    for s in walk(body):
        if isinstance(s, ast.For):
            out[s.var] = free_names(s.lo) | free_names(s.hi) | (free_names(s.step) if s.step else set())


def where_conds(kernel: ast.Kernel) -> list[ast.Expr]:
    """Every `where` constraint of the kernel."""
    return [c for s in walk(kernel.body) if isinstance(s, ast.Where) for c in s.conds]
