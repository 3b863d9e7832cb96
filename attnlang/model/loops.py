"""Loops in the model: one body schedule, a steady state, a first and a last iteration.

A *regular* loop (every iteration costs the same; statics.LoopShape) is
costed from one iteration's frame B, whatever its trip count T (an array
over candidates):

1. the steady-state interval II: B is placed a few times in a row on a trial
   copy of the schedule; each placement starts as early as resources
   (in-order, so a unit's work of iteration t+1 follows its work of t),
   values carried between iterations, buffer reuse (the `@pipeline(k)` copies:
   a write waits for the reads of the value k writes back) and stores allow.
   The difference of the last two starts is II: the max over resources of
   their busy span per iteration and over the dependency cycles of the body.
2. the prologue: iteration 0 is placed for real, after what precedes the loop.
3. the epilogue: the last k iterations are placed at s0 + t * II, so the
   state after the loop (resources, the values it leaves, the history of
   buffer copies) is that of iteration T - 1.
4. counters (energy, bytes, busy cycles) are T times B's, exactly.

Loops with few iterations known exactly (outside a @parallel body), and loops
whose iterations differ (a bound or an `if` that depends on the index: causal
masks), are placed iteration by iteration; runs of identical iterations
collapse to the closed form above.
"""

from __future__ import annotations

import numpy as np

from ..syntax import ast
from .frame import Frame
from .statics import aeval, loop_shape, model_error, scalar, whole
from .steady import repeat, steady_interval
from .times import LANE, Lane

#: A loop with at most this many iterations (the same for every candidate) is placed iteration by iteration.
ENUMERATE = 4
_MISSING = object()


#: what makes a candidate infeasible at a loop (Walker.invalid), here and in stage 1
DIVIDES = "the tile of loop '{}' does not divide its range"
NO_TRIP = "loop '{}' would run no iteration"


def loop_bounds(w, s: ast.For) -> tuple:
    """The loop's start, step and span (its end minus its start), each checked: whole numbers, and
    a positive step (numbers or arrays over candidates)."""
    env = w.env
    lo, hi = aeval(s.lo, env), aeval(s.hi, env)
    step = aeval(s.step, env) if s.step is not None else 1
    for v, e in ((lo, s.lo), (hi, s.hi), (step, s.step)):
        if not whole(v):
            raise model_error("a loop's bounds and step must be whole numbers (attn check says more)", e.span)
    if _any(np.asarray(step) <= 0):
        raise model_error("the loop step must be positive", (s.step or s.hi).span)
    return lo, step, hi - lo


def pipeline_copies(w, shape):
    """The copies of a `@pipeline(k)` loop (1 without one): a number, or an array over candidates."""
    if shape.pipeline is None:
        return 1
    a = shape.pipeline
    pipeline = aeval(a.args[0], w.env) if a.args else 2
    if not whole(pipeline) or _any(np.asarray(pipeline) < 1):
        raise model_error("@pipeline needs at least one copy", a.span)
    one = scalar(pipeline)
    return one if one is not None else pipeline


def run_loop(w, s: ast.For) -> None:
    env = w.env
    lo, step, span = loop_bounds(w, s)
    trips = -(-span // step)
    if isinstance(trips, np.ndarray):
        trips = np.maximum(trips, 0)
        if _any(span % step != 0):
            w.invalid.append((DIVIDES.format(s.var), s, span % step != 0))
        if _any(trips == 0):
            w.invalid.append((NO_TRIP.format(s.var), s, trips == 0))
            trips = np.maximum(trips, 1)
    else:
        trips = max(int(trips), 0)
        if span % step != 0:
            w.invalid.append((DIVIDES.format(s.var), s, True))
    shape = loop_shape(s)
    pipeline = pipeline_copies(w, shape)
    lanes = None
    if shape.parallel:
        n = scalar(trips)
        if n is None:
            raise model_error("a @parallel loop needs the same trip count for every candidate", s.span)
        lanes = _lanes(w, s, int(n))
    count = scalar(trips)
    count = None if count is None else int(count)
    if (lanes is None and shape.pipeline is None and count is not None and count <= ENUMERATE
            and len(s.body) == 1 and isinstance(s.body[0], ast.For) and loop_shape(s.body[0]).parallel):
        # Its body is one @parallel loop: its iterations go straight here, one after another, so that
        # those of the next iteration fill the ports' idle stretches those of this one leave (Frame.place).
        saved = env.get(s.var, _MISSING)
        try:
            for t in range(count):
                env[s.var] = lo + t * step
                run_loop(w, s.body[0])
        finally:
            if saved is _MISSING:
                env.pop(s.var, None)
            else:
                env[s.var] = saved
        return
    if shape.regular:
        if count is not None and count == 0:
            return
        body = _body(w, s, lo, pipeline, lanes)
        # Inside a @parallel body the closed form is taken whatever the trip count: its times move with
        # their units from the second iteration on as from one placement to the next (steady.Lags), and a
        # candidate costs the same alone as in a grid whose trip counts differ.
        if count is not None and (shape.parallel or count <= ENUMERATE and not body.track):
            for t in range(count):
                w.f.place(body, lanes=lanes(t) if lanes else None)
            return
        closed(w, body, trips, pipeline, lanes)
        return
    if count is None:
        raise model_error(f"the iterations of loop '{s.var}' differ, and so does its trip count between "
                          "candidates; the model needs it to be one number here", s.span)
    _irregular(w, s, lo, step, int(count), pipeline, shape, lanes)


def _any(x) -> bool:
    return bool(np.any(x))


def _lanes(w, s: ast.For, trips: int):
    """Lane(t) for each iteration of a @parallel loop (Engine.exec_for's slots and copies)."""
    counts = {u.name: u.count for u in w.hw.units.values()}
    a = loop_shape(s).parallel_arg
    unit = w.hw.units.get(a) if a else None
    width = max(1, min(unit.count if unit else trips, trips))
    marker = ("lane", id(s))

    def at(t: int) -> Lane:
        return Lane(t, marker, width, counts)

    at.width, at.marker = width, marker
    return at


def _body(w, s: ast.For, value, pipeline, lanes) -> Frame:
    """The frame of one iteration with the index at value (Engine.exec_for's body)."""
    saved = (w.f, w.pipeline, w.lane, w.outer, w.slot, w.copies, w.reads, w.stored, w.env.get(s.var, _MISSING))
    if lanes:
        w.lane, w.slot, w.copies = LANE, w.slot + (lanes.marker,), w.copies * lanes.width
    f = Frame.mirror(w.f, {w.key(n): w.depth for n in loop_shape(s).assigned})
    if w.lane is not None:  # inside a @parallel body: list the transfers (Frame.place fills ports with them)
        f.xrows = []
        f.track = True  # and where its times are, unit by unit (Early)
    shape = loop_shape(s)
    w.f, w.pipeline, w.outer, w.reads, w.stored = f, pipeline, set(f.names), shape.reads, shape.stored
    w.env[s.var] = value
    try:
        w.run(s.body)
        for name in set(f.names) - w.outer:
            w._drop(f.names.pop(name).buf)
        f.settle()
    finally:
        w.f, w.pipeline, w.lane, w.outer, w.slot, w.copies, w.reads, w.stored, old = saved
        if old is _MISSING:
            w.env.pop(s.var, None)
        else:
            w.env[s.var] = old
    return f


def closed(w, body: Frame, trips, pipeline, lanes) -> None:
    """Place `trips` iterations of body (trips an array, or a large number) into w.f."""
    ii = steady_interval(body, w.depth)
    w.f.place(repeat(body, trips, ii, w.depth, pipeline), lanes=lanes(0) if lanes else None)


def _signature(w, s: ast.For, shape, value):
    if shape.signature is None:
        return None
    saved = w.env.get(s.var, _MISSING)
    w.env[s.var] = value
    try:
        out = []
        for e in shape.signature:
            v = aeval(e, w.env)
            one = scalar(v)
            out.append(one if one is not None else np.asarray(v).tobytes())
        return tuple(out)
    finally:
        if saved is _MISSING:
            w.env.pop(s.var, None)
        else:
            w.env[s.var] = saved


def _runs(w, s: ast.For, shape, lo, step, trips: int):
    """Where each run of iterations with the same signature starts, the signature evaluated for every
    iteration at once (an index array for the loop variable); None where that cannot be done (the
    signature varies over candidates, or an expression takes no array)."""
    if trips < 2 or shape.signature is None or any(np.ndim(v) for v in w.env.values()):
        return None
    saved = w.env.get(s.var, _MISSING)
    w.env[s.var] = lo + np.arange(trips, dtype=np.int64) * step
    try:
        cols = [np.broadcast_to(np.asarray(aeval(e, w.env)), (trips,)) for e in shape.signature]
    except Exception:  # an expression the array evaluation does not take: one iteration at a time
        return None
    finally:
        if saved is _MISSING:
            w.env.pop(s.var, None)
        else:
            w.env[s.var] = saved
    change = np.zeros(trips, dtype=bool)
    change[0] = True
    for c in cols:
        change[1:] |= c[1:] != c[:-1]
    return np.flatnonzero(change).tolist() + [trips]


def _irregular(w, s: ast.For, lo, step, trips: int, pipeline, shape, lanes) -> None:
    """Iterations that differ: place runs of identical ones, each run in closed form."""
    starts = _runs(w, s, shape, lo, step, trips)
    run = 0
    t = 0
    while t < trips:
        value = lo + t * step
        if starts is not None:
            n = starts[run + 1] - t
            run += 1
        else:
            sig = _signature(w, s, shape, value)
            n = 1
            if sig is not None:
                while t + n < trips and _signature(w, s, shape, lo + (t + n) * step) == sig:
                    n += 1
        body = _body(w, s, value, pipeline, lanes)
        if n <= ENUMERATE or lanes:
            for q in range(n):
                w.f.place(body, lanes=lanes(t + q) if lanes else None)
        else:
            closed(w, body, n, pipeline, lanes)
        t += n
