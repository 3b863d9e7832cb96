"""Expression evaluation for the reference engine: numbers and costs together.

Evaluation dispatches on the node's type, once per node. What depends only on
the node or on a unit and a size (the fused-multiply-add split, the unit an
operation binds to, a vector operation's cost) is worked out once per run and
kept in the engine's Memo (engine.py); everything that depends on the data or
the time is computed every time.
"""

from __future__ import annotations

import math

import numpy as np

from .. import cost, ops
from ..diagnostics import AttnError, did_you_mean, error
from ..dtypes import promote, round_to
from ..runtime import name_value
from ..syntax import ast
from ..syntax.vocab import BUILTINS, arity_message
from .machine import Buffer
from .values import TV

_STATIC_FUNCS = {"sqrt": math.sqrt, "exp": math.exp, "log": math.log, "abs": abs, "max": max, "min": min}
_COMPARE = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater,
            ">=": np.greater_equal}
_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "%": np.mod, "//": np.floor_divide,
          "**": np.power}
_UNARY_FUNCS = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs}
# np.sum, np.max and np.min are these ufuncs' reduce (the same loops, the same numbers) behind a
# Python-level wrapper that costs more than the reduction of a short row.
_REDUCE = {"rowmax": np.maximum.reduce, "rowmin": np.minimum.reduce, "rowsum": np.add.reduce,
           "sum": np.add.reduce, "mean": np.mean, "max": np.maximum.reduce, "min": np.minimum.reduce}
_F32 = np.dtype(np.float32)


def _fail(code, message, span):
    return AttnError(error(code, message, span))


def evaluate(eng, e, dest: float, charge: int, unit):
    """A TV for a tensor expression, a Python number for a static one.

    (The evaluators below call _EVAL[type(e)](...) themselves: the same, one call less per node.)"""
    return _EVAL[type(e)](eng, e, dest, charge, unit)


def _num(eng, e, dest, charge, unit):
    return e.value


def _quantity(eng, e, dest, charge, unit):
    return e.quantity.value


def _name(eng, e, dest, charge, unit):
    tv = eng.names.get(e.id)
    if tv is not None:
        eng._use(tv.buf, e.span)
        return tv
    return name_value(e.id, eng.env, eng.tensors, eng.root, _fail, e.span)


def _on_unit(eng, e, dest, charge, unit):
    index = eng._static_int(e.unit.index, "a unit index") if e.unit.index is not None else None
    return _EVAL[type(e.expr)](eng, e.expr, dest, charge, (e.unit.name, index))


def _unary(eng, e, dest, charge, unit):
    x = _EVAL[type(e.operand)](eng, e.operand, 0.0, 1, unit)
    if not isinstance(x, TV):
        return eng._static(e)
    if e.op == "not":
        raise _fail("E1015", "'not' needs a static condition", e.span)
    return _vector(eng, "neg", e, [x], -_f(x), x.dtype, dest, charge, unit, x.data.size)


def _index(eng, e, dest, charge, unit):
    base = _EVAL[type(e.base)](eng, e.base, 0.0, 1, unit)
    if not isinstance(base, TV):
        raise _fail("E1016", "only tensors can be indexed", e.span)
    key = eng._subscripts(e.items, base.data.shape, _label(e.base), e.span)
    return TV(base.data[key], base.dtype, base.buf)


def _attr(eng, e, dest, charge, unit):
    base = _EVAL[type(e.base)](eng, e.base, 0.0, 1, unit)
    if e.name != "T" or not isinstance(base, TV):
        raise _fail("E1016", f"'.{e.name}' is not defined here ('.T' transposes a tensor)", e.span)
    return TV(np.swapaxes(base.data, -1, -2) if base.data.ndim >= 2 else base.data, base.dtype, base.buf)


def _other(eng, e, dest, charge, unit):
    raise _fail("E1016", "a list is only meaningful as a shape, in full(), zeros() or ones()", e.span)


def _f(tv):
    """The data in the type arithmetic runs in (float32, or float64 for f64), without a copy."""
    data = tv.data
    if data.dtype is _F32 and tv.dtype != "f64":
        return data
    return data.astype(np.float64 if tv.dtype == "f64" else np.float32, copy=False)


def _label(e) -> str:
    return e.id if isinstance(e, ast.Name) else "the value"


def _dtype_of(x):
    return getattr(x, "dtype", None) if not isinstance(x, (int, float)) else None


def _binary(eng, e: ast.Binary, dest, charge, unit):
    if eng.memo.fma_parts(e) is not None:
        fused = _fma(eng, e, dest, charge, unit)
        if fused is not None:
            return fused
    a = _EVAL[type(e.left)](eng, e.left, 0.0, 1, unit)
    b = _EVAL[type(e.right)](eng, e.right, 0.0, 1, unit)
    a_tv = isinstance(a, TV)
    b_tv = isinstance(b, TV)
    if not a_tv and not b_tv:
        return eng._static(e)
    op = e.op
    if op in ("and", "or"):
        raise _fail("E1015", f"'{op}' needs static conditions", e.span)
    dtype = promote(a.dtype if a_tv else _dtype_of(a), b.dtype if b_tv else _dtype_of(b))
    xa = _f(a) if a_tv else a
    xb = _f(b) if b_tv else b
    if op == "@":
        return _matmul(eng, e, a, b, dtype, dest, charge, unit)
    # Floating-point warnings are silenced for the whole run (interp.execute). out=... makes the
    # result an array even from 0-d operands, as the result's TV needs.
    compare = _COMPARE.get(op)
    if compare is not None:
        result = compare(xa, xb, out=...)
        return _vector(eng, "cmp", e, [a, b], result, "i8", dest, charge, unit, result.size)
    try:
        result = _ARITH[op](xa, xb, out=...)
    except ValueError:
        raise _fail("E1011", f"cannot broadcast shapes {_shape(a)} and {_shape(b)} for '{op}'", e.span) \
            from None
    return _vector(eng, ops.BINARY_OPS[op], e, [a, b], result, dtype, dest, charge, unit, result.size)


def _fma(eng, e: ast.Binary, dest, charge, unit):
    """a * b + c as one op where the unit that would run the add has `op fma`."""
    u, _ = eng.unit_for("add", e, unit)
    if not u.has_op("fma"):
        return None
    vals = [_EVAL[type(x)](eng, x, 0.0, 1, unit) for x in eng.memo.fma_parts(e)]
    if not any(isinstance(v, TV) for v in vals):
        return None
    xs = [_f(v) if isinstance(v, TV) else v for v in vals]
    try:
        result = xs[0] * xs[1] + xs[2]
    except ValueError:
        raise _fail("E1011", f"cannot broadcast shapes {[_shape(v) for v in vals]} in a * b + c", e.span) from None
    dtype = promote(promote(_dtype_of(vals[0]), _dtype_of(vals[1])), _dtype_of(vals[2]))
    return _vector(eng, "fma", e, vals, result, dtype, dest, charge, unit, np.size(result))


def _shape(x):
    return list(x.data.shape) if hasattr(x, "data") else []


def _matmul(eng, e, a, b, dtype, dest, charge, unit):
    if not isinstance(a, TV) or not isinstance(b, TV):
        raise _fail("E1011", "'@' needs two tensors", e.span)
    if a.data.ndim == 0 or b.data.ndim == 0:
        raise _fail("E1011", "'@' needs tensors with at least one axis", e.span)
    try:
        result = np.matmul(_f(a), _f(b))
    except ValueError:
        raise _fail("E1011", f"cannot multiply {_shape(a)} @ {_shape(b)}: inner dimensions differ", e.span) \
            from None
    m = a.data.shape[-2] if a.data.ndim >= 2 else 1
    k = a.data.shape[-1]
    n = b.data.shape[-1] if b.data.ndim >= 2 else 1
    batch = int(np.prod(result.shape[:-2])) if result.ndim > 2 else 1
    u, inst = eng.unit_for("matmul", e, unit)
    timing, macs, energy = ops.matmul_cost(u, m, k, n, batch)
    eng.m.c.macs += macs
    return _issue(eng, u, inst, "matmul", e, [a, b], result, dtype, dest, charge, timing, energy)


def _vector(eng, op, e, operands, result, dtype, dest, charge, unit, elements):
    op, u, inst, timing, energy = eng.vector_op(op, e, unit, elements)
    eng.m.c.vector_ops += elements
    return _issue(eng, u, inst, op, e, operands, result, dtype, dest, charge, timing, energy)


def _issue(eng, u, inst, op, e, operands, result, dtype, dest, charge, timing, energy):
    """Schedule one operation on a unit instance, charge its reads and its result."""
    # ready = max(dest, clock, operands' ready), taking the first of equal values as max() does
    ready = dest
    if eng.clock > ready:
        ready = eng.clock
    tvs = []
    for o in operands:
        if isinstance(o, TV):
            tvs.append(o)
            if o.buf.ready > ready:
                ready = o.buf.ready
    m = eng.m
    _, issued, end = m.unit_op(u, inst, timing, ready, energy, op, e.span)
    for o in tvs:
        buf = o.buf
        m.unit_reads(buf.memory, cost.tensor_bytes(o.data.size, o.dtype))
        if issued > buf.last_read:
            buf.last_read = issued
    memory = u.memory or eng.root
    size = result.size if isinstance(result, (np.ndarray, np.generic)) else np.size(result)
    nbytes = cost.tensor_bytes(size, dtype)
    m.unit_writes(memory, nbytes)
    buf = Buffer(memory, nbytes, end)
    m.allocate(buf, charge, e.span)
    buf.pinned = True
    eng.temps.append(buf)
    if dtype == "i8":
        data = result
    elif dtype == "f32" and type(result) is np.ndarray and result.dtype is _F32:
        data = result  # round_to(result, "f32") would return it as it is
    else:
        data = round_to(result, dtype)
    return TV(data if type(data) is np.ndarray else np.asarray(data), dtype, buf)


def _call(eng, e: ast.Call, dest, charge, unit):
    f = e.func
    if f in ("full", "zeros", "ones"):
        return _alloc(eng, e, charge)
    if f not in BUILTINS:  # before its arguments: `oops()` is an unknown function, not one without a tensor
        raise _fail("E1017", f"unknown function '{f}'{did_you_mean(f, BUILTINS)}", e.func_span)
    args = [_EVAL[type(a)](eng, a, 0.0, 1, unit) for a in e.args]
    if not any(isinstance(a, TV) for a in args):
        if f in _STATIC_FUNCS:
            return eng._static(e)
        raise _fail("E1017", f"{f}() needs a tensor argument", e.span)
    wrong = arity_message(f, len(args))
    if wrong:
        raise _fail("E1017", wrong, e.span)
    x = args[0]
    xf = _f(x) if isinstance(x, TV) else x
    # Floating-point warnings are silenced for the whole run (interp.execute).
    fn = _UNARY_FUNCS.get(f)
    if fn is not None:
        result = fn(xf, out=...)
        return _vector(eng, f, e, [x], result, x.dtype, dest, charge, unit, result.size)
    if f in ("max", "min") and len(args) == 2:
        y = args[1]
        yf = _f(y) if isinstance(y, TV) else y
        try:
            result = (np.maximum if f == "max" else np.minimum)(xf, yf, out=...)
        except ValueError:
            raise _fail("E1011", f"cannot broadcast shapes {_shape(x)} and {_shape(y)} in {f}()", e.span) \
                from None
        dtype = promote(_dtype_of(x), _dtype_of(y))
        return _vector(eng, f, e, args, result, dtype, dest, charge, unit, result.size)
    if f in _REDUCE:
        _need_tensor(x, f, e)
        axis = -1 if f.startswith("row") else None
        if x.data.ndim == 0 or x.data.size == 0:
            raise _fail("E1011", f"{f}() needs a non-empty tensor with at least one axis", e.span)
        result = _REDUCE[f](xf, axis=axis)
        return _vector(eng, ops.unit_op_of("call", f, 1), e, [x], result, x.dtype, dest, charge, unit, x.data.size)
    if f == "softmax":
        _need_tensor(x, f, e)
        if x.data.ndim == 0 or x.data.shape[-1] == 0:
            raise _fail("E1011", f"softmax() needs a tensor with non-empty rows, not {_shape(x)}", e.span)
        shifted = xf - np.max(xf, axis=-1, keepdims=True)
        ex = np.exp(shifted)
        result = ex / np.sum(ex, axis=-1, keepdims=True)
        return _vector(eng, "softmax", e, [x], result, x.dtype, dest, charge, unit, x.data.size)
    if f == "where":
        c, a, b = args
        cf = c.data.astype(bool) if isinstance(c, TV) else bool(c)
        af = _f(a) if isinstance(a, TV) else a
        bf = _f(b) if isinstance(b, TV) else b
        result = np.where(cf, af, bf)
        dtype = promote(_dtype_of(a), _dtype_of(b))
        return _vector(eng, "where", e, args, result, dtype, dest, charge, unit, np.size(result))
    if f == "causal":
        _need_tensor(x, f, e)
        i = eng._static_int(e.args[1], "the row offset of causal()")
        j = eng._static_int(e.args[2], "the column offset of causal()")
        rows = np.arange(x.data.shape[-2])[:, None] if x.data.ndim >= 2 else np.zeros((1, 1), int)
        cols = np.arange(x.data.shape[-1])[None, :]
        result = np.where(j + cols > i + rows, -np.inf, xf)
        return _vector(eng, "causal", e, [x], result, x.dtype, dest, charge, unit, x.data.size)
    if f == "dot":
        dtype = promote(_dtype_of(args[0]), _dtype_of(args[1]))
        return _matmul(eng, e, args[0], args[1], dtype, dest, charge, unit)
    if f == "transpose":
        _need_tensor(x, f, e)
        return TV(np.swapaxes(x.data, -1, -2) if x.data.ndim >= 2 else x.data, x.dtype, x.buf)
    raise _fail("E1017", f"unknown function '{f}'", e.func_span)


def _need_tensor(x, f, e):
    if not isinstance(x, TV):
        raise _fail("E1017", f"{f}() needs a tensor", e.span)


def _alloc(eng, e: ast.Call, charge):
    """full(shape, value[, dtype]), zeros(shape[, dtype]), ones(shape[, dtype])."""
    a = ops.alloc_args(e)
    if isinstance(a, str):
        raise _fail("E1017", a, e.span)
    dtype, items = a.dtype, a.shape
    shape = tuple(eng._static_int(i, "a dimension") for i in items)
    if any(s < 0 for s in shape):
        raise _fail("E1011", f"a shape cannot be negative: {list(shape)}", e.args[0].span)
    fill = {"zeros": 0.0, "ones": 1.0}.get(e.func)
    if fill is None:
        fill = float(eng._static(a.value))
    vec = eng.hw.default_unit("vector")
    memory = (vec.memory if vec else None) or eng.root
    nbytes = cost.tensor_bytes(int(np.prod(shape)), dtype)
    buf = Buffer(memory, nbytes, 0.0)
    eng.m.allocate(buf, charge, e.span)
    eng.temps.append(buf)
    return TV(round_to(np.full(shape, fill, dtype=np.float32), dtype), dtype, buf)


class _Dispatch(dict):
    """Node type -> evaluator; a node that is not an expression (a list) has the error of _other."""

    def __missing__(self, key):
        return _other


_EVAL = _Dispatch({ast.Num: _num, ast.QuantityLit: _quantity, ast.Name: _name, ast.OnUnit: _on_unit,
                   ast.Unary: _unary, ast.Binary: _binary, ast.Call: _call, ast.Index: _index, ast.Attr: _attr})
