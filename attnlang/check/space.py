"""Iteration spaces: every value the loop indices take, as arrays, or intervals when there are too many.

`points` enumerates the iterations of the loops an expression depends on
(a loop whose bounds depend on an outer index drags the outer loop in), as
one NumPy array per index. Bounds and races evaluate their expressions over
these arrays at once. When the space is larger than LIMIT, `intervals` gives
each index a range instead, and `interval` evaluates an expression over
ranges, conservatively.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..static import free_names
from ..syntax import ast
from .dims import Unknown, veval
from .scope import loop_parts

#: The largest iteration space enumerated point by point.
LIMIT = 100_000


class TooBig(Exception):
    """The iteration space has more than LIMIT points."""


def needed_loops(loops: tuple, names: set[str]) -> list:
    """The loops (outer first) whose indices the names depend on, through loop bounds too."""
    need = set(names)
    keep = []
    for loop in reversed(loops):
        var, lo, hi, step = loop_parts(loop)
        if var is not None and var in need:
            keep.append(loop)
            need |= free_names(lo) | free_names(hi) | (free_names(step) if step is not None else set())
    keep.reverse()
    return keep


def _full(x, n: int) -> np.ndarray:
    a = np.asarray(x)
    return np.full(n, a) if a.ndim == 0 else a  # np.full: a fraction of np.broadcast_to's cost


def points(loops: list, env: Mapping) -> tuple[dict[str, np.ndarray], int]:
    """Every iteration of the loops (outer first): index -> array of values, and the number of points.

    Raises TooBig past LIMIT points and Unknown when a bound has no value or a step is not positive.
    """
    pts: dict[str, np.ndarray] = {}
    n = 1
    for loop in loops:
        var, lo, step, trips = _bounds(loop, {**env, **pts}, n)
        total = int(trips.sum())
        if total > LIMIT:
            raise TooBig()
        idx = np.repeat(np.arange(n), trips)
        offsets = np.arange(total) - np.repeat(np.cumsum(trips) - trips, trips)
        pts = {k: v[idx] for k, v in pts.items()}
        pts[var] = (lo[idx] + offsets * step[idx]).astype(np.int64)
        n = total
    return pts, n


def _bounds(loop, env: Mapping, n: int):
    """A loop's index name, lower bounds, steps and trip counts at n points; Unknown if undecidable."""
    var, lo_e, hi_e, step_e = loop_parts(loop)
    lo, hi = _full(veval(lo_e, env), n), _full(veval(hi_e, env), n)
    step = _full(veval(step_e, env), n) if step_e is not None else np.ones(n, dtype=np.int64)
    if lo.dtype.kind not in "iuf" or hi.dtype.kind not in "iuf" or step.dtype.kind not in "iuf":
        raise Unknown(var)
    if np.any(step <= 0) or not np.all(np.isfinite(lo)) or not np.all(np.isfinite(hi)):
        raise Unknown(var)
    if step.dtype.kind == "f" and np.any(step != np.floor(step)):
        raise Unknown(var)  # a step such as 1e-308 (the bounds rule reports it): (hi - lo) / step overflows
    return var, lo, step, np.maximum(0, np.ceil((hi - lo) / step)).astype(np.int64)


def corners(loops: list, env: Mapping) -> tuple[dict[str, np.ndarray], int]:
    """The first and last iteration of each loop (outer first), combined: real iterations, at most 2^k."""
    pts: dict[str, np.ndarray] = {}
    n = 1
    for loop in loops:
        var, lo, step, trips = _bounds(loop, {**env, **pts}, n)
        keep = trips > 0
        first, last = lo[keep], (lo + (trips - 1) * step)[keep]
        pts = {k: np.concatenate([v[keep], v[keep]]) for k, v in pts.items()}
        pts[var] = np.concatenate([first, last]).astype(np.int64)
        n = len(pts[var])
    return pts, n


def monotone(loops: list, exprs: list, env: Mapping) -> bool:
    """Whether the first and last iterations (corners) bound every value the expressions take: each
    expression and each loop's upper bound is a polynomial, linear in the indices with non-negative
    coefficients at env, and each loop's lower bound and step depend on no index."""
    from .dims import dim_of

    indices = {loop_parts(lp)[0] for lp in loops}
    checks = list(exprs)
    for lp in loops:
        _, lo, hi, step = loop_parts(lp)
        if (free_names(lo) | (free_names(step) if step is not None else set())) & indices:
            return False
        checks.append(hi)
    for e in checks:
        d = dim_of(e)
        if d.opaque:
            return False
        for mono, coeff in d.terms:
            ix = [a for a in mono if a in indices]
            if len(ix) > 1:
                return False
            if ix:
                try:
                    c = coeff
                    for a in mono:
                        if a not in indices:
                            c = c * veval(ast.Name(a, None), env)
                except Unknown:
                    return False
                if np.ndim(c) or isinstance(c, str) or c < 0:
                    return False
    return True


# ---------------------------------------------------------------- intervals

Interval = tuple[float, float]


def intervals(loops: list, env: Mapping) -> dict[str, Interval]:
    """A range for each index of the loops (outer first), conservatively."""
    out: dict[str, Interval] = {}
    for loop in loops:
        var, lo_e, hi_e, step_e = loop_parts(loop)
        lo, hi = interval(lo_e, env, out), interval(hi_e, env, out)
        step = interval(step_e, env, out) if step_e is not None else (1, 1)
        if lo[0] == lo[1] and hi[0] == hi[1] and step[0] == step[1] and step[0] > 0:
            trips = max(0, int(np.ceil((hi[0] - lo[0]) / step[0])))
            out[var] = (lo[0], lo[0] + (trips - 1) * step[0]) if trips else (lo[0], lo[0])
        else:
            out[var] = (lo[0], hi[1] - 1)
    return out


def interval(e, env: Mapping, ranges: Mapping[str, Interval]) -> Interval:
    """The range of a static expression when the indices range over `ranges`; Unknown if it cannot say."""
    if isinstance(e, ast.Name) and e.id in ranges:
        return ranges[e.id]
    if isinstance(e, ast.Unary) and e.op == "-":
        lo, hi = interval(e.operand, env, ranges)
        return -hi, -lo
    if isinstance(e, ast.Binary) and e.op in ("+", "-", "*", "//", "/"):
        a, b = interval(e.left, env, ranges), interval(e.right, env, ranges)
        if e.op == "+":
            return a[0] + b[0], a[1] + b[1]
        if e.op == "-":
            return a[0] - b[1], a[1] - b[0]
        if e.op == "*":
            c = [x * y for x in a for y in b]
            return min(c), max(c)
        if b[0] != b[1] or b[0] <= 0:
            raise Unknown("division")
        f = (lambda x: x // b[0]) if e.op == "//" else (lambda x: x / b[0])
        return f(a[0]), f(a[1])
    if isinstance(e, ast.Call) and e.func in ("min", "max") and e.args:
        rs = [interval(x, env, ranges) for x in e.args]
        pick = min if e.func == "min" else max
        return pick(r[0] for r in rs), pick(r[1] for r in rs)
    if free_names(e) & set(ranges):
        raise Unknown("index")
    v = veval(e, env)
    if isinstance(v, (str, np.ndarray)):
        raise Unknown("value")
    return float(v), float(v)
