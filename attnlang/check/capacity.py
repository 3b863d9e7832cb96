"""Capacity: the peak bytes each memory holds at the chosen params, against what it holds.

`peak_bytes`, `feasible` and `feasible_many` are the API explore uses; they
share one walk (occupancy.py) with the checker's rule, so a candidate the
rule accepts is one `feasible` accepts. `feasible_many` evaluates a whole
sweep of candidates in one walk over NumPy arrays.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..binding import bind
from ..diagnostics import Diagnostic, error, warning
from ..hardware import Hardware
from ..program import Program
from ..static import Static
from ..syntax import ast
from . import scope
from .occupancy import Occupancy, Snapshot, label_text
from .shapes import analyze
from .types import Analysis
from .where import satisfied_many

_STRUCT_CACHE: dict[tuple, tuple] = {}


def _analysis(kernel: ast.Kernel, env: Mapping, hw: Hardware) -> Analysis:
    """The types for the occupancy walk: they depend on env only through the `if`s the params decide,
    so one analysis serves every candidate that decides them the same way."""
    pattern = tuple(scope.condition(s.cond, env) for s in scope.walk(kernel.body) if isinstance(s, ast.If))
    key = (id(kernel), id(hw), pattern)
    hit = _STRUCT_CACHE.get(key)
    if hit is not None and hit[0] is kernel and hit[1] is hw:
        return hit[2]
    a = analyze(kernel, env, hw)
    if len(_STRUCT_CACHE) > 32:
        _STRUCT_CACHE.pop(next(iter(_STRUCT_CACHE)))
    _STRUCT_CACHE[key] = (kernel, hw, a)
    return a


def _walk(kernel: ast.Kernel, env: Mapping, hw: Hardware, n: int, explain: bool = False) -> Occupancy:
    rep = {k: (v if isinstance(v, str) or np.ndim(v) == 0 else np.asarray(v).reshape(-1)[0]) for k, v in env.items()}
    rep = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in rep.items()}
    occ = Occupancy(kernel, env, hw, _analysis(kernel, rep, hw), n, explain)
    occ.run()
    return occ


def peak_bytes(prog: Program, kernel: ast.Kernel, env: Mapping[str, Static], hw: Hardware) -> dict[str, float]:
    """Peak bytes per memory at env (inputs and outputs included in the root memory)."""
    occ = _walk(kernel, scope.full_env(kernel, env), hw, 1)
    return {m: float(v[0]) for m, v in occ.peak.items()}


def feasible(prog: Program, kernel: ast.Kernel, env: Mapping[str, Static], hw: Hardware) -> bool:
    """Whether env fits every strict memory and satisfies every `where` constraint: exactly the
    candidates for which the checker reports no E0801 and no E0951."""
    return bool(feasible_many(prog, kernel, dict(env), hw)[0])


def feasible_many(prog: Program, kernel: ast.Kernel, envs: Mapping[str, np.ndarray], hw: Hardware) -> np.ndarray:
    """feasible() for many candidates at once: envs maps names to arrays (one entry per candidate) or
    scalars; names left out take their -D-less defaults. Returns a bool array."""
    sizes = [np.size(v) for v in envs.values() if not isinstance(v, str) and np.ndim(v) > 0]
    n = max(sizes) if sizes else 1
    defaults, _ = bind(kernel)
    env = scope.full_env(kernel, {**defaults, **envs})
    occ = _walk(kernel, env, hw, n)
    ok = np.ones(n, dtype=bool)
    for name, mem in hw.memories.items():
        if mem.capacity_bytes is not None and mem.policy == "strict":
            ok &= occ.solo[name] <= mem.capacity_bytes
    return ok & satisfied_many(kernel, env, n)


def fmt_bytes(nbytes: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:.1f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"{nbytes:.0f} B"


def check_capacity(prog: Program, kernel: ast.Kernel, env: Mapping[str, Static], hw: Hardware) -> list[Diagnostic]:
    """Memories whose peak occupancy exceeds their capacity (E08xx)."""
    env = scope.full_env(kernel, env)
    occ = _walk(kernel, env, hw, 1)
    if not any(mem.capacity_bytes is not None and float(occ.peak[name][0]) > mem.capacity_bytes
               for name, mem in hw.memories.items()):
        return []
    occ = _walk(kernel, env, hw, 1, explain=True)  # again, noting what each memory holds at its peak
    f = scope.facts(kernel)
    diags: list[Diagnostic] = []
    for name, mem in hw.memories.items():
        peak, solo = float(occ.peak[name][0]), float(occ.solo[name][0])
        if mem.capacity_bytes is None or peak <= mem.capacity_bytes:
            continue
        snap = occ.snaps.get(name) or Snapshot(peak, kernel.name_span, [])
        at = _params(occ.sized_by[name], f, env)
        message = f"{name} needs {fmt_bytes(peak)}{f' at {at}' if at else ''} but holds {fmt_bytes(mem.capacity_bytes)}"
        span = snap.span or kernel.name_span
        notes = _holders(snap)
        if mem.policy == "strict" and solo <= mem.capacity_bytes:
            diags.append(warning("E0803", f"{name} may need up to {fmt_bytes(peak)}{f' at {at}' if at else ''} if "
                                          f"its processes all peak at once, but holds "
                                          f"{fmt_bytes(mem.capacity_bytes)}", span, *notes))
        elif mem.policy == "strict":
            diags.append(error("E0801", message, span, *notes))
        else:
            diags.append(warning("E0802", f"{message}: the excess spills to {mem.parent or 'its parent'} and back",
                                 span, *notes))
    return diags


def _params(names: set[str], f: scope.Facts, env: Mapping) -> str:
    """The params the memory's sizes depend on (the dims when no param does), with their values."""
    chosen = [p for p in f.params if p in names] or [d for d in sorted(f.dims) if d in names]
    return ", ".join(f"{n} = {env[n]}" for n in chosen if n in env)


def _holders(snap: Snapshot, top: int = 4) -> list[str]:
    live = sorted(snap.live, key=lambda x: -x[2])
    notes = []
    for label, ty, nbytes, copies in live[:top]:
        copies = np.asarray(copies).reshape(-1)[0] if np.ndim(copies) else copies
        what = f": {ty}" if ty is not None else ""
        times = f" x {copies:g} copies" if copies != 1 and ty is not None else ""
        notes.append(f"{label_text(label)}{what}{times} = {fmt_bytes(nbytes)}")
    rest = live[top:]
    if rest:
        notes.append(f"{len(rest)} more values: {fmt_bytes(sum(x[2] for x in rest))}")
    return ["at its peak it holds " + "; ".join(notes)] if notes else []
