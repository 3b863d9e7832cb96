"""Slices inside their tensors for every iteration, tiles that divide their loops (ranges.py: the bounds).

Each slice bound is evaluated over every iteration of the loops it depends
on (space.points); past space.LIMIT points, over intervals, and a slice the
intervals cannot settle gets a warning that says so, never a guess.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..diagnostics import Diagnostic, error, warning
from ..hardware import Hardware
from ..limits import message_number
from ..program import Program
from ..static import Static, free_names
from ..syntax import ast
from . import scope
from .dims import Unknown, dim_of, veval
from .shapes import analyze
from .space import LIMIT, TooBig, corners, interval, intervals, monotone, needed_loops, points


def check_bounds(prog: Program, kernel: ast.Kernel, env: Mapping[str, Static], hw: Hardware) -> list[Diagnostic]:
    """Slices out of bounds, tiles that do not divide their loop (E06xx)."""
    env = scope.full_env(kernel, env)
    diags: list[Diagnostic] = []
    divided: set[int] = set()
    for rec in analyze(kernel, env, hw).slices.values():
        if not rec.quiet:
            diags += _slices(rec, env, divided, prog)
    return diags


def _named(text: str, value) -> str:
    value = _num(value)
    return str(value) if text == str(value) else f"{text} = {value}"


_num = message_number


def _where(pts: dict, k: int, names: set[str]) -> str:
    shown = [f"{var} = {_num(pts[var][k])}" for var in pts if var in names]
    return f" when {', '.join(shown)}" if shown else ""


def _slices(rec, env: Mapping, divided: set[int], prog) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    base = rec.base or "the value"
    axis = 0
    for it in rec.items:
        if isinstance(it, ast.Name) and it.id == "None":
            continue
        if axis >= len(rec.shape):
            break
        dim = rec.shape[axis]
        if isinstance(it, ast.Slice):
            tile = _divides(rec, it, env, divided, prog)
            if tile is not None:
                diags.append(tile)
            elif id(it) not in divided:
                diags += _check(rec, it, axis, dim, base, env, prog)
        else:
            diags += _check(rec, it, axis, dim, base, env, prog)
        axis += 1
    return diags


def _check(rec, it, axis: int, dim, base: str, env: Mapping, prog) -> list[Diagnostic]:
    exprs = [it.lo, it.hi] if isinstance(it, ast.Slice) else [it]
    names = set().union(*(free_names(e) for e in exprs if e is not None)) | dim.names()
    names |= set().union(*(free_names(c) for c, _ in rec.guards)) if rec.guards else set()
    loops = needed_loops(rec.loops, names)
    try:
        pts, n = points(loops, env)
    except TooBig:
        try:
            pts, n = corners(loops, env)  # real iterations: a mistake found there is certain
        except Unknown:
            n = 0
        found = _violations(rec, it, axis, dim, base, env, pts, n, names, prog) if n else []
        bounds = [e for e in (exprs + [c for c, _ in rec.guards]) if e is not None]
        if found or (n and not rec.guards and monotone(loops, bounds, env)):
            return found  # the corners are the extremes: what they show is all there is
        return _check_intervals(rec, it, axis, dim, base, env, loops, prog)
    except Unknown:
        return []
    return _violations(rec, it, axis, dim, base, env, pts, n, names, prog) if n else []


def _violations(rec, it, axis, dim, base, env, pts, n, names, prog) -> list[Diagnostic]:
    penv = {**env, **pts}
    try:
        size = _along(dim.eval(penv), n)
        lo = _along(veval(it.lo, penv), n) if _has(it, "lo") else np.zeros(n)
        hi = _along(veval(it.hi, penv), n) if _has(it, "hi") else size
        idx = None if isinstance(it, ast.Slice) else _along(veval(it, penv), n)
        live = _guard_mask(rec.guards, penv, n)
        bad_lo, bad_hi = live & (lo < 0), live & (hi > size)
        reversed_ = live & (lo > hi) & ~bad_lo & ~bad_hi
        bad_idx = live & ((idx >= size) | (idx < -size)) if idx is not None else None
    except (Unknown, TypeError, ValueError):
        return []
    if bad_idx is not None:
        checks = [("E0607", bad_idx, "index {t} of {b} is {v}{w}, outside {e}", idx)]
    else:
        checks = [("E0601", bad_lo, "slice {t} of {b} starts at {v}{w}, before the start of {e}", lo),
                  ("E0601", bad_hi, "slice {t} of {b} ends at {v}{w}, past the end of {e}", hi),
                  ("E0605", reversed_, "slice {t} of {b} is reversed{w}: it starts at {v}, after its end at {h}",
                   lo)]
    for code, bad, message, vals in checks:
        if np.count_nonzero(bad):  # the message's parts only when it is needed (most slices are fine)
            k = int(np.argmax(bad))
            text = scope.text_of(prog, it)
            extent = f"axis {axis} ({_named(str(dim), size[0])})" if np.all(size == size[0]) else f"axis {axis}"
            return [error(code, message.format(t=text, b=base, v=_num(vals[k]), w=_where(pts, k, names), e=extent,
                                               h=_num(hi[k])), it.span)]
    return []


def _along(x, n: int, dtype=None) -> np.ndarray:
    """np.broadcast_to(np.asarray(x, dtype), (n,)), at a fraction of its cost (a copy, not a view)."""
    a = np.asarray(x, dtype=dtype)
    return a if a.shape == (n,) else np.full(n, a)


def _has(it, part: str) -> bool:
    return isinstance(it, ast.Slice) and getattr(it, part) is not None


def _guard_mask(guards, penv, n: int) -> np.ndarray:
    live = np.ones(n, dtype=bool)
    for cond, taken in guards:
        try:
            c = _along(veval(cond, penv), n, bool)
        except (Unknown, TypeError, ValueError):
            continue
        live &= c if taken else ~c
    return live


def _check_intervals(rec, it, axis, dim, base, env, loops, prog) -> list[Diagnostic]:
    try:
        ranges = intervals(loops, env)
        size = interval_of_dim(dim, env, ranges)
        lo = interval(it.lo, env, ranges) if _has(it, "lo") else (0, 0)
        hi = interval(it.hi, env, ranges) if _has(it, "hi") else size
        if not isinstance(it, ast.Slice):
            lo = hi = interval(it, env, ranges)
            hi = (hi[0] + 1, hi[1] + 1)
    except Unknown:
        lo = hi = size = None
    if lo is not None and lo[0] >= 0 and hi[1] <= size[0]:
        return []
    if lo is not None and (lo[1] < 0 or hi[0] > size[1]):
        where = "starts before the start" if lo[1] < 0 else "ends past the end"
        return [error("E0601", f"{scope.text_of(prog, it)} of {base} {where} of axis {axis} on every iteration",
                      it.span)]
    text = scope.text_of(prog, it)
    return [warning("E0604", f"could not decide whether {text} stays inside axis {axis} of {base}: its loops "
                             f"have more than {LIMIT} iterations and the ranges of its bounds overlap the edge",
                    it.span)]


def interval_of_dim(dim, env, ranges):
    v = dim.eval({**env, **{k: r[0] for k, r in ranges.items() if r[0] == r[1]}})
    return float(v), float(v)


def _divides(rec, it: ast.Slice, env: Mapping, divided: set[int], prog) -> Diagnostic | None:
    """E0602 when a loop steps by the slice's extent but its step does not divide its range."""
    if it.lo is None or it.hi is None:
        return None
    extent = dim_of(it.hi) - dim_of(it.lo)
    for i, loop in enumerate(rec.loops):
        if not isinstance(loop, ast.For) or loop.step is None or loop.var not in free_names(it.lo):
            continue
        if (extent - dim_of(loop.step)).as_int() != 0:
            continue
        names = free_names(loop.lo) | free_names(loop.hi) | free_names(loop.step)
        try:
            pts, n = points(needed_loops(rec.loops[:i], names), env)
            penv = {**env, **pts}
            lo, hi, step = (_along(veval(e, penv), max(n, 1))
                            for e in (loop.lo, loop.hi, loop.step))
        except (Unknown, TooBig, TypeError, ValueError):
            continue
        if n == 0 or np.count_nonzero(step <= 0):
            continue
        bad = (hi - lo) % step != 0
        if not np.count_nonzero(bad):
            continue
        divided.add(id(it))
        if id(loop) in divided:
            return None
        divided.add(id(loop))
        k = int(np.argmax(bad))
        # Python numbers: a huge -D value makes object arrays whose items mix with int64 ones and overflow.
        lo, hi, step = (a[k:k + 1].tolist() for a in (lo, hi, step))
        k = 0
        hi_text, lo_text = scope.text_of(prog, loop.hi), scope.text_of(prog, loop.lo)
        rng = hi_text if isinstance(loop.lo, ast.Num) and loop.lo.value == 0 else f"{hi_text} - {lo_text}"
        last = lo[k] + ((hi[k] - lo[k] - 1) // step[k]) * step[k]
        return error("E0602", f"{_named(scope.text_of(prog, loop.step), step[k])} does not divide "
                              f"{_named(rng, hi[k] - lo[k])}", loop.step.span,
                     f"the last tile, {loop.var} = {_num(last)}, reads {scope.text_of(prog, it)} up to "
                     f"{_num(last + step[k])} "
                     f"but the loop ends at {_num(hi[k])}: a partial tile")
    return None
