"""Stage 1 of the two-stage search: closed-form costs for whole blocks of candidates at once.

The detailed model (walk.py, loops.py, frame.py) schedules every operation
and places each loop body in a steady state; that is what makes it the
right judge, and what makes one walk cost milliseconds. Stage 1 walks the
same kernel with the same rules for *what* each statement costs — the
walker of walk.py and exprs.py (shapes, unit binding, reads and writes,
occupancy), the formulas of attnlang/cost.py (per-fold systolic cycles for
os/ws/is, vector ops with interval and latency, transfers) — but keeps no
times. Each statement only adds to counters that are array expressions over
the candidates (open-grid arrays, one axis per grid param, hardware params
included):

- energy per component, bytes read and written per memory, MACs: exact,
  the detailed model's own counters;
- each unit's *held* cycles (the cycles it is busy issuing, `Timing.issue`)
  and each memory port's transfer cycles;
- peak bytes per memory, with the interpreter's occupancy rules applied to
  one iteration of each loop (a lower bound of the true peak: the copies a
  second iteration adds are not counted, so stage 1 never rules out a
  candidate the detailed model keeps; stage 2 prunes the rest).

Latency combines those terms as the detailed model's steady state does
when every loop runs at its throughput bound: a loop of T iterations takes
T x max(its body's busiest unit or port, the sum of its inner loops' times)
— the inner loops of one body run one after another, each at its own
bound — and the kernel takes the time of its body. Loops whose iterations
differ (causal bounds) are costed at their middle iteration. Where the
detailed model finds a dependency chain longer than the busiest resource
(one buffer copy, `@pipeline(1)`, round trips through DRAM), stage 1 is
optimistic; stage 2 re-ranks its best k with the detailed model, which is
why k is generous (docs/explore.md has the measured recall).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np

from .. import cost
from ..hardware import Hardware, OpCost
from ..syntax import ast
from .frame import Frame
from .analytic import derive
from .statics import aeval, loop_shape, model_error, scalar, whole
from .times import ALL
from .walk import Walker, _elements


class CountFrame(Frame):
    """A frame that keeps counters and occupancy, and no times."""

    def __init__(self):
        super().__init__()
        self.hold: dict[tuple, object] = {}  # unit or port -> cycles it is held
        self.inner = 0  # the times of the loops placed here, one after another

    def schedule(self, resources: tuple, cycles, waits: list, result=None, umask=ALL, prefetch: bool = True):
        for r in resources:
            key = r[:2]
            got = self.hold.get(key)
            self.hold[key] = cycles if got is None else got + cycles
        return 0.0, cycles

    def touch(self, buf, start) -> None:
        pass

    def read_at(self, buf, start, mask=ALL) -> None:
        pass

    def settle(self) -> None:
        pass

    def time(self):
        """This block's cycles at every loop's throughput bound."""
        t = self.inner
        for v in self.hold.values():
            t = np.maximum(t, v)
        return t


class CountWalker(Walker):
    """The detailed model's walker (walk.py) over a CountFrame, with loops costed in closed form."""

    def __init__(self, hw: Hardware, kernel: ast.Kernel, env: dict):
        super().__init__(hw, kernel, env)
        self.f = CountFrame()

    def _path(self, src: str, dst: str):
        got = self._paths.get((src, dst))
        if got is None:
            mems = self.hw.transfer_path(src, dst)
            bw = mems[0].bandwidth_bytes_per_cycle
            for m in mems[1:]:  # hardware params make bandwidths arrays: Hardware.transfer_route's min
                bw = np.minimum(bw, m.bandwidth_bytes_per_cycle)
            latency = sum(m.latency_cycles for m in mems)
            got = self._paths[(src, dst)] = (tuple(("port", m.name) for m in mems), bw, latency)
        return got

    def exec_for(self, s: ast.For) -> None:
        env = self.env
        lo, hi = aeval(s.lo, env), aeval(s.hi, env)
        step = aeval(s.step, env) if s.step is not None else 1
        for v, e in ((lo, s.lo), (hi, s.hi), (step, s.step)):
            if not whole(v):
                raise model_error("a loop's bounds and step must be whole numbers (attn check says more)", e.span)
        if np.any(np.asarray(step) <= 0):
            raise model_error("the loop step must be positive", (s.step or s.hi).span)
        span = hi - lo
        trips = cost.ceil_div(span, step)
        bad = span % step != 0
        if np.any(bad):
            self.invalid.append((f"the tile of loop '{s.var}' does not divide its range", s, bad))
        if np.any(trips <= 0):
            self.invalid.append((f"loop '{s.var}' would run no iteration", s, trips <= 0))
            trips = np.maximum(trips, 1)
        shape = loop_shape(s)
        pipeline = 1
        if shape.pipeline is not None:
            a = shape.pipeline
            pipeline = aeval(a.args[0], env) if a.args else 2
            if not whole(pipeline) or np.any(np.asarray(pipeline) < 1):
                raise model_error("@pipeline needs at least one copy", a.span)
            one = scalar(pipeline)
            pipeline = one if one is not None else pipeline
        width = 1
        if shape.parallel:
            n = scalar(trips)
            if n is None:
                raise model_error("a @parallel loop needs the same trip count for every candidate", s.span)
            unit = self.hw.units.get(shape.parallel_arg) if shape.parallel_arg else None
            width = max(1, min(unit.count if unit else int(n), int(n)))
        # Iterations that differ (a causal bound) are costed at the middle one.
        at = lo if shape.regular else lo + ((trips - 1) // 2) * step
        body = self._body(s, at, pipeline, width)
        parent = self.f
        rounds = trips if width == 1 else cost.ceil_div(trips, width)
        parent.add_counters(body, trips)
        for key, v in body.hold.items():
            got = parent.hold.get(key)
            add = v * rounds
            parent.hold[key] = add if got is None else got + add
        parent.inner = parent.inner + body.time() * rounds
        for m, pk in body.peak.items():
            parent.peak[m] = np.maximum(parent.peak.get(m, pk), parent.occ.get(m, 0) + pk)
        for m, o in body.occ.items():
            parent.occ[m] = parent.occ.get(m, 0) + o

    def _body(self, s: ast.For, value, pipeline, width) -> CountFrame:
        """One iteration's counters, with the index at value (loops._body without the phantoms: the body
        sees the enclosing values themselves)."""
        parent = self.f
        saved = (self.f, self.pipeline, self.outer, self.copies, self.reads, self.env.get(s.var, _MISSING))
        f = CountFrame()
        f.names = dict(parent.names)
        f.store_end = parent.store_end
        self.f, self.pipeline, self.outer = f, pipeline, set(parent.names)
        self.copies, self.reads = self.copies * width, loop_shape(s).reads
        self.env[s.var] = value
        try:
            self.run(s.body)
            for name in set(f.names) - self.outer:
                self._drop(f.names.pop(name).buf)
        finally:
            self.f, self.pipeline, self.outer, self.copies, self.reads, old = saved
            if old is _MISSING:
                self.env.pop(s.var, None)
            else:
                self.env[s.var] = old
        parent.names = f.names
        return f


_MISSING = object()
CountWalker.STMTS = {**Walker.STMTS, ast.For: CountWalker.exec_for}


@dataclass
class Terms:
    """Stage 1's costs of a block of candidates (arrays of the block's broadcast shape, or smaller)."""

    cycles: object
    energy_pj: object
    peak_bytes: dict  # memory -> bytes
    invalid: dict  # reason -> mask
    hold: dict  # unit or port -> cycles


def terms(hw: Hardware, kernel: ast.Kernel, env: dict) -> Terms:
    """Walk the kernel once over env (every split param one value; grid params open-grid arrays)."""
    w = CountWalker(hw, kernel, env)
    root = w.root
    resident = 0
    for shape, dtype in list(w.inputs.values()) + list(w.outputs.values()):
        resident = resident + cost.tensor_bytes(_elements(shape), dtype)
    w.f.occ[root] = resident
    w.f.peak[root] = resident
    with np.errstate(all="ignore"):
        try:
            w.run(kernel.body)
        except OverflowError:
            raise model_error("the dims and params make a count too large for the model (64 bits)",
                              kernel.name_span) from None
    f = w.f
    cycles = np.ceil(f.time())
    energy = 0.0
    for v in f.energy.values():
        energy = energy + v
    if hw.leakage_pj_per_cycle:
        energy = energy + cost.leakage_energy_pj(cycles, hw.leakage_pj_per_cycle)
    invalid: dict = {}
    for reason, _, mask in w.invalid:
        invalid[reason] = invalid[reason] | mask if reason in invalid else mask
    peak = {m: f.peak.get(m, 0.0) for m in hw.memories}
    return Terms(cycles, energy, peak, invalid, dict(f.hold))


@dataclass
class Block:
    """Stage 1's feasible candidates of one mapping combination (or a chunk of it): for each, its
    combination (KernelSpace.combos: the mapping's and the hardware's), flat grid index and costs."""

    kernel: int
    combo: np.ndarray
    index: np.ndarray
    cycles: np.ndarray
    energy_pj: np.ndarray
    considered: int  # candidates whose costs were computed (those that pass `where`)
    stages: list


def stage1_hardware(space, inner: int) -> Hardware:
    """The kernel's hardware with each quantity a hardware param sets as an array over the hardware
    params' axes (the first axes; `inner` more axes of 1 follow for the grid): each value comes from
    elaborating the hardware at that point (hardware.py converts the units), so no rule is written twice."""
    axes = space.hw_split
    if not axes:
        return space.hw
    shape = tuple(len(a.values) for a in axes) + (1,) * inner
    key = ("stage1_hw", inner)
    got = space._hws.get(key)
    if got is not None:
        return got
    mapping = space.mapping_combos()[0]
    hws = [space.hw_for(tuple(mapping) + c) for c in itertools.product(*[a.values for a in axes])]

    def field(objs, name):
        values = [getattr(o, name) for o in objs]
        if all(v == values[0] for v in values):
            return values[0]
        if any(v is None for v in values):
            raise model_error(f"a hardware param makes '{name}' unbounded for some candidates and not for others",
                              space.kernel.name_span)
        return np.array(values, dtype=float).reshape(shape)

    base = hws[0]
    for name in ("clock_hz", "word_bytes"):
        if field(hws, name) is not getattr(base, name) and not np.isscalar(field(hws, name)):
            raise model_error(f"stage 1 takes the hardware's {name.split('_')[0]} as one value; fix the params "
                              "it names with -D, or search with --exhaustive", space.kernel.name_span)
    for name, u in base.units.items():
        if any(h.units[name].count != u.count or set(h.units[name].ops) != set(u.ops) for h in hws):
            raise model_error(f"a hardware param changes unit '{name}''s instances or ops; stage 1 needs them "
                              "fixed (search with --exhaustive)", space.kernel.name_span)
    memories = {n: dataclasses.replace(m, **{f: field([h.memories[n] for h in hws], f) for f in
                                              ("capacity_bytes", "bandwidth_bytes_per_cycle", "read_pj_per_byte",
                                               "write_pj_per_byte", "latency_cycles")})
                for n, m in base.memories.items()}
    units = {}
    for n, u in base.units.items():
        ops = {o: OpCost(*(field([h.units[n].ops[o] for h in hws], f) for f in ("interval", "latency", "energy_pj")))
               for o in u.ops}
        units[n] = dataclasses.replace(u, ops=ops, **{f: field([h.units[n] for h in hws], f)
                                                       for f in ("rows", "cols", "mac_pj")})
    got = space._hws[key] = dataclasses.replace(base, memories=memories, units=units,
                                                leakage_pj_per_cycle=field(hws, "leakage_pj_per_cycle"))
    return got


def evaluate_block(space, kernel_index: int, mapping_index: int, chunk: slice | None = None) -> Block:
    """Stage 1 over one mapping combination (the split params but the hardware's), every value of the
    hardware params and the grid (or a chunk of its layout): costs and pruning (`where`, tiles that do not
    divide their loop, capacity) in one pass of array expressions."""
    from .space import _prune

    mapping = space.mapping_combos()[mapping_index]
    hw_axes = space.hw_split
    h = len(hw_axes)
    lay = space.layout
    m = len(lay.axes)
    names = [a.name for a in space.split[:len(space.split) - h]]
    env = space._base(dict(zip(names, mapping, strict=True)))
    for name, arr in lay.arrays(chunk).items():
        env[name] = arr.reshape((1,) * h + arr.shape)
    hw_shape = tuple(len(a.values) for a in hw_axes)
    for i, a in enumerate(hw_axes):
        env[a.name] = a.array().reshape(tuple(len(a.values) if j == i else 1 for j in range(h + m)))
    derive(space.derived, env)
    points = lay.points(chunk)
    shape = hw_shape + tuple(np.shape(env[a.names[0]])[h + i] for i, a in enumerate(lay.axes))
    stages, open_hw = _where_stages(space, mapping) if chunk is None or not chunk.start else ([], None)
    if open_hw is not None and not open_hw.any():
        return Block(kernel_index, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0),
                     np.zeros(0), 0, stages)
    alive = np.ones(shape, dtype=bool)
    for cond, _, _ in space.constraints:
        alive &= np.asarray(aeval(cond, env), dtype=bool)
    alive = alive.reshape(-1)
    considered = int(np.count_nonzero(alive))
    if considered == 0:
        return Block(kernel_index, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0),
                     np.zeros(0), 0, stages)
    hw = stage1_hardware(space, m)
    t = terms(hw, space.kernel, env)
    alive, more = _prune(hw, t, alive, shape)
    keep = np.flatnonzero(alive)
    per_hw = len(points)
    combo = mapping_index * space.hw_size + keep // per_hw
    cycles = np.broadcast_to(t.cycles, shape).reshape(-1)[keep]
    energy = np.broadcast_to(t.energy_pj, shape).reshape(-1)[keep]
    return Block(kernel_index, combo, points[keep % per_hw], cycles, energy, considered, stages + more)


def _where_stages(space, mapping: tuple) -> tuple[list, np.ndarray]:
    """How many candidates of a mapping combination each `where` constraint removes, in order, as the
    exhaustive search counts them (space._where_stages and combo_ruled_out, over every hardware value at
    once); and which hardware values some candidate survives for."""
    from .space import Stage

    hw_axes = space.hw_split
    h = len(hw_axes)
    names = [a.name for a in space.split[:len(space.split) - h]]
    env = space._base(dict(zip(names, mapping, strict=True)))
    g = len(space.grid)
    for i, a in enumerate(hw_axes + space.grid):
        env[a.name] = a.array().reshape(tuple(len(a.values) if j == i else 1 for j in range(h + g)))
    derive(space.derived, env)
    hw_shape = tuple(len(a.values) for a in hw_axes)
    full = hw_shape + space.shape
    removed: dict = {}
    # a constraint on no grid param rules out a whole combination (mapping and hardware), in order
    open_hw = np.ones(hw_shape + (1,) * g, dtype=bool)
    for cond, text, on_grid in space.constraints:
        if on_grid:
            continue
        ok = np.broadcast_to(np.asarray(aeval(cond, env), dtype=bool), open_hw.shape)
        out = open_hw & ~ok
        removed.setdefault((text, cond.span), 0)
        removed[(text, cond.span)] += int(np.count_nonzero(out)) * space.grid_size
        open_hw &= ok
    alive = np.broadcast_to(open_hw, full).copy()
    for cond, text, _ in space.constraints:
        ok = np.broadcast_to(np.asarray(aeval(cond, env), dtype=bool), full)
        before = int(np.count_nonzero(alive))
        alive &= ok
        removed.setdefault((text, cond.span), 0)
        removed[(text, cond.span)] += before - int(np.count_nonzero(alive))
    return [Stage(f"where {text}", span, removed=n) for (text, span), n in removed.items()], open_hw
