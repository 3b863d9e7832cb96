"""Expression evaluation for the reference engine: numbers and costs together."""

from __future__ import annotations

import math

import numpy as np

from .. import cost, ops
from ..diagnostics import AttnError, error
from ..syntax import ast
from .machine import Buffer
from .values import TV, promote, round_to

_STATIC_FUNCS = {"sqrt": math.sqrt, "exp": math.exp, "log": math.log, "abs": abs, "max": max, "min": min}


def _fail(code, message, span):
    return AttnError(error(code, message, span))


def evaluate(eng, e, dest: float, charge: int, unit):
    """A TV for a tensor expression, a Python number for a static one."""
    if isinstance(e, ast.Num):
        return e.value
    if isinstance(e, ast.QuantityLit):
        return e.quantity.value
    if isinstance(e, ast.Name):
        if e.id in eng.names:
            tv = eng.names[e.id]
            eng._use(tv.buf, e.span)
            return tv
        if e.id in eng.env:
            return eng.env[e.id]
        if e.id == "inf":
            return math.inf
        if e.id in eng.tensors:
            raise _fail("E1014", f"'{e.id}' lives in {eng.root}; load a tile of it first", e.span)
        raise _fail("E1010", f"'{e.id}' has no value here", e.span)
    if isinstance(e, ast.OnUnit):
        index = eng._static_int(e.unit.index, "a unit index") if e.unit.index is not None else None
        return evaluate(eng, e.expr, dest, charge, (e.unit.name, index))
    if isinstance(e, ast.Unary):
        x = evaluate(eng, e.operand, 0.0, 1, unit)
        if not isinstance(x, TV):
            return eng._static(e)
        if e.op == "not":
            raise _fail("E1015", "'not' needs a static condition", e.span)
        return _vector(eng, "neg", e, [x], -_f(x), x.dtype, dest, charge, unit, x.data.size)
    if isinstance(e, ast.Binary):
        return _binary(eng, e, dest, charge, unit)
    if isinstance(e, ast.Call):
        return _call(eng, e, dest, charge, unit)
    if isinstance(e, ast.Index):
        base = evaluate(eng, e.base, 0.0, 1, unit)
        if not isinstance(base, TV):
            raise _fail("E1016", "only tensors can be indexed", e.span)
        key = eng._subscripts(e.items, base.data.shape, _label(e.base), e.span)
        return TV(base.data[key], base.dtype, base.buf)
    if isinstance(e, ast.Attr):
        base = evaluate(eng, e.base, 0.0, 1, unit)
        if e.name != "T" or not isinstance(base, TV):
            raise _fail("E1016", f"'.{e.name}' is not defined here ('.T' transposes a tensor)", e.span)
        return TV(np.swapaxes(base.data, -1, -2) if base.data.ndim >= 2 else base.data, base.dtype, base.buf)
    raise _fail("E1016", "a list is only meaningful as a shape, in full(), zeros() or ones()", e.span)


def _f(tv):
    return tv.data.astype(np.float64 if tv.dtype == "f64" else np.float32, copy=False)


def _label(e) -> str:
    return e.id if isinstance(e, ast.Name) else "the value"


def _dtype_of(x):
    return getattr(x, "dtype", None) if not isinstance(x, (int, float)) else None


def _binary(eng, e: ast.Binary, dest, charge, unit):
    fused = _fma(eng, e, dest, charge, unit)
    if fused is not None:
        return fused
    a = evaluate(eng, e.left, 0.0, 1, unit)
    b = evaluate(eng, e.right, 0.0, 1, unit)
    if not isinstance(a, TV) and not isinstance(b, TV):
        return eng._static(e)
    if e.op in ("and", "or"):
        raise _fail("E1015", f"'{e.op}' needs static conditions", e.span)
    dtype = promote(_dtype_of(a), _dtype_of(b))
    xa = _f(a) if isinstance(a, TV) else a
    xb = _f(b) if isinstance(b, TV) else b
    if e.op == "@":
        return _matmul(eng, e, a, b, dtype, dest, charge, unit)
    if True:  # floating-point warnings are silenced for the whole run (interp.execute)
        if e.op in ("==", "!=", "<", "<=", ">", ">="):
            result = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
                      ">": np.greater, ">=": np.greater_equal}[e.op](xa, xb)
            return _vector(eng, "cmp", e, [a, b], result, "i8", dest, charge, unit, np.size(result))
        fn = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "%": np.mod,
              "//": np.floor_divide, "**": np.power}[e.op]
        try:
            result = fn(xa, xb)
        except ValueError:
            raise _fail("E1011", f"cannot broadcast shapes {_shape(a)} and {_shape(b)} for '{e.op}'", e.span) \
                from None
    return _vector(eng, ops.BINARY_OPS[e.op], e, [a, b], result, dtype, dest, charge, unit, np.size(result))


def _fma(eng, e: ast.Binary, dest, charge, unit):
    """a * b + c as one op where the unit that would run the add has `op fma`."""
    parts = ops.fma_parts(e)
    if parts is None:
        return None
    u, _ = eng.unit_for("add", e, unit)
    if not u.has_op("fma"):
        return None
    vals = [evaluate(eng, x, 0.0, 1, unit) for x in parts]
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
    macs = batch * m * k * n
    cycles = cost.matmul_cycles(m, k, n, u.rows, u.cols, batch)
    eng.m.c.macs += macs
    return _issue(eng, u, inst, "matmul", e, [a, b], result, dtype, dest, charge, cycles,
                  cost.mac_energy_pj(macs, u.mac_pj))


def _vector(eng, op, e, operands, result, dtype, dest, charge, unit, elements):
    op = ops.ELEMENTWISE_FUNCS.get(op, op)
    u, inst = eng.unit_for(op, e, unit)
    cycles, energy = ops.vector_cost(op, u, elements)
    eng.m.c.vector_ops += elements
    return _issue(eng, u, inst, op, e, operands, result, dtype, dest, charge, cycles, energy)


def _issue(eng, u, inst, op, e, operands, result, dtype, dest, charge, cycles, energy):
    """Schedule one operation on a unit instance, charge its reads and its result."""
    tvs = [o for o in operands if isinstance(o, TV)]
    ready = max([dest, eng.clock] + [o.buf.ready for o in tvs])
    _, end = eng.m.unit_op(u, inst, cycles, ready, energy, op, e.span)
    for o in tvs:
        eng.m.unit_reads(o.buf.memory, cost.tensor_bytes(o.data.size, o.dtype))
        o.buf.last_read = max(o.buf.last_read, end)
    memory = u.memory or eng.root
    nbytes = cost.tensor_bytes(np.size(result), dtype)
    eng.m.unit_writes(memory, nbytes)
    buf = Buffer(memory, nbytes, end)
    eng.m.allocate(buf, charge, e.span)
    buf.pinned = True
    eng.temps.append(buf)
    data = result if dtype == "i8" else round_to(result, dtype)
    return TV(np.asarray(data), dtype, buf)


def _call(eng, e: ast.Call, dest, charge, unit):
    f = e.func
    if f in ("full", "zeros", "ones"):
        return _alloc(eng, e, charge)
    args = [evaluate(eng, a, 0.0, 1, unit) for a in e.args]
    if not any(isinstance(a, TV) for a in args):
        if f in _STATIC_FUNCS:
            return eng._static(e)
        raise _fail("E1017", f"{f}() needs a tensor argument", e.span)
    arity = {"softmax": 1, "exp": 1, "log": 1, "sqrt": 1, "abs": 1, "rowmax": 1, "rowmin": 1, "rowsum": 1,
             "sum": 1, "mean": 1, "transpose": 1, "where": 3, "causal": 3, "dot": 2}
    if f in arity and len(args) != arity[f] or f in ("max", "min") and len(args) not in (1, 2):
        raise _fail("E1017", f"{f}() takes {arity.get(f, '1 or 2')} arguments, not {len(args)}", e.span)
    x = args[0]
    xf = _f(x) if isinstance(x, TV) else x
    if True:  # floating-point warnings are silenced for the whole run (interp.execute)
        if f in ("exp", "log", "sqrt", "abs"):
            result = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs}[f](xf)
            return _vector(eng, f, e, [x], result, x.dtype, dest, charge, unit, np.size(result))
        if f in ("max", "min") and len(args) == 2:
            y = args[1]
            yf = _f(y) if isinstance(y, TV) else y
            try:
                result = (np.maximum if f == "max" else np.minimum)(xf, yf)
            except ValueError:
                raise _fail("E1011", f"cannot broadcast shapes {_shape(x)} and {_shape(y)} in {f}()", e.span) \
                    from None
            dtype = promote(_dtype_of(x), _dtype_of(y))
            return _vector(eng, f, e, args, result, dtype, dest, charge, unit, np.size(result))
        if f in ("rowmax", "rowmin", "rowsum", "sum", "mean", "max", "min"):
            _need_tensor(x, f, e)
            red = {"rowmax": np.max, "rowmin": np.min, "rowsum": np.sum, "sum": np.sum, "mean": np.mean,
                   "max": np.max, "min": np.min}[f]
            axis = -1 if f.startswith("row") else None
            if x.data.ndim == 0 or x.data.size == 0:
                raise _fail("E1011", f"{f}() needs a non-empty tensor with at least one axis", e.span)
            result = red(xf, axis=axis)
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
