"""Processes and channels in native code: the compiled mirror of interp/streams.py.

Each process becomes a resumable function. Everything of it that outlives a
statement (loop indices, the buffer each name holds, its clock) lives in its
frame, a range of the state arrays, not on the stack; on entry a `switch` on
its resume point jumps to where it left off. Where the interpreter's
generator yields, the function saves the point and returns YIELD: after each
load and store (Scheduler.TURN: the DRAM port takes the transfers of the
processes in turn), on a send to a full channel and on a receive from an
empty one (it comes back to the same test when run again).

A channel is a ring of depth + 1 elements (data and arrival time: a send
writes its element into the free slot before it waits for room, so that
nothing of the value has to outlive a return) and the times the last `depth`
receives freed their slots (Channel.recv_times). The kernel's entry is the
scheduler: Scheduler.run's rounds, the processes in spawn order, each run
until it yields or ends; a round without progress is a deadlock, which the
interpreter then reports (E1032) by running the kernel again.

The instances of a process array are lowered one by one, with their own
index, and then share one function where they differ only in constants
(share.py).

Every channel's element shape must be the same for every send: a receive
needs it at compile time. lower_kernel (lower.py) finds the shapes by
lowering again while they change.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import llvmlite.ir as ir

from .. import cost
from ..channels import declare_channels
from ..diagnostics import AttnError
from ..static import StaticError, static_eval, static_int
from ..syntax import ast
from .irkit import F32, F64, I32, I64, Fn, f64, i64
from .share import same_but_constants, share
from .tiles import View, contiguous_strides
from .values import DEADLOCK, OK, YIELD, Desc, Unsupported, Val

#: The deepest channel the JIT gives a ring of its own.
MAX_DEPTH = 1 << 20


@dataclass
class Chan:
    """A channel's slots in the state arrays."""

    name: str
    depth: int
    latency: float
    response: float
    span: object
    data: int  # P: the ring of elements, depth + 1 of them
    arrival: int  # F: arrival time per ring slot
    freed: int  # F: when each of the last `depth` receives freed its slot
    sent: int  # I
    received: int  # I
    max_occupancy: int  # I
    blocked_send: int  # F
    blocked_recv: int  # F


@dataclass
class Frame:
    """The process being lowered: its resume point, its dispatch on it, its clock."""

    index: int  # in spawn order
    name: str
    resume: int  # I slot: 0 to start, k to go on at resume point k
    clock: int  # F slot
    switch: object = None
    first: list = field(default_factory=list)  # (pointer, value): the frame's values at the start
    points: int = 0
    slots: int = 0


def _static(e, env: dict, what: str | None = None):
    try:
        return static_int(e, env, what) if what else static_eval(e, env)
    except StaticError as exc:
        raise Unsupported(exc.diagnostic.message, e.span) from None


class ChannelLowering:
    """The Lowering's statements for processes and channels (a mixin of lower.Lowering)."""

    def init_channels(self, channel_shapes: dict | None) -> None:
        self.chans: dict[str, Chan] = {}
        self.channel_shapes = dict(channel_shapes or {})  # channel -> element shape, from an earlier lowering
        self.sent_shapes: dict[str, tuple] = {}  # what the sends of this lowering put on each channel
        self.recv_shapes: dict[str, tuple] = {}  # what its receives took from each
        self.senders: dict[str, str] = {}  # channel -> the one process that sends on it
        self.guessed = False  # a receive took a shape no send had given yet (so a failure may be spurious)
        self.failed: Unsupported | None = None  # what stopped a process while shapes were guessed

    # ================================================================ the kernel body
    def lower_processes(self) -> None:
        """Lower each process to a function, and the kernel's entry to the scheduler over them."""
        try:
            declared = declare_channels(self.k, self.env)
        except AttnError as exc:
            d = exc.diagnostics[0]
            raise Unsupported(d.message, d.span) from None
        L = self.L
        for name, c in declared.items():
            if c.dtype != "f32":
                raise Unsupported(f"a channel of {c.dtype} (the JIT compiles channels of f32)", c.span)
            if c.depth > MAX_DEPTH:
                raise Unsupported(f"a channel deeper than {MAX_DEPTH}", c.span)
            self.chans[name] = Chan(name, c.depth, c.latency, c.response, c.span, L.P(f"chan.{name}"),
                                    L.F(f"chan.{name}.arrival", c.depth + 1), L.F(f"chan.{name}.freed", c.depth),
                                    L.I(f"chan.{name}.sent"), L.I(f"chan.{name}.received"),
                                    L.I(f"chan.{name}.max"), L.F(f"chan.{name}.blocked_send"),
                                    L.F(f"chan.{name}.blocked_recv"))
        L.I("progress")
        spawns: list = []
        self._spawns(self.k.body, spawns)
        lowered = []  # (function, the process statement of an array or None, its instance index)
        for n, (name, env, unit, body, array, index) in enumerate(spawns):
            try:
                lowered.append((self._process(n, name, env, unit, body), array, index))
            except Unsupported as exc:
                if not self.guessed:
                    raise
                self.failed = self.failed or exc  # lowered again with the shapes the sends give
                lowered.append((None, None, None))
        fns = [(f, 0) for f, _, _ in lowered if f is not None]
        if settled(self):  # else this lowering is thrown away (lower_kernel lowers again)
            fns = self._share(lowered)
        for name, ch in self.chans.items():
            shape = self.sent_shapes.get(name, self.recv_shapes.get(name, ()))
            size = 1
            for s in shape:
                size *= s
            self.scratch.append((ch.data, (ch.depth + 1) * max(size, 1), "f32"))
        self._scheduler(fns)

    def _share(self, lowered: list) -> list:
        """(function, instance index) per process: the instances of an array whose functions differ only in
        constants (share.py) share one function, group by group (instances that take another branch on
        their index at compile time, p < m // 2, form a group of their own); the index is the instance's
        position in its group."""
        fns = [(f, 0) for f, _, _ in lowered]
        for array in {id(a): a for _, a, _ in lowered if a is not None}.values():
            members = [k for k, (_, a, _) in enumerate(lowered) if a is array]
            for g, group in enumerate(same_but_constants([lowered[k][0] for k in members])):
                if len(group) < 2:
                    continue
                one = share(self.module, [lowered[members[j]][0] for j in group], f"process.{array.name}.{g}")
                if one is not None:
                    for position, j in enumerate(group):
                        fns[members[j]] = (one, position)
        return fns

    def _spawns(self, body, out: list) -> None:
        """(name, env, unit, body, array, index) of every process the kernel body starts, in the
        interpreter's order: array is the `process` statement of an array of processes (None for one
        process), index the instance's position in it."""
        for s in body:
            if isinstance(s, (ast.Param, ast.DimDecl, ast.Where, ast.ChannelDecl)):
                continue
            if isinstance(s, ast.If):
                self._spawns(s.then if _static(s.cond, self.env) else s.orelse, out)
                continue
            if not isinstance(s, ast.Process):
                raise Unsupported("the kernel body runs statements beside its processes (the JIT compiles "
                                  "kernels whose body only declares channels and starts processes)", s.span)
            indices = [None]
            if s.var is not None:
                indices = list(range(_static(s.lo, self.env, "a process range bound"),
                                     _static(s.hi, self.env, "a process range bound")))
            for position, i in enumerate(indices):
                env = dict(self.env)
                if i is not None:
                    env[s.var] = i
                if s.unit.name not in self.hw.units:
                    raise Unsupported(f"hardware '{self.hw.name}' has no unit '{s.unit.name}'", s.unit.span)
                index = _static(s.unit.index, env, "a unit index") if s.unit.index is not None else None
                out.append((s.name if i is None else f"{s.name}[{i}]", env, (s.unit.name, index), s.body,
                            None if i is None else s, position))

    def _scheduler(self, fns: list) -> None:
        """Scheduler.run: rounds over the processes still running, in spawn order, until all end. fns:
        (function, instance index) per process; the instances of an array may share a function."""
        fn, b, L = self.fn, self.b, self.L
        n = len(fns)
        if n == 0:
            b.ret(ir.Constant(I32, OK))
            return
        active, count, progress = L.I("sched.active", n), L.I("sched.count"), L.I("progress")
        for k in range(n):
            fn.iset(active + k, i64(k))
        fn.iset(count, i64(n))
        round_ = fn.block("round")
        b.branch(round_)
        b.position_at_end(round_)
        before = fn.iget(progress)
        finished, kept = fn.var(I64, i64(0)), fn.var(I64, i64(0))
        result = fn.var(I32)
        with fn.loop(0, fn.iget(count)) as idx:
            k = b.load(b.gep(fn.I, [b.add(i64(active), idx)]))
            called = fn.block("called")
            calls = [fn.block("call") for _ in fns]
            switch = b.switch(k, calls[0])
            for j, (blk, (proc, instance)) in enumerate(zip(calls, fns, strict=True)):
                if j:
                    switch.add_case(i64(j), blk)
                b.position_at_end(blk)
                b.store(b.call(proc, [fn.P, fn.F, fn.I, self.max_cycles, self.deadline, i64(instance)]), result)
                b.branch(called)
            b.position_at_end(called)
            r = b.load(result)
            with b.if_then(b.and_(b.icmp_signed("!=", r, ir.Constant(I32, OK)),
                                  b.icmp_signed("!=", r, ir.Constant(I32, YIELD))), likely=False):
                b.ret(r)
            with b.if_else(b.icmp_signed("==", r, ir.Constant(I32, YIELD))) as (yielded, ended):
                with yielded:
                    j = b.load(kept)
                    b.store(k, b.gep(fn.I, [b.add(i64(active), j)]))
                    b.store(b.add(j, i64(1)), kept)
                with ended:
                    b.store(b.add(b.load(finished), i64(1)), finished)
        left = b.load(kept)
        fn.iset(count, left)
        with b.if_then(b.icmp_signed("==", left, i64(0))):
            b.ret(ir.Constant(I32, OK))
        stuck = b.and_(b.icmp_signed("==", b.load(finished), i64(0)), b.icmp_signed("==", fn.iget(progress), before))
        with b.if_then(stuck, likely=False):
            b.ret(ir.Constant(I32, DEADLOCK))
        b.branch(round_)

    def channel_meta(self) -> list[dict]:
        """Where _run reads each channel's statistics, in the interpreter's order."""
        return [{"name": c.name, "depth": c.depth, "sent": c.sent, "received": c.received, "max": c.max_occupancy,
                 "blocked_send": c.blocked_send, "blocked_recv": c.blocked_recv,
                 "span": [c.span.file, c.span.line, c.span.column, c.span.end_line, c.span.end_column]}
                for c in self.chans.values()]

    # ================================================================ a process
    def _process(self, n: int, name: str, env: dict, unit: tuple, body) -> ir.Function:
        fn = Fn(self.module, f"process.{n}", I32, [F64, F64, I64])  # the last: its index in its array (share)
        frame = Frame(n, name, self.L.I(f"proc.{n}.resume"), self.L.F(f"proc.{n}.clock"))
        with self._process_scope(fn, frame, env, unit, f"{n}:"):
            b = fn.b
            start, run = fn.block("start"), fn.block("run")
            frame.switch = b.switch(fn.iget(frame.resume), start)
            b.position_at_end(run)
            self.block(body)
            b.ret(ir.Constant(I32, OK))
            b.position_at_end(start)
            fn.fset(frame.clock, f64(0.0))  # the kernel body's clock when it started the process
            for ptr, value in frame.first:
                b.store(value, ptr)
            b.branch(run)
            fn.finish()
        return fn.func

    @contextmanager
    def _process_scope(self, fn: Fn, frame: Frame, env: dict, unit: tuple, prefix: str):
        """Lower into fn as the process: its own names, loops, storage and clock (an interp child Engine)."""
        keep = ("fn", "b", "t", "max_cycles", "deadline", "ptr_cache", "names", "name_buf", "rt", "loops",
                "outer_names", "temps", "env", "prefix", "proc", "proc_unit", "maybe", "iterations")
        saved = {k: getattr(self, k) for k in keep}
        self.fn, self.b, self.t = fn, fn.b, self.t.on(fn)
        self.max_cycles, self.deadline = fn.args[:2]
        self.ptr_cache, self.names, self.name_buf, self.rt, self.maybe = {}, {}, {}, {}, {}
        self.iterations = 0
        self.loops, self.outer_names, self.temps = [], set(), []
        self.env, self.prefix, self.proc, self.proc_unit = env, prefix, frame, unit
        try:
            yield
        finally:
            for k, v in saved.items():
                setattr(self, k, v)

    def frame_var(self, ty, first=None):
        """A pointer to a new slot of the process's frame (Lowering.state_var)."""
        fn, b, frame = self.fn, self.b, self.proc
        frame.slots += 1
        key = f"proc.{frame.index}.var{frame.slots}"
        array, slot = (fn.F, self.L.F(key)) if ty == F64 else (fn.I, self.L.I(key))
        with b.goto_block(fn.allocas):
            ptr = b.gep(array, [i64(slot)])
        if first is not None:
            frame.first.append((ptr, first))
        return ptr

    def _resume_point(self, block) -> int:
        frame = self.proc
        frame.points += 1
        frame.switch.add_case(i64(frame.points), block)
        return frame.points

    def turn(self) -> None:
        """Scheduler.turn after a load or store: progress, and the next process's turn."""
        fn, b = self.fn, self.b
        progress = self.L.i["progress"]
        fn.iset(progress, b.add(fn.iget(progress), i64(1)))
        go_on = fn.block("turn")
        fn.iset(self.proc.resume, i64(self._resume_point(go_on)))
        b.ret(ir.Constant(I32, YIELD))
        b.position_at_end(go_on)

    def _wait_while(self, blocked) -> None:
        """Yield while blocked() holds; the process comes back to the test when it runs again."""
        fn, b = self.fn, self.b
        test = fn.block("wait")
        b.branch(test)
        b.position_at_end(test)
        point = self._resume_point(test)
        with b.if_then(blocked(), likely=False):
            fn.iset(self.proc.resume, i64(point))
            b.ret(ir.Constant(I32, YIELD))

    # ================================================================ statements
    def s_Process(self, s: ast.Process) -> None:
        raise Unsupported("a process started inside a process", s.span)

    def s_ChannelDecl(self, s: ast.ChannelDecl) -> None:
        pass  # declared before the run (declare_channels)

    def _channel(self, ref: ast.UnitRef) -> Chan:
        if self.proc is None:
            raise Unsupported("send and recv outside a process", ref.span)
        name = ref.name
        if ref.index is not None or name not in self.chans:
            if ref.index is None:
                raise Unsupported(f"there is no channel '{name}'", ref.span)
            name = f"{ref.name}[{self._static_int(ref.index, 'a channel index')}]"
        if name not in self.chans:
            raise Unsupported(f"there is no channel '{name}'", ref.span)
        return self.chans[name]

    def _slot_view(self, ch: Chan, index, shape: tuple) -> View:
        """The ring slot of element `index` (i64 IR) of ch."""
        size = 1
        for s in shape:
            size *= s
        slot = self.b.urem(index, i64(ch.depth + 1))
        return View(self.ptr(ch.data, F32), self.b.mul(slot, i64(size)), shape, contiguous_strides(shape), F32)

    def s_Send(self, s: ast.Send) -> None:
        """streams.exec_send: evaluate, end the statement, wait for room, then _send."""
        ch = self._channel(s.channel)
        if self.senders.setdefault(ch.name, self.proc.name) != self.proc.name:
            raise Unsupported(f"channel {ch.name} has more than one sending process", s.span)
        fn, b = self.fn, self.b
        value = self.ev(s.expr, f64(0.0), 1, None)
        sent = fn.iget(ch.sent)
        if isinstance(value, Val):
            if value.dtype != "f32":
                raise Unsupported(f"a value of {value.dtype} sent on a channel of f32", s.span)
            shape = value.view.shape
            self.t.copy(self._slot_view(ch, sent, shape), value.view, "f32")
            # the buffer and its ready time outlive a wait; the buffer keeps its id until the send has
            # updated its last read (a history reference: freed at the end of the statement, not reused)
            buf_var, ready_var = self.state_var(I64), self.state_var(F64)
            b.store(value.buf, buf_var)
            b.store(self.ready_of(value.buf), ready_var)
            hist = self.pool("hist", value.buf, False)
            b.store(b.add(b.load(hist), i64(1)), hist)
        else:
            shape = ()
            self.t.fill(self._slot_view(ch, sent, shape), self.scalar(value, F32), "f32")
        if self.sent_shapes.setdefault(ch.name, shape) != shape:
            raise Unsupported(f"channel {ch.name} carries values of different shapes", s.span)
        self.end_statement()
        self._wait_while(lambda: b.icmp_signed(">=", b.sub(fn.iget(ch.sent), fn.iget(ch.received)),
                                                i64(ch.depth)))
        clock = fn.fget(self.proc.clock)
        if isinstance(value, Val):
            ready = b.load(ready_var)
            t = fn.var(F64, b.select(b.fcmp_ordered(">", ready, clock), ready, clock))
        else:
            t = fn.var(F64, clock)  # a number is ready at 0
        index = fn.iget(ch.sent)
        with b.if_then(b.icmp_signed(">=", index, i64(ch.depth))):
            freed = b.fadd(b.load(b.gep(fn.F, [b.add(i64(ch.freed), b.urem(index, i64(ch.depth)))])),
                           f64(ch.response))
            with b.if_then(b.fcmp_ordered(">", freed, b.load(t))):
                fn.fadd(ch.blocked_send, b.fsub(freed, b.load(t)))
                b.store(freed, t)
        t = b.load(t)
        fn.fset(self.proc.clock, t)
        if isinstance(value, Val):
            buf = b.load(buf_var)
            self.bump_last_read(buf, t)
            hist = self.pool("hist", buf, False)
            b.store(b.sub(b.load(hist), i64(1)), hist)
            b.call(self.runtime.maybe_free, [fn.P, fn.F, fn.I, buf])
        slot = b.urem(index, i64(ch.depth + 1))
        b.store(b.fadd(t, f64(ch.latency)), b.gep(fn.F, [b.add(i64(ch.arrival), slot)]))
        n = b.add(index, i64(1))
        fn.iset(ch.sent, n)
        held = b.sub(n, fn.iget(ch.received))
        fn.iset(ch.max_occupancy, b.select(b.icmp_signed(">", held, fn.iget(ch.max_occupancy)), held,
                                           fn.iget(ch.max_occupancy)))
        self._progress()
        self.finish(t, s.span)

    def s_Recv(self, s: ast.Recv) -> None:
        """streams.exec_recv: wait for an element, _recv, then Engine.bind_received."""
        ch = self._channel(s.channel)
        if s.target.index is not None:
            raise Unsupported("a receive into part of a tensor", s.span)
        shape = self.channel_shapes.get(ch.name, self.sent_shapes.get(ch.name))
        if shape is None:
            shape, self.guessed = (), True
        self.recv_shapes[ch.name] = shape
        fn, b = self.fn, self.b
        self._wait_while(lambda: b.icmp_signed("==", fn.iget(ch.sent), fn.iget(ch.received)))
        index = fn.iget(ch.received)
        arrival = b.load(b.gep(fn.F, [b.add(i64(ch.arrival), b.urem(index, i64(ch.depth + 1)))]))
        clock = fn.fget(self.proc.clock)
        with b.if_then(b.fcmp_ordered(">", arrival, clock)):
            fn.fadd(ch.blocked_recv, b.fsub(arrival, clock))
            fn.fset(self.proc.clock, arrival)
        clock = fn.fget(self.proc.clock)
        b.store(clock, b.gep(fn.F, [b.add(i64(ch.freed), b.urem(index, i64(ch.depth)))]))
        fn.iset(ch.received, b.add(index, i64(1)))
        self._progress()
        self.finish(clock, s.span)
        # Engine.bind_received: the value lives in the memory of the process's unit
        unit = self.hw.units.get(self.proc_unit[0])
        memory = (unit.memory if unit else None) or self.root
        size = 1
        for d in shape:
            size *= d
        name = s.target.name
        buf = self.new_buffer(memory, cost.tensor_bytes(size, "f32"), clock, self.charge(name), s.span)
        desc = Desc(shape, "f32", memory)
        self.t.copy(self.name_view(name, desc), self._slot_view(ch, index, shape), "f32")
        self.hist_push(name, buf)
        self.bind_name(name, buf, desc)
        self.end_statement()

    def _progress(self) -> None:
        fn, b = self.fn, self.b
        progress = self.L.i["progress"]
        fn.iset(progress, b.add(fn.iget(progress), i64(1)))


def settled(low) -> bool:
    """Whether every process was lowered and every receive took the shape its channel's sends give (a
    channel that nothing sends on blocks its receiver for good: any shape will do)."""
    return low.failed is None and all(low.sent_shapes.get(c, shape) == shape for c, shape in low.recv_shapes.items())


__all__ = ["ChannelLowering", "settled"]
