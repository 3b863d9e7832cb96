"""The candidate space of one kernel: param domains, fixed values, and its evaluation.

The space is the Cartesian product of the domains of a kernel's params (ints
and symbols); `-D` fixes a dim or a param. Params that choose `if` branches
are walked one combination at a time (statics.split_params); the others are
open-grid NumPy arrays, one axis each, so one walk of the model costs the
whole grid of a combination at once (the matrix encoding: each intermediate
quantity is an array over just the params it depends on, and only the final
combinations span the whole grid).

Pruning, in order: `where` constraints (a combination they rule out is never
walked), tiles that do not divide their loop, and the capacity of every
memory against the model's peak occupancy. A memory with `policy spill` is
pruned too: the interpreter would spill, but the model does not cost spill
traffic, so it cannot rank such a candidate honestly (`attn run` can run it).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ..binding import bind, signature_dims, static_decls, symbols
from ..diagnostics import AttnError, Span, UsageError, error
from ..hardware import Hardware
from ..model.analytic import Estimate, _walk, derive, derived_params, hardware_for_env
from ..model.statics import aeval, split_params, where_conds
from ..program import Program
from ..static import StaticError, free_names, static_eval
from ..syntax import ast
from .layout import Layout
from .layout import build as build_layout


@dataclass
class Axis:
    name: str
    values: list

    def array(self) -> np.ndarray:
        if any(isinstance(v, str) for v in self.values):
            return np.array(self.values, dtype=str)
        return np.array(self.values)


@dataclass
class KernelSpace:
    """One kernel's candidates: the split axes (walked one value at a time) times the grid axes."""

    kernel: ast.Kernel
    hw: Hardware
    fixed: dict  # every dim and param that does not vary
    split: list[Axis]
    grid: list[Axis]
    order: list[str]  # every dim and param, in declaration order (for `defines`)
    prog: Program | None = None
    notes: list[str] = field(default_factory=list)
    #: params worked out from others (`param B = n // m`), again for every candidate
    derived: list[ast.Param] = field(default_factory=list)
    _combos: list | None = field(default=None, repr=False)
    _constraints: list | None = field(default=None, repr=False)
    _layout: Layout | None = field(default=None, repr=False)
    _symbols: set | None = field(default=None, repr=False)
    #: the split params with numbers the hardware names (hardware params): the last axes of split, which
    #: stage 1 takes as arrays
    hw_axes: list[str] = field(default_factory=list)
    #: every split param the hardware names (hw_axes, and symbols such as a dataflow)
    hw_named: set[str] = field(default_factory=set)
    _hws: dict = field(default_factory=dict, repr=False)
    #: simulate(prog, kernel, defines, check=False): how a candidate of a kernel with processes and
    #: channels is costed (explore's caller gives it: api.run, the interpreter)
    simulate: object = None

    @property
    def size(self) -> int:
        return math.prod(len(a.values) for a in self.split + self.grid)

    @property
    def grid_size(self) -> int:
        return math.prod(len(a.values) for a in self.grid)

    def combos(self) -> list[tuple]:
        got = self._combos
        if got is None:
            got = self._combos = list(itertools.product(*[a.values for a in self.split]))
        return got

    @property
    def hw_split(self) -> list[Axis]:
        """The hardware params' axes (the last of split)."""
        return self.split[len(self.split) - len(self.hw_axes):]

    @property
    def hw_size(self) -> int:
        return math.prod(len(a.values) for a in self.hw_split)

    def mapping_combos(self) -> list[tuple]:
        """The combinations of the split params other than the hardware's (stage 1 takes those as arrays):
        combination c of combos() is mapping combination c // hw_size, hardware c % hw_size."""
        return list(itertools.product(*[a.values for a in self.split[:len(self.split) - len(self.hw_axes)]]))

    def hw_for(self, combo: tuple) -> Hardware:
        """The hardware of one combination (elaborated once per value of the hardware params)."""
        if not self.hw_named:
            return self.hw
        key = tuple(v for a, v in zip(self.split, combo, strict=True) if a.name in self.hw_named)
        got = self._hws.get(key)
        if got is None:
            env = dict(self.fixed)
            env.update({a.name: v for a, v in zip(self.split, combo, strict=True)})
            got = self._hws[key] = hardware_for_env(self.prog, self.kernel, env)
        return got

    @property
    def constraints(self) -> list[tuple[ast.Expr, str, bool]]:
        """Each `where` constraint: the expression, its text, whether it names a grid param."""
        got = self._constraints
        if got is None:
            grid = {a.name for a in self.grid}
            got = self._constraints = [(c, _text(self, c), bool(free_names(c) & grid))
                                       for c in where_conds(self.kernel)]
        return got

    @property
    def shape(self) -> tuple[int, ...]:
        """The grid's shape: one axis per grid param, in declaration order."""
        return tuple(len(a.values) for a in self.grid)

    @property
    def layout(self) -> Layout:
        """The grid as the model walks it: only candidates that pass `where` on grid params (layout.py)."""
        got = self._layout
        if got is None:
            # a constraint that names a param derived from a grid param is left to evaluate_combo
            later = {a.name for a in self.split} | {d.name for d in self.derived}
            got = self._layout = build_layout(self.grid, [c for c, _, _ in self.constraints], later,
                                              self._base({}))
        return got

    def _base(self, values: dict) -> dict:
        if self._symbols is None:
            self._symbols = symbols(self.kernel)
        env = dict(self.fixed)
        env.update(values)
        for s in self._symbols:
            env.setdefault(s, s)
        derive(self.derived, env)
        return env

    def env(self, combo: tuple, chunk: slice | None = None) -> dict:
        """The model's env for one combination: scalars, and the grid params as open-grid arrays over
        the layout (sliced along its chunk axis)."""
        env = self._base({a.name: v for a, v in zip(self.split, combo, strict=True)})
        env.update(self.layout.arrays(chunk))
        derive(self.derived, env)
        return env

    def grid_env(self, combo: tuple) -> dict:
        """One combination with one open-grid array per grid axis, in declaration order (the whole grid)."""
        env = self._base({a.name: v for a, v in zip(self.split, combo, strict=True)})
        m = len(self.grid)
        for i, a in enumerate(self.grid):
            shape = [1] * m
            shape[i] = len(a.values)
            env[a.name] = a.array().reshape(shape)
        derive(self.derived, env)
        return env

    def defines(self, combo: tuple, index: tuple) -> dict:
        """Every dim and param of one candidate (index: its position on each grid axis)."""
        values = dict(self.fixed)
        values.update({a.name: v for a, v in zip(self.split, combo, strict=True)})
        values.update({a.name: a.values[i] for a, i in zip(self.grid, index, strict=True)})
        if self.derived:
            env = self._base(values)
            values.update({d.name: env[d.name] for d in self.derived})
        return {n: _plain(values[n]) for n in self.order if n in values}


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def kernel_space(prog: Program, kernel: ast.Kernel, defines: dict) -> KernelSpace:
    """The space of one kernel, with defines fixing dims and params."""
    decls = static_decls(kernel)
    declared = {d.name for d in decls} | set(signature_dims(kernel))
    unknown = [n for n in defines if n not in declared]
    if unknown:
        raise UsageError(f"-D {unknown[0]}: kernel '{kernel.name}' has no dimension or param '{unknown[0]}' "
                         f"(it has: {', '.join(sorted(declared)) or 'none'})")
    env, diags = bind(kernel, defines)
    if any(d.severity == "error" for d in diags):
        raise AttnError(diags)
    syms = {s: s for s in symbols(kernel)}
    axes: list[Axis] = []
    notes: list[str] = []
    for d in decls:
        if not isinstance(d, ast.Param) or d.name in defines:
            continue
        values = _domain(d, {**syms, **env})
        if values is None and d.default is not None and free_names(d.default):
            continue  # derived from other dims and params (B = n // m): it follows them
        if values is None:
            notes.append(f"param {d.name} of kernel '{kernel.name}' has no domain; it is fixed at its default "
                         f"{env.get(d.name)}")
            continue
        if not values:
            raise AttnError(error("E1403", f"param {d.name} has an empty domain: the space of kernel "
                                           f"'{kernel.name}' is empty", d.span))
        axes.append(Axis(d.name, values))
    for name in signature_dims(kernel):
        if name not in env:
            raise UsageError(f"dimension {name} of kernel '{kernel.name}' has no value: give -D {name}=VALUE")
    _refuse_spec_changing(kernel, decls, axes)
    varying = {a.name for a in axes}
    fixed = {k: v for k, v in env.items() if k not in varying}
    hw = hardware_for_env(prog, kernel, env)  # at the defaults: hw_for gives each combination's
    named = hardware_names(prog, kernel)
    derived = derived_params(kernel, set(defines))
    # a derived param that chooses an `if` branch (or a unit, or a loop's shape) splits what it is made of
    made_of = {d.name: free_names(d.default) for d in derived}
    split: set[str] = set()
    stack = list(split_params(kernel, varying | made_of.keys()))
    while stack:
        name = stack.pop()
        if name in made_of:
            stack += made_of.pop(name)
        else:
            split.add(name)
    for d in derived:  # what a derived param the hardware names is made of is named too
        if d.name in named:
            named |= _closure(d.name, {x.name: free_names(x.default) for x in derived})
    named &= varying
    on_hw = {a.name for a in axes if a.name in named and not any(isinstance(v, str) for v in a.values)}
    split = (split & varying) | named  # the detailed model takes the hardware one value at a time
    order = list(signature_dims(kernel)) + [d.name for d in decls if d.name not in signature_dims(kernel)]
    if has_processes(kernel):
        notes.append(f"kernel '{kernel.name}' has processes and channels, which the analytical model does not "
                     "cover: each of its candidates is simulated (attn run), exact but one at a time")
    return KernelSpace(kernel, hw, fixed, [a for a in axes if a.name in split - on_hw]
                       + [a for a in axes if a.name in on_hw], [a for a in axes if a.name not in split], order,
                       prog, notes, derived, hw_axes=[a.name for a in axes if a.name in on_hw], hw_named=named)


def hardware_ast(prog: Program, kernel: ast.Kernel) -> ast.Hardware | None:
    """The hardware block the kernel runs on (binding.hardware_for's choice)."""
    return prog.hardware.get(kernel.hardware) if kernel.hardware else \
        (next(iter(prog.hardware.values())) if len(prog.hardware) == 1 else None)


def hardware_names(prog: Program, kernel: ast.Kernel) -> set[str]:
    """The names the properties of the kernel's hardware mention (its params, the kernel's dims...)."""
    hw = hardware_ast(prog, kernel)
    if hw is None:
        return set()
    out: set[str] = set()
    blocks = [hw.props] + [m.props for m in hw.memories] + [u.props for u in hw.units] + \
        [o.props for u in hw.units for o in u.ops] + [c.props for c in hw.channels] + [ln.props for ln in hw.links]
    for props in blocks:
        for p in props:
            for v in p.values:
                if not isinstance(v, ast.Shape2):
                    out |= free_names(v)
    for u in hw.units:
        if u.count is not None:
            out |= free_names(u.count)
    return out


def _refuse_spec_changing(kernel: ast.Kernel, decls, axes: list[Axis]) -> None:
    """E1404 (exit 2) when a param searched over changes the spec, directly or through the params made
    of it: its candidates compute different functions, so ranking them as alternatives means nothing."""
    made_of = {d.name: free_names(d.default) for d in decls
               if isinstance(d, ast.Param) and d.default is not None}
    for axis in axes:
        reads, via = set(), []
        for spec in kernel.specs:
            stack, seen = list(free_names(spec.expr)), set()
            while stack:
                name = stack.pop()
                if name in seen:
                    continue
                seen.add(name)
                if name == axis.name:
                    reads.add(spec.output)
                elif name in made_of and axis.name in _closure(name, made_of):
                    via.append(name)
                    reads.add(spec.output)
                else:
                    stack += made_of.get(name, ())
        if reads:
            through = f" (through {', '.join(sorted(set(via)))})" if via else ""
            values = ", ".join(str(v) for v in axis.values)
            raise UsageError(f"param {axis.name} changes what kernel '{kernel.name}' computes: the spec of "
                             f"{', '.join(sorted(reads))} depends on it{through}, so its candidates are not "
                             f"alternatives to rank; fix it with -D {axis.name}=VALUE ({values}) and explore each",
                             "E1404")


def _closure(name: str, made_of: dict) -> set[str]:
    out, stack = set(), [name]
    while stack:
        n = stack.pop()
        for m in made_of.get(n, ()):
            if m not in out:
                out.add(m)
                stack.append(m)
    return out


def _domain(p: ast.Param, env: dict) -> list | None:
    from ..check.where import mixed_domain

    mixed = mixed_domain(p)
    if mixed is not None:
        raise AttnError(mixed)
    try:
        if p.domain is not None:
            out = []
            for e in p.domain:
                v = static_eval(e, env)
                if v not in out:
                    out.append(v)
            return out
        if p.domain_range is not None:
            lo, hi, step = p.domain_range
            lo_v, hi_v = static_eval(lo, env), static_eval(hi, env)
            step_v = static_eval(step, env) if step is not None else 1
            if not all(isinstance(x, int) for x in (lo_v, hi_v, step_v)) or step_v <= 0:
                raise AttnError(error("E1403", f"param {p.name}: a range domain needs whole numbers and a "
                                               "positive step", p.span))
            return list(range(lo_v, hi_v + 1, step_v))
    except StaticError as exc:
        raise AttnError(exc.diagnostic) from None
    return None


# ---------------------------------------------------------------- evaluation


#: the pruning stage of a memory that spills (the model does not cost spill traffic)
SPILLS = "capacity of {0} (it spills, and the model does not cost spill traffic)"


@dataclass
class Stage:
    """One pruning constraint and how many candidates it removed."""

    what: str
    span: Span | None
    removed: int = 0
    #: capacity stages: the smallest peak among the candidates they removed, in bytes
    smallest: float | None = None
    memory: str | None = None


@dataclass
class Part:
    """The feasible candidates of one combination (or a chunk of it)."""

    kernel: int
    combo: int
    index: np.ndarray  # flat index in the grid of each feasible candidate, increasing
    cycles: np.ndarray
    energy_pj: np.ndarray
    considered: int  # candidates that reached the model (passed `where`)
    stages: list[Stage]


def evaluate_combo(space: KernelSpace, kernel_index: int, combo_index: int, chunk: slice | None = None) -> Part:
    """Prune and cost one combination of the split params over its grid (or a chunk of its layout)."""
    combo = space.combos()[combo_index]
    env = space.env(combo, chunk)
    lay = space.layout
    points = lay.points(chunk)
    shape = tuple(np.shape(env[a.names[0]])[i] for i, a in enumerate(lay.axes))
    # `where` stages count over the whole grid, once per combination (its first chunk).
    stages = _where_stages(space, combo) if chunk is None or not chunk.start else []
    alive = np.ones(shape, dtype=bool)
    for cond, _, _ in space.constraints:
        alive &= np.broadcast_to(np.asarray(aeval(cond, env), dtype=bool), shape)
    alive = alive.reshape(-1)
    considered = int(np.count_nonzero(alive))
    if considered == 0:
        return Part(kernel_index, combo_index, np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), 0, stages)
    if has_processes(space.kernel):
        return _simulate(space, kernel_index, combo_index, points[np.flatnonzero(alive)], considered, stages)
    hw = space.hw_for(combo)
    est = _walk(hw, space.kernel, env)
    alive, more = _prune(hw, est, alive, shape)
    stages += more
    keep = np.flatnonzero(alive)
    index = points[keep]
    cycles = np.broadcast_to(est.cycles, shape).reshape(-1)[keep]
    energy = np.broadcast_to(est.energy_pj, shape).reshape(-1)[keep]
    if not lay.monotonic:
        order = np.argsort(index, kind="stable")
        index, cycles, energy = index[order], cycles[order], energy[order]
    return Part(kernel_index, combo_index, index, cycles, energy, considered, stages)


def evaluate_points(space: KernelSpace, kernel_index: int, combo_index: int, index: np.ndarray) -> Part:
    """The detailed model on chosen candidates of one combination (flat grid indices, increasing, that pass
    `where`): one walk over arrays with one entry per candidate, pruned as evaluate_combo prunes."""
    combo = space.combos()[combo_index]
    env = space._base({a.name: v for a, v in zip(space.split, combo, strict=True)})
    n = len(index)
    if space.grid:
        for a, at in zip(space.grid, np.unravel_index(index, space.shape), strict=True):
            env[a.name] = a.array()[at]
        derive(space.derived, env)
    alive = np.ones(n, dtype=bool)
    for cond, _, _ in space.constraints:
        alive &= np.broadcast_to(np.asarray(aeval(cond, env), dtype=bool), (n,))
    hw = space.hw_for(combo)
    est = _walk(hw, space.kernel, env)
    alive, stages = _prune(hw, est, alive, (n,))
    keep = np.flatnonzero(alive)
    cycles = np.broadcast_to(est.cycles, (n,))[keep]
    energy = np.broadcast_to(est.energy_pj, (n,))[keep]
    return Part(kernel_index, combo_index, np.asarray(index)[keep], cycles, energy, n, stages)


def _prune(hw: Hardware, est: Estimate, alive: np.ndarray, shape: tuple) -> tuple[np.ndarray, list[Stage]]:
    """Rule out what the model cannot cost (a tile that does not divide its loop...) and what does not fit a
    memory; alive is flat. Returns the candidates left (flat) and a stage per rule. The masks and peaks
    broadcast to shape (they span only the params they depend on), and so may capacities (stage 1's
    hardware params)."""
    stages: list[Stage] = []
    alive = alive.reshape(shape)
    for reason, mask in est.invalid.items():
        stage = Stage(reason, None)
        stages.append(stage)
        out = alive & np.asarray(mask, dtype=bool)
        stage.removed = int(np.count_nonzero(out))
        if stage.removed:
            alive &= ~out
    for name, mem in hw.memories.items():
        if mem.capacity_bytes is None:
            continue
        peak = est.peak_bytes[name]
        over = alive & (peak > mem.capacity_bytes)
        # A memory that spills is pruned like a strict one: the interpreter would run such a candidate,
        # writing values back and reloading them, but the model does not cost that traffic, and
        # costing it without would rank it better than it is.
        what = f"capacity of {name}" if mem.policy == "strict" else SPILLS.format(name)
        stage = Stage(what, mem.span, memory=name)
        stages.append(stage)
        stage.removed = int(np.count_nonzero(over))
        if stage.removed:
            stage.smallest = float(np.broadcast_to(peak, shape)[over].min())
            alive &= ~over
    return alive.reshape(-1), stages


def has_processes(kernel: ast.Kernel) -> bool:
    """Does the kernel run processes or use channels (which only the interpreter costs)?"""
    return ast.first_stream_statement(kernel.body) is not None


def _simulate(space: KernelSpace, kernel_index: int, combo_index: int, index: np.ndarray, considered: int,
              stages: list[Stage]) -> Part:
    """Cost the candidates (flat grid indices, increasing) one at a time with the interpreter.

    A candidate whose run stops with an error (a strict memory overflowing, a deadlock, ...) is
    pruned, in a stage named after the error's code, at the first such candidate's statement."""
    run = space.simulate
    if run is None:
        raise UsageError(f"kernel '{space.kernel.name}' has processes and channels: its candidates are costed "
                         "by simulation, and this search was given no simulate function (api.explore gives one)")

    combo = space.combos()[combo_index]
    keep, cycles, energy = [], [], []
    failed: dict[str, Stage] = {}
    for flat in index:
        grid_index = tuple(int(x) for x in np.unravel_index(int(flat), space.shape)) if space.grid else ()
        try:
            r = run(space.prog, space.kernel.name, space.defines(combo, grid_index), check=False)
        except AttnError as exc:
            d = exc.diagnostics[0]
            what = f"the simulation stops with error {d.code} ({d.message})" if len(index) == 1 else \
                f"the simulation stops with error {d.code}"
            stage = failed.setdefault(what, Stage(what, d.span))
            stage.removed += 1
            continue
        keep.append(int(flat))
        cycles.append(float(r.cycles))
        energy.append(float(r.energy_pj))
    return Part(kernel_index, combo_index, np.array(keep, dtype=np.int64), np.array(cycles), np.array(energy),
                considered, stages + list(failed.values()))


def _where_stages(space: KernelSpace, combo: tuple) -> list[Stage]:
    """How many of the combination's grid candidates each `where` constraint removes, in order."""
    env = space.grid_env(combo)
    shape = space.shape
    alive = np.ones(shape, dtype=bool)
    stages = []
    for cond, text, _ in space.constraints:
        ok = np.broadcast_to(np.asarray(aeval(cond, env), dtype=bool), shape)
        before = int(np.count_nonzero(alive))
        alive &= ok
        stages.append(Stage(f"where {text}", cond.span, removed=before - int(np.count_nonzero(alive))))
    return stages


def combo_ruled_out(space: KernelSpace, combo: tuple) -> Stage | None:
    """The `where` constraint that rules out a whole combination before it is walked, if any."""
    env = None
    for cond, text, on_grid in space.constraints:
        if on_grid:
            continue
        if env is None:
            env = space._base({a.name: v for a, v in zip(space.split, combo, strict=True)})
        if not bool(np.all(aeval(cond, env))):
            return Stage(f"where {text}", cond.span, removed=space.grid_size)
    return None


def _text(space: KernelSpace, e: ast.Expr) -> str:
    """A constraint as the user wrote it."""
    from ..check.scope import text_of

    return text_of(space.prog, e)


__all__ = ["Axis", "Estimate", "KernelSpace", "Part", "Stage", "evaluate_combo", "evaluate_points", "kernel_space"]
