"""Tile arithmetic as native loops: elementwise operations with broadcasting,
row and full reductions, softmax, matmul (BLAS where NumPy ships it), copies,
and exact rounding to f16, bf16 and i32.

A View is a tile's data at compile time: a pointer, an element offset (an
IR value), a static shape and static strides in elements. f64 tiles hold
doubles; every other dtype is held in float32, rounded to its dtype after
each operation, as the interpreter does.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ..dtypes import INT_RANGE
from .irkit import F32, F64, I32, I64, Fn, i64


@dataclass(frozen=True)
class View:
    ptr: object  # float* or double*
    off: object  # i64 IR value
    shape: tuple
    strides: tuple
    elem: object  # F32 or F64

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


def contiguous_strides(shape: tuple) -> tuple:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= s
    return tuple(reversed(out))


def elem_of(dtype: str):
    return F64 if dtype == "f64" else F32


def broadcast_shapes(*shapes: tuple) -> tuple | None:
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(rank):
        size = 1
        for s in shapes:
            k = axis - (rank - len(s))
            if k < 0:
                continue
            d = s[k]
            if d != 1:
                if size not in (1, d):
                    return None
                size = d
        out.append(size)
    return tuple(out)


def broadcast_view(v: View, shape: tuple) -> View:
    """v read as a tile of `shape` (numpy broadcasting: size-1 and missing axes get stride 0)."""
    pad = len(shape) - len(v.shape)
    strides = [0] * pad + [0 if d == 1 and shape[pad + k] != 1 else st for k, (d, st) in
                           enumerate(zip(v.shape, v.strides, strict=True))]
    return View(v.ptr, v.off, shape, tuple(strides), v.elem)


class Tiles:
    """Emitters for one function."""

    def __init__(self, fn: Fn, blas: bool):
        self.fn = fn
        self.b = fn.b
        self.blas = blas
        self.m = fn.func.module
        self._decl: dict[str, ir.Function] = {}

    def on(self, fn: Fn) -> Tiles:
        """Emitters for another function of the same module, sharing its declarations."""
        t = Tiles(fn, self.blas)
        t._decl = self._decl
        return t

    # ------------------------------------------------------------ access
    def addr(self, v: View, idxs):
        b = self.b
        off = v.off
        for i, st in zip(idxs, v.strides, strict=True):
            if st:
                off = b.add(off, b.mul(i, i64(st)) if st != 1 else i)
        return b.gep(v.ptr, [off])

    def load(self, v: View, idxs, ct):
        x = self.b.load(self.addr(v, idxs))
        return self.convert(x, ct)

    def convert(self, x, ct):
        if x.type == ct:
            return x
        return self.b.fpext(x, ct) if ct == F64 else self.b.fptrunc(x, ct)

    def nest(self, shape: tuple, body, idxs=()):
        """Loops over every index of shape; body(idxs)."""
        if len(idxs) == len(shape):
            body(tuple(idxs))
            return
        with self.fn.loop(0, shape[len(idxs)]) as i:
            self.nest(shape, body, (*idxs, i))

    # ------------------------------------------------------------ functions
    def intrinsic(self, name: str, ty):
        key = f"{name}.{ty}"
        if key not in self._decl:
            nargs = 2 if name in ("maximum", "minimum", "maxnum", "minnum", "pow") else 1
            self._decl[key] = self.m.declare_intrinsic(f"llvm.{name}", [ty], ir.FunctionType(ty, [ty] * nargs))
        return self._decl[key]

    def call1(self, name: str, x):
        return self.b.call(self.intrinsic(name, x.type), [x])

    def exp(self, x):
        if x.type == F64:
            return self.call1("exp", x)
        return self._expf(x)

    def _expf(self, x):
        """exp of a float32 with the Cephes polynomial: plain arithmetic, so loops of it vectorize."""
        b = self.b
        c = lambda v: ir.Constant(F32, v)  # noqa: E731
        hi, lo = 88.72283935546875, -103.97207641601562
        xs = b.select(b.fcmp_ordered(">", x, c(hi)), c(hi), x)
        xs = b.select(b.fcmp_ordered("<", xs, c(lo)), c(lo), xs)
        xs = b.select(b.fcmp_unordered("uno", x, x), c(0.0), xs)
        fx = self.call1("floor", b.fadd(b.fmul(xs, c(1.44269504088896341)), c(0.5)))
        r = b.fsub(b.fsub(xs, b.fmul(fx, c(0.693359375))), b.fmul(fx, c(-2.12194440e-4)))
        z = b.fmul(r, r)
        y = c(1.9875691500e-4)
        for k in (1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1):
            y = b.fadd(b.fmul(y, r), c(k))
        y = b.fadd(b.fadd(b.fmul(y, z), r), c(1.0))
        n = b.fptosi(fx, I32)
        n1 = b.ashr(n, ir.Constant(I32, 1))
        n2 = b.sub(n, n1)
        p1 = b.bitcast(b.shl(b.add(n1, ir.Constant(I32, 127)), ir.Constant(I32, 23)), F32)
        p2 = b.bitcast(b.shl(b.add(n2, ir.Constant(I32, 127)), ir.Constant(I32, 23)), F32)
        res = b.fmul(b.fmul(y, p1), p2)
        res = b.select(b.fcmp_ordered(">", x, c(hi)), c(float("inf")), res)
        res = b.select(b.fcmp_ordered("<", x, c(lo)), c(0.0), res)
        return b.select(b.fcmp_unordered("uno", x, x), x, res)

    def round_to(self, x, dtype: str):
        """values.round_to for one element (x in its compute type)."""
        b = self.b
        if dtype in ("f32", "f64"):
            return x
        if dtype in INT_RANGE:  # values.round_to: toward zero, saturated, NaN is 0
            lo, hi = INT_RANGE[dtype]
            t = self.call1("trunc", x)
            t = self.b.call(self.intrinsic("maxnum", x.type), [t, ir.Constant(x.type, float(lo))])
            t = self.b.call(self.intrinsic("minnum", x.type), [t, ir.Constant(x.type, float(hi))])
            return b.select(b.fcmp_unordered("uno", x, x), ir.Constant(x.type, 0.0), t)
        if x.type == F64:
            x = b.fptrunc(x, F32)
        bits = b.bitcast(x, I32)
        k = lambda v: ir.Constant(I32, v)  # noqa: E731
        nan = b.fcmp_unordered("uno", x, x)
        if dtype == "bf16":
            r = b.and_(b.add(b.add(bits, k(0x7FFF)), b.and_(b.lshr(bits, k(16)), k(1))), k(0xFFFF0000 - 2**32))
            return b.select(nan, x, b.bitcast(r, F32))
        # f16: round the float32 to 11 significant bits, or to a multiple of 2^-24 below 2^-14
        sign = b.and_(bits, k(0x80000000 - 2**32))
        mag = b.and_(bits, k(0x7FFFFFFF))
        normal = b.and_(b.add(b.add(mag, k(0xFFF)), b.and_(b.lshr(mag, k(13)), k(1))), k(0xFFFFE000 - 2**32))
        normal = b.select(b.icmp_unsigned(">=", normal, k(0x47800000)), k(0x7F800000), normal)
        absx = b.bitcast(mag, F32)
        sub = b.fmul(self.call1("rint", b.fmul(absx, ir.Constant(F32, 2.0**24))), ir.Constant(F32, 2.0**-24))
        mag_r = b.select(b.icmp_unsigned("<", mag, k(0x38800000)), b.bitcast(sub, I32), normal)
        out = b.bitcast(b.or_(sign, mag_r), F32)
        return b.select(nan, x, out)

    def store(self, out: View, idxs, x, dtype: str):
        x = self.round_to(x, dtype)
        self.b.store(self.convert(x, out.elem), self.addr(out, idxs))

    # ------------------------------------------------------------ operations
    def elementwise(self, out: View, operands: list, op, ct, dtype: str) -> None:
        """out[idx] = round(op([operand values])) with broadcasting; operands are Views or scalars (IR values
        in ct)."""
        views = [broadcast_view(o, out.shape) if isinstance(o, View) else o for o in operands]

        def body(idxs):
            vals = [self.load(v, idxs, ct) if isinstance(v, View) else v for v in views]
            self.store(out, idxs, op(vals), dtype)

        self.nest(out.shape, body)

    def copy(self, dst: View, src: View, dtype: str) -> None:
        """dst = round(src broadcast to dst's shape)."""
        ct = F64 if F64 in (dst.elem, src.elem) else F32
        self.elementwise(dst, [src], lambda v: v[0], ct, dtype)

    def fill(self, dst: View, value, dtype: str) -> None:
        self.elementwise(dst, [], lambda v: value, dst.elem, dtype)

    def reduce(self, out: View, x: View, kind: str, ct, dtype: str, rows: bool) -> None:
        """rowmax/rowmin/rowsum over the last axis (rows=True) or max/min/sum/mean over everything."""
        b = self.b
        if rows:
            outer, inner = x.shape[:-1], x.shape[-1:]
        else:
            outer, inner = (), x.shape
        count = 1
        for s in inner:
            count *= s
        init = {"max": float("-inf"), "min": float("inf"), "add": 0.0}[_red(kind)]

        def body(oidx):
            acc = self.fn.var(ct)
            b.store(ir.Constant(ct, init), acc)

            def step(iidx):
                v = self.load(x, (*oidx, *iidx), ct)
                a = b.load(acc)
                if _red(kind) == "add":
                    r = b.fadd(a, v, flags=("reassoc",))
                else:
                    r = b.call(self.intrinsic("maximum" if _red(kind) == "max" else "minimum", ct), [a, v])
                b.store(r, acc)

            self.nest(inner, step)
            r = b.load(acc)
            if kind == "mean":
                r = b.fdiv(r, ir.Constant(ct, float(count)))
            self.store(out, oidx if rows else (), r, dtype)

        self.nest(outer, body)

    def softmax(self, out: View, x: View, ct, dtype: str) -> None:
        b = self.b
        n = x.shape[-1]

        def body(oidx):
            mx = self.fn.var(ct, ir.Constant(ct, float("-inf")))
            with self.fn.loop(0, n) as j:
                b.store(b.call(self.intrinsic("maximum", ct), [b.load(mx), self.load(x, (*oidx, j), ct)]), mx)
            m = b.load(mx)
            tot = self.fn.var(ct, ir.Constant(ct, 0.0))
            tmp = View(out.ptr, out.off, out.shape, out.strides, out.elem)
            with self.fn.loop(0, n) as j:
                e = self.exp(b.fsub(self.load(x, (*oidx, j), ct), m))
                b.store(b.fadd(b.load(tot), e, flags=("reassoc",)), tot)
                b.store(self.convert(e, out.elem), self.addr(tmp, (*oidx, j)))
            t = b.load(tot)
            with self.fn.loop(0, n) as j:
                e = self.load(tmp, (*oidx, j), ct)
                self.store(out, (*oidx, j), b.fdiv(e, t), dtype)

        self.nest(x.shape[:-1], body)

    def causal(self, out: View, x: View, i, j, ct, dtype: str) -> None:
        """where(j + col > i + row, -inf, x) over the last two axes."""
        b = self.b
        rank = len(x.shape)

        def body(idxs):
            row, col = idxs[rank - 2], idxs[rank - 1]
            masked = b.icmp_signed(">", b.add(j, col), b.add(i, row))
            v = self.load(x, idxs, ct)
            self.store(out, idxs, b.select(masked, ir.Constant(ct, float("-inf")), v), dtype)

        self.nest(out.shape, body)

    # ------------------------------------------------------------ matmul
    def matmul(self, out: View, a: View, bv: View, ct, dtype: str, scratch) -> None:
        """out = a @ b for tiles of rank >= 2 with equal batch axes; scratch(n, elem) gives a contiguous
        temporary View of n elements (for operands BLAS cannot read in place)."""
        batch = a.shape[:-2]
        m, k = a.shape[-2:]
        n = bv.shape[-1]
        gemm = ("attn_dgemm" if ct == F64 else "attn_sgemm") if self.blas else None
        if m == 0 or n == 0:
            return
        if k == 0:
            self.fill(out, ir.Constant(out.elem, 0.0), dtype)
            return
        if gemm is not None and (a.elem != ct or bv.elem != ct or out.elem != ct):
            gemm = None

        def body(bidx):
            av = View(a.ptr, self._off(a, bidx), (m, k), a.strides[-2:], a.elem)
            bb = View(bv.ptr, self._off(bv, bidx), (k, n), bv.strides[-2:], bv.elem)
            ov = View(out.ptr, self._off(out, bidx), (m, n), out.strides[-2:], out.elem)
            if gemm is None:
                self._matmul_loops(ov, av, bb, ct)
            else:
                self._gemm(gemm, ov, av, bb, ct, scratch)

        self.nest(batch, body)
        if dtype not in ("f32", "f64"):
            self.elementwise(out, [out], lambda v: v[0], ct, dtype)

    def _off(self, v: View, bidx):
        off = v.off
        for i, st in zip(bidx, v.strides[:len(bidx)], strict=True):
            if st:
                off = self.b.add(off, self.b.mul(i, i64(st)))
        return off

    def _blas_layout(self, v: View):
        """(transpose?, leading dimension) when BLAS can read v in place, else None."""
        r, c = v.shape
        sr, sc = v.strides
        if sc == 1 or c == 1:
            ld = sr if r > 1 else max(c, 1)
            if c == 1 and r > 1 and sr >= 1:
                ld = sr
            if ld >= max(c, 1):
                return False, ld
        if sr == 1 or r == 1:
            ld = sc if c > 1 else max(r, 1)
            if ld >= max(r, 1):
                return True, ld
        return None

    def _gemm(self, name, ov: View, av: View, bb: View, ct, scratch) -> None:
        b = self.b
        m, k = av.shape
        n = bb.shape[1]
        ops = []
        for v in (av, bb):
            lay = self._blas_layout(v)
            if lay is None:
                tmp = scratch(v.size, v.elem)
                self.copy(tmp_view := View(tmp.ptr, tmp.off, v.shape, contiguous_strides(v.shape), v.elem), v, "f32"
                          if ct == F32 else "f64")
                v, lay = tmp_view, (False, max(v.shape[1], 1))
            ops.append((v, lay))
        fn = self._gemm_decl(name, ct)
        (a, (ta, lda)), (bm, (tb, ldb)) = ops
        pt = ct.as_pointer()
        args = [ir.Constant(I32, 101), ir.Constant(I32, 112 if ta else 111), ir.Constant(I32, 112 if tb else 111),
                i64(m), i64(n), i64(k), ir.Constant(ct, 1.0), b.bitcast(b.gep(a.ptr, [a.off]), pt), i64(lda),
                b.bitcast(b.gep(bm.ptr, [bm.off]), pt), i64(ldb), ir.Constant(ct, 0.0),
                b.bitcast(b.gep(ov.ptr, [ov.off]), pt), i64(ov.strides[0] if m > 1 else max(n, 1))]
        b.call(fn, args)

    def _gemm_decl(self, name, ct):
        if name not in self._decl:
            pt = ct.as_pointer()
            ty = ir.FunctionType(ir.VoidType(), [I32, I32, I32, I64, I64, I64, ct, pt, I64, pt, I64, ct, pt, I64])
            self._decl[name] = ir.Function(self.m, ty, name=name)
        return self._decl[name]

    def _matmul_loops(self, ov: View, av: View, bb: View, ct) -> None:
        b = self.b
        m, k = av.shape
        n = bb.shape[1]
        with self.fn.loop(0, m) as i:
            with self.fn.loop(0, n) as j:
                b.store(ir.Constant(ov.elem, 0.0), self.addr(ov, (i, j)))
            with self.fn.loop(0, k) as p:
                aip = self.load(av, (i, p), ct)
                with self.fn.loop(0, n) as j:
                    ptr = self.addr(ov, (i, j))
                    acc = self.convert(b.load(ptr), ct)
                    acc = b.fadd(acc, b.fmul(aip, self.load(bb, (p, j), ct)))
                    b.store(self.convert(acc, ov.elem), ptr)


def _red(kind: str) -> str:
    return {"rowmax": "max", "max": "max", "rowmin": "min", "min": "min"}.get(kind, "add")


__all__ = ["View", "Tiles", "contiguous_strides", "elem_of", "broadcast_shapes", "broadcast_view"]
