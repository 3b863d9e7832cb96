"""The lowering's expressions: the compile-time mirror of attnlang/interp/evaluate.py.

Static values and run-time integers, subscripts and views, the unit an operation runs on, and each
operation (vector ops, binary ops, fused multiply-adds, matmuls, calls) with its cost.
"""

from __future__ import annotations

import dataclasses
import math

import llvmlite.ir as ir

from .. import cost, ops
from ..hardware import Unit
from ..static import StaticError, free_names, static_eval
from ..syntax import ast
from ..syntax.vocab import arity_message
from .irkit import F32, F64, f64, i64
from .tiles import View, broadcast_shapes, elem_of
from .values import (
    RAISE,
    RT,
    Desc,
    Unsupported,
    Val,
)


class ExprLowering:
    """Lowering's tensor expressions (mixed into Lowering)."""

    # ================================================================ expressions
    def scalar(self, v, ct):
        if isinstance(v, RT):
            return self.b.sitofp(self.as_i64(v.v), ct)
        if isinstance(v, bool):
            v = float(v)
        if not isinstance(v, (int, float)):
            raise Unsupported(f"the symbol '{v}' used as a number")
        return ir.Constant(ct, float(v))

    def ev(self, e, dest, charge, unit, hint=None):
        """A Val for a tensor expression; a Python value or RT for a static one."""
        if isinstance(e, ast.Num):
            return e.value
        if isinstance(e, ast.QuantityLit):
            return e.quantity.value
        if isinstance(e, ast.Name):
            if e.id in self.names:
                return self.name_val(e.id)
            if e.id in self.rt:
                return RT(self.b.load(self.rt[e.id]))
            if e.id in self.env:
                return self.env[e.id]
            if e.id == "inf":
                return math.inf
            raise Unsupported(f"'{e.id}' has no value here (load a tile of an input first)", e.span)
        if isinstance(e, ast.OnUnit):
            index = self.int_value(e.unit.index, "a unit index") if e.unit.index is not None else None
            return self.ev(e.expr, dest, charge, (e.unit.name, index), hint)
        if isinstance(e, ast.Unary):
            x = self.ev(e.operand, f64(0.0), 1, unit)
            if not isinstance(x, Val):
                return self.static_or_rt(e)
            if e.op == "not":
                raise Unsupported("'not' on a tensor", e.span)
            return self.vector("neg", e, [x], x.view.shape, x.dtype, dest, charge, unit, x.view.size,
                               lambda v: self.b.fneg(v[0]), hint)
        if isinstance(e, ast.Binary):
            return self.binary(e, dest, charge, unit, hint)
        if isinstance(e, ast.Call):
            return self.call(e, dest, charge, unit, hint)
        if isinstance(e, ast.Index):
            base = self.ev(e.base, f64(0.0), 1, unit)
            if not isinstance(base, Val):
                raise Unsupported("only tensors can be indexed", e.span)
            label = e.base.id if isinstance(e.base, ast.Name) else "the value"
            return Val(base.buf, self.subscripts(e.items, base.view, label, e.span), base.dtype, base.mem)
        if isinstance(e, ast.Attr):
            base = self.ev(e.base, f64(0.0), 1, unit)
            if e.name != "T" or not isinstance(base, Val):
                raise Unsupported(f"'.{e.name}'", e.span)
            return Val(base.buf, _transpose(base.view), base.dtype, base.mem)
        raise Unsupported("a list outside full(), zeros() or ones()", e.span)

    def subscripts(self, items, v: View, name: str, span) -> View:
        b = self.b
        off = v.off
        shape, strides = [], []
        axis = 0
        for it in items:
            if isinstance(it, ast.Name) and it.id == "None":
                shape.append(1)
                strides.append(0)
                continue
            if axis >= len(v.shape):
                raise Unsupported(f"too many subscripts for {name}", span)
            size, stride = v.shape[axis], v.strides[axis]
            if isinstance(it, ast.Slice):
                lo = self.int_value(it.lo, "a slice bound") if it.lo is not None else 0
                hi = self.int_value(it.hi, "a slice bound") if it.hi is not None else size
                if isinstance(lo, int) and isinstance(hi, int):
                    extent = hi - lo
                    if not 0 <= lo <= hi <= size:
                        raise Unsupported(f"slice {lo}:{hi} is outside axis {axis} of {name}", it.span)
                else:
                    extent = _extent(it.lo, it.hi, size, set(self.rt), self.env)
                    if extent is None:
                        raise Unsupported("a slice whose size changes with the loop index", it.span)
                    lo_v = i64(lo) if isinstance(lo, int) else lo
                    hi_v = i64(hi) if isinstance(hi, int) else hi
                    bad = b.or_(b.icmp_signed("<", lo_v, i64(0)),
                                b.or_(b.icmp_signed(">", lo_v, hi_v), b.icmp_signed(">", hi_v, i64(size))))
                    site = self.site("E1005", f"slice {{a:d}}:{{b:d}} is outside axis {axis} of {name}, which has "
                                              f"{size} elements", it.span)
                    self.fail_if(bad, RAISE, site, a=lo_v, b=hi_v)
                    if extent < 0:
                        raise Unsupported("a slice with a negative size", it.span)
                if stride:
                    off = b.add(off, b.mul(i64(lo) if isinstance(lo, int) else lo, i64(stride)))
                shape.append(extent)
                strides.append(stride)
            else:
                i = self.int_value(it, "an index")
                if isinstance(i, int):
                    if not -size <= i < size:
                        raise Unsupported(f"index {i} is outside axis {axis} of {name}", span)
                    i = i + size if i < 0 else i
                    iv = i64(i)
                else:
                    bad = b.or_(b.icmp_signed("<", i, i64(-size)), b.icmp_signed(">=", i, i64(size)))
                    site = self.site("E1005", f"index {{a:d}} is outside axis {axis} of {name}, which has {size} "
                                              "elements", span)
                    self.fail_if(bad, RAISE, site, a=i)
                    iv = b.select(b.icmp_signed("<", i, i64(0)), b.add(i, i64(size)), i)
                if stride:
                    off = b.add(off, b.mul(iv, i64(stride)))
            axis += 1
        shape += list(v.shape[axis:])
        strides += list(v.strides[axis:])
        return View(v.ptr, off, tuple(shape), tuple(strides), v.elem)

    # ----------------------------------------------------------- operations
    def unit_for(self, op: str, e, unit):
        """interp Engine._unit_for: `on U[i]`, else the process's unit when it can run op, else the unit
        ops.bind picks, at the @parallel lane or the index of the process's unit."""
        name, index = unit if unit else (None, None)
        if name is None and self.proc_unit is not None and not isinstance(ops.bind(op, self.hw, self.proc_unit[0]),
                                                                           str):
            name, index = self.proc_unit
        bnd = ops.bind(op, self.hw, name)
        if isinstance(bnd, str):
            raise Unsupported(bnd, e.span)
        u = bnd.unit
        if index is not None:
            if isinstance(index, int):
                if not 0 <= index < u.count:
                    raise Unsupported(f"{u.name}[{index}] is outside the array of {u.count}", e.span)
                return u, index
            bad = self.b.or_(self.b.icmp_signed("<", index, i64(0)), self.b.icmp_signed(">=", index, i64(u.count)))
            site = self.site("E1005", f"{u.name}[{{a:d}}] is outside the array of {u.count}", e.span)
            self.fail_if(bad, RAISE, site, a=index)
            return u, index
        lane = self.loops[-1].lane if self.loops else None
        if lane is None and self.proc_unit is not None and self.proc_unit[1] is not None:
            return u, self.proc_unit[1] % u.count
        if lane is None:
            return u, 0
        return u, self.b.urem(lane, i64(u.count))

    def result_view(self, shape: tuple, dtype: str, hint, operands) -> View:
        """Where an operation writes: the destination name's storage when nothing it reads lives there."""
        elem = elem_of(dtype if dtype != "i8" else "f32")
        if hint is not None:
            target = self.name_view(hint, Desc(shape, dtype, ""))
            if target.elem == elem and not any(isinstance(o, Val) and o.view.ptr is target.ptr for o in operands):
                return target
        return self.new_scratch(shape, elem)

    def issue(self, u: Unit, inst, e, operands, out_shape, dtype, dest, charge, timing, energy_pj):
        """interp.evaluate._issue: schedule on the unit, charge reads and the result; returns (buf, end)."""
        b = self.b
        tvs = [o for o in operands if isinstance(o, Val)]
        ready = self.fn.fmax(dest, self.clock())
        for o in tvs:
            ready = self.fn.fmax(ready, self.ready_of(o.buf))
        _, issued, end = self.unit_op(u, inst, timing, ready, energy_pj, e.span)
        for o in tvs:
            self.unit_reads(o.mem, cost.tensor_bytes(o.view.size, o.dtype))
            self.bump_last_read(o.buf, issued)
        memory = u.memory or self.root
        n = 1
        for s in out_shape:
            n *= s
        nbytes = cost.tensor_bytes(n, dtype)
        self.unit_writes(memory, nbytes)
        buf = self.new_buffer(memory, nbytes, end, charge, e.span)
        self.temps.append(buf)
        del b
        return buf, memory

    def vector(self, op, e, operands, out_shape, dtype, dest, charge, unit, elements, compute, hint=None,
               emit=None):
        """interp.evaluate._vector with the numbers: compute(values) per element, or emit(out) for the rest."""
        op = ops.ELEMENTWISE_FUNCS.get(op, op)
        u, inst = self.unit_for(op, e, unit)
        timing, energy = ops.vector_cost(op, u, elements)
        self.fn.fadd(self.L.f["vops"], f64(elements))
        out = self.result_view(tuple(out_shape), dtype, hint, operands)
        ct = F64 if any(isinstance(o, Val) and o.dtype == "f64" for o in operands) or dtype == "f64" else F32
        if emit is not None:
            emit(out, ct)
        else:
            vals = [o.view if isinstance(o, Val) else self.scalar(o, ct) for o in operands]
            self.t.elementwise(out, vals, compute, ct, dtype)
        buf, memory = self.issue(u, inst, e, operands, out.shape, dtype, dest, charge, timing, energy)
        return Val(buf, out, dtype, memory)

    def binary(self, e: ast.Binary, dest, charge, unit, hint):
        fused = self.fma(e, dest, charge, unit, hint)
        if fused is not None:
            return fused
        a = self.ev(e.left, f64(0.0), 1, unit)
        c = self.ev(e.right, f64(0.0), 1, unit)
        if not isinstance(a, Val) and not isinstance(c, Val):
            return self.static_or_rt(e)
        if e.op in ("and", "or"):
            raise Unsupported(f"'{e.op}' on tensors", e.span)
        dtype = ops.promote(_dt(a), _dt(c)) or "f32"
        if e.op == "@":
            return self.matmul(e, a, c, dtype, dest, charge, unit, hint)
        shape = broadcast_shapes(_shape(a), _shape(c))
        if shape is None:
            raise Unsupported(f"cannot broadcast shapes for '{e.op}'", e.span)
        size = _prod(shape)
        b = self.b
        if e.op in ("==", "!=", "<", "<=", ">", ">="):
            def cmp(v, op=e.op):
                r = b.fcmp_unordered("!=", v[0], v[1]) if op == "!=" else b.fcmp_ordered(op, v[0], v[1])
                return b.uitofp(r, v[0].type)
            return self.vector("cmp", e, [a, c], shape, "i8", dest, charge, unit, size, cmp, hint)
        fns = {"+": b.fadd, "-": b.fsub, "*": b.fmul, "/": b.fdiv}
        if e.op in fns:
            f = fns[e.op]
            compute = lambda v: f(v[0], v[1])  # noqa: E731
        elif e.op == "%":
            compute = self._mod
        elif e.op == "//":
            compute = lambda v: self.t.call1("floor", b.fdiv(v[0], v[1]))  # noqa: E731
        elif e.op == "**":
            compute = lambda v: b.call(self.t.intrinsic("pow", v[0].type), [v[0], v[1]])  # noqa: E731
        else:
            raise Unsupported(f"the operator '{e.op}'", e.span)
        return self.vector(ops.BINARY_OPS[e.op], e, [a, c], shape, dtype, dest, charge, unit, size, compute, hint)

    def _mod(self, v):
        b = self.b
        x, y = v
        r = b.frem(x, y)
        zero = ir.Constant(x.type, 0.0)
        fix = b.and_(b.fcmp_ordered("!=", r, zero), b.xor(b.fcmp_ordered("<", r, zero), b.fcmp_ordered("<", y, zero)))
        return b.select(fix, b.fadd(r, y), r)

    def fma(self, e, dest, charge, unit, hint):
        parts = ops.fma_parts(e)
        if parts is None:
            return None
        u, _ = self.unit_for("add", e, unit)
        if not u.has_op("fma"):
            return None
        vals = [self.ev(x, f64(0.0), 1, unit) for x in parts]
        if not any(isinstance(v, Val) for v in vals):
            return None
        shape = broadcast_shapes(*[_shape(v) for v in vals])
        if shape is None:
            raise Unsupported("cannot broadcast the shapes of a * b + c", e.span)
        dtype = ops.promote(ops.promote(_dt(vals[0]), _dt(vals[1])), _dt(vals[2])) or "f32"
        b = self.b
        return self.vector("fma", e, vals, shape, dtype, dest, charge, unit, _prod(shape),
                           lambda v: b.fadd(b.fmul(v[0], v[1]), v[2]), hint)

    def matmul(self, e, a, c, dtype, dest, charge, unit, hint):
        if not isinstance(a, Val) or not isinstance(c, Val):
            raise Unsupported("'@' needs two tensors", e.span)
        sa, sc = a.view.shape, c.view.shape
        if len(sa) < 2 or len(sc) < 2 or sa[:-2] != sc[:-2] or sa[-1] != sc[-2]:
            raise Unsupported(f"matmul of shapes {list(sa)} and {list(sc)} (the JIT compiles tiles of rank >= 2 "
                              "with equal batch axes)", e.span)
        m, k, n = sa[-2], sa[-1], sc[-1]
        out_shape = sa[:-2] + (m, n)
        batch = _prod(out_shape[:-2]) if len(out_shape) > 2 else 1
        u, inst = self.unit_for("matmul", e, unit)
        timing, macs, energy = ops.matmul_cost(u, m, k, n, batch)
        self.fn.fadd(self.L.f["macs"], f64(macs))
        out = self.result_view(out_shape, dtype, hint, [a, c])
        ct = F64 if dtype == "f64" else F32
        self.t.matmul(out, a.view, c.view, ct, dtype, lambda nel, elem: self.new_scratch((nel,), elem))
        buf, memory = self.issue(u, inst, e, [a, c], out_shape, dtype, dest, charge, timing, energy)
        return Val(buf, out, dtype, memory)

    def call(self, e: ast.Call, dest, charge, unit, hint):
        f = e.func
        if f in ("full", "zeros", "ones"):
            return self.alloc(e, charge, hint)
        args = [self.ev(a, f64(0.0), 1, unit) for a in e.args]
        if not any(isinstance(a, Val) for a in args):
            return self.static_or_rt(e)
        wrong = arity_message(f, len(args))
        if wrong:
            raise Unsupported(wrong, e.span)
        x = args[0]
        b, t = self.b, self.t
        if f in ("exp", "log", "sqrt", "abs"):
            _need(x, f, e)
            fnc = {"exp": t.exp, "log": lambda v: t.call1("log", v), "sqrt": lambda v: t.call1("sqrt", v),
                   "abs": lambda v: t.call1("fabs", v)}[f]
            return self.vector(f, e, [x], x.view.shape, x.dtype, dest, charge, unit, x.view.size,
                               lambda v: fnc(v[0]), hint)
        if f in ("max", "min") and len(args) == 2:
            y = args[1]
            shape = broadcast_shapes(_shape(x), _shape(y))
            if shape is None:
                raise Unsupported(f"cannot broadcast shapes in {f}()", e.span)
            dtype = ops.promote(_dt(x), _dt(y)) or "f32"
            name = "maximum" if f == "max" else "minimum"
            return self.vector(f, e, args, shape, dtype, dest, charge, unit, _prod(shape),
                               lambda v: b.call(t.intrinsic(name, v[0].type), [v[0], v[1]]), hint)
        if f in ("rowmax", "rowmin", "rowsum", "sum", "mean", "max", "min"):
            _need(x, f, e)
            if len(x.view.shape) == 0 or x.view.size == 0:
                raise Unsupported(f"{f}() of an empty tensor", e.span)
            rows = f.startswith("row")
            shape = x.view.shape[:-1] if rows else ()
            return self.vector(ops.unit_op_of("call", f, 1), e, [x], shape, x.dtype, dest, charge, unit,
                               x.view.size, None, hint,
                               emit=lambda out, ct: t.reduce(out, x.view, f, ct, x.dtype, rows))
        if f == "softmax":
            _need(x, f, e)
            if len(x.view.shape) == 0 or x.view.shape[-1] == 0:
                raise Unsupported("softmax() of an empty tensor", e.span)
            return self.vector("softmax", e, [x], x.view.shape, x.dtype, dest, charge, unit, x.view.size, None,
                               hint, emit=lambda out, ct: t.softmax(out, x.view, ct, x.dtype))
        if f == "where":
            cnd, a, c = args
            shape = broadcast_shapes(_shape(cnd), _shape(a), _shape(c))
            if shape is None:
                raise Unsupported("cannot broadcast shapes in where()", e.span)
            dtype = ops.promote(_dt(a), _dt(c)) or "f32"

            def sel(v):
                z = ir.Constant(v[0].type, 0.0)
                return b.select(b.fcmp_unordered("!=", v[0], z), _conv(b, v[1], v[0].type), _conv(b, v[2],
                                                                                                   v[0].type))
            return self.vector("where", e, args, shape, dtype, dest, charge, unit, _prod(shape), sel, hint)
        if f == "causal":
            _need(x, f, e)
            if len(x.view.shape) < 2:
                raise Unsupported("causal() of a tensor with fewer than two axes", e.span)
            i = self.int_value(e.args[1], "the row offset of causal()")
            j = self.int_value(e.args[2], "the column offset of causal()")
            iv, jv = (i64(i) if isinstance(i, int) else i), (i64(j) if isinstance(j, int) else j)
            return self.vector("causal", e, [x], x.view.shape, x.dtype, dest, charge, unit, x.view.size, None, hint,
                               emit=lambda out, ct: t.causal(out, x.view, iv, jv, ct, x.dtype))
        if f == "dot":
            dtype = ops.promote(_dt(args[0]), _dt(args[1])) or "f32"
            return self.matmul(e, args[0], args[1], dtype, dest, charge, unit, hint)
        if f == "transpose":
            _need(x, f, e)
            return Val(x.buf, _transpose(x.view), x.dtype, x.mem)
        raise Unsupported(f"the function {f}()", e.span)

    def alloc(self, e: ast.Call, charge, hint):
        a = ops.alloc_args(e)
        if isinstance(a, str):
            raise Unsupported(a, e.span)
        shape = tuple(self._static_int(i, "a dimension") for i in a.shape)
        if any(s < 0 for s in shape):
            raise Unsupported("a negative shape", e.span)
        fill = {"zeros": 0.0, "ones": 1.0}.get(e.func)
        if fill is None:
            fill = float(self._static_value(a.value))
        vec = self.hw.default_unit("vector")
        memory = (vec.memory if vec else None) or self.root
        nbytes = cost.tensor_bytes(_prod(shape), a.dtype)
        buf = self.new_buffer(memory, nbytes, f64(0.0), charge, e.span)
        self.temps.append(buf)
        out = self.result_view(shape, a.dtype, hint, [])
        self.t.fill(out, ir.Constant(out.elem, fill), a.dtype)
        return Val(buf, out, a.dtype, memory)


def _transpose(v: View) -> View:
    if len(v.shape) < 2:
        return v
    shape = v.shape[:-2] + (v.shape[-1], v.shape[-2])
    strides = v.strides[:-2] + (v.strides[-1], v.strides[-2])
    return View(v.ptr, v.off, shape, strides, v.elem)


def _dt(x):
    return x.dtype if isinstance(x, Val) else None


def _shape(x) -> tuple:
    return x.view.shape if isinstance(x, Val) else ()


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _need(x, f, e) -> None:
    if not isinstance(x, Val):
        raise Unsupported(f"{f}() needs a tensor", e.span)


def _conv(b, v, ty):
    if v.type == ty:
        return v
    return b.fpext(v, ty) if ty == F64 else b.fptrunc(v, ty)


def _extent(lo, hi, size, rt: set, env: dict):
    """hi - lo when it does not depend on the loop indices (an affine difference), else None."""
    a = _affine(hi, rt, env) if hi is not None else ({}, size)
    c = _affine(lo, rt, env) if lo is not None else ({}, 0)
    if a is None or c is None:
        return None
    coefs = dict(a[0])
    for k, v in c[0].items():
        coefs[k] = coefs.get(k, 0) - v
    if any(v for v in coefs.values()):
        return None
    return a[1] - c[1]


def _affine(e, rt: set, env: dict):
    """e as ({term: coefficient}, constant): a term is a loop index, or a part of e that is not affine in
    the indices ((p - t + m) % m), which stands for itself, so that hi - lo cancels it where both bounds
    hold it (x[(p - t + m) % m * B : ((p - t + m) % m + 1) * B] has extent B at every t). None where a
    part of e has no integer value."""
    if isinstance(e, ast.Name) and e.id in rt:
        return {e.id: 1}, 0
    if not (free_names(e) & rt):
        try:
            v = static_eval(e, env)
        except StaticError:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or float(v) != int(v):
            return None
        return {}, int(v)
    if isinstance(e, ast.Unary) and e.op == "-":
        x = _affine(e.operand, rt, env)
        return None if x is None else ({k: -v for k, v in x[0].items()}, -x[1])
    if isinstance(e, ast.Binary) and e.op in ("+", "-", "*"):
        x, y = _affine(e.left, rt, env), _affine(e.right, rt, env)
        if x is None or y is None:
            return None
        if e.op == "*":
            if x[0] and y[0]:
                return {_term(e): 1}, 0
            if not x[0]:
                x, y = y, x
            return {k: v * y[1] for k, v in x[0].items()}, x[1] * y[1]
        sign = 1 if e.op == "+" else -1
        coefs = dict(x[0])
        for k, v in y[0].items():
            coefs[k] = coefs.get(k, 0) + sign * v
        return coefs, x[1] + sign * y[1]
    return {_term(e): 1}, 0


def _term(e):
    """A key for an expression by its structure, not its place in the source (spans differ)."""
    if isinstance(e, (list, tuple)):
        return tuple(_term(x) for x in e)
    if not dataclasses.is_dataclass(e):
        return e
    return (type(e).__name__,) + tuple(_term(getattr(e, f.name)) for f in dataclasses.fields(e) if f.name != "span")
