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
`strict` memory against the model's peak occupancy.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ..diagnostics import AttnError, Span, UsageError, error
from ..hardware import Hardware
from ..program import Program, bind, signature_dims, static_decls, symbols
from ..static import StaticError, static_eval
from ..syntax import ast
from .analytic import Estimate, _walk, hardware_for_env
from .statics import aeval, split_params, where_conds


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

    @property
    def size(self) -> int:
        n = 1
        for a in self.split + self.grid:
            n *= len(a.values)
        return n

    @property
    def grid_size(self) -> int:
        n = 1
        for a in self.grid:
            n *= len(a.values)
        return n

    def combos(self) -> list[tuple]:
        return list(itertools.product(*[a.values for a in self.split]))

    def env(self, combo: tuple, chunk: slice | None = None) -> dict:
        """The model's env for one combination: scalars, and one open-grid array per grid axis."""
        env = dict(self.fixed)
        env.update({a.name: v for a, v in zip(self.split, combo, strict=True)})
        m = len(self.grid)
        for i, a in enumerate(self.grid):
            arr = a.array()
            if i == 0 and chunk is not None:
                arr = arr[chunk]
            shape = [1] * m
            shape[i] = arr.shape[0]
            env[a.name] = arr.reshape(shape)
        for s in symbols(self.kernel):
            env.setdefault(s, s)
        return env

    def defines(self, combo: tuple, index: tuple) -> dict:
        """Every dim and param of one candidate (index: its position in the grid axes)."""
        values = dict(self.fixed)
        values.update({a.name: v for a, v in zip(self.split, combo, strict=True)})
        values.update({a.name: a.values[i] for a, i in zip(self.grid, index, strict=True)})
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
    varying = {a.name for a in axes}
    fixed = {k: v for k, v in env.items() if k not in varying}
    hw = hardware_for_env(prog, kernel, fixed)
    split = split_params(kernel, varying)
    order = list(signature_dims(kernel)) + [d.name for d in decls if d.name not in signature_dims(kernel)]
    return KernelSpace(kernel, hw, fixed, [a for a in axes if a.name in split],
                       [a for a in axes if a.name not in split], order, prog, notes)


def _domain(p: ast.Param, env: dict) -> list | None:
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
    start: int  # offset of the chunk along the first grid axis
    index: np.ndarray  # flat index of each feasible candidate in the chunk's grid
    shape: tuple  # the chunk's grid shape
    cycles: np.ndarray
    energy_pj: np.ndarray
    considered: int  # candidates that reached the model (passed `where`)
    stages: list[Stage]
    spilled: dict[str, int] = field(default_factory=dict)  # spill memory -> candidates that overflow it


def evaluate_combo(space: KernelSpace, kernel_index: int, combo_index: int, chunk: slice | None = None) -> Part:
    """Prune and cost one combination of the split params over its grid."""
    combo = space.combos()[combo_index]
    env = space.env(combo, chunk)
    grid_shape = tuple(np.shape(env[a.name])[i] for i, a in enumerate(space.grid))
    start = (chunk.start or 0) if chunk is not None else 0
    stages: list[Stage] = []
    alive = np.ones(grid_shape, dtype=bool)
    for cond in where_conds(space.kernel):
        stage = Stage(f"where {_text(space, cond)}", cond.span)
        stages.append(stage)
        ok = aeval(cond, env)
        before = int(alive.sum())
        alive = alive & np.broadcast_to(np.asarray(ok, dtype=bool), grid_shape)
        stage.removed = before - int(alive.sum())
    considered = int(alive.sum())
    if considered == 0:
        return Part(kernel_index, combo_index, start, np.zeros(0, dtype=np.int64), grid_shape, np.zeros(0),
                    np.zeros(0), 0, stages)
    est = _walk(space.hw, space.kernel, env)
    for reason, mask in est.invalid.items():
        stage = Stage(reason, None)
        stages.append(stage)
        before = int(alive.sum())
        alive = alive & ~np.broadcast_to(mask, grid_shape)
        stage.removed = before - int(alive.sum())
    spilled: dict[str, int] = {}
    for name, mem in space.hw.memories.items():
        if mem.capacity_bytes is None:
            continue
        if mem.policy != "strict":  # the interpreter spills; the model does not cost spills: say so
            over = alive & (np.broadcast_to(est.peak_bytes[name], grid_shape) > mem.capacity_bytes)
            if over.any():
                spilled[name] = int(over.sum())
            continue
        stage = Stage(f"capacity of {name}", mem.span, memory=name)
        stages.append(stage)
        peak = np.broadcast_to(est.peak_bytes[name], grid_shape)
        over = alive & (peak > mem.capacity_bytes)
        stage.removed = int(over.sum())
        if stage.removed:
            stage.smallest = float(peak[over].min())
            alive = alive & ~over
    index = np.flatnonzero(alive)
    cycles = np.broadcast_to(est.cycles, grid_shape).reshape(-1)[index]
    energy = np.broadcast_to(est.energy_pj, grid_shape).reshape(-1)[index]
    return Part(kernel_index, combo_index, start, index, grid_shape, cycles, energy, considered, stages, spilled)


def combo_ruled_out(space: KernelSpace, combo: tuple) -> Stage | None:
    """The `where` constraint that rules out a whole combination before it is walked, if any."""
    env = space.env(combo)
    for cond in where_conds(space.kernel):
        if space.grid and any(a.name in _names(cond) for a in space.grid):
            continue
        if not bool(np.all(aeval(cond, env))):
            return Stage(f"where {_text(space, cond)}", cond.span, removed=space.grid_size)
    return None


def _names(e) -> set[str]:
    from .statics import free_names

    return free_names(e)


def _text(space: KernelSpace, e: ast.Expr) -> str:
    """A constraint as the user wrote it."""
    from ..check.scope import text_of

    return text_of(space.prog, e)


__all__ = ["Axis", "Estimate", "KernelSpace", "Part", "Stage", "evaluate_combo", "kernel_space"]
