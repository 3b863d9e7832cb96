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
from ..model.analytic import derive, run_walker
from ..model.frame import Frame
from ..model.loops import DIVIDES, NO_TRIP, loop_bounds, pipeline_copies
from ..model.statics import aeval, loop_shape, model_error, scalar
from ..model.times import ALL
from ..model.walk import Walker
from ..syntax import ast


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
        parts = sorted([self.inner, *self.hold.values()], key=np.size)  # the small ones first
        t = parts[0]
        for v in parts[1:]:
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
        lo, step, span = loop_bounds(self, s)
        trips = cost.ceil_div(span, step)
        bad = span % step != 0
        if np.any(bad):
            self.invalid.append((DIVIDES.format(s.var), s, bad))
        if not isinstance(trips, np.ndarray):  # one trip count: a loop of none runs nothing (loops.run_loop)
            if trips <= 0:
                return
        elif np.any(trips <= 0):
            self.invalid.append((NO_TRIP.format(s.var), s, trips <= 0))
            trips = np.maximum(trips, 1)
        shape = loop_shape(s)
        pipeline = pipeline_copies(self, shape)
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
    run_walker(w, kernel, env)
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
    """Stage 1's feasible candidates of one block: their costs, and where they are (`ids`)."""

    kernel: int
    cycles: np.ndarray
    energy_pj: np.ndarray
    considered: int  # candidates whose costs were computed (those that pass `where`)
    stages: list
    #: each candidate's flat position in the block, the block's layout points, its first combination and lead
    pos: np.ndarray = None
    points: np.ndarray = None
    combo0: int = 0
    lead: tuple = ()
    hw_shape: tuple = ()
    hw_sizes: tuple = ()

    def ids(self, sel=None) -> tuple[np.ndarray, np.ndarray]:
        """(combination, flat grid index) of the candidates sel picks (all by default): worked out only for
        the few a search keeps."""
        if self.pos is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        pos = self.pos if sel is None else self.pos[sel]
        if not len(pos):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        per_hw = len(self.points)
        combo = np.full(len(pos), self.combo0, dtype=np.int64)
        if self.hw_sizes:
            local = np.unravel_index(pos // per_hw, self.hw_shape)
            at = tuple(local[i] + (self.lead[i] if i < len(self.lead) else 0) for i in range(len(self.hw_sizes)))
            combo += np.ravel_multi_index(at, self.hw_sizes)
        return combo, self.points[pos % per_hw]

    @property
    def combo(self) -> np.ndarray:
        return self.ids()[0]

    @property
    def index(self) -> np.ndarray:
        return self.ids()[1]


#: Stage 1's block: at most about this many candidates at once (8 MiB per array of float64), whatever the
#: size of the space.
BLOCK = 1 << 21

_MEMORY_FIELDS = ("capacity_bytes", "bandwidth_bytes_per_cycle", "read_pj_per_byte", "write_pj_per_byte",
                  "latency_cycles")
_UNIT_FIELDS = ("rows", "cols", "mac_pj")
_OP_FIELDS = ("interval", "latency", "energy_pj")


def stage1_hardware(space, mapping: tuple) -> Hardware:
    """The kernel's hardware with each quantity a hardware param sets as an array over the hardware params'
    axes (size 1 on the axes it does not depend on). Each value comes from elaborating the hardware
    (hardware.py converts the units, so no rule is written twice), once per combination of the params its
    memory, unit or the hardware block names: a few elaborations, not one per hardware point."""
    axes = space.hw_split
    key = ("stage1", tuple(v for a, v in zip(space.split, mapping, strict=False) if a.name in space.hw_named))
    got = space._hws.get(key)
    if got is not None:
        return got
    # kernels on the same hardware with the same values for what it names share it
    shared = (id(space.prog), space.hw.name, tuple(a.name for a in axes), tuple(tuple(a.values) for a in axes),
              tuple(sorted((n, v) for n, v in {**space.fixed, **dict(zip([a.name for a in space.split], mapping,
                                                                         strict=False))}.items()
                           if n in _named(space))))
    got = _SHARED.get(shared)
    if got is not None and got[0] is space.prog:
        space._hws[key] = got[1]
        return got[1]
    names = [a.name for a in axes]
    deps = _dependencies(space)
    base = _at(space, mapping, {})

    def table(block: str, get):
        """get(hw) -> the block's object; an array per field over the axes the block depends on."""
        mine = [i for i, n in enumerate(names) if n in deps.get(block, ())]
        shape = tuple(len(axes[i].values) if i in mine else 1 for i in range(len(axes)))
        objs = [get(_at(space, mapping, {names[i]: axes[i].values[j] for i, j in zip(mine, at, strict=True)}))
                for at in itertools.product(*[range(len(axes[i].values)) for i in mine])]
        return objs, shape

    def field(objs, shape, name):
        values = [getattr(o, name) for o in objs]
        if all(v == values[0] for v in values):
            return values[0]
        if any(v is None or isinstance(v, str) for v in values):
            raise model_error(f"a hardware param changes '{name}' in a way stage 1 cannot take as numbers; "
                              "search with --exhaustive", space.kernel.name_span)
        a = np.array(values, dtype=float).reshape(shape)
        for i in range(a.ndim):  # size 1 on the axes this field does not depend on (the block's others may)
            if a.shape[i] > 1 and np.all(a == a.take([0], axis=i)):
                a = a.take([0], axis=i)
        return a

    top, tshape = table("", lambda h: h)
    for name in ("clock_hz", "word_bytes"):
        if not np.isscalar(field(top, tshape, name)):
            raise model_error(f"stage 1 takes the hardware's {name.split('_')[0]} as one value; fix the params it "
                              "names with -D, or search with --exhaustive", space.kernel.name_span)
    memories = {}
    for n, m in base.memories.items():
        objs, shape = table(n, lambda h, n=n: h.memories[n])
        memories[n] = dataclasses.replace(m, **{f: field(objs, shape, f) for f in _MEMORY_FIELDS})
    units = {}
    for n, u in base.units.items():
        objs, shape = table(n, lambda h, n=n: h.units[n])
        if any(o.count != u.count or set(o.ops) != set(u.ops) or o.dataflow != u.dataflow for o in objs):
            raise model_error(f"a hardware param changes unit '{n}''s instances, ops or dataflow as numbers; "
                              "stage 1 needs them fixed (search with --exhaustive)", space.kernel.name_span)
        ops = {o: OpCost(*(field([x.ops[o] for x in objs], shape, f) for f in _OP_FIELDS)) for o in u.ops}
        units[n] = dataclasses.replace(u, ops=ops, **{f: field(objs, shape, f) for f in _UNIT_FIELDS})
    got = space._hws[key] = dataclasses.replace(base, memories=memories, units=units,
                                                leakage_pj_per_cycle=field(top, tshape, "leakage_pj_per_cycle"))
    if len(_SHARED) > 64:
        _SHARED.clear()
    _SHARED[shared] = (space.prog, got)
    return got


_SHARED: dict = {}


def _named(space) -> set:
    from .space import hardware_names

    return hardware_names(space.prog, space.kernel)


def _at(space, mapping: tuple, values: dict) -> Hardware:
    """The hardware at one mapping combination, with the hardware params in values (the others at their
    first value: only fields that do not depend on them are read)."""
    hw = tuple(values.get(a.name, a.values[0]) for a in space.hw_split)
    return space.hw_for(tuple(mapping) + hw)


def _dependencies(space) -> dict:
    """Memory or unit name ('' for the hardware block itself) -> the hardware params its properties name,
    through the derived params they name."""
    from ..static import free_names
    from .space import hardware_ast

    hw = hardware_ast(space.prog, space.kernel)
    made_of = {d.name: free_names(d.default) for d in space.derived}
    wanted = set(space.hw_axes)

    def names(props) -> set:
        out, stack = set(), [n for p in props for v in p.values if not isinstance(v, ast.Shape2)
                             for n in free_names(v)]
        while stack:
            n = stack.pop()
            if n not in out:
                out.add(n)
                stack += made_of.get(n, ())
        return out & wanted

    deps = {"": names(hw.props)}
    for m in hw.memories:
        deps[m.name] = names(m.props)
    for u in hw.units:
        deps[u.name] = names(list(u.props) + [p for o in u.ops for p in o.props])
    return deps


def _view(hw: Hardware, lead: tuple, inner: int) -> Hardware:
    """hw's arrays with the leading hardware axes fixed at lead (kept as axes of 1) and `inner` axes of 1
    after them, for the grid."""
    if not lead and not inner:
        return hw

    def v(x):
        if not isinstance(x, np.ndarray):
            return x
        x = x[tuple(slice(i, i + 1) if x.shape[a] > 1 else slice(None) for a, i in enumerate(lead))]
        return x.reshape(x.shape + (1,) * inner)

    memories = {n: dataclasses.replace(m, **{f: v(getattr(m, f)) for f in _MEMORY_FIELDS})
                for n, m in hw.memories.items()}
    units = {n: dataclasses.replace(u, ops={o: OpCost(*(v(getattr(c, f)) for f in _OP_FIELDS))
                                            for o, c in u.ops.items()},
                                    **{f: v(getattr(u, f)) for f in _UNIT_FIELDS})
             for n, u in hw.units.items()}
    return dataclasses.replace(hw, memories=memories, units=units, leakage_pj_per_cycle=v(hw.leakage_pj_per_cycle))


def blocks(space) -> tuple[int, int]:
    """(how many leading hardware params each block fixes, how many chunks its layout is cut in) so that a
    block holds at most about BLOCK candidates."""
    sizes = [len(a.values) for a in space.hw_split]
    per = int(np.prod(space.layout.shape)) if space.layout.axes else 1
    j = 0
    while j < len(sizes) and per * int(np.prod(sizes[j:])) > BLOCK:
        j += 1
    rest = per * int(np.prod(sizes[j:]))
    return j, max(1, -(-rest // BLOCK))


def evaluate_block(space, kernel_index: int, mapping_index: int, chunk: slice | None = None,
                   lead: tuple = ()) -> Block:
    """Stage 1 over one mapping combination (the split params but the hardware's), the hardware params (those
    of `lead` fixed, the others arrays) and the grid (or a chunk of its layout): costs and pruning (`where`,
    tiles that do not divide their loop, capacity) in one pass of array expressions."""
    from .space import _prune

    mapping = space.mapping_combos()[mapping_index]
    hw_axes = space.hw_split
    h = len(hw_axes)
    lay = space.layout
    m = len(lay.axes)
    env, hw_shape = _env(space, mapping, lead, m)
    for name, arr in lay.arrays(chunk).items():
        env[name] = arr.reshape((1,) * h + arr.shape)
    derive(space.derived, env)
    points = lay.points(chunk)
    shape = hw_shape + tuple(np.shape(env[a.names[0]])[h + i] for i, a in enumerate(lay.axes))
    stages, open_hw = _where_stages(space, mapping, lead) if chunk is None or not chunk.start else ([], None)
    empty = Block(kernel_index, np.zeros(0), np.zeros(0), 0, stages)
    if open_hw is not None and not open_hw.any():
        return empty
    alive = np.ones(shape, dtype=bool)
    for cond, _, _ in space.constraints:
        ok = np.asarray(aeval(cond, env), dtype=bool)
        if not ok.all():
            alive &= ok
    alive = alive.reshape(-1)
    considered = int(np.count_nonzero(alive))
    if considered == 0:
        return empty
    hw = _view(stage1_hardware(space, mapping), lead, m) if h else space.hw_for(mapping)
    t = terms(hw, space.kernel, env)
    alive, more = _prune(hw, t, alive, shape)
    mask = alive.reshape(shape)
    cycles = np.broadcast_to(t.cycles, shape)[mask]  # gathers from the broadcast view: no full-size copy
    energy = np.broadcast_to(t.energy_pj, shape)[mask]
    return Block(kernel_index, cycles, energy, considered, stages + more, np.flatnonzero(alive), points,
                 mapping_index * space.hw_size, tuple(lead), hw_shape, tuple(len(a.values) for a in hw_axes))


def _env(space, mapping: tuple, lead: tuple, inner: int) -> tuple[dict, tuple]:
    """The env of a block: the mapping's values, each hardware param an array on its axis (one value for
    those lead fixes), and `inner` axes of 1 after them; and the hardware axes' shape."""
    hw_axes = space.hw_split
    h = len(hw_axes)
    names = [a.name for a in space.split[:len(space.split) - h]]
    env = space._base(dict(zip(names, mapping, strict=True)))
    hw_shape = []
    for i, a in enumerate(hw_axes):
        values = a.array()
        if i < len(lead):
            values = values[lead[i]:lead[i] + 1]
        hw_shape.append(len(values))
        env[a.name] = values.reshape(tuple(len(values) if j == i else 1 for j in range(h + inner)))
    return env, tuple(hw_shape)


def _where_stages(space, mapping: tuple, lead: tuple = ()) -> tuple[list, np.ndarray]:
    """How many candidates of a block each `where` constraint removes, in order, as the exhaustive search
    counts them (space._where_stages and combo_ruled_out, over every hardware value at once); and which
    hardware values some candidate survives for."""
    from .space import Stage

    g = len(space.grid)
    env, hw_shape = _env(space, mapping, lead, g)
    h = len(hw_shape)
    for i, a in enumerate(space.grid):
        env[a.name] = a.array().reshape(tuple(len(a.values) if j == h + i else 1 for j in range(h + g)))
    derive(space.derived, env)
    full = hw_shape + space.shape
    removed: dict = {}
    # a constraint on no grid param rules out a whole combination (mapping and hardware), in order
    open_hw = np.ones(hw_shape + (1,) * g, dtype=bool)
    for cond, text, on_grid in space.constraints:
        if on_grid:
            continue
        ok = np.broadcast_to(np.asarray(aeval(cond, env), dtype=bool), open_hw.shape)
        removed[(text, cond.span)] = removed.get((text, cond.span), 0) + \
            int(np.count_nonzero(open_hw & ~ok)) * space.grid_size
        open_hw &= ok
    alive = np.broadcast_to(open_hw, full).copy()
    for cond, text, _ in space.constraints:
        ok = np.broadcast_to(np.asarray(aeval(cond, env), dtype=bool), full)
        before = int(np.count_nonzero(alive))
        alive &= ok
        removed[(text, cond.span)] = removed.get((text, cond.span), 0) + before - int(np.count_nonzero(alive))
    return [Stage(f"where {text}", span, removed=n) for (text, span), n in removed.items()], open_hw
