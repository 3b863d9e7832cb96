"""The reference engine: runs a kernel's statements on NumPy data while the
Machine counts cycles, energy, traffic and occupancy (docs/semantics.md)."""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

import numpy as np

from .. import cost, ops
from ..binding import tensor_shape
from ..diagnostics import AttnError, Span, did_you_mean, error
from ..dtypes import round_to
from ..hardware import Hardware, Unit
from ..limits import MAX_PIPELINE
from ..runtime import no_value, steps_error
from ..static import StaticError, static_eval, static_int
from ..syntax import ast
from .evaluate import evaluate
from .machine import Buffer, Machine
from .streams import exec_recv, exec_send
from .values import TV

_F32 = np.dtype(np.float32)


@dataclass(slots=True)
class _Loop:
    pipeline: int
    lane: int | None  # the @parallel iteration index: picks the unit instance
    slot: tuple = ()  # which concurrent copy of the body's buffers this iteration uses
    copies: int = 1  # how many iterations run at once (product over enclosing @parallel loops)


def _fail(code: str, message: str, span: Span, *notes: str) -> AttnError:
    return AttnError(error(code, message, span, *notes))


class Memo:
    """What a run works out once and then looks up: facts that depend only on an AST node, or on an
    operation, a unit and a size, never on the data or the time. One per run, shared by its processes.

    Entries for a node are keyed by id(node) and hold the node itself, so that its id cannot be
    taken by another node while the entry exists (the REPL parses new nodes for every input).
    """

    def __init__(self, hw: Hardware):
        self.hw = hw
        self._fma: dict[int, tuple] = {}
        self._values: dict[int, tuple] = {}
        self._vector_costs: dict[tuple, tuple] = {}
        self._bindings: dict[tuple, object] = {}

    def fma_parts(self, e: ast.Binary) -> tuple | None:
        """ops.fma_parts(e): (a, b, c) when e is a * b + c."""
        hit = self._fma.get(id(e))
        if hit is None or hit[0] is not e:
            hit = self._fma[id(e)] = (e, ops.fma_parts(e))
        return hit[1]

    def assign_value(self, s: ast.Assign) -> ast.Expr:
        """s.value, built once: for `x += e` it is a new Binary node on every access."""
        hit = self._values.get(id(s))
        if hit is None or hit[0] is not s:
            hit = self._values[id(s)] = (s, s.value)
        return hit[1]

    def vector_cost(self, op: str, unit: Unit, elements: int) -> tuple:
        """ops.vector_cost(op, unit, elements)."""
        key = (op, unit.name, elements)
        hit = self._vector_costs.get(key)
        if hit is None:
            hit = self._vector_costs[key] = ops.vector_cost(op, unit, elements)
        return hit

    def bind(self, op: str, unit_name: str | None):
        """ops.bind(op, hw, unit_name): a Binding, or a str saying why no unit can run op."""
        key = (op, unit_name)
        b = self._bindings.get(key)
        if b is None:
            b = self._bindings[key] = ops.bind(op, self.hw, unit_name)
        return b


class Engine:
    def __init__(self, hw: Hardware, machine: Machine, env: dict, inputs: dict[str, np.ndarray],
                 kernel: ast.Kernel):
        self.hw = hw
        self.m = machine
        self.env = dict(env)  # static names: dims, params, loop indices, symbols
        self.kernel = kernel
        self.root = hw.root_memory().name
        self.tensors = {t.name: (inputs[t.name], t.dtype) for t in kernel.inputs if t.name in inputs}
        self.outputs: dict[str, np.ndarray] = {}
        self.out_dtype: dict[str, str] = {}
        self.names: dict[str, TV] = {}
        self.history: dict[str, deque] = defaultdict(lambda: deque(maxlen=MAX_PIPELINE))
        self.loops: list[_Loop] = []
        self.temps: list[Buffer] = []  # a statement's intermediate results, freed at its end
        self.used: list[Buffer] = []  # the buffers a statement reads, pinned until its end
        self.stored: set[str] = set()
        self.store_end: dict[str, float] = {}
        self.clock = 0.0  # this process's clock (DAM): advanced by send and recv
        self.process = "main"
        self.proc_unit: tuple | None = None
        self.channels: dict = {}
        self.sched = None
        self.memo = Memo(hw)  # a process shares its parent's
        self._units: dict[tuple, tuple[Unit, int]] = {}  # unit_for's answers in this process
        self._vector_ops: dict[tuple, tuple] = {}  # vector_op's answers in this process
        self._recv_memory: str | None = None  # where received values live in this process

    def declare_outputs(self) -> None:
        for t in self.kernel.outputs:
            shape = tensor_shape(t, self.env, "output")
            self.outputs[t.name] = np.zeros(shape, dtype=np.float64 if t.dtype == "f64" else np.float32)
            self.out_dtype[t.name] = t.dtype

    # ---------------------------------------------------------- statements
    def run_block(self, body: tuple):
        """A generator: it yields when a send or receive blocks (see streams.py), and, while several
        processes run, after each transfer it issues (Scheduler.TURN)."""
        stmts = self._STMTS
        sched = self.sched
        for s in body:
            r = stmts[type(s)](self, s)
            if r is not None:
                yield from r
            if sched is not None and sched.concurrent and type(s) in _TRANSFERS:
                yield sched.turn()

    def _skip(self, s) -> None:  # params, dims, where: already bound before the run
        pass

    def _bind_name(self, name: str, tv: TV, span: Span) -> None:
        old = self.names.get(name)
        tv.buf.refs += 1
        self.names[name] = tv
        if old is not None:
            old.buf.refs -= 1  # _drop(old)
            if old.buf.refs <= 0:
                self.m.release(old.buf)

    def _drop(self, tv: TV) -> None:
        tv.buf.refs -= 1
        if tv.buf.refs <= 0:
            self.m.release(tv.buf)

    def _target(self, name: str) -> tuple[deque, float, int]:
        """Where a new value of `name` goes: (history, dest, charge).

        history: the buffers the name has had, under its slot (iterations on different parallel
        units reuse their own buffers); the new one is appended to it.
        dest: when the buffer the new value overwrites is no longer read (k back for @pipeline(k)).
        charge: copies of the value held at once: k for one first assigned inside a @pipeline(k)
        body, times the iterations of enclosing @parallel loops that run at the same time.
        """
        if self.loops:
            loop = self.loops[-1]
            k = loop.pipeline
            hist = self.history[(name, loop.slot) if loop.slot else name]
            charge = (k if name not in self._outer_names else 1) * loop.copies
        else:
            k = charge = 1
            hist = self.history[name]
        return hist, (hist[-k].last_read if len(hist) >= k else 0.0), charge

    def _end_statement(self) -> None:
        if self.temps:
            for b in self.temps:
                b.pinned = False
                if b.refs <= 0:
                    self.m.release(b)
            self.temps = []
        if self.used:
            for b in self.used:
                b.pinned = False
            self.used = []

    def exec_assign(self, s: ast.Assign) -> None:
        name = s.target.name
        expr = s.expr if s.op == "=" else self.memo.assign_value(s)
        if s.target.index is not None:
            self._assign_part(s, expr)
            return
        hist, dest, charge = self._target(name)
        value = evaluate(self, expr, dest, charge, None)
        if not isinstance(value, TV):
            raise _fail("E1006", f"'{name}' would be a plain number; tensors are made with full(), zeros() "
                                 "or ones()", s.span)
        hist.append(value.buf)
        self._bind_name(name, value, s.span)
        self._end_statement()

    def _assign_part(self, s: ast.Assign, expr: ast.Expr) -> None:
        name = s.target.name
        old = self.names.get(name)
        if old is None:
            raise _fail("E1007", f"'{name}' has no value to update part of", s.target.span)
        value = self.eval(expr, dest=old.buf.last_read)
        key = self._subscripts(s.target.index, old.data.shape, name, s.target.span)
        data = old.data.copy()
        try:
            data[key] = value.data if isinstance(value, TV) else value
        except ValueError:
            shape = list(value.data.shape) if isinstance(value, TV) else []
            raise _fail("E1011", f"cannot write a value of shape {shape} into {name}{list(data[key].shape)}",
                        s.span) from None
        ready = value.buf.ready if isinstance(value, TV) else 0.0
        old.buf.ready = max(old.buf.ready, ready)
        self.names[name] = TV(round_to(data, old.dtype), old.dtype, old.buf)
        self._end_statement()

    def exec_load(self, s: ast.Load) -> None:
        src_data, src_dtype, src_mem, ready, src_buf = self._source(s.tensor, s.tensor_span)
        if s.index is not None:
            key = self._subscripts(s.index, src_data.shape, s.tensor, s.span)
            data = src_data[key]
        else:
            data = src_data
        if s.memory not in self.hw.memories:
            raise _fail("E1008", f"hardware '{self.hw.name}' has no memory '{s.memory}'"
                        f"{did_you_mean(s.memory, self.hw.memories)}", s.memory_span)
        nbytes = cost.tensor_bytes(data.size, src_dtype)
        hist, dest, charge = self._target(s.target.name)
        start, end = self.m.transfer(src_mem, s.memory, nbytes, max(ready, dest, self.clock), f"load {s.tensor}",
                                     s.span)
        if src_buf is not None:
            src_buf.last_read = max(src_buf.last_read, end)
        buf = Buffer(s.memory, nbytes, end)
        self.m.allocate(buf, charge, s.span)
        hist.append(buf)
        self._bind_name(s.target.name, TV(np.array(data), src_dtype, buf), s.span)
        self._end_statement()

    def _source(self, name: str, span: Span):
        if name in self.tensors:
            data, dtype = self.tensors[name]
            return data, dtype, self.root, 0.0, None
        if name in self.names:
            tv = self.names[name]
            self._use(tv.buf, span)
            return tv.data, tv.dtype, tv.buf.memory, tv.buf.ready, tv.buf
        if name in self.outputs:
            # Reading back what the kernel stored: wait for the stores to that output.
            return self.outputs[name], self.out_dtype[name], self.root, self.store_end.get(name, 0.0), None
        raise _fail("E1010", no_value(name), span)

    def exec_store(self, s: ast.Store) -> None:
        if s.tensor not in self.outputs:
            raise _fail("E1009", f"'{s.tensor}' is not an output of kernel '{self.kernel.name}'", s.tensor_span)
        value = self.eval(s.expr)
        out = self.outputs[s.tensor]
        key = self._subscripts(s.index, out.shape, s.tensor, s.span) if s.index is not None else ()
        dtype = self.out_dtype[s.tensor]
        if isinstance(value, TV):
            target_shape = out[key].shape
            try:
                data = np.broadcast_to(value.data, target_shape)
            except ValueError:
                raise _fail("E1011", f"cannot store a value of shape {list(value.data.shape)} into "
                                     f"{s.tensor}{list(target_shape)}", s.span) from None
            nbytes = cost.tensor_bytes(value.data.size, dtype)
            _, end = self.m.transfer(value.buf.memory, self.root, nbytes, value.buf.ready, f"store {s.tensor}",
                                     s.span)
            value.buf.last_read = max(value.buf.last_read, end)
            self.store_end[s.tensor] = max(self.store_end.get(s.tensor, 0.0), end)
            out[key] = round_to(data, dtype)
        else:
            out[key] = value
        self.stored.add(s.tensor)
        self._end_statement()

    def exec_discard(self, s: ast.Discard) -> None:
        for n in s.names:
            tv = self.names.pop(n.id, None)
            if tv is None:
                raise _fail("E1010", f"'{n.id}' has no value to discard", n.span)
            self.m.release(tv.buf)  # dead data: freed without write-back, even if shared

    def exec_if(self, s: ast.If) -> None:
        cond = self._static(s.cond)
        yield from self.run_block(s.then if cond else s.orelse)

    def exec_for(self, s: ast.For) -> None:
        lo = self._static_int(s.lo, "a loop bound")
        hi = self._static_int(s.hi, "a loop bound")
        step = self._static_int(s.step, "a loop step") if s.step is not None else 1
        if step <= 0:
            raise _fail("E1012", f"the loop step must be positive, not {step}", s.step.span)
        pipeline, parallel = 1, None
        for a in s.annotations:
            if a.name == "pipeline":
                pipeline = self._static_int(a.args[0], "a pipeline depth") if a.args else 2
                if not 1 <= pipeline <= MAX_PIPELINE:
                    raise _fail("E1012", f"@pipeline takes 1 to {MAX_PIPELINE} copies, not {pipeline}", a.span)
            elif a.name == "parallel":
                parallel = a
        outer = self.loops[-1] if self.loops else _Loop(1, None)
        width = 1
        if parallel is not None:
            unit = self.hw.units.get(parallel.args[0].id) if parallel.args and isinstance(
                parallel.args[0], ast.Name) else None
            trips = len(range(lo, hi, step))
            width = max(1, min(unit.count if unit else trips, trips))
        saved_outer = self._outer_names
        saved_var = self.env.get(s.var)
        names, env, loops = self.names, self.env, self.loops
        m = self.m
        timed, max_steps = m.limits.deadline is not None, m.limits.max_steps
        loop = _Loop(pipeline, outer.lane, outer.slot, outer.copies)  # the same every iteration unless @parallel
        before: set | None = None
        sched = self.sched
        # run_block(s.body) inlined, with each statement's handler looked up once for all iterations
        body = [(self._STMTS[type(st)], st, type(st) in _TRANSFERS) for st in s.body]
        for n, v in enumerate(range(lo, hi, step)):
            env[s.var] = v
            # The names bound when the iteration starts. The last iteration ended with a subset of
            # its own (the rest died with it, or were discarded): the same set if the size is.
            if before is None or len(names) != len(before):
                before = set(names)
            self._outer_names = before
            if parallel is not None:
                loop = _Loop(pipeline, n, outer.slot + (n % width,), outer.copies * width)
            loops.append(loop)
            m.steps += 1  # an iteration that advances no modeled time counts too
            if m.steps > max_steps:
                raise steps_error(max_steps, s.span)
            if timed:
                m.check_wall(s.span)
            for handler, st, transfer in body:
                r = handler(self, st)
                if r is not None:
                    yield from r
                if transfer and sched is not None and sched.concurrent:
                    yield sched.turn()
            loops.pop()
            for name in [name for name in names if name not in before]:
                self._drop(names.pop(name))
        self._outer_names = saved_outer
        if saved_var is None:
            self.env.pop(s.var, None)
        else:
            self.env[s.var] = saved_var

    _outer_names: set = set()

    def exec_process(self, s: ast.Process):
        """Start a process (or one per index of its range) running beside this one."""
        indices = [None]
        if s.var is not None:
            indices = range(self._static_int(s.lo, "a process range bound"),
                            self._static_int(s.hi, "a process range bound"))
        for i in indices:
            child = Engine(self.hw, self.m, self.env, {}, self.kernel)
            for shared in ("tensors", "outputs", "out_dtype", "stored", "store_end", "channels", "sched", "memo"):
                setattr(child, shared, getattr(self, shared))
            name = s.name if i is None else f"{s.name}[{i}]"
            if i is not None:
                child.env[s.var] = i
            child.process = name
            child.clock = self.clock
            uidx = child._static_int(s.unit.index, "a unit index") if s.unit.index is not None else None
            if s.unit.name not in self.hw.units:
                raise _fail("E1033", f"hardware '{self.hw.name}' has no unit '{s.unit.name}'"
                            f"{did_you_mean(s.unit.name, self.hw.units)}", s.unit.span)
            child.proc_unit = (s.unit.name, uidx)
            self.sched.spawn(name, child.run_block(s.body))
        self.sched.concurrent = True
        return None

    def bind_received(self, name: str, data: np.ndarray, dtype: str, ready: float, span: Span) -> None:
        memory = self._recv_memory
        if memory is None:
            unit = self.hw.units.get(self.proc_unit[0]) if self.proc_unit else self.hw.default_unit("vector")
            memory = self._recv_memory = (unit.memory if unit else None) or self.root
        buf = Buffer(memory, cost.tensor_bytes(data.size, dtype), ready)
        hist, _, charge = self._target(name)
        self.m.allocate(buf, charge, span)
        hist.append(buf)
        if data.dtype is not _F32:
            data = np.asarray(data, dtype=np.float32)
        self._bind_name(name, TV(data, dtype, buf), span)
        self._end_statement()

    # ---------------------------------------------------------- expressions
    def _static(self, e: ast.Expr):
        try:
            return static_eval(e, self.env)
        except StaticError as exc:
            raise AttnError(exc.diagnostic) from None

    def _static_int(self, e: ast.Expr, what: str) -> int:
        try:
            return static_int(e, self.env, what)
        except StaticError as exc:
            raise AttnError(exc.diagnostic) from None

    def _use(self, buf: Buffer, span: Span) -> None:
        m = self.m
        if buf.evicted:
            m.reload(buf, span)
        buf.pinned = True
        self.used.append(buf)
        m.clock += 1  # the machine's LRU clock (Machine.allocate)
        buf.last_use = m.clock

    def eval(self, e: ast.Expr, dest: float = 0.0, charge: int = 1, unit: tuple | None = None):
        """Evaluate e: a TV, or a static number when e involves no tensor."""
        return evaluate(self, e, dest, charge, unit)

    def _subscripts(self, items, shape: tuple, name: str, span: Span) -> tuple:
        key: list = []
        axis = 0
        for it in items:
            if isinstance(it, ast.Name) and it.id == "None":
                key.append(None)
                continue
            if axis >= len(shape):
                raise _fail("E1005", f"too many subscripts for {name}, which has {len(shape)} axes", span)
            size = shape[axis]
            if isinstance(it, ast.Slice):
                lo = self._static_int(it.lo, "a slice bound") if it.lo is not None else 0
                hi = self._static_int(it.hi, "a slice bound") if it.hi is not None else size
                if not 0 <= lo <= hi <= size:
                    raise _fail("E1005", f"slice {lo}:{hi} is outside axis {axis} of {name}, which has {size} "
                                         "elements", it.span)
                key.append(slice(lo, hi))
            else:
                i = self.env.get(it.id) if type(it) is ast.Name else None
                if type(i) is not int:  # a loop index is the common case; the rest is static_int's
                    i = self._static_int(it, "an index")
                if not -size <= i < size:
                    raise _fail("E1005", f"index {i} is outside axis {axis} of {name}, which has {size} "
                                         "elements", it.span)
                key.append(i)
            axis += 1
        return tuple(key)

    def unit_for(self, op: str, e: ast.Expr, unit: tuple | None) -> tuple[Unit, int]:
        """The unit instance an operation runs on (ops.bind, @parallel lanes, `on UNIT[i]`).

        The answer depends on the op, the `on UNIT` in force, the @parallel lane and this
        process's unit, so it is kept per process under the first three."""
        lane = self.loops[-1].lane if self.loops else None
        key = (op, unit, lane)
        hit = self._units.get(key)
        if hit is None:
            hit = self._units[key] = self._unit_for(op, e, unit, lane)
        return hit

    def vector_op(self, op: str, e: ast.Expr, unit: tuple | None, elements: int) -> tuple:
        """(unit op, Unit, instance, cycles, energy in pJ) of a vector operation over `elements`: the op
        named by ops.ELEMENTWISE_FUNCS, on the instance unit_for gives, at ops.vector_cost. Kept per
        process under what it depends on."""
        lane = self.loops[-1].lane if self.loops else None
        key = (op, unit, lane, elements)
        hit = self._vector_ops.get(key)
        if hit is None:
            op = ops.ELEMENTWISE_FUNCS.get(op, op)
            u, inst = self.unit_for(op, e, unit)
            hit = self._vector_ops[key] = (op, u, inst) + tuple(self.memo.vector_cost(op, u, elements))
        return hit

    def _unit_for(self, op: str, e: ast.Expr, unit: tuple | None, lane: int | None) -> tuple[Unit, int]:
        name, index = unit if unit else (None, None)
        if name is None and self.proc_unit is not None:
            if not isinstance(self.memo.bind(op, self.proc_unit[0]), str):
                name, index = self.proc_unit
        b = self.memo.bind(op, name)
        if isinstance(b, str):
            raise _fail("E0501", b, e.span)
        u = b.unit
        if index is not None:
            if not 0 <= index < u.count:
                raise _fail("E1005", f"{u.name}[{index}] is outside the array of {u.count}", e.span)
            return u, index
        if lane is None and self.proc_unit is not None and self.proc_unit[1] is not None:
            lane = self.proc_unit[1]  # a process on element i of an array uses element i of the others
        return u, (lane % u.count if lane is not None else 0)



_TRANSFERS = (ast.Load, ast.Store)

Engine._STMTS = {
    ast.Assign: Engine.exec_assign, ast.Load: Engine.exec_load, ast.Store: Engine.exec_store,
    ast.Discard: Engine.exec_discard, ast.If: Engine.exec_if, ast.For: Engine.exec_for,
    ast.Param: Engine._skip, ast.DimDecl: Engine._skip, ast.Where: Engine._skip,
    ast.ChannelDecl: Engine._skip, ast.Send: exec_send, ast.Recv: exec_recv, ast.Process: Engine.exec_process,
}
