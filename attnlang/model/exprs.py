"""Tensor expressions in the model: attnlang/interp/evaluate.py with shapes instead of data."""

from __future__ import annotations

from .. import ops
from ..diagnostics import did_you_mean
from ..runtime import name_value
from ..syntax import ast
from ..syntax.vocab import BUILTINS, STATIC_FUNCS, arity_message
from .statics import aeval, elements, model_error
from .times import AVal

_NO_DEST = (None, [], 0)


def _fail(code: str, message: str, span):
    """runtime.name_value's failure as the model's error (E1401, whatever the engines' code)."""
    return model_error(message, span)


def evaluate(w, e, dest, charge, unit):
    """An AVal for a tensor expression, a number (or array of them) for a static one."""
    t = type(e)
    if t is ast.Name:
        v = w.f.names.get(e.id)
        if v is not None:
            return v
        return name_value(e.id, w.env, w.inputs, w.root, _fail, e.span)
    if t is ast.Num or t is ast.QuantityLit:
        return aeval(e, w.env)
    if t is ast.Binary:
        return _binary(w, e, dest, charge, unit)
    if t is ast.Call:
        return _call(w, e, dest, charge, unit)
    if t is ast.Index:
        base = evaluate(w, e.base, _NO_DEST, 1, unit)
        if not isinstance(base, AVal):
            raise model_error("only tensors can be indexed", e.span)
        return AVal(w._subscript(base.shape, e.items), base.dtype, base.buf)
    if t is ast.Attr:
        base = evaluate(w, e.base, _NO_DEST, 1, unit)
        if e.name != "T" or not isinstance(base, AVal):
            raise model_error(f"'.{e.name}' is not defined here ('.T' transposes a tensor)", e.span)
        return AVal(_swap(base.shape), base.dtype, base.buf)
    if t is ast.Unary:
        x = evaluate(w, e.operand, _NO_DEST, 1, unit)
        if not isinstance(x, AVal):
            return aeval(e, w.env)
        if e.op == "not":
            raise model_error("'not' needs a static condition", e.span)
        return w.vector("neg", e, [x], x.shape, x.dtype, dest, charge, unit, elements(x.shape))
    if t is ast.OnUnit:
        index = aeval(e.unit.index, w.env) if e.unit.index is not None else None
        return evaluate(w, e.expr, dest, charge, (e.unit.name, index))
    raise model_error("a list is only meaningful as a shape, in full(), zeros() or ones()", e.span)


def _swap(shape: tuple) -> tuple:
    return shape[:-2] + (shape[-1], shape[-2]) if len(shape) >= 2 else shape


def _dtype(x):
    return x.dtype if isinstance(x, AVal) else None


def _shape(x) -> tuple:
    return x.shape if isinstance(x, AVal) else ()


def broadcast(a: tuple, b: tuple) -> tuple:
    """NumPy's broadcasting on symbolic shapes (a literal 1 stretches; otherwise sizes agree)."""
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + a
    b = (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(a, b, strict=True):
        if type(x) is int and x == 1:
            out.append(y)
        elif type(y) is int and y == 1:
            out.append(x)
        else:
            out.append(x if type(x) is int else y)
    return tuple(out)


def _binary(w, e: ast.Binary, dest, charge, unit):
    a = evaluate(w, e.left, _NO_DEST, 1, unit)
    b = evaluate(w, e.right, _NO_DEST, 1, unit)
    ta, tb = isinstance(a, AVal), isinstance(b, AVal)
    if not ta and not tb:
        return aeval(e, w.env)
    if e.op in ("and", "or"):
        raise model_error(f"'{e.op}' needs static conditions", e.span)
    dtype = w.promote(_dtype(a), _dtype(b))
    if e.op == "@":
        return _matmul(w, e, a, b, dtype, dest, charge, unit)
    shape = broadcast(_shape(a), _shape(b))
    tensors = [x for x in (a, b) if isinstance(x, AVal)]
    if e.op in ("==", "!=", "<", "<=", ">", ">="):
        return w.vector("cmp", e, tensors, shape, "i8", dest, charge, unit, elements(shape))
    return w.vector(ops.BINARY_OPS[e.op], e, tensors, shape, dtype, dest, charge, unit, elements(shape))


def _matmul(w, e, a, b, dtype, dest, charge, unit):
    if not isinstance(a, AVal) or not isinstance(b, AVal):
        raise model_error("'@' needs two tensors", e.span)
    sa, sb = a.shape, b.shape
    if not sa or not sb:
        raise model_error("'@' needs tensors with at least one axis", e.span)
    m = sa[-2] if len(sa) >= 2 else 1
    k = sa[-1]
    n = sb[-1] if len(sb) >= 2 else 1
    lead = broadcast(sa[:-2], sb[:-2])
    if len(sa) == 1 and len(sb) == 1:
        shape = ()
    elif len(sa) == 1:
        shape = lead + (n,)
    elif len(sb) == 1:
        shape = lead + (m,)
    else:
        shape = lead + (m, n)
    batch = elements(shape[:-2]) if len(shape) > 2 else 1
    u, inst = w.unit_for("matmul", e, unit)
    timing, macs, energy = ops.matmul_cost(u, m, k, n, batch)
    w.f.macs = w.f.macs + macs
    return w.issue(u, inst, e, [a, b], shape, dtype, dest, charge, timing, energy)


def _call(w, e: ast.Call, dest, charge, unit):
    f = e.func
    if f in ("full", "zeros", "ones"):
        return w.alloc(e, charge)
    if f not in BUILTINS:  # before its arguments, as the runtime does
        raise model_error(f"unknown function '{f}'{did_you_mean(f, BUILTINS)}", e.func_span)
    args = [evaluate(w, a, _NO_DEST, 1, unit) for a in e.args]
    tensors = [a for a in args if isinstance(a, AVal)]
    if not tensors:
        if f in STATIC_FUNCS:
            return aeval(e, w.env)
        raise model_error(f"{f}() needs a tensor argument", e.span)
    wrong = arity_message(f, len(args))
    if wrong:
        raise model_error(wrong, e.span)
    x = args[0]
    if f in ("exp", "log", "sqrt", "abs"):
        return w.vector(f, e, [x], x.shape, x.dtype, dest, charge, unit, elements(x.shape))
    if f in ("max", "min") and len(args) == 2:
        shape = broadcast(_shape(x), _shape(args[1]))
        dtype = w.promote(_dtype(x), _dtype(args[1]))
        return w.vector(f, e, tensors, shape, dtype, dest, charge, unit, elements(shape))
    if f in ("rowmax", "rowmin", "rowsum", "sum", "mean", "max", "min"):
        _need(x, f, e)
        shape = x.shape[:-1] if f.startswith("row") else ()
        return w.vector(ops.unit_op_of("call", f, 1), e, [x], shape, x.dtype, dest, charge, unit,
                        elements(x.shape))
    if f == "softmax":
        _need(x, f, e)
        return w.vector("softmax", e, [x], x.shape, x.dtype, dest, charge, unit, elements(x.shape))
    if f == "where":
        c, a, b = args
        shape = broadcast(broadcast(_shape(c), _shape(a)), _shape(b))
        dtype = w.promote(_dtype(a), _dtype(b))
        return w.vector("where", e, tensors, shape, dtype, dest, charge, unit, elements(shape))
    if f == "causal":
        _need(x, f, e)
        return w.vector("causal", e, [x], x.shape, x.dtype, dest, charge, unit, elements(x.shape))
    if f == "dot":
        dtype = w.promote(_dtype(args[0]), _dtype(args[1]))
        return _matmul(w, e, args[0], args[1], dtype, dest, charge, unit)
    if f == "transpose":
        _need(x, f, e)
        return AVal(_swap(x.shape), x.dtype, x.buf)
    raise model_error(f"unknown function '{f}'", e.func_span)


def _need(x, f, e) -> None:
    if not isinstance(x, AVal):
        raise model_error(f"{f}() needs a tensor", e.span)
