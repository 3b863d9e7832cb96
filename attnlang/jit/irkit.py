"""Small IR-building helpers: types, loops, the run-time state arrays, and the
machine's run-time structures (buffer pool, port timelines) as IR functions.

Every compiled kernel gets three arrays from Python: P (pointers), F
(doubles: times, counters) and I (64-bit integers: counts, history rings).
`Layout` hands out their slots at compile time.
"""

from __future__ import annotations

from contextlib import contextmanager

import llvmlite.ir as ir

F64 = ir.DoubleType()
F32 = ir.FloatType()
I64 = ir.IntType(64)
I32 = ir.IntType(32)
I8 = ir.IntType(8)
I1 = ir.IntType(1)
VOIDP = I8.as_pointer()
PP = VOIDP.as_pointer()
F64P = F64.as_pointer()
F32P = F32.as_pointer()
I64P = I64.as_pointer()


def i64(v: int) -> ir.Constant:
    return ir.Constant(I64, int(v))


def f64(v: float) -> ir.Constant:
    return ir.Constant(F64, float(v))


class Layout:
    """Slots in P, F and I, named for reading them back."""

    def __init__(self) -> None:
        self.p: dict[str, int] = {}
        self.f: dict[str, int] = {}
        self.i: dict[str, int] = {}
        self._size = {"p": 0, "f": 0, "i": 0}

    def _slot(self, which: str, key: str, n: int) -> int:
        table = getattr(self, which)
        if key not in table:
            table[key] = self._size[which]
            self._size[which] += n
        return table[key]

    def P(self, key: str, n: int = 1) -> int:
        return self._slot("p", key, n)

    def F(self, key: str, n: int = 1) -> int:
        return self._slot("f", key, n)

    def I(self, key: str, n: int = 1) -> int:  # noqa: E743 - the name of the array
        return self._slot("i", key, n)

    def sizes(self) -> tuple[int, int, int]:
        return self._size["p"], self._size["f"], self._size["i"]


class Fn:
    """A function under construction: its builder, an alloca block, and the state arrays."""

    def __init__(self, module: ir.Module, name: str, ret, args: list, linkage: str = "internal"):
        self.func = ir.Function(module, ir.FunctionType(ret, [PP, F64P, I64P] + args), name=name)
        if linkage:
            self.func.linkage = linkage
        self.P, self.F, self.I = self.func.args[:3]
        self.args = self.func.args[3:]
        self.allocas = self.func.append_basic_block("allocas")
        start = self.func.append_basic_block("start")
        self.b = ir.IRBuilder(start)
        self._n = 0

    def finish(self) -> None:
        with self.b.goto_block(self.allocas):
            self.b.branch(self.func.basic_blocks[1])

    def var(self, ty, init=None):
        with self.b.goto_block(self.allocas):
            slot = self.b.alloca(ty)
        if init is not None:
            self.b.store(init, slot)
        return slot

    def block(self, name: str):
        self._n += 1
        return self.func.append_basic_block(f"{name}.{self._n}")

    # ---- state arrays
    def fget(self, idx):
        return self.b.load(self.b.gep(self.F, [_c(idx)]))

    def fset(self, idx, v) -> None:
        self.b.store(v, self.b.gep(self.F, [_c(idx)]))

    def fadd(self, idx, v) -> None:
        self.fset(idx, self.b.fadd(self.fget(idx), v))

    def iget(self, idx):
        return self.b.load(self.b.gep(self.I, [_c(idx)]))

    def iset(self, idx, v) -> None:
        self.b.store(v, self.b.gep(self.I, [_c(idx)]))

    def pget(self, idx, ty):
        return self.b.bitcast(self.b.load(self.b.gep(self.P, [_c(idx)])), ty)

    def pset(self, idx, v) -> None:
        self.b.store(self.b.bitcast(v, VOIDP), self.b.gep(self.P, [_c(idx)]))

    # ---- control flow
    @contextmanager
    def loop(self, lo, hi, step=1, idx=None):
        """for i in lo .. hi by step (step > 0); yields i (an i64). The counter lives in idx, an i64
        pointer, when one is given (a process keeps it in its frame: see streams.py)."""
        b = self.b
        lo, hi, step = _c(lo), _c(hi), _c(step)
        if idx is None:
            idx = self.var(I64)
        b.store(lo, idx)
        cond, body, end = self.block("for.cond"), self.block("for.body"), self.block("for.end")
        b.branch(cond)
        b.position_at_end(cond)
        i = b.load(idx)
        b.cbranch(b.icmp_signed("<", i, hi), body, end)
        b.position_at_end(body)
        yield i
        b.store(b.add(b.load(idx), step), idx)
        b.branch(cond)
        b.position_at_end(end)

    @contextmanager
    def while_(self, cond_fn):
        b = self.b
        cond, body, end = self.block("while.cond"), self.block("while.body"), self.block("while.end")
        b.branch(cond)
        b.position_at_end(cond)
        b.cbranch(cond_fn(), body, end)
        b.position_at_end(body)
        yield
        b.branch(cond)
        b.position_at_end(end)

    def fmax(self, a, c):
        """max(a, c) as Python's max does it for numbers that are not NaN: a unless c > a."""
        return self.b.select(self.b.fcmp_ordered(">", c, a), c, a)


def _c(v):
    return i64(v) if isinstance(v, int) else v


# ------------------------------------------------------------------ the run-time structures
class Runtime:
    """The buffer pool and port timelines, as IR functions in the module.

    Pool fields (one array each, grown with realloc): ready, last_read, nbytes
    (doubles) and refs, live, hist, mem (i64). A buffer id is recycled once no
    name, statement or pipeline history refers to it.
    """

    POOL_F = ("ready", "last", "nbytes")
    POOL_I = ("refs", "live", "hist", "mem")

    def __init__(self, module: ir.Module, layout: Layout):
        self.m = module
        self.L = layout
        for f in self.POOL_F + self.POOL_I + ("free",):
            layout.P(f"pool.{f}")
        for k in ("pool.n", "pool.cap", "free.n", "free.cap"):
            layout.I(k)
        self.occ_base = None
        self.realloc = ir.Function(module, ir.FunctionType(VOIDP, [VOIDP, I64]), name="realloc")
        self.free_fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [VOIDP]), name="free")
        self.memmove = ir.Function(module, ir.FunctionType(VOIDP, [VOIDP, VOIDP, I64]), name="memmove")
        self.timelines: list[str] = []

    def build(self, nmem_occ_base: int, nmem_peak_base: int) -> None:
        """Emit the helpers once every slot is known (occupancy and peak bases)."""
        self.occ_base, self.peak_base = nmem_occ_base, nmem_peak_base
        self._grow_fn()
        self._new_fn()
        self._maybe_free_fn()
        self._release_fn()
        self._drop_fn()
        self._alloc_fn()
        self._earliest_fn()
        self._reserve_fn()

    # pool field pointer helpers
    def fptr(self, fn: Fn, field: str, idx):
        return fn.b.gep(fn.pget(self.L.p[f"pool.{field}"], F64P), [idx])

    def iptr(self, fn: Fn, field: str, idx):
        return fn.b.gep(fn.pget(self.L.p[f"pool.{field}"], I64P), [idx])

    def _realloc_slot(self, fn: Fn, pslot: int, nbytes):
        b = fn.b
        old = b.load(b.gep(fn.P, [i64(pslot)]))
        new = b.call(self.realloc, [old, nbytes])
        b.store(new, b.gep(fn.P, [i64(pslot)]))
        return new

    def _grow_fn(self) -> None:
        """pool_grow() -> 0, or 1 when memory runs out."""
        fn = Fn(self.m, "pool_grow", I32, [])
        b = fn.b
        cap = fn.iget(self.L.i["pool.cap"])
        newcap = b.select(b.icmp_signed("<", cap, i64(1024)), i64(1024), b.mul(cap, i64(2)))
        bad = fn.var(I1, ir.Constant(I1, 0))
        for f in self.POOL_F + self.POOL_I:
            p = self._realloc_slot(fn, self.L.p[f"pool.{f}"], b.mul(newcap, i64(8)))
            b.store(b.or_(b.load(bad), b.icmp_unsigned("==", p, ir.Constant(VOIDP, None))), bad)
        p = self._realloc_slot(fn, self.L.p["pool.free"], b.mul(newcap, i64(8)))
        b.store(b.or_(b.load(bad), b.icmp_unsigned("==", p, ir.Constant(VOIDP, None))), bad)
        fn.iset(self.L.i["pool.cap"], newcap)
        b.ret(b.zext(b.load(bad), I32))
        fn.finish()
        self.grow = fn.func

    def _new_fn(self) -> None:
        """pool_new(mem, nbytes, ready) -> id (or -1 when memory runs out)."""
        fn = Fn(self.m, "pool_new", I64, [I64, F64, F64])
        b = fn.b
        mem, nbytes, ready = fn.args
        out = fn.var(I64)
        nfree = fn.iget(self.L.i["free.n"])
        with b.if_else(b.icmp_signed(">", nfree, i64(0))) as (then, otherwise):
            with then:
                n1 = b.sub(nfree, i64(1))
                fn.iset(self.L.i["free.n"], n1)
                b.store(b.load(b.gep(fn.pget(self.L.p["pool.free"], I64P), [n1])), out)
            with otherwise:
                n = fn.iget(self.L.i["pool.n"])
                with b.if_then(b.icmp_signed(">=", n, fn.iget(self.L.i["pool.cap"]))):
                    bad = b.call(self.grow, [fn.P, fn.F, fn.I])
                    with b.if_then(b.icmp_signed("!=", bad, ir.Constant(I32, 0))):
                        b.ret(i64(-1))
                fn.iset(self.L.i["pool.n"], b.add(n, i64(1)))
                b.store(n, out)
        idx = b.load(out)
        b.store(ready, self.fptr(fn, "ready", idx))
        b.store(ready, self.fptr(fn, "last", idx))
        b.store(nbytes, self.fptr(fn, "nbytes", idx))
        for f in ("refs", "live", "hist"):
            b.store(i64(0), self.iptr(fn, f, idx))
        b.store(mem, self.iptr(fn, "mem", idx))
        b.ret(idx)
        fn.finish()
        self.new = fn.func

    def _maybe_free_fn(self) -> None:
        fn = Fn(self.m, "pool_maybe_free", ir.VoidType(), [I64])
        b = fn.b
        (idx,) = fn.args
        refs = b.load(self.iptr(fn, "refs", idx))
        live = b.load(self.iptr(fn, "live", idx))
        hist = b.load(self.iptr(fn, "hist", idx))
        dead = b.and_(b.icmp_signed("<=", refs, i64(0)),
                      b.and_(b.icmp_signed("==", live, i64(0)), b.icmp_signed("<=", hist, i64(0))))
        with b.if_then(dead):
            n = fn.iget(self.L.i["free.n"])
            b.store(idx, b.gep(fn.pget(self.L.p["pool.free"], I64P), [n]))
            fn.iset(self.L.i["free.n"], b.add(n, i64(1)))
            b.store(i64(1), self.iptr(fn, "hist", idx))  # never freed twice
        b.ret_void()
        fn.finish()
        self.maybe_free = fn.func

    def _release_fn(self) -> None:
        """Machine.release: free the buffer's bytes (no write-back)."""
        fn = Fn(self.m, "pool_release", ir.VoidType(), [I64])
        b = fn.b
        (idx,) = fn.args
        live = self.iptr(fn, "live", idx)
        with b.if_then(b.icmp_signed("!=", b.load(live), i64(0))):
            b.store(i64(0), live)
            mem = b.load(self.iptr(fn, "mem", idx))
            slot = b.gep(fn.F, [b.add(mem, i64(self.occ_base))])
            b.store(b.fsub(b.load(slot), b.load(self.fptr(fn, "nbytes", idx))), slot)
            b.call(self.maybe_free, [fn.P, fn.F, fn.I, idx])
        b.ret_void()
        fn.finish()
        self.release = fn.func

    def _drop_fn(self) -> None:
        """Engine._drop: one reference fewer; release at zero."""
        fn = Fn(self.m, "pool_drop", ir.VoidType(), [I64])
        b = fn.b
        (idx,) = fn.args
        with b.if_then(b.icmp_signed(">=", idx, i64(0))):
            refs = self.iptr(fn, "refs", idx)
            r = b.sub(b.load(refs), i64(1))
            b.store(r, refs)
            with b.if_then(b.icmp_signed("<=", r, i64(0))):
                b.call(self.release, [fn.P, fn.F, fn.I, idx])
                b.call(self.maybe_free, [fn.P, fn.F, fn.I, idx])
        b.ret_void()
        fn.finish()
        self.drop = fn.func

    def _alloc_fn(self) -> None:
        """Machine.allocate(buf, charge) -> 0; 1 when a strict memory overflows, 2 when a spill memory
        would have to spill. F[err] gets the bytes needed."""
        fn = Fn(self.m, "pool_alloc", I32, [I64, F64, I64, F64, I64, I64])
        b = fn.b
        idx, charge, mem, cap, spill, err = fn.args
        nb = b.fmul(b.load(self.fptr(fn, "nbytes", idx)), charge)
        b.store(nb, self.fptr(fn, "nbytes", idx))
        occ = b.gep(fn.F, [b.add(mem, i64(self.occ_base))])
        need = b.fadd(b.load(occ), nb)
        over = b.and_(b.fcmp_ordered(">=", cap, f64(0)), b.fcmp_ordered(">", need, cap))
        with b.if_then(over):
            b.store(need, b.gep(fn.F, [err]))
            b.ret(b.select(b.icmp_signed("!=", spill, i64(0)), ir.Constant(I32, 2), ir.Constant(I32, 1)))
        b.store(need, occ)
        peak = b.gep(fn.F, [b.add(mem, i64(self.peak_base))])
        b.store(fn.fmax(b.load(peak), need), peak)
        b.store(i64(1), self.iptr(fn, "live", idx))
        b.ret(ir.Constant(I32, 0))
        fn.finish()
        self.alloc = fn.func

    def timeline(self, mem: str) -> tuple[int, int]:
        """(P slot of starts, I slot of count) for a memory's port; ends at P+1, capacity at I+1."""
        return self.L.P(f"tl.{mem}", 2), self.L.I(f"tl.{mem}", 2)

    def _earliest_fn(self) -> None:
        """_Timeline.earliest(t, cycles)."""
        fn = Fn(self.m, "tl_earliest", F64, [I64, I64, F64, F64])
        b = fn.b
        ps, ns, t0, cycles = fn.args
        starts = b.bitcast(b.load(b.gep(fn.P, [ps])), F64P)
        ends = b.bitcast(b.load(b.gep(fn.P, [b.add(ps, i64(1))])), F64P)
        n = b.load(b.gep(fn.I, [ns]))
        t = fn.var(F64, t0)
        i = self._bisect_right(fn, starts, n, t0)
        i = b.sub(i, i64(1))
        iv = fn.var(I64, i)
        with b.if_then(b.icmp_signed(">=", i, i64(0))):
            e = b.load(b.gep(ends, [i]))
            with b.if_then(b.fcmp_ordered(">", e, b.load(t))):
                b.store(e, t)
        b.store(b.add(b.load(iv), i64(1)), iv)

        def cond():
            k = b.load(iv)
            inside = b.icmp_signed("<", k, n)
            safe = b.select(inside, k, i64(0))
            s = b.load(b.gep(starts, [safe]))
            return b.and_(inside, b.fcmp_ordered("<", s, b.fadd(b.load(t), cycles)))

        with fn.while_(cond):
            k = b.load(iv)
            b.store(fn.fmax(b.load(t), b.load(b.gep(ends, [k]))), t)
            b.store(b.add(k, i64(1)), iv)
        b.ret(b.load(t))
        fn.finish()
        self.earliest = fn.func

    def _bisect_right(self, fn: Fn, arr, n, x):
        b = fn.b
        lo, hi = fn.var(I64, i64(0)), fn.var(I64, n)
        with fn.while_(lambda: b.icmp_signed("<", b.load(lo), b.load(hi))):
            mid = b.ashr(b.add(b.load(lo), b.load(hi)), i64(1))
            less = b.fcmp_ordered("<", x, b.load(b.gep(arr, [mid])))
            b.store(b.select(less, b.load(lo), b.add(mid, i64(1))), lo)
            b.store(b.select(less, mid, b.load(hi)), hi)
        return b.load(lo)

    def _reserve_fn(self) -> None:
        """_Timeline.reserve(start, end) -> 0, or 1 when memory runs out."""
        fn = Fn(self.m, "tl_reserve", I32, [I64, I64, F64, F64])
        b = fn.b
        ps, ns, start, end = fn.args
        n = b.load(b.gep(fn.I, [ns]))
        cap_slot = b.gep(fn.I, [b.add(ns, i64(1))])
        with b.if_then(b.icmp_signed(">=", n, b.load(cap_slot))):
            cap = b.load(cap_slot)
            newcap = b.select(b.icmp_signed("<", cap, i64(64)), i64(64), b.mul(cap, i64(2)))
            for k in (0, 1):
                slot = b.gep(fn.P, [b.add(ps, i64(k))])
                p = b.call(self.realloc, [b.load(slot), b.mul(newcap, i64(8))])
                with b.if_then(b.icmp_unsigned("==", p, ir.Constant(VOIDP, None))):
                    b.ret(ir.Constant(I32, 1))
                b.store(p, slot)
            b.store(newcap, cap_slot)
        starts = b.bitcast(b.load(b.gep(fn.P, [ps])), F64P)
        ends = b.bitcast(b.load(b.gep(fn.P, [b.add(ps, i64(1))])), F64P)
        i = self._bisect_right(fn, starts, n, start)
        # insert at i
        tail = b.mul(b.sub(n, i), i64(8))
        for arr in (starts, ends):
            src = b.bitcast(b.gep(arr, [i]), VOIDP)
            dst = b.bitcast(b.gep(arr, [b.add(i, i64(1))]), VOIDP)
            b.call(self.memmove, [dst, src, tail])
        b.store(start, b.gep(starts, [i]))
        b.store(end, b.gep(ends, [i]))
        nv = fn.var(I64, b.add(n, i64(1)))

        def delete(k):
            cnt = b.load(nv)
            rest = b.mul(b.sub(cnt, b.add(k, i64(1))), i64(8))
            for arr in (starts, ends):
                b.call(self.memmove, [b.bitcast(b.gep(arr, [k]), VOIDP),
                                      b.bitcast(b.gep(arr, [b.add(k, i64(1))]), VOIDP), rest])
            b.store(b.sub(cnt, i64(1)), nv)

        i1 = b.add(i, i64(1))
        with b.if_then(b.icmp_signed("<", i1, b.load(nv))):
            with b.if_then(b.fcmp_ordered("<=", b.load(b.gep(starts, [i1])), end)):
                b.store(fn.fmax(end, b.load(b.gep(ends, [i1]))), b.gep(ends, [i]))
                delete(i1)
        with b.if_then(b.icmp_signed(">", i, i64(0))):
            im = b.sub(i, i64(1))
            e_prev = b.load(b.gep(ends, [im]))
            with b.if_then(b.fcmp_ordered(">=", e_prev, start)):
                b.store(fn.fmax(e_prev, b.load(b.gep(ends, [i]))), b.gep(ends, [im]))
                delete(i)
        b.store(b.load(nv), b.gep(fn.I, [ns]))
        b.ret(ir.Constant(I32, 0))
        fn.finish()
        self.reserve = fn.func

    def build_cleanup(self) -> None:
        """Free everything the run allocated (called by Python after every run)."""
        fn = Fn(self.m, "attn_cleanup", ir.VoidType(), [], linkage="")
        b = fn.b
        for key, slot in self.L.p.items():
            if key.startswith("pool.") or key.startswith("tl."):
                n = 2 if key.startswith("tl.") else 1
                for k in range(n):
                    ptr = b.gep(fn.P, [i64(slot + k)])
                    b.call(self.free_fn, [b.load(ptr)])
                    b.store(ir.Constant(VOIDP, None), ptr)
        b.ret_void()
        fn.finish()
