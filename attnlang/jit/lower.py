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

import dataclasses
import math
import time
from dataclasses import dataclass

import llvmlite.ir as ir

from .. import cost, ops
from ..diagnostics import AttnError
from ..hardware import Hardware, Unit
from ..interp.streams import declare_channels
from ..limits import MAX_PIPELINE, integer_error
from ..static import StaticError, free_names, static_eval
from ..syntax import ast
from .irkit import F32, F64, F64P, I1, I32, I64, I64P, Fn, Layout, Runtime, f64, i64
from .streams import ChannelLowering, settled
from .tiles import Tiles, View, broadcast_shapes, contiguous_strides, elem_of
from .values import (
    CLEANUP,
    ENTRY,
    MAX_CYCLES,
    MAX_STEPS,
    NO_MEMORY,
    OK,
    OVERFLOW,
    RAISE,
    RT,
    SPILL,
    TIMEOUT,
    Desc,
    Unsupported,
    Val,
)

#: The most iterations of a loop lowered once per index (_unrolled): code grows with each one.
MAX_UNROLLED = 4096
#: The most LLVM instructions a kernel is lowered to. LLVM's O2 takes about 0.2 ms per instruction of
#: this code on a 2-core box (a 5,000-instruction example compiles in 1-2 s), and more than linearly in
#: a function's size past it: a kernel over the budget runs in the interpreter (TooBig) instead of
#: compiling for minutes.
MAX_INSTRUCTIONS = 60_000


class TooBig(Unsupported):
    """The lowered code would pass MAX_INSTRUCTIONS."""

    def __init__(self, count: int, span=None, estimated: bool = False):
        about = "about " if estimated else ""
        super().__init__(f"the compiled kernel would be {about}{count:,} LLVM instructions, over the JIT's "
                         f"budget of {MAX_INSTRUCTIONS:,} (its compile would take minutes)", span)


class Expired(Exception):
    """The wall-time deadline passed while lowering (compile_kernel reports E1004)."""


@dataclass
class CLoop:
    pipeline: int
    lane: object  # i64 IR or None
    slot: tuple  # i64 IR values (n % width) per enclosing @parallel loop
    copies: object  # int or i64 IR


class Lowering(ChannelLowering):
    def __init__(self, kernel: ast.Kernel, env: dict, hw: Hardware, input_shapes: dict, blas: bool,
                 channel_shapes: dict | None = None, split: bool = True, wall_deadline: float | None = None):
        self.k = kernel
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
        if count > MAX_INSTRUCTIONS:
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
            if op in ("//", "%"):
                site = self.site("E0301", "division by zero", e.span)
                self.fail_if(b.icmp_signed("==", y, i64(0)), RAISE, site)
                y_safe = b.select(b.icmp_signed("==", y, i64(0)), i64(1), y)
                q, r = b.sdiv(x, y_safe), b.srem(x, y_safe)
                adjust = b.and_(b.icmp_signed("!=", r, i64(0)),
                                b.icmp_signed("!=", b.icmp_signed("<", r, i64(0)), b.icmp_signed("<", y, i64(0))))
                if op == "//":
                    return b.select(adjust, b.sub(q, i64(1)), q)
                return b.select(adjust, b.add(r, y), r)
            raise Unsupported(f"'{op}' on a loop index (the JIT compiles + - * // % and comparisons)", e.span)
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

    # ----------------------------------------------------------- accounting
    def touch(self, comp: str) -> None:
        """Record the order components first receive energy (the interpreter's dict order)."""
        b = self.b
        slot = self.L.I(f"seq.{comp}")
        with b.if_then(b.icmp_signed("==", self.fn.iget(slot), i64(0))):
            n = b.add(self.fn.iget(self.L.i["seq"]), i64(1))
            self.fn.iset(self.L.i["seq"], n)
            self.fn.iset(slot, n)

    def energy(self, comp: str, value: float) -> None:
        self.touch(comp)
        self.fn.fadd(self.L.F(f"energy.{comp}"), f64(value))

    def finish(self, end, span) -> None:
        fn, b = self.fn, self.b
        slot = self.L.f["end"]
        cur = fn.fget(slot)
        new = b.select(b.fcmp_ordered(">", end, cur), end, cur)
        fn.fset(slot, new)
        site = self.site("E1003", "", span)  # runtime.cycles_error
        self.fail_if(b.fcmp_ordered(">", new, self.max_cycles), MAX_CYCLES, site, a=self.max_cycles)

    def unit_op(self, u: Unit, inst, timing: cost.Timing, ready, energy_pj: float, span):
        """interp.machine.Machine.unit_op: (start, when the unit may issue again, when the result is ready)."""
        fn, b = self.fn, self.b
        base = self.L.F(f"free.{u.name}", u.count)
        ptr = b.gep(fn.F, [b.add(i64(base), inst) if not isinstance(inst, int) else i64(base + inst)])
        free = b.load(ptr)
        start = fn.fmax(ready, free)
        issued = b.fadd(start, f64(timing.issue))
        end = b.fadd(start, f64(timing.ready))
        b.store(issued, ptr)
        fn.fadd(self.L.F(f"busy.{u.name}"), f64(timing.busy))
        self.energy(u.name, energy_pj)
        self.finish(end if timing.ready >= timing.issue else issued, span)
        return start, issued, end

    def transfer(self, src: str, dst: str, nbytes: int, ready, span):
        if src == dst or nbytes <= 0:
            return ready, ready
        fn, b = self.fn, self.b
        mems, bw, latency = self.hw.transfer_route(src, dst)
        cycles = cost.transfer_cycles(nbytes, bw, latency)
        ports = [self.runtime.timeline(m.name) for m in mems]
        rt = self.runtime
        start = fn.var(F64, ready)
        done = fn.var(I1, ir.Constant(I1, 0))
        with fn.while_(lambda: b.not_(b.load(done))):
            s = b.load(start)
            fits = [b.call(rt.earliest, [fn.P, fn.F, fn.I, i64(p), i64(n), s, f64(cycles)]) for p, n in ports]
            mx = fits[0]
            for f in fits[1:]:
                mx = fn.fmax(mx, f)
            b.store(b.fcmp_ordered("==", mx, s), done)
            b.store(mx, start)
        s = b.load(start)
        end = b.fadd(s, f64(cycles))
        site = self.site("E1000", "the JIT ran out of memory for its port timelines here", span)
        for p, n in ports:
            bad = b.call(rt.reserve, [fn.P, fn.F, fn.I, i64(p), i64(n), s, end])
            self.fail_if(b.icmp_signed("!=", bad, ir.Constant(I32, 0)), NO_MEMORY, site)
        s_mem, d_mem = self.hw.memories[src], self.hw.memories[dst]
        fn.fadd(self.L.F(f"rb.{src}"), f64(nbytes))
        fn.fadd(self.L.F(f"wb.{dst}"), f64(nbytes))
        self.energy(src, cost.memory_energy_pj(nbytes, 0, s_mem.read_pj_per_byte, 0))
        self.energy(dst, cost.memory_energy_pj(0, nbytes, 0, d_mem.write_pj_per_byte))
        self.finish(end, span)
        return s, end

    def unit_reads(self, memory: str, nbytes: int) -> None:
        m = self.hw.memories[memory]
        self.fn.fadd(self.L.F(f"rb.{memory}"), f64(nbytes))
        self.energy(memory, cost.memory_energy_pj(nbytes, 0, m.read_pj_per_byte, 0))

    def unit_writes(self, memory: str, nbytes: int) -> None:
        m = self.hw.memories[memory]
        self.fn.fadd(self.L.F(f"wb.{memory}"), f64(nbytes))
        self.energy(memory, cost.memory_energy_pj(0, nbytes, 0, m.write_pj_per_byte))

    def pool(self, field: str, idx, floating: bool):
        fn = self.fn
        ty = F64P if floating else I64P
        return self.b.gep(fn.pget(self.L.p[f"pool.{field}"], ty), [idx])

    def new_buffer(self, memory: str, nbytes: int, ready, charge, span):
        """Buffer(memory, nbytes, ready) and Machine.allocate(buf, charge)."""
        fn, b, rt = self.fn, self.b, self.runtime
        idx = b.call(rt.new, [fn.P, fn.F, fn.I, i64(self.mem_id[memory]), f64(nbytes), ready])
        site_mem = self.site("E1000", "the JIT ran out of memory for its buffer pool here", span)
        self.fail_if(b.icmp_signed("<", idx, i64(0)), NO_MEMORY, site_mem)
        mem = self.hw.memories[memory]
        cap = mem.capacity_bytes if mem.capacity_bytes is not None else -1.0
        ch = charge if not isinstance(charge, int) else f64(charge)
        if ch.type != F64:
            ch = b.sitofp(ch, F64)
        status = b.call(rt.alloc, [fn.P, fn.F, fn.I, idx, ch, i64(self.mem_id[memory]), f64(cap),
                                   i64(1 if mem.policy == "spill" else 0), i64(self.L.f["err.a"])])
        site = self.site("E1001", "", span, memory=memory)  # runtime.overflow_error
        with b.if_then(b.icmp_signed("!=", status, ir.Constant(I32, 0)), likely=False):
            fn.fset(self.L.f["err.b"], f64(cap))
            fn.iset(self.L.i["err.site"], i64(site))
            b.ret(b.select(b.icmp_signed("==", status, ir.Constant(I32, 2)), ir.Constant(I32, SPILL),
                           ir.Constant(I32, OVERFLOW)))
        return idx

    def ready_of(self, buf):
        return self.b.load(self.pool("ready", buf, True))

    def bump_last_read(self, buf, end) -> None:
        p = self.pool("last", buf, True)
        self.b.store(self.fn.fmax(self.b.load(p), end), p)

    # ----------------------------------------------------------- names, history
    def charge(self, name: str):
        if not self.loops:
            return 1
        loop = self.loops[-1]
        k = loop.pipeline if name not in self.outer_names else 1
        if isinstance(loop.copies, int):
            return k * loop.copies
        return self.b.mul(i64(k), loop.copies)

    def ring(self, name: str):
        """(I index of this name's ring for the current @parallel slot) as i64 IR."""
        depth = len(self.loops[-1].slot) if self.loops else 0
        per = self.kmax + 1
        base = self.L.I(f"hist.{self.prefix}{name}.{depth}", per * self.width ** depth)
        idx = i64(base)
        stride = per
        for s in (self.loops[-1].slot if self.loops else ()):
            idx = self.b.add(idx, self.b.mul(s, i64(stride)))
            stride *= self.width
        return idx

    def dest_free(self, name: str):
        fn, b = self.fn, self.b
        k = self.loops[-1].pipeline if self.loops else 1
        rb = self.ring(name)
        count = b.load(b.gep(fn.I, [rb]))
        out = fn.var(F64, f64(0.0))
        with b.if_then(b.icmp_signed(">=", count, i64(k))):
            pos = b.add(b.add(rb, i64(1)), b.urem(b.sub(count, i64(k)), i64(self.kmax)))
            buf = b.load(b.gep(fn.I, [pos]))
            b.store(b.load(self.pool("last", buf, True)), out)
        return b.load(out)

    def hist_push(self, name: str, buf) -> None:
        fn, b = self.fn, self.b
        rb = self.ring(name)
        cp = b.gep(fn.I, [rb])
        count = b.load(cp)
        pos = b.gep(fn.I, [b.add(b.add(rb, i64(1)), b.urem(count, i64(self.kmax)))])
        h = self.pool("hist", buf, False)
        b.store(b.add(b.load(h), i64(1)), h)
        with b.if_then(b.icmp_signed(">=", count, i64(self.kmax))):
            old = b.load(pos)
            ho = self.pool("hist", old, False)
            b.store(b.sub(b.load(ho), i64(1)), ho)
            b.call(self.runtime.maybe_free, [fn.P, fn.F, fn.I, old])
        b.store(buf, pos)
        b.store(b.add(count, i64(1)), cp)

    def name_slot(self, name: str):
        if name not in self.name_buf:
            self.name_buf[name] = self.state_var(I64, i64(-1))
        return self.name_buf[name]

    def state_var(self, ty, first=None):
        """A variable that lives from one statement to the next (a loop index, the buffer a name holds):
        a stack slot in the kernel body; in a process, a slot of its frame, which outlives the returns of
        a process that blocks (streams.py). first: its value when the kernel or process starts."""
        if self.proc is not None:
            return self.frame_var(ty, first)
        slot = self.fn.var(ty)
        if first is not None:
            with self.b.goto_block(self.fn.allocas):
                self.b.store(first, slot)
        return slot

    def clock(self):
        """This process's clock (DAM): what send and recv advance. The kernel body's stays at 0."""
        return f64(0.0) if self.proc is None else self.fn.fget(self.proc.clock)

    def bind_name(self, name: str, buf, desc: Desc) -> None:
        b = self.b
        slot = self.name_slot(name)
        r = self.pool("refs", buf, False)
        b.store(b.add(b.load(r), i64(1)), r)
        had = name in self.names or self.maybe.pop(name, None) is not None
        old = b.load(slot) if had else None
        b.store(buf, slot)
        self.names[name] = desc
        if had:
            b.call(self.runtime.drop, [self.fn.P, self.fn.F, self.fn.I, old])

    def end_statement(self) -> None:
        b = self.b
        for buf in self.temps:
            with b.if_then(b.icmp_signed("<=", b.load(self.pool("refs", buf, False)), i64(0))):
                b.call(self.runtime.release, [self.fn.P, self.fn.F, self.fn.I, buf])
        self.temps = []

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

    def s_For(self, s: ast.For) -> None:
        fn, b = self.fn, self.b
        lo = self.int_value(s.lo, "a loop bound")
        hi = self.int_value(s.hi, "a loop bound")
        step = self._static_int(s.step, "a loop step") if s.step is not None else 1
        if step <= 0:
            raise Unsupported(f"the loop step must be positive, not {step}", s.step.span)
        pipeline, parallel = 1, None
        for a in s.annotations:
            if a.name == "pipeline":
                pipeline = self._static_int(a.args[0], "a pipeline depth") if a.args else 2
                if not 1 <= pipeline <= MAX_PIPELINE:
                    raise Unsupported(f"@pipeline({pipeline})", a.span)
            elif a.name == "parallel":
                parallel = a
        if pipeline > 1 and self.maybe:
            raise Unsupported("a @pipeline loop after a name was bound on some paths only (the interpreter "
                              "charges its copies by whether it is bound)", s.span)
        split = None
        if isinstance(lo, int) and isinstance(hi, int) and not s.annotations and self._varying_extent(s.body, s.var):
            if len(range(lo, hi, step)) > MAX_UNROLLED:
                raise Unsupported(f"a loop whose slices change size with its index, over more than {MAX_UNROLLED} "
                                  "iterations (the JIT lowers such a loop once per index)", s.span)
            split = self._split_at(s)
            if split is None:
                return self._unrolled(s, range(lo, hi, step))
            self.did_split = True
        if self.proc is not None:
            if parallel is not None:
                raise Unsupported("@parallel inside a process", parallel.span)
            if not isinstance(hi, int):
                raise Unsupported("a loop bound inside a process that depends on an outer loop index", s.hi.span)
        outer = self.loops[-1] if self.loops else CLoop(1, None, (), 1)
        lo_v, hi_v = (i64(lo) if isinstance(lo, int) else lo), (i64(hi) if isinstance(hi, int) else hi)
        width = None
        if parallel is not None:
            unit = self.hw.units.get(parallel.args[0].id) if parallel.args and isinstance(
                parallel.args[0], ast.Name) else None
            if unit is None:
                raise Unsupported("@parallel without a unit array of the hardware", parallel.span)
            span_ = b.sub(hi_v, lo_v)
            trips = b.sdiv(b.add(span_, i64(step - 1)), i64(step))
            trips = b.select(b.icmp_signed("<", trips, i64(0)), i64(0), trips)
            width = b.select(b.icmp_signed("<", trips, i64(unit.count)), trips, i64(unit.count))
            width = b.select(b.icmp_signed("<", width, i64(1)), i64(1), width)
        saved_outer = self.outer_names
        saved_rt = self.rt.get(s.var)
        saved_env = self.env.pop(s.var, None)
        var = self.state_var(I64)
        self.rt[s.var] = var
        before = dict(self.names)
        count = self.state_var(I64)
        b.store(i64(0), count)
        wall = self.sites_of_step(s.span)
        with fn.loop(lo_v, hi_v, step, idx=self.state_var(I64) if self.proc is not None else None) as v:
            b.store(v, var)
            n = b.load(count)
            b.store(b.add(n, i64(1)), count)
            if parallel is not None:
                loop = CLoop(pipeline, n, outer.slot + (b.urem(n, width),),
                             b.mul(outer.copies if not isinstance(outer.copies, int) else i64(outer.copies), width))
            else:
                loop = CLoop(pipeline, outer.lane, outer.slot, outer.copies)
            self.loops.append(loop)
            self.outer_names = set(before)
            self.check_wall(wall)
            start = self.start_iteration()
            if split is None:
                self.block(s.body)
            else:
                self.split_loops[s.var] = range(lo, hi, step)
                self.block(s.body[:split])
                self.split_loops.pop(s.var)
                if split < len(s.body):
                    self._per_index(s, s.body[split:], range(lo, hi, step))
            self.loops.pop()
            self.end_iteration(before, start, s.span)
        self.outer_names = saved_outer
        if saved_rt is None:
            self.rt.pop(s.var, None)
        else:
            self.rt[s.var] = saved_rt
        if saved_env is not None:
            self.env[s.var] = saved_env

    def start_iteration(self) -> dict:
        """Enter a loop body: the names bound on some paths only, each with whether it is bound now
        (its slot at the iteration's start: -1 where not), and the depth it became so at."""
        start = {}
        for name, depth in self.maybe.items():
            held = self.state_var(I64)
            self.b.store(self.b.load(self.name_buf[name]), held)
            start[name] = (held, depth)
        self.iterations += 1
        return start

    def end_iteration(self, before: dict, start: dict, span) -> None:
        """Engine.exec_for at the end of an iteration: the names it bound die with it. A name bound on
        some paths only when the iteration started dies only where it was not bound then (its slot held
        -1), and is bound on some paths only again; those it bound on some paths hold -1 on the others,
        which drop ignores."""
        fn, b = self.fn, self.b
        self.iterations -= 1
        dead = [x for x in self.names if x not in before] + [x for x in self.maybe if x not in self.names]
        for name in dict.fromkeys(dead):
            if name in before:
                continue
            slot = self.name_buf[name]
            if name in start:
                held, depth = start[name]
                with b.if_then(b.icmp_signed("<", b.load(held), i64(0))):
                    b.call(self.runtime.drop, [fn.P, fn.F, fn.I, b.load(slot)])
                    b.store(i64(-1), slot)
                self.names.pop(name, None)
                self.maybe[name] = depth
                continue
            b.call(self.runtime.drop, [fn.P, fn.F, fn.I, b.load(slot)])
            b.store(i64(-1), slot)
            self.names.pop(name, None)
            self.maybe.pop(name, None)
        if self.names != before:
            self.layout_differs(Unsupported("a name holds a value of another shape, dtype or memory after an "
                                            "iteration than before it (the JIT needs one layout per loop)", span))
            self.names = dict(before)

    def layout_differs(self, exc: Unsupported) -> None:
        """Two paths leave the names in different layouts: the JIT cannot compile that, unless a receive
        took a guessed shape (streams.py), when the difference may be the guess's. Then the lowering goes
        on, to reach the sends that give the channels' shapes, and is thrown away (lower_kernel lowers
        again with them)."""
        if not self.guessed:
            raise exc
        self.failed = self.failed or exc

    def _varying_extent(self, body, var: str) -> bool:
        """Whether a slice in body has a size that changes with the loop index var (q[r : B])."""
        rt = set(self.rt) | {var}
        env = {k: v for k, v in self.env.items() if k != var}
        return any(var in (free_names(x.lo) if x.lo is not None else set()) |
                   (free_names(x.hi) if x.hi is not None else set())
                   and _extent(x.lo, x.hi, 0, rt, env) is None
                   for x in _slices(body))

    def _split_at(self, s: ast.For) -> int | None:
        """Where the body of a loop whose slices change size with its index splits: the statements before
        the first one holding such a slice are compiled once, as a loop's body; the rest is lowered once per
        index (_per_index), under a switch on it. The code then grows with the iterations by the rest only
        (a store into a slice that grows with the index, at the end of a body with an inner loop, does not
        copy the inner loop per index). None to lower the whole body once per index: in a process (its
        turns resume in the middle of a body), where the rest binds or discards a name the first part binds
        (its layout would differ between the indices where the first part's name is read), where a name
        is bound on some paths only, or where the first statement holds the slice."""
        if not self.split or self.proc is not None or self.maybe:
            return None
        k = next((i for i, st in enumerate(s.body) if self._varying_extent([st], s.var)
                  and not self._simple_store(st, s.var)), len(s.body))
        if k == 0:
            return None
        if _bound_names(s.body[:k]) & (_bound_names(s.body[k:]) | _discarded_names(s.body[k:])):
            return None
        return k

    def _simple_store(self, st, var: str) -> bool:
        """A store whose value has no slice that changes size with var: its value is computed once, with
        var unknown, and only the copy into the target is lowered per index (s_Store)."""
        return isinstance(st, ast.Store) and not self._varying_extent([st.expr], var)

    def _per_index(self, s: ast.For, rest, values: range) -> None:
        """The rest of a split loop body (_split_at), lowered once per index with the index static. What
        a copy binds dies at its end, as the iteration's names do (the interpreter drops them at once)."""
        names = dict(self.names)

        def one() -> None:
            start = self.start_iteration()
            self.block(rest)
            self.end_iteration(names, start, s.span)

        self._each_index(s.var, values, one, s.span)

    def _each_index(self, var: str, values: range, lower_one, span) -> None:
        """lower_one() once per value of the loop index var, with var static, each copy in a case of a
        switch on the index: the copy for the index the loop is at runs."""
        b = self.b
        saved_rt = self.rt.pop(var)
        done = self.fn.block("per_index.end")
        switch = b.switch(b.load(saved_rt), done)
        size = _Growth(self, len(values), span)
        for i in values:
            case = self.fn.block("per_index")
            switch.add_case(i64(i), case)
            b.position_at_end(case)
            self.env[var] = i
            lower_one()
            b.branch(done)
            size.one_more()
        b.position_at_end(done)
        self.env.pop(var, None)
        self.rt[var] = saved_rt

    def _unrolled(self, s: ast.For, values: range) -> None:
        """A loop whose slices change size with its index, lowered once per index with the index static:
        the same statements, in the same order, as the loop's iterations, each with its own shapes."""
        saved_rt = self.rt.pop(s.var, None)
        saved_env = self.env.get(s.var)
        before = dict(self.names)
        wall = self.sites_of_step(s.span)
        size = _Growth(self, len(values), s.span)
        for i in values:
            self.env[s.var] = i
            self.check_wall(wall)
            start = self.start_iteration()
            self.block(s.body)
            self.end_iteration(before, start, s.span)
            size.one_more()
        if saved_rt is not None:
            self.rt[s.var] = saved_rt
        if saved_env is None:
            self.env.pop(s.var, None)
        else:
            self.env[s.var] = saved_env

    def sites_of_step(self, span) -> tuple[int, int]:
        """The sites check_wall fails at for a loop: --timeout and --max-steps."""
        return (self.site("E1004", "", span),  # runtime.timeout_error
                self.site("E1002", "", span))  # runtime.steps_error

    def check_wall(self, sites: tuple[int, int]) -> None:
        """An iteration starts: count it against --max-steps, and every 256th look at the clock."""
        fn, b = self.fn, self.b
        slot = self.L.i["steps"]
        n = b.add(fn.iget(slot), i64(1))
        fn.iset(slot, n)
        limit = fn.iget(self.L.i["max_steps"])
        self.fail_if(b.icmp_signed(">", n, limit), MAX_STEPS, sites[1], a=limit)
        with b.if_then(b.fcmp_ordered(">", self.deadline, f64(0.0)), likely=False):
            with b.if_then(b.icmp_signed("==", b.and_(n, i64(255)), i64(0))):
                now = self._now()
                self.fail_if(b.fcmp_ordered(">", now, self.deadline), TIMEOUT, sites[0])

    def _now(self):
        b = self.b
        name = "clock_gettime"
        f = self.module.globals.get(name) or ir.Function(
            self.module, ir.FunctionType(I32, [I32, I64P]), name=name)
        ts = self.fn.var(ir.ArrayType(I64, 2))
        p = b.bitcast(ts, I64P)
        b.call(f, [ir.Constant(I32, 1), p])
        sec = b.sitofp(b.load(p), F64)
        nsec = b.sitofp(b.load(b.gep(p, [i64(1)])), F64)
        return b.fadd(sec, b.fmul(nsec, f64(1e-9)))

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
        arity = {"softmax": 1, "exp": 1, "log": 1, "sqrt": 1, "abs": 1, "rowmax": 1, "rowmin": 1, "rowsum": 1,
                 "sum": 1, "mean": 1, "transpose": 1, "where": 3, "causal": 3, "dot": 2}
        if f in arity and len(args) != arity[f] or f in ("max", "min") and len(args) not in (1, 2):
            raise Unsupported(f"{f}() with {len(args)} arguments", e.span)
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


#: Lowerings of a kernel with channels before giving up on settling the shapes they carry (each one
#: learns at least one more: a chain of processes settles in as many passes as it has links).
MAX_PASSES = 16


def lower_kernel(kernel: ast.Kernel, env: dict, hw: Hardware, input_shapes: dict, blas: bool,
                 wall_deadline: float | None = None) -> tuple[str, dict]:
    """The kernel's IR and meta (Lowering.lower). A receive needs the shape of what its channel carries,
    which the sends give, possibly in a process lowered after it: lower again with the shapes the sends
    gave until every receive took the shape its channel carries. Past wall_deadline (time.monotonic()),
    Expired."""
    shapes = _checked_channel_shapes(kernel, env, hw)
    try:
        return _settled(kernel, env, hw, input_shapes, blas, shapes, True, wall_deadline)
    except _SplitFailed:
        # a loop split at its first varying slice (Lowering._split_at) compiles its first part with the
        # index unknown, which some statements cannot be: lower each such loop whole, once per index
        return _settled(kernel, env, hw, input_shapes, blas, shapes, False, wall_deadline)


class _SplitFailed(Exception):
    """A lowering that split a loop (Lowering._split_at) could not compile the kernel."""


def _settled(kernel, env, hw, input_shapes, blas, shapes, split: bool, wall_deadline) -> tuple[str, dict]:
    for _ in range(MAX_PASSES):
        low = Lowering(kernel, env, hw, input_shapes, blas, shapes, split, wall_deadline)
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


def _checked_channel_shapes(kernel: ast.Kernel, env: dict, hw: Hardware) -> dict:
    """What each channel carries, as the checker's shape analysis (check/shapes.py) found it, per
    channel instance: the first lowering's guess. Without it a receive that comes before its channel's
    first send in lowering order takes a guessed shape, and a value relayed from it pollutes what the
    sends give (a ring that forwards what it receives never settles)."""
    from ..check import scope
    from ..check.dims import value_of
    from ..check.shapes import analyze

    if not any(isinstance(s, ast.Recv) for s in ast.walk_statements(kernel.body)):
        return {}
    try:
        declared = declare_channels(kernel, env)
    except AttnError:
        return {}  # lower_processes says why
    full = scope.full_env(kernel, env)
    sent = analyze(kernel, full, hw).sent
    out = {}
    for name in declared:
        ty = sent.get(name.split("[")[0])
        dims = [value_of(d, full) for d in ty.shape] if ty is not None and ty.shape is not None else None
        if dims is not None and all(isinstance(d, (int, float)) and d == int(d) >= 0 for d in dims):
            out[name] = tuple(int(d) for d in dims)
    return out


# ---------------------------------------------------------------- helpers
class _Growth:
    """The code a loop lowered once per index adds, watched as it is lowered: when what the indices
    lowered so far add, projected over all of them, passes MAX_INSTRUCTIONS, TooBig at once (before
    minutes of lowering and of LLVM). Lowering.lower counts the whole module at its end."""

    def __init__(self, low: Lowering, iterations: int, span):
        self.low, self.iterations, self.span = low, iterations, span
        self.added = self.done = 0
        self._mark()

    def _mark(self) -> None:
        self.blocks = len(self.low.fn.func.blocks)
        self.current = self.low.b.block
        self.current_count = len(self.current.instructions)

    def one_more(self) -> None:
        blocks = self.low.fn.func.blocks
        grown = len(self.current.instructions) - self.current_count
        self.added += grown + sum(len(block.instructions) for block in blocks[self.blocks:])
        self.done += 1
        self._mark()
        projected = self.added * self.iterations // self.done
        if projected > MAX_INSTRUCTIONS:
            raise TooBig(projected, self.span, estimated=True)


def _bound_names(body) -> set:
    return {s.target.name for s in ast.walk_statements(body) if isinstance(s, (ast.Assign, ast.Load, ast.Recv))}


def _discarded_names(body) -> set:
    return {n.id for s in ast.walk_statements(body) if isinstance(s, ast.Discard) for n in s.names}


def _same_view(a: View, b: View) -> bool:
    def const(x):
        return x.constant if isinstance(x, ir.Constant) else x

    return a.ptr is b.ptr and const(a.off) == const(b.off) and isinstance(const(a.off), int) and \
        a.shape == b.shape and a.strides == b.strides


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


def _slices(node):
    """Every slice in statements or expressions, nested ones included."""
    if isinstance(node, (list, tuple)):
        for x in node:
            yield from _slices(x)
        return
    if not dataclasses.is_dataclass(node):
        return
    if isinstance(node, ast.Slice):
        yield node
    for f in dataclasses.fields(node):
        if f.name != "span":
            yield from _slices(getattr(node, f.name))


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


__all__ = ["Lowering", "Unsupported", "ENTRY", "CLEANUP", "lower_kernel"]
