"""Static values over arrays of candidates, and what in a kernel depends on what.

`aeval` is the evaluator of `attnlang.static` with the model's policy (E1401
errors, integral float arrays made integer): a param's value may be one array
entry per candidate (or an open-grid array whose broadcast is the candidate
set), so one evaluation answers for every candidate.

The structural analysis says which loops are *regular* (every iteration costs
the same: nothing that decides a cost — an `if`, a nested loop's trip count, a
slice's size, a shape — depends on the loop's index) and which params must
be single values while the model runs (`split_params`): those that choose an
`if` branch, and those that bound loops whose iterations differ.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass

import numpy as np

from ..diagnostics import AttnError, Span, error
from ..static import evaluator, free_names
from ..syntax import ast


def model_error(message: str, span: Span, *notes: str) -> AttnError:
    """A program the model cannot cost (E1401); the interpreter may still run it."""
    return AttnError(error("E1401", message, span, *notes))


def _model_error(e: ast.Expr, message: str) -> AttnError:
    return model_error(message, e.span)


aeval = evaluator(_model_error, tidy_arrays=True)
aeval.__doc__ = """A static expression's value: a Python number, bool or symbol, or an array of them."""


def whole(v) -> bool:
    """Is v a whole number, or an array of them (not a symbol, a truth value, inf or nan)?"""
    if isinstance(v, (str, bool)):
        return False
    a = np.asarray(v)
    return a.dtype.kind in "iu" or (a.dtype.kind == "f" and bool(np.all(np.isfinite(a)) and np.all(a == np.floor(a))))


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


def elements(shape: tuple):
    """The number of elements of a shape whose dims may be arrays of candidates."""
    n = 1
    for d in shape:
        n = n * d
    return n


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


def values_read(body) -> set[str]:
    """The names whose values a body reads (a superset: index expressions count too)."""
    out: set[str] = set()
    for s in walk(body):
        t = type(s)
        if t is ast.Assign:
            out |= free_names(s.value)
            if s.target.index is not None:
                out.add(s.target.name)
        elif t is ast.Store or t is ast.Send:
            out |= free_names(s.expr)
        elif t is ast.Load:
            out.add(s.tensor)
    return out


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
        #: names whose values the body reads (nested loops included)
        self.reads = values_read(loop.body)
        #: outputs the body stores to (nested loops included)
        self.stored = {s.tensor for s in walk(loop.body) if isinstance(s, ast.Store)}
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
