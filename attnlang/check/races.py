"""Loop annotations: @parallel iterations that touch the same data, @pipeline that breaks a dependence.

Two iterations of a `@parallel` loop race when one stores to a region of an
output that another stores to or loads from, or when both assign a value
that lives outside the loop. `@pipeline(k)` (k >= 2) lets an iteration's
loads start before the previous one's stores end, so a store that a later
iteration loads is a loop-carried dependence it breaks. Regions are boxes
evaluated over every iteration (space.points); when the space is too large,
a warning says the checker could not decide.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..diagnostics import Diagnostic, error, warning
from ..hardware import Hardware
from ..program import Program
from ..static import Static, free_names
from ..syntax import ast
from . import scope
from .dims import Unknown, try_value, veval
from .shapes import analyze
from .space import LIMIT, TooBig, needed_loops, points

_MAX_BOXES = 4000


def check_races(prog: Program, kernel: ast.Kernel, env: Mapping[str, Static], hw: Hardware) -> list[Diagnostic]:
    """Races between @parallel iterations and dependences @pipeline breaks; annotation arguments (E07xx)."""
    env = scope.full_env(kernel, env)
    diags: list[Diagnostic] = []
    a = analyze(kernel, env, hw)
    recs = [r for r in a.slices.values() if not r.quiet and r.kind in ("load", "store")]
    outputs = {t.name for t in kernel.outputs}
    by_loop: dict[int, list] = {}  # the accesses inside each loop (not a scan of all of them per loop)
    for r in recs:
        for loop in {id(loop): loop for loop in r.loops}:
            by_loop.setdefault(loop, []).append(r)
    for s, _, quiet in scope.walk_live(kernel.body, env):
        if quiet or not isinstance(s, ast.For):
            continue
        diags += _annotations(s, env, prog)
        inside = by_loop.get(id(s), [])
        stores = [r for r in inside if r.kind == "store"]
        loads = [r for r in inside if r.kind == "load" and r.base in outputs]
        if scope.annotations(s, "parallel"):
            diags += _outer_writes(kernel, s)
            diags += _conflicts(s, stores, stores + loads, env, prog, "parallel", 0)
        k = scope.pipeline_depth(s, env)
        if scope.annotations(s, "pipeline") and isinstance(k, (int, float)) and k >= 2 and loads and stores:
            diags += _conflicts(s, stores, loads, env, prog, "pipeline", k)
    return diags


def _annotations(s: ast.For, env: Mapping, prog) -> list[Diagnostic]:
    diags, seen = [], set()
    for a in s.annotations:
        if a.name in seen:
            diags.append(error("E0706", f"@{a.name} is given twice on one loop", a.span))
        seen.add(a.name)
        if a.name not in ("pipeline", "unroll"):
            continue
        what = "buffer copies" if a.name == "pipeline" else "iterations to unroll"
        if len(a.args) > 1:
            diags.append(error("E0704", f"@{a.name} takes one argument, the number of {what}", a.span))
            continue
        if not a.args:
            continue
        v = try_value(a.args[0], env)
        if v is None:
            continue
        if isinstance(v, (str, bool)) or not float(v).is_integer() or v < 1:
            diags.append(error("E0704", f"@{a.name} needs a positive whole number of {what}, not "
                                        f"{scope.text_of(prog, a.args[0])}"
                                        f"{'' if str(v) == scope.text_of(prog, a.args[0]) else f' = {v}'}",
                               a.args[0].span))
    return diags


def _outer_writes(kernel: ast.Kernel, loop: ast.For) -> list[Diagnostic]:
    """Values every iteration of a @parallel loop assigns, though they live outside it."""
    outside = _visible_at(kernel.body, loop, set()) or set()
    diags, seen = [], set()
    for s in scope.walk(loop.body):
        target = getattr(s, "target", None)
        if target is not None and target.name in outside and target.name not in seen:
            seen.add(target.name)
            diags.append(error("E0703", f"every iteration of the @parallel loop over {loop.var} writes "
                                        f"'{target.name}', which lives outside the loop: the iterations race",
                               target.span, "give each iteration its own value, or store to a slice of an output "
                                            f"indexed by {loop.var}"))
    return diags


def _visible_at(body, loop, visible: set) -> set | None:
    """The values alive where `loop` starts (values first assigned in a loop or process body die at its end)."""
    visible = set(visible)
    for s in body:
        if s is loop:
            return visible
        if isinstance(s, (ast.For, ast.Process)):
            found = _visible_at(s.body, loop, visible)
            if found is not None:
                return found
        elif isinstance(s, ast.If):
            for branch in (s.then, s.orelse):
                found = _visible_at(branch, loop, visible)
                if found is not None:
                    return found
            visible |= _assigned(s.then) | _assigned(s.orelse)
        elif getattr(s, "target", None) is not None:
            visible.add(s.target.name)
    return None


def _assigned(body) -> set[str]:
    out: set[str] = set()
    for s in body:
        if isinstance(s, ast.If):
            out |= _assigned(s.then) | _assigned(s.orelse)
        elif getattr(s, "target", None) is not None:
            out.add(s.target.name)
    return out


def _boxes(rec, loop: ast.For, env: Mapping):
    """Per iteration: the region rec touches (lo, hi per axis), the loop index, and the outer indices."""
    # Every loop around `loop` is enumerated, whether the region depends on it or not, so that the
    # outer iterations of a writer and a reader are numbered alike (their groups must match).
    enclosing = list(rec.loops[:rec.loops.index(loop)]) if loop in rec.loops else []
    names = {loop.var} | {lp.var for lp in enclosing}
    for it in rec.items:
        if isinstance(it, ast.Slice):
            names |= free_names(it.lo) | free_names(it.hi)
        else:
            names |= free_names(it)
    loops = needed_loops(rec.loops, names)
    pts, n = points(loops, env)
    penv = {**env, **pts}
    los, his = [], []
    axis = 0
    for it in rec.items:
        if isinstance(it, ast.Name) and it.id == "None":
            continue
        if isinstance(it, ast.Slice):
            lo = veval(it.lo, penv) if it.lo is not None else 0
            hi = veval(it.hi, penv) if it.hi is not None else np.inf  # to the end: same end for every iteration
        else:
            lo = veval(it, penv)
            hi = lo + 1
        los.append(np.broadcast_to(np.asarray(lo, dtype=float), (n,)))
        his.append(np.broadcast_to(np.asarray(hi, dtype=float), (n,)))
        axis += 1
    outer = [lp.var for lp in enclosing if lp.var in pts]  # a process without an index has no points
    group = np.zeros(n, dtype=np.int64)
    if outer and n:
        _, group = np.unique(np.stack([pts[v] for v in outer], axis=1), axis=0, return_inverse=True)
    lab = pts.get(loop.var, np.zeros(n, dtype=np.int64))
    return np.stack(los, axis=1) if los else np.zeros((n, 0)), np.stack(his, axis=1) if his else np.zeros((n, 0)), \
        lab, group.reshape(-1)


def _conflicts(loop: ast.For, writers, readers, env, prog, mode: str, k) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    reported: set[int] = set()
    for w in writers:
        for r in readers:
            if r.base != w.base or id(r.span) in reported or (mode == "parallel" and r is w and r.kind != "store"):
                continue
            try:
                wl, wh, wlab, wg = _boxes(w, loop, env)
                rl, rh, rlab, rg = _boxes(r, loop, env)
            except TooBig:
                if mode == "parallel":
                    diags.append(_undecided(loop, r, prog))
                    reported.add(id(r.span))
                continue
            except (Unknown, TypeError, ValueError):
                continue  # a bound with no value here: other rules say why
            if wl.shape[1] != rl.shape[1]:
                continue
            wl, wh, wlab, wg, rl, rh, rlab, rg = _buckets(wl, wh, wlab, wg, rl, rh, rlab, rg)
            if len(wl) * len(rl) > _MAX_BOXES ** 2:
                diags.append(_undecided(loop, r, prog))
                reported.add(id(r.span))
                continue
            hit = _first_overlap(wl, wh, wlab, wg, rl, rh, rlab, rg, later=(mode == "pipeline"))
            if hit is None:
                continue
            a, b = hit
            reported.add(id(r.span))
            diags.append(_message(loop, w, r, a, b, mode, k, prog))
    return diags


def _buckets(wl, wh, wlab, wg, rl, rh, rlab, rg):
    """Regroup the boxes by outer iteration and by their exact position on axes indexed by one element
    (b, h in O[b, h, ...]); keep only groups where two iterations of the loop meet, since boxes in
    different groups cannot overlap."""
    if not len(wl) or not len(rl):
        return wl[:0], wh[:0], wlab[:0], wg[:0], rl[:0], rh[:0], rlab[:0], rg[:0]
    axes = [a for a in range(wl.shape[1]) if np.all(wh[:, a] - wl[:, a] == 1) and np.all(rh[:, a] - rl[:, a] == 1)]
    keys = np.vstack([np.column_stack([wg] + [wl[:, a] for a in axes]),
                      np.column_stack([rg] + [rl[:, a] for a in axes])])
    _, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.reshape(-1)
    labels = np.concatenate([wlab, rlab])
    pairs = np.unique(np.column_stack([group, labels]), axis=0)
    keep = np.bincount(pairs[:, 0], minlength=group.max() + 1)[group] >= 2
    n = len(wl)
    w, r = keep[:n], keep[n:]
    return wl[w], wh[w], wlab[w], group[:n][w], rl[r], rh[r], rlab[r], group[n:][r]


def _first_overlap(wl, wh, wlab, wg, rl, rh, rlab, rg, later: bool):
    """The first (writer label, reader label) whose boxes overlap in different iterations of one outer iteration."""
    step = max(1, 2_000_000 // max(1, len(rl)))
    for start in range(0, len(wl), step):
        sl = slice(start, start + step)
        overlap = np.all((wl[sl, None, :] < rh[None, :, :]) & (rl[None, :, :] < wh[sl, None, :]), axis=2)
        overlap &= wg[sl, None] == rg[None, :]
        overlap &= (rlab[None, :] > wlab[sl, None]) if later else (rlab[None, :] != wlab[sl, None])
        if np.any(overlap):
            i, j = np.argwhere(overlap)[0]
            return int(wlab[start + i]), int(rlab[j])
    return None


def _message(loop, w, r, a, b, mode, k, prog) -> Diagnostic:
    var = loop.var
    wt, rt = _text(w, prog), _text(r, prog)
    if mode == "pipeline":
        return error("E0705", f"iteration {var} = {b} loads {rt}, which iteration {var} = {a} stores: with "
                              f"@pipeline({k}) that load may start before the store ends", r.span,
                     "a loop-carried dependence through memory needs @pipeline(1), or keep the value on chip")
    if r.kind == "store":
        return error("E0701", f"iterations {var} = {a} and {var} = {b} of the @parallel loop both store to the "
                              f"same part of {w.base} ({wt}): a race", r.span)
    return error("E0702", f"iteration {var} = {b} of the @parallel loop loads {rt} while iteration {var} = {a} "
                          f"stores to it ({wt}): a race", r.span)


def _text(rec, prog) -> str:
    if not rec.items:
        return f"all of {rec.base}"
    return f"{rec.base}[{', '.join(scope.text_of(prog, i) for i in rec.items)}]"


def _undecided(loop, r, prog) -> Diagnostic:
    return warning("E0708", f"could not decide whether the iterations of the loop over {loop.var} touch the same "
                            f"part of {r.base} ({_text(r, prog)}): too many iterations to compare (more than "
                            f"{LIMIT} points or {_MAX_BOXES} regions)", r.span)
