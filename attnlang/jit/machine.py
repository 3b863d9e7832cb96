"""The lowering's machine: the compile-time mirror of attnlang/interp/machine.py.

Units, transfers and their port timelines, buffers and their pool, occupancy, pipeline histories,
the clock and the step and wall-time checks, emitted as IR with the interpreter's order and numbers.
"""

from __future__ import annotations

import llvmlite.ir as ir

from .. import cost
from ..hardware import Unit
from .irkit import F64, F64P, I1, I32, I64, I64P, f64, i64
from .values import (
    MAX_CYCLES,
    MAX_STEPS,
    NO_MEMORY,
    OVERFLOW,
    SPILL,
    TIMEOUT,
    Desc,
)


class MachineLowering:
    """Lowering's time, buffers and counters (mixed into Lowering)."""

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
