"""The model's walk over a kernel: the interpreter's rules, on shapes and times over candidates.

Each statement is costed as attnlang/interp/engine.py and evaluate.py cost
it — the same unit binding (ops.py), the same formulas (cost.py), the same
reads, writes, occupancy and waits — but values have shapes and times, not
numbers, and every shape or time is an array over candidates. Loops are
where the model differs from the interpreter: see attnlang/model/loops.py.
"""

from __future__ import annotations

import numpy as np

from .. import cost, ops
from ..dtypes import promote
from ..hardware import Hardware
from ..runtime import no_value
from ..syntax import ast
from .frame import Frame
from .statics import aeval, elements, model_error, scalar, size_of, whole
from .times import ALL, INF, LANE, AVal, Buf, mx, new_units


class Walker:
    """Costs statements into the current frame `self.f`."""

    def __init__(self, hw: Hardware, kernel: ast.Kernel, env: dict):
        new_units()  # the unit bits of times that move with their units (times.Early)
        self.hw = hw
        self.kernel = kernel
        self.env = env
        self.root = hw.root_memory().name
        self.inputs = {t.name: (self._dims(t), t.dtype) for t in kernel.inputs}
        self.outputs = {t.name: (self._dims(t), t.dtype) for t in kernel.outputs}
        self.f = Frame()
        self.pipeline = 1  # the innermost loop's copies (int or array)
        self.lane = None  # None outside @parallel, LANE inside
        self.slot: tuple = ()  # which concurrent copy of buffers (Engine._Loop.slot), markers for lanes
        self.copies = 1  # iterations of enclosing @parallel loops that run at once
        self.outer: set[str] = set()  # names from outside the innermost loop's iteration
        self.reads: set[str] | None = None  # the names the innermost loop's body reads (None outside loops)
        self.stored: set[str] = set()  # the outputs the innermost loop's body stores to
        self.invalid: list[tuple[str, ast.Expr, object]] = []  # (reason, where, mask)
        self._paths: dict = {}
        self._vec = hw.default_unit("vector")
        self.depth = _max_pipeline(kernel, env)  # how far back any write looks in a name's history

    def _dims(self, t: ast.TensorDecl) -> tuple:
        return tuple(aeval(d, self.env) for d in t.dims)

    # ---------------------------------------------------------- statements
    def run(self, body) -> None:
        for s in body:
            self.STMTS[type(s)](self, s)

    def _skip(self, s) -> None:
        pass

    def _unsupported(self, s) -> None:
        raise model_error(f"the analytical model does not cost {type(s).__name__.lower()} statements "
                          "(channels and processes); run the kernel with `attn run`", s.span)

    def _charge(self, name: str):
        """Copies held at once (Engine._charge): pipeline copies, times parallel iterations."""
        k = self.pipeline if name not in self.outer else 1
        return k * self.copies if self.copies != 1 else k

    def key(self, name: str):
        """A name's history key (Engine._slot)."""
        return (name, self.slot) if self.slot else name

    def _dest(self, name: str):
        """When the buffer the new value of name overwrites is free: (time, waits on phantoms, its mask)."""
        hist = self.f.hist.get(self.key(name))
        if not hist:
            return None, [], 0
        k = self.pipeline
        if type(k) is int:
            if len(hist) < k:
                return None, [], 0
            b = hist[-k]
            return b.last_read, ([(None, b, "l", None)] if b.pos is not None else []), b.ml
        value, waits, umask = None, [], 0
        for d in np.unique(k).tolist():
            if len(hist) < d:
                continue
            b = hist[-d]
            mask = k == d
            if b.last_read is not None:
                value = mx(value, np.where(mask, b.last_read, -INF))
                umask = umask | b.ml
            if b.pos is not None:
                waits.append((None, b, "l", mask))
        return value, waits, umask

    def _bind(self, name: str, val: AVal) -> None:
        f = self.f
        old = f.names.get(name)
        val.buf.refs += 1
        f.names[name] = val
        if old is not None:
            self._drop(old.buf)

    def _drop(self, b: Buf) -> None:
        b.refs -= 1
        if b.refs <= 0:
            self.f.release(b)

    def _remember(self, name: str, b: Buf) -> None:
        lst = self.f.hist.setdefault(self.key(name), [])
        lst.append(b)
        if len(lst) > self.depth:  # only the last k values are ever waited for (@pipeline(k))
            del lst[0]

    def _end_statement(self) -> None:
        f = self.f
        for b in f.temps:
            if b.refs <= 0:
                f.release(b)
        f.temps = []

    def exec_assign(self, s: ast.Assign) -> None:
        name = s.target.name
        expr = s.value
        if s.target.index is not None:
            old = self.f.names.get(name)
            if old is None:
                raise model_error(f"'{name}' has no value to update part of", s.target.span)
            b = old.buf
            waits = [(None, b, "l", None)] if b.pos is not None else []
            value = self.eval(expr, (b.last_read, waits, b.ml), 1, None)
            if isinstance(value, AVal):
                b.ready, b.mr = mx(b.ready, value.buf.ready), b.mr | value.buf.mr
            self._end_statement()
            return
        value = self.eval(expr, self._dest(name), self._charge(name), None)
        if not isinstance(value, AVal):
            raise model_error(f"'{name}' would be a plain number", s.span)
        self._remember(name, value.buf)
        self._bind(name, value)
        self._end_statement()

    def exec_load(self, s: ast.Load) -> None:
        f = self.f
        name = s.tensor
        if name in self.inputs:
            shape, dtype = self.inputs[name]
            mem, src, waits, umask = self.root, None, [], 0
        elif name in f.names:
            v = f.names[name]
            shape, dtype, mem, src = v.shape, v.dtype, v.buf.memory, v.buf
            waits = [(src.ready, src if src.pos is not None else None, "r", None)]
            umask = src.mr
        elif name in self.outputs:
            shape, dtype = self.outputs[name]
            mem, src = self.root, None
            # Reading back what the kernel stored waits for the stores to that output (Engine._source).
            got = f.store_end.get(name)
            waits = [(got, None, "s", None)] if got is not None else [(None, name, "s", None)]
            umask = ALL if got is not None else 0
        else:
            raise model_error(no_value(name), s.tensor_span)
        if s.index is not None:
            shape = self._subscript(shape, s.index)
        if s.memory not in self.hw.memories:
            raise model_error(f"hardware '{self.hw.name}' has no memory '{s.memory}'", s.memory_span)
        nbytes = cost.tensor_bytes(elements(shape), dtype)
        dvalue, dwaits, dmask = self._dest(s.target.name)
        buf = Buf(s.memory, nbytes, None)
        # A load whose value the loop body never reads (read after the loop) is no prefetch for the
        # body's next iteration: the DMA engine takes it in turn with the body's other transfers. Nor is
        # a read of an output the body stores to: it waits for the iteration before's stores.
        prefetch = (self.reads is None or s.target.name in self.reads) and name not in self.stored
        start, end = self._transfer(mem, s.memory, nbytes, waits + [(dvalue, None, "l", None)] + dwaits,
                                    buf, umask | dmask, prefetch)
        om = f.om
        if src is not None:
            if src.pending is not None:
                f.touch(src, start)
            if src.xrow is not None:
                f.read_at(src, start, om)
            src.last_read, src.ml = mx(src.last_read, end), src.ml | om
        buf.ready = buf.last_read = end
        buf.mr = buf.ml = om
        f.allocate(buf, self._charge(s.target.name))
        self._remember(s.target.name, buf)
        self._bind(s.target.name, AVal(shape, dtype, buf))
        self._end_statement()

    def exec_store(self, s: ast.Store) -> None:
        if s.tensor not in self.outputs:
            raise model_error(f"'{s.tensor}' is not an output of kernel '{self.kernel.name}'", s.tensor_span)
        value = self.eval(s.expr, (None, [], 0), 1, None)
        if isinstance(value, AVal):
            _, dtype = self.outputs[s.tensor]
            nbytes = cost.tensor_bytes(elements(value.shape), dtype)
            b = value.buf
            f = self.f
            start, end = self._transfer(b.memory, self.root, nbytes,
                                        [(b.ready, b if b.pos is not None else None, "r", None)], None, b.mr)
            if b.pending is not None:
                f.touch(b, start)
            if b.xrow is not None:
                f.read_at(b, start, f.om)
            b.last_read, b.ml = mx(b.last_read, end), b.ml | f.om
            f.store_end[s.tensor] = mx(f.store_end.get(s.tensor), end)
        self._end_statement()

    def exec_discard(self, s: ast.Discard) -> None:
        for n in s.names:
            v = self.f.names.pop(n.id, None)
            if v is None:
                raise model_error(f"'{n.id}' has no value to discard", n.span)
            self.f.release(v.buf)

    def exec_if(self, s: ast.If) -> None:
        cond = aeval(s.cond, self.env)
        if isinstance(cond, np.ndarray):
            c = scalar(cond)
            if c is None:
                raise model_error("this condition differs between candidates; the model takes the params in "
                                  "`if` conditions one value at a time", s.cond.span)
            cond = c
        self.run(s.then if cond else s.orelse)

    def exec_for(self, s: ast.For) -> None:
        from .loops import run_loop

        run_loop(self, s)

    # ---------------------------------------------------------- costs
    def _path(self, src: str, dst: str):
        got = self._paths.get((src, dst))
        if got is None:
            mems, bw, latency = self.hw.transfer_route(src, dst)
            got = self._paths[(src, dst)] = (tuple(("port", m.name) for m in mems), bw, latency)
        return got

    def _transfer(self, src: str, dst: str, nbytes, waits: list, result: Buf | None = None, umask=ALL,
                  prefetch: bool = True):
        """A DMA transfer (Machine.transfer): returns its start and end (umask: Frame.schedule's)."""
        f = self.f
        if src == dst:
            value = None
            for v, *_ in waits:
                value = mx(value, v)
            value = 0.0 if value is None else value
            f.om = umask  # no resource: it waits for what it copies only
            return value, value
        ports, bw, latency = self._path(src, dst)
        cycles = cost.transfer_cycles(nbytes, bw, latency)
        start, end = f.schedule(ports, cycles, waits, result, umask, prefetch)
        s, d = self.hw.memories[src], self.hw.memories[dst]
        f.count(f.rbytes, src, nbytes)
        f.count(f.wbytes, dst, nbytes)
        f.count(f.energy, src, cost.memory_energy_pj(nbytes, 0, s.read_pj_per_byte, 0))
        f.count(f.energy, dst, cost.memory_energy_pj(0, nbytes, 0, d.write_pj_per_byte))
        return start, end

    def unit_for(self, op: str, e, unit):
        name, index = unit if unit else (None, None)
        b = ops.bind(op, self.hw, name)
        if isinstance(b, str):
            raise model_error(b, e.span)
        u = b.unit
        if index is not None:
            return u, index
        if self.lane is None or u.count == 1:
            return u, 0
        return u, LANE

    def issue(self, u, inst, e, operands: list, shape: tuple, dtype: str, dest, charge, timing, energy):
        """One operation on a unit (evaluate._issue): schedule it, charge reads and its result. The unit is
        held until the operation has issued; its result is ready timing.ready after it starts."""
        f = self.f
        dvalue, dwaits, umask = dest
        waits = [(dvalue, None, "l", None)] + list(dwaits)
        for o in operands:
            b = o.buf
            waits.append((b.ready, b if b.pos is not None else None, "r", None))
            umask = umask | b.mr
        start, issued = f.schedule((("unit", u.name, inst),), timing.issue, waits, None, umask)
        end = start + timing.ready
        f.end = mx(f.end, end)
        om = f.om
        for o in operands:
            if o.buf.pending is not None:
                f.touch(o.buf, start)
            if o.buf.xrow is not None:
                f.read_at(o.buf, start, om)
        f.count(f.busy, u.name, timing.busy)
        f.count(f.energy, u.name, energy)
        for o in operands:
            b = o.buf
            nb = cost.tensor_bytes(elements(o.shape), o.dtype)
            m = self.hw.memories[b.memory]
            f.count(f.rbytes, b.memory, nb)
            f.count(f.energy, b.memory, cost.memory_energy_pj(nb, 0, m.read_pj_per_byte, 0))
            b.last_read, b.ml = mx(b.last_read, issued), b.ml | om
        memory = u.memory or self.root
        nbytes = cost.tensor_bytes(elements(shape), dtype)
        m = self.hw.memories[memory]
        f.count(f.wbytes, memory, nbytes)
        f.count(f.energy, memory, cost.memory_energy_pj(0, nbytes, 0, m.write_pj_per_byte))
        buf = Buf(memory, nbytes, end)
        buf.mr = buf.ml = om
        f.allocate(buf, charge)
        f.temps.append(buf)
        return AVal(shape, dtype, buf)

    def vector(self, op: str, e, operands: list, shape: tuple, dtype: str, dest, charge, unit, elements):
        op = ops.ELEMENTWISE_FUNCS.get(op, op)
        u, inst = self.unit_for(op, e, unit)
        timing, energy = ops.vector_cost(op, u, elements)
        f = self.f
        f.vops = f.vops + elements
        return self.issue(u, inst, e, operands, shape, dtype, dest, charge, timing, energy)

    # ---------------------------------------------------------- expressions
    def eval(self, e, dest, charge, unit):
        from .exprs import evaluate

        return evaluate(self, e, dest, charge, unit)

    def _subscript(self, shape: tuple, items) -> tuple:
        """The shape of x[items] (slices keep an axis, indices drop it, None adds one)."""
        out = []
        axis = 0
        for it in items:
            if isinstance(it, ast.Name) and it.id == "None":
                out.append(1)
                continue
            if axis >= len(shape):
                raise model_error(f"too many subscripts for a value with {len(shape)} axes", it.span)
            if isinstance(it, ast.Slice):
                if it.lo is None and it.hi is None:
                    out.append(shape[axis])
                else:
                    n = shape[axis] - aeval(it.lo, self.env) if it.hi is None else \
                        aeval(size_of(it.lo, it.hi, it.span), self.env)
                    if isinstance(n, (str, bool)) or (isinstance(n, np.ndarray) and n.dtype.kind not in "iuf") \
                            or not np.all(np.isfinite(n)):
                        raise model_error("a slice's size must be a finite number (attn check says more)", it.span)
                    out.append(n)
            axis += 1
        out.extend(shape[axis:])
        return tuple(out)

    def alloc(self, e: ast.Call, charge):
        """full(shape, value[, dtype]), zeros(...), ones(...): memory, no time."""
        a = ops.alloc_args(e)
        if isinstance(a, str):
            raise model_error(a, e.span)
        dtype = a.dtype
        shape = tuple(aeval(i, self.env) for i in a.shape)
        for d, e in zip(shape, a.shape, strict=True):
            if not whole(d):
                raise model_error("a shape is whole numbers (attn check says more)", e.span)
        memory = (self._vec.memory if self._vec else None) or self.root
        buf = Buf(memory, cost.tensor_bytes(elements(shape), dtype), 0.0)
        buf.mr = buf.ml = 0  # ready when the kernel starts: it waits for nothing
        self.f.allocate(buf, charge)
        self.f.temps.append(buf)
        return AVal(shape, dtype, buf)

    def promote(self, a, b) -> str:
        return promote(a, b)


def _max_pipeline(kernel: ast.Kernel, env) -> int:
    from .statics import pipeline_annotations

    depth = 1
    for a in pipeline_annotations(kernel):
        copies = aeval(a.args[0], env) if a.args else 2
        if not whole(copies):
            raise model_error("@pipeline needs a positive whole number of buffer copies", a.span)
        depth = max(depth, int(np.max(copies)))
    return depth


Walker.STMTS = {
    ast.Assign: Walker.exec_assign, ast.Load: Walker.exec_load, ast.Store: Walker.exec_store,
    ast.Discard: Walker.exec_discard, ast.If: Walker.exec_if, ast.For: Walker.exec_for,
    ast.Param: Walker._skip, ast.DimDecl: Walker._skip, ast.Where: Walker._skip,
    ast.ChannelDecl: Walker._skip, ast.Send: Walker._unsupported, ast.Recv: Walker._unsupported,
    ast.Process: Walker._unsupported,
}
