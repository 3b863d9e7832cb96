"""Lowering a kernel to LLVM IR: the compile-time mirror of interp.Engine.

Each statement emits its tile arithmetic (attnlang/jit/tiles.py) and the
same accounting the interpreter does, in the same order and with the same
floating-point operations, so cycles, energy and every counter come out
identical: unit free times, buffer ready and last-read times (a buffer pool
with reference counts), pipeline histories, port timelines with gap filling,
occupancy and peaks. Every cost constant is computed here, at compile time,
by attnlang/cost.py — the one home of the formulas.

What is static is decided here; what depends on a loop index (slice
offsets, run-time `if` conditions, loop bounds, @parallel lanes) is emitted
as integer IR. A construct this lowering cannot compile raises Unsupported
and the whole run goes to the interpreter, which says why.

A kernel with processes is lowered by the statements of streams.py (a mixin
of Lowering): each process into a resumable function of its own, with its
own names, storage and clock, the kernel's entry into their scheduler.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import llvmlite.ir as ir

from .. import cost
from ..channels import declare_channels
from ..diagnostics import AttnError
from ..hardware import Hardware
from ..limits import MAX_PIPELINE, integer_error
from ..static import StaticError, free_names, static_eval
from ..syntax import ast
from . import budget
from .budget import Expired, TooBig
from .evaluate import ExprLowering
from .irkit import F64, I1, I32, I64, Fn, Layout, Runtime, f64, i64
from .loops import CLoop, LoopLowering, PeelFirst
from .machine import MachineLowering
from .streams import ChannelLowering, settled
from .tiles import Tiles, View, broadcast_shapes, contiguous_strides, elem_of
from .values import (
    CLEANUP,
    ENTRY,
    INEXACT,
    OK,
    RAISE,
    RT,
    Desc,
    Unsupported,
    Val,
)

if TYPE_CHECKING:
    from ..binding import BoundKernel


class Lowering(ChannelLowering, LoopLowering, ExprLowering, MachineLowering):
    def __init__(self, kernel: ast.Kernel, env: dict, hw: Hardware, input_shapes: dict, blas: bool,
                 channel_shapes: dict | None = None, split: bool = True, wall_deadline: float | None = None,
                 peel: frozenset = frozenset()):
        self.k = kernel
        self.peel = peel  # the spans of the loops whose first iteration is lowered on its own (loops.py)
        # split: a loop lowered once per index compiles the statements before its first varying slice
        # once (_split_at); did_split: some loop was, so lower_kernel may lower again without.
        self.split, self.did_split = split, False
        self.split_loops: dict[str, range] = {}  # the index of each split loop around -> its values
        self.wall_deadline = wall_deadline  # time.monotonic() past which lowering stops (Expired)
        self.env = dict(env)
        self.hw = hw
        self.root = hw.root_memory().name
        self.mem_id = {name: i for i, name in enumerate(hw.memories)}
        self.L = Layout()
        self.module = ir.Module(name=f"attn.{kernel.name}")
        self.rt_module_init()
        self.fn = Fn(self.module, ENTRY, I32, [F64, F64], linkage="")
        self.b = self.fn.b
        self.blas = blas
        self.t = Tiles(self.fn, blas)
        self.max_cycles, self.deadline = self.fn.args
        self.input_shapes = input_shapes
        self.names: dict[str, Desc] = {}
        # Names bound on one path through an `if` on a loop index and not the other (or in two layouts):
        # name -> the loop depth where that happened. They cannot be read after the `if`; their buffer (or
        # -1) stays in the name's slot, and is dropped where the interpreter drops it, at the end of the
        # iteration that bound it.
        self.maybe: dict[str, int] = {}
        self.iterations = 0  # how many loop bodies (compiled or unrolled) the statement being lowered is in
        self.name_buf: dict[str, object] = {}
        self.rt: dict[str, object] = {}  # loop variable -> alloca
        self.loops: list[CLoop] = []
        self.outer_names: set = set()
        self.temps: list = []
        self.storage: dict[tuple, tuple[int, int]] = {}  # (name, elem) -> (P slot, elements)
        self.scratch: list[tuple[int, int, str]] = []  # (P slot, elements, elem)
        self.sites: list[dict] = []
        self.ptr_cache: dict[int, object] = {}
        self.kmax = max([1] + self._pipelines(kernel.body))
        self.width = max([1] + [u.count for u in hw.units.values()])
        self.components = list(hw.units) + [m for m in hw.memories if m not in hw.units]
        self.outputs: dict[str, tuple] = {}
        # The process being lowered (streams.py): None for the kernel body, which has no clock of its own
        # (it is 0) and keeps its variables on the stack.
        self.proc = None
        self.proc_unit: tuple | None = None  # the unit a process runs on: (name, index or None)
        self.prefix = ""  # keeps the storage and histories of one process's names apart from another's
        self.init_channels(channel_shapes)

    def rt_module_init(self) -> None:
        L = self.L
        for k in ("end", "macs", "vops", "err.a", "err.b", "err.c"):
            L.F(k)
        n = len(self.hw.memories)
        self.occ_base, self.peak_base = L.F("occ", n), L.F("peak", n)
        self.runtime = Runtime(self.module, L)
        self.runtime.build(self.occ_base, self.peak_base)
        L.I("err.site")
        L.I("seq")
        L.I("steps")  # loop iterations so far: --max-steps, and when to look at the clock for --timeout
        L.I("max_steps")

    def _pipelines(self, body) -> list[int]:
        out = []
        for s in ast.walk_statements(body):
            if isinstance(s, ast.For):
                for a in s.annotations:
                    if a.name == "pipeline":
                        out.append(self._static_int(a.args[0], "a pipeline depth") if a.args else 2)
        return [min(max(p, 1), MAX_PIPELINE) for p in out]

    # ================================================================ entry
    def lower(self) -> tuple[str, dict]:
        k = self.k
        self.inputs = {}
        for t in k.inputs:
            shape = self.input_shapes[t.name]
            self.inputs[t.name] = (self.L.P(f"in.{t.name}"), shape, t.dtype)
        for t in k.outputs:
            shape = tuple(self._static_int(d, "a dimension") for d in t.dims)
            self.outputs[t.name] = (self.L.P(f"out.{t.name}"), shape, t.dtype)
            self.L.F(f"store_end.{t.name}")
            self.L.I(f"stored.{t.name}")
        if ast.first_stream_statement(k.body) is None:
            self.block(k.body)
            self.b.ret(ir.Constant(I32, OK))
        else:
            self.lower_processes()
        self.fn.finish()
        self.runtime.build_cleanup()
        count = sum(len(block.instructions) for f in self.module.functions for block in f.blocks)
        if count > budget.MAX_INSTRUCTIONS:
            raise TooBig(count)
        meta = {
            "layout": {"p": self.L.p, "f": self.L.f, "i": self.L.i, "sizes": list(self.L.sizes())},
            "storage": [[slot, n, "f64" if elem == F64 else "f32"] for (slot, n), elem in
                        ((v, key[1]) for key, v in self.storage.items())],
            "scratch": [[slot, n, e] for slot, n, e in self.scratch],
            "sites": self.sites,
            "components": self.components,
            "channels": self.channel_meta(),
        }
        return str(self.module), meta

    # ================================================================ helpers
    def ptr(self, slot: int, elem):
        """P[slot] as a typed pointer, loaded once at function entry."""
        key = (slot, str(elem))
        if key not in self.ptr_cache:
            with self.b.goto_block(self.fn.allocas):
                raw = self.b.load(self.b.gep(self.fn.P, [i64(slot)]))
                self.ptr_cache[key] = self.b.bitcast(raw, elem.as_pointer())
        return self.ptr_cache[key]

    def new_scratch(self, shape: tuple, elem) -> View:
        n = 1
        for s in shape:
            n *= s
        slot = self.L.P(f"scratch.{len(self.scratch)}")
        self.scratch.append((slot, max(n, 1), "f64" if elem == F64 else "f32"))
        return View(self.ptr(slot, elem), i64(0), shape, contiguous_strides(shape), elem)

    def name_view(self, name: str, desc: Desc) -> View:
        elem = elem_of(desc.dtype)
        name = self.prefix + name
        key = (name, elem)
        n = 1
        for s in desc.shape:
            n *= s
        if key not in self.storage:
            self.storage[key] = (self.L.P(f"store.{name}.{'f64' if elem == F64 else 'f32'}"), max(n, 1))
        slot, size = self.storage[key]
        self.storage[key] = (slot, max(size, n))
        return View(self.ptr(slot, elem), i64(0), desc.shape, contiguous_strides(desc.shape), elem)

    def name_val(self, name: str) -> Val:
        d = self.names[name]
        return Val(self.b.load(self.name_buf[name]), self.name_view(name, d), d.dtype, d.mem)

    def site(self, code: str, message: str, span, **facts) -> int:
        """A place the kernel may stop with an error: its code, its message (with {a}, {a:d}, {a:kib},
        {b:...} for the values the kernel passes), its span; E1001-E1004 take their message from
        attnlang/runtime.py, as the interpreter does (facts: what it needs, e.g. the memory)."""
        self.sites.append({"code": code, "message": message, **facts,
                           "span": [span.file, span.line, span.column, span.end_line, span.end_column]})
        return len(self.sites) - 1

    def fail_if(self, cond, code_ret: int, site: int, a=None, b=None, c=None) -> None:
        """Return code_ret from the kernel when cond holds, with site and values for its message."""
        bld = self.b
        with bld.if_then(cond, likely=False):
            self.fn.iset(self.L.i["err.site"], i64(site))
            for key, v in (("err.a", a), ("err.b", b), ("err.c", c)):
                if v is not None:
                    self.fn.fset(self.L.f[key], v if v.type == F64 else bld.sitofp(v, F64))
            bld.ret(ir.Constant(I32, code_ret))

    def _static_int(self, e, what: str) -> int:
        v = self._static_value(e)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
            raise Unsupported(f"{what} must be an integer", e.span)
        return int(v)

    def _static_value(self, e):
        if free_names(e) & set(self.rt):
            raise Unsupported("this needs a value known before the kernel runs, but it depends on a loop "
                              "index", e.span)
        try:
            return static_eval(e, self.env)
        except StaticError as exc:
            raise Unsupported(exc.diagnostic.message, e.span) from None

    # ----------------------------------------------------------- run-time integers
    def rt_int(self, e):
        """A static expression that depends on loop indices: i64 or i1 IR (Python int semantics)."""
        b = self.b
        if not (free_names(e) & set(self.rt)):
            v = self._static_value(e)
            if isinstance(v, bool):
                return ir.Constant(I1, int(v))
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if not isinstance(v, int):
                raise Unsupported(f"'{v}' in an expression with a loop index", e.span)
            return i64(v)
        if isinstance(e, ast.Name):
            return b.load(self.rt[e.id])
        if isinstance(e, ast.Unary):
            x = self.rt_int(e.operand)
            if e.op == "not":
                return b.not_(self.truth(x))
            return b.neg(self.as_i64(x))
        if isinstance(e, ast.Binary):
            x, y = self.rt_int(e.left), self.rt_int(e.right)
            op = e.op
            if op in ("and", "or"):
                tx = self.truth(x)
                if x.type == I1 and y.type == I1:
                    return b.and_(x, y) if op == "and" else b.or_(x, y)
                x, y = self.as_i64(x), self.as_i64(y)
                return b.select(tx, y, x) if op == "and" else b.select(tx, x, y)
            x, y = self.as_i64(x), self.as_i64(y)
            if op in ("==", "!=", "<", "<=", ">", ">="):
                return b.icmp_signed(op, x, y)
            if op == "+":
                return b.add(x, y)
            if op == "-":
                return b.sub(x, y)
            if op == "*":
                return b.mul(x, y)
            if op in ("//", "%", "/"):
                site = self.site("E0301", "division by zero", e.span)
                self.fail_if(b.icmp_signed("==", y, i64(0)), RAISE, site)
                y_safe = b.select(b.icmp_signed("==", y, i64(0)), i64(1), y)
                q, r = b.sdiv(x, y_safe), b.srem(x, y_safe)
                if op == "/":
                    # Whole where the interpreter's value is (its static arithmetic makes a whole quotient an
                    # int); a fraction the run leaves to the interpreter, which keeps it as a float.
                    inexact = self.site("", "a '/' of loop indices that is not whole", e.span)
                    self.fail_if(b.icmp_signed("!=", r, i64(0)), INEXACT, inexact)
                    return q
                adjust = b.and_(b.icmp_signed("!=", r, i64(0)),
                                b.icmp_signed("!=", b.icmp_signed("<", r, i64(0)), b.icmp_signed("<", y, i64(0))))
                if op == "//":
                    return b.select(adjust, b.sub(q, i64(1)), q)
                return b.select(adjust, b.add(r, y), r)
            raise Unsupported(f"'{op}' on a loop index (the JIT compiles + - * / // % and comparisons)", e.span)
        if isinstance(e, ast.Call) and e.func in ("min", "max") and e.args:
            vals = [self.as_i64(self.rt_int(a)) for a in e.args]
            out = vals[0]
            for v in vals[1:]:
                pick = b.icmp_signed("<" if e.func == "min" else ">", v, out)
                out = b.select(pick, v, out)
            return out
        raise Unsupported("this expression of a loop index", e.span)

    def as_i64(self, v):
        return self.b.zext(v, I64) if v.type == I1 else v

    def truth(self, v):
        return v if v.type == I1 else self.b.icmp_signed("!=", v, i64(0))

    def static_or_rt(self, e):
        """Python value when static, RT when it depends on a loop index."""
        if free_names(e) & set(self.rt):
            return RT(self.rt_int(e))
        return self._static_value(e)

    def int_value(self, e, what: str):
        """An integer (Python int or i64 IR)."""
        v = self.static_or_rt(e)
        if isinstance(v, RT):
            return self.as_i64(v.v)
        bad = integer_error(v, what, e.span)
        if bad:  # the interpreter's static_int says the same
            raise AttnError(bad)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
            raise Unsupported(f"{what} must be an integer, not {v!r}", e.span)
        return int(v)


    # ================================================================ statements
    def block(self, body) -> None:
        for s in body:
            if self.wall_deadline is not None and time.monotonic() > self.wall_deadline:
                raise Expired()
            h = getattr(self, f"s_{type(s).__name__}", None)
            if h is None:
                raise Unsupported(f"the statement {type(s).__name__}", s.span)
            h(s)
            if self.proc is not None and isinstance(s, (ast.Load, ast.Store)):
                self.turn()

    def s_Param(self, s) -> None:
        pass

    s_DimDecl = s_Where = s_Param

    def s_Assign(self, s: ast.Assign) -> None:
        name = s.target.name
        if s.target.index is not None:
            return self._assign_part(s)
        dest = self.dest_free(name)
        value = self.ev(s.value, dest, self.charge(name), None, hint=name)
        if not isinstance(value, Val):
            raise Unsupported(f"'{name}' would be a plain number", s.span)
        desc = Desc(value.view.shape, value.dtype, value.mem)
        target = self.name_view(name, desc)
        if not _same_view(value.view, target):
            src = value.view
            if src.ptr is target.ptr:
                tmp = self.new_scratch(src.shape, src.elem)
                self.t.copy(tmp, src, "f64" if src.elem == F64 else "f32")
                src = tmp
            self.t.copy(target, src, "f64" if target.elem == F64 else "f32")
        self.hist_push(name, value.buf)
        self.bind_name(name, value.buf, desc)
        self.end_statement()

    def _assign_part(self, s: ast.Assign) -> None:
        name = s.target.name
        if name not in self.names:
            raise Unsupported(f"'{name}' has no value to update part of", s.target.span)
        old = self.name_val(name)
        value = self.ev(s.value, self.b.load(self.pool("last", old.buf, True)), 1, None)
        target = self.subscripts(s.target.index, old.view, name, s.target.span)
        if isinstance(value, Val):
            if broadcast_shapes(value.view.shape, target.shape) != target.shape:
                raise Unsupported("a value of another shape written into part of a tensor", s.span)
            src = value.view
            if src.ptr is target.ptr:
                tmp = self.new_scratch(src.shape, src.elem)
                self.t.copy(tmp, src, "f64" if src.elem == F64 else "f32")
                src = tmp
            self.t.copy(target, src, old.dtype)
            ready = self.ready_of(value.buf)
        else:
            self.t.fill(target, self.scalar(value, target.elem), old.dtype)
            ready = f64(0.0)
        p = self.pool("ready", old.buf, True)
        self.b.store(self.fn.fmax(self.b.load(p), ready), p)
        self.end_statement()

    def s_Load(self, s: ast.Load) -> None:
        b = self.b
        src_view, src_dtype, src_mem, ready, src_buf = self.source(s.tensor, s.tensor_span)
        view = self.subscripts(s.index, src_view, s.tensor, s.span) if s.index is not None else src_view
        if s.memory not in self.hw.memories:
            raise Unsupported(f"hardware '{self.hw.name}' has no memory '{s.memory}'", s.memory_span)
        nbytes = cost.tensor_bytes(view.size, src_dtype)
        dest = self.dest_free(s.target.name)
        when = self.fn.fmax(self.fn.fmax(ready, dest), self.clock())
        _, end = self.transfer(src_mem, s.memory, nbytes, when, s.span)
        if src_buf is not None:
            self.bump_last_read(src_buf, end)
        buf = self.new_buffer(s.memory, nbytes, end, self.charge(s.target.name), s.span)
        desc = Desc(view.shape, src_dtype, s.memory)
        target = self.name_view(s.target.name, desc)
        src = view
        if src.ptr is target.ptr:
            tmp = self.new_scratch(src.shape, src.elem)
            self.t.copy(tmp, src, "f64" if src.elem == F64 else "f32")
            src = tmp
        self.t.copy(target, src, "f64" if target.elem == F64 else "f32")
        self.hist_push(s.target.name, buf)
        self.bind_name(s.target.name, buf, desc)
        self.end_statement()
        del b

    def source(self, name: str, span):
        if name in self.inputs:
            slot, shape, dtype = self.inputs[name]
            v = View(self.ptr(slot, elem_of(dtype)), i64(0), shape, contiguous_strides(shape), elem_of(dtype))
            return v, dtype, self.root, f64(0.0), None
        if name in self.names:
            val = self.name_val(name)
            return val.view, val.dtype, val.mem, self.ready_of(val.buf), val.buf
        if name in self.outputs:
            slot, shape, dtype = self.outputs[name]
            v = View(self.ptr(slot, elem_of(dtype)), i64(0), shape, contiguous_strides(shape), elem_of(dtype))
            return v, dtype, self.root, self.fn.fget(self.L.f[f"store_end.{name}"]), None
        raise Unsupported(f"'{name}' has no value here", span)

    def s_Store(self, s: ast.Store) -> None:
        if s.tensor not in self.outputs:
            raise Unsupported(f"'{s.tensor}' is not an output", s.tensor_span)
        value = self.ev(s.expr, f64(0.0), 1, None)
        slot, shape, dtype = self.outputs[s.tensor]
        out = View(self.ptr(slot, elem_of(dtype)), i64(0), shape, contiguous_strides(shape), elem_of(dtype))

        def write() -> None:
            target = self.subscripts(s.index, out, s.tensor, s.span) if s.index is not None else out
            if isinstance(value, Val):
                if broadcast_shapes(value.view.shape, target.shape) != target.shape:
                    raise Unsupported("a stored value of another shape", s.span)
                self.t.copy(target, value.view, dtype)
            else:
                self.t.fill(target, self.scalar(value, target.elem), "f64" if target.elem == F64 else "f32")

        if isinstance(value, Val):
            nbytes = cost.tensor_bytes(value.view.size, dtype)
            _, end = self.transfer(value.mem, self.root, nbytes, self.ready_of(value.buf), s.span)
            self.bump_last_read(value.buf, end)
            se = self.L.f[f"store_end.{s.tensor}"]
            self.fn.fset(se, self.fn.fmax(self.fn.fget(se), end))
        # a target whose size changes with the index of a split loop (_split_at): the copy alone per index
        var = next((v for v in self.split_loops if v in self.rt and self._varying_extent([s.index], v)), None)
        if var is None:
            write()
        else:
            self._each_index(var, self.split_loops[var], write, s.span)
        self.fn.iset(self.L.i[f"stored.{s.tensor}"], i64(1))
        self.end_statement()

    def s_Discard(self, s: ast.Discard) -> None:
        for n in s.names:
            if n.id not in self.names:
                raise Unsupported(f"'{n.id}' has no value to discard", n.span)
            buf = self.b.load(self.name_buf[n.id])
            self.b.call(self.runtime.release, [self.fn.P, self.fn.F, self.fn.I, buf])
            del self.names[n.id]
            self.b.store(i64(-1), self.name_buf[n.id])

    def s_If(self, s: ast.If) -> None:
        cond = self.static_or_rt(s.cond)
        if not isinstance(cond, RT):
            self.block(s.then if cond else s.orelse)
            return
        before, maybe = dict(self.names), dict(self.maybe)
        b = self.b
        with b.if_else(self.truth(cond.v)) as (then, otherwise):
            with then:
                self.block(s.then)
                after_then, maybe_then = self.names, self.maybe
                self.names, self.maybe = dict(before), dict(maybe)
            with otherwise:
                self.block(s.orelse)
        after_else = self.names
        if any(after_then.get(n) != d or after_else.get(n) != d for n, d in before.items()):
            self.layout_differs(Unsupported("the two arms of an `if` on a loop index leave a name in different "
                                            "layouts (the JIT needs one layout after the `if`)", s.span))
        # A name new in one arm only, or in two layouts, is bound or not after the `if` depending on the
        # path taken: not readable; dropped with the iteration (end_iteration).
        self.names = {n: d for n, d in after_then.items() if after_else.get(n) == d}
        depth = self.iterations
        for n in {**maybe_then, **self.maybe, **after_then, **after_else}:
            if n not in self.names:
                self.maybe[n] = min(maybe_then.get(n, depth), self.maybe.get(n, depth))


#: Lowerings of a kernel with channels before giving up on settling the shapes they carry (each one
#: learns at least one more: a chain of processes settles in as many passes as it has links).
MAX_PASSES = 16


def lower_kernel(bound: BoundKernel, input_shapes: dict, blas: bool,
                 wall_deadline: float | None = None) -> tuple[str, dict]:
    """The bound kernel's IR and meta (Lowering.lower). A receive needs the shape of what its channel carries,
    which the sends give, possibly in a process lowered after it: lower again with the shapes the sends
    gave until every receive took the shape its channel carries. Past wall_deadline (time.monotonic()),
    Expired."""
    kernel, env, hw = bound.kernel, bound.env, bound.hardware
    shapes = _checked_channel_shapes(bound)
    peel: set = set()
    while True:  # each pass peels one more loop (loops.PeelFirst): at most as many passes as loops
        try:
            try:
                return _settled(kernel, env, hw, input_shapes, blas, shapes, True, wall_deadline, frozenset(peel))
            except _SplitFailed:
                # a loop split at its first varying slice (Lowering._split_at) compiles its first part with
                # the index unknown, which some statements cannot be: lower each such loop whole, once per index
                return _settled(kernel, env, hw, input_shapes, blas, shapes, False, wall_deadline,
                                frozenset(peel))
        except PeelFirst as p:
            if p.span in peel:  # cannot happen: a peeled loop does not ask again
                raise Unsupported("a loop's first iteration changes a name's layout", p.span) from None
            peel.add(p.span)


class _SplitFailed(Exception):
    """A lowering that split a loop (Lowering._split_at) could not compile the kernel."""


def _settled(kernel, env, hw, input_shapes, blas, shapes, split: bool, wall_deadline,
             peel: frozenset = frozenset()) -> tuple[str, dict]:
    for _ in range(MAX_PASSES):
        low = Lowering(kernel, env, hw, input_shapes, blas, shapes, split, wall_deadline, peel)
        try:
            out = low.lower()
        except TooBig:
            raise
        except Unsupported as exc:
            if low.did_split:
                raise _SplitFailed() from exc
            raise
        if settled(low):
            return out
        news = {**shapes, **low.sent_shapes}
        if news == shapes:
            break
        shapes = news
    if low.did_split:
        raise _SplitFailed()
    raise low.failed or Unsupported("what a channel carries has a shape that depends on what it carries")


def _checked_channel_shapes(bound: BoundKernel) -> dict:
    """What each channel carries, as the checker's types found it (the bound kernel's types: what each
    channel is sent), per channel instance: the first lowering's guess. Without it a receive that comes
    before its channel's first send in lowering order takes a guessed shape, and a value relayed from it
    pollutes what the sends give (a ring that forwards what it receives never settles)."""
    from ..check.dims import value_of

    kernel, env = bound.kernel, bound.env
    if bound.types is None or not any(isinstance(s, ast.Recv) for s in ast.walk_statements(kernel.body)):
        return {}
    try:
        declared = declare_channels(kernel, env)
    except AttnError:
        return {}  # lower_processes says why
    out = {}
    for name in declared:
        ty = bound.types.sent.get(name.split("[")[0])
        dims = [value_of(d, env) for d in ty.shape] if ty is not None and ty.shape is not None else None
        if dims is not None and all(isinstance(d, (int, float)) and d == int(d) >= 0 for d in dims):
            out[name] = tuple(int(d) for d in dims)
    return out


def _same_view(a: View, b: View) -> bool:
    def const(x):
        return x.constant if isinstance(x, ir.Constant) else x

    return a.ptr is b.ptr and const(a.off) == const(b.off) and isinstance(const(a.off), int) and \
        a.shape == b.shape and a.strides == b.strides


__all__ = ["Lowering", "Unsupported", "ENTRY", "CLEANUP", "lower_kernel"]
