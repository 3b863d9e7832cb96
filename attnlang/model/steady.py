"""A loop's steady state and its frame: T iterations of one body frame, in closed form.

Inside a @parallel body the iterations' times also move with their units (Lags, times.Early).
"""

from __future__ import annotations

import numpy as np

from .frame import Frame, final_at
from .times import ALL, INF, XCAP, AVal, Buf, Fold, Later, Move, Xfers, add, latest_of, mn, mx, per_mask


def steady_interval(b: Frame, depth: int):
    """Cycles between the starts of consecutive iterations of b, in the steady state.

    Iteration t+1 starts when every need of b is met by what iteration t (or,
    through the copies a buffer keeps, iteration t+1-k) left: the max over
    units of their span in b (units issue in order: the next iteration's work
    on a unit follows this one's), over ports of their busy time (transfers
    fill a port's idle stretches in ready order), over stores read back, and
    over every value b reads or overwrites of the time the iteration that made
    it leaves it, divided by how many iterations back that is.
    """
    fold = Fold(0.0)
    for r, last in b.free.items():
        # A unit issues in order: the next iteration's work on it follows this one's. A port is
        # filled in ready order: the next iteration's transfers fill its idle stretches.
        fold.take(b.pbusy.get(r, 0.0) if r[0] == "port" else last - b.first[r])
    for x, end in b.store_end.items():
        need = b.need_store.get(x)
        if need is not None:
            fold.take(end - need)
    data = Fold(-INF)  # what the values alone allow: when a prefetch's copy is free, at the earliest
    first = {r: f for r, f in b.first.items() if r[0] == "port" and r in b.pneed}
    own = {r: Fold(-INF) for r in first}  # the same, for the value each port's first transfer writes
    for need, x, ready, back in _made_before(b, depth):
        t = x.ready if ready else x.last_read
        if t is not None:
            v = (t - need) if back == 1 else (t - need) / back
            data.take(v)
            if not ready:
                for r, f in first.items():
                    same = need == f
                    own[r].take(np.where(same, v, -INF) if isinstance(same, np.ndarray) else (v if same else -INF))
    fold.take(data.value)
    return _after_tail(b, fold.value, data.value, {r: o.value for r, o in own.items()})


def _after_tail(b: Frame, ii, data, own=None):
    """ii, or later where the next iteration's first transfer on a port cannot fit before this
    iteration's last run there and would start inside it: then it waits until the port is free.
    A prefetched transfer may go as early as its copy is free (data, what the values alone allow),
    into the idle stretch before that run when it fits there, or into the one after this iteration's
    first run (own: when the copy that transfer overwrites is free)."""
    for r, tail in b.tail.items():
        if r not in b.first or r not in b.lead:
            continue
        f, free = b.first[r], b.free[r]
        at = ii + f
        length, idle = b.flen.get(r, 0.0), b.idle.get(r, -INF)
        clash = (at < free) & ((at + length > tail) | (at < idle)) & (tail >= 0)
        if r in b.pneed:  # (INF for the candidates that prefetch nothing on r)
            clash = clash & ((b.pneed[r] == INF) | (mx(data + f, idle) + length > tail))
            # or into the idle stretch after this iteration's first run, when it is long enough and
            # the copy the transfer overwrites is free by then (own: what that copy allows)
            gap = b.gap.get(r)
            if gap is not None and own is not None and r in own:
                clash = clash & ((b.pneed[r] == INF) | (mx(own[r] + f, b.lead[r]) + length > gap))
        ii = np.where(clash, free - f, ii) if isinstance(clash, np.ndarray) else (free - f if clash else ii)
    return ii


def _made_before(b: Frame, depth: int):
    """What b needs from the iterations before it: (need, x, ready, back) for each phantom's need of a
    ready (ready True) or last-read time, x the buffer the iteration `back` before leaves in its place,
    following the copies a buffer keeps (at most depth + 1 back)."""
    for p in b.phantoms:
        for ready, need in ((True, p.need_ready), (False, p.need_lr)):
            if need is None:
                continue
            pos, back = p.pos[0], 1
            while back <= depth + 1:
                x = final_at(b, pos)
                if x is None:
                    break
                yield need, x, ready, back
                if x.pos is None:
                    break
                pos, back = x.pos[0], back + 1


class Lags:
    """How much earlier than its place at t * ii a time of iteration t >= 1 of a loop is (b tracks masks).

    Placed one after another, the iterations would start as Frame.place puts each: rigidly after the
    one before, but a time that waits only for some units moving with those (times.Early). In the
    steady state that moves a time with mask M by lag(M) = min(0, max(D, the max over the units u in M
    of span(u) - ii)), span(u) the unit's span in b (its work in iteration t+1 follows its work in t),
    and D what but units the iteration waits for, as in steady_interval, each made by an iteration
    before and moved by its own lag: a fixed point, worked out from lag 0 in a few rounds.
    """

    def __init__(self, b: Frame, ii, depth: int):
        self._units = {r: b.free[r] - b.first[r] - ii for r in b.first if r[0] == "unit"}
        terms = [(pbusy - ii, None) for r, pbusy in b.pbusy.items() if r in b.free]
        for x, end in b.store_end.items():
            need = b.need_store.get(x)
            if need is not None:
                terms.append((end - need - ii, None))
        for need, x, ready, back in _made_before(b, depth):
            t = x.ready if ready else x.last_read
            if t is not None and x.pos is None:
                terms.append((t - need - back * ii, x.mr if ready else x.ml))
        self._data = None
        self._cache: dict = {}
        for _ in range(4):
            data = Fold(-INF)
            for t, mask in terms:
                data.take(t if mask is None else t + self.lag(mask))
            if self._data is not None and np.array_equal(data.value, self._data):
                break
            self._data, self._cache = data.value, {}

    def lag(self, mask):
        return per_mask(self._lag, mask)

    def _lag(self, mask: int):
        if mask == ALL or self._data is None:
            return 0.0
        got = self._cache.get(mask)
        if got is None:
            got = self._cache[mask] = mn(latest_of(self._units, mask, self._data), 0.0)
        return got


class _Iteration(Move):
    """Iteration t of a loop in closed form (t a number or an array; t < 0: none), at t * ii: from the
    second on, each time earlier by its lag (Lags), and moving with the loop's start (mask ALL)."""

    __slots__ = ("t", "ii", "lags")

    def __init__(self, t, ii, lags: Lags):
        self.t, self.ii, self.lags = t, ii, lags

    def shift(self, mask):
        t, ii = self.t, self.ii
        if not isinstance(t, np.ndarray):
            return t * ii + self.lags.lag(mask) if t >= 1 else t * ii
        return np.where(t >= 1, t * ii + self.lags.lag(mask), np.where(t >= 0, t * ii, -INF))

    def map(self, mask):
        t = self.t
        if isinstance(t, np.ndarray):
            return np.where(t >= 1, ALL, mask)
        return ALL if t >= 1 else mask


def repeat(b: Frame, trips, ii, depth: int, ahead=1) -> Frame:
    """The frame of `trips` iterations of b, iteration t starting at t * ii (trips >= 1).

    What the first iteration needs from outside is what the loop needs; what
    the last one leaves (resources, stores, the values bound, the last `depth`
    copies of each name) is what the loop leaves; counters are trips times b's.
    """
    last = (trips - 1) * ii
    out = Frame()
    lags = None
    final = last  # where the last iteration's times go
    if b.track:  # the iterations' times move with their units (Lags), the loop's with its own (Early)
        lags = Lags(b, ii, depth)
        final = _Iteration(trips - 1, ii, lags)
        out.track = True
        out.fm = {r: final.map(m) for r, m in b.fm.items()}
    out.phantoms = b.phantoms  # the same outside world, the same needs
    out.need_store = b.need_store
    out.first = b.first
    out.flen = b.flen
    out.post = b.post
    out.pcum, out.pneed = b.pcum, b.pneed
    out.free = {r: last + v for r, v in b.free.items()}
    # A port the loop keeps busy back to back stays in its first run to the end.
    # A port the loop keeps busy back to back stays in its first run to the end; otherwise the first
    # run holds the transfers of the `ahead` iterations whose copies (@pipeline) are free at the start.
    out.lead = {}
    for r, v in b.lead.items():
        busy = (b.lead[r] >= b.free[r]) & (ii <= b.pbusy[r])
        early = v if type(ahead) is int and ahead == 1 else v + (np.minimum(ahead, trips) - 1) * b.pbusy[r]
        out.lead[r] = np.where(busy, last + v, early) if isinstance(busy, np.ndarray) else (
            last + v if busy else early)
    out.tail = {r: last + v for r, v in b.tail.items()}  # the last iteration's last run
    # the first iteration's second run, where the first run is that iteration's own
    out.gap = {r: np.where(out.lead[r] == b.lead[r], g, INF) if isinstance(out.lead[r], np.ndarray)
               else (g if out.lead[r] is b.lead[r] or out.lead[r] == b.lead[r] else INF)
               for r, g in b.gap.items() if r in out.lead}
    # the idle stretch before it: from the iteration's run before, or from the iteration before
    before = (lambda r: np.where(trips > 1, last - ii + b.free[r], -INF)) if isinstance(trips, np.ndarray) \
        else (lambda r: last - ii + b.free[r] if trips > 1 else -INF)
    out.idle = {r: mx(last + b.idle.get(r, -INF), before(r)) for r in b.tail}
    out.store_end = {x: last + v for x, v in b.store_end.items()}
    out.end = last + b.end
    # A phantom every iteration reads (it keeps its place) is last read by the last iteration.
    keep = []
    for p in b.phantoms:
        if any(final_at(b, pos) is p for pos in p.pos):
            keep.append(p)
    shifted = []

    def moved(t, mask):
        return None if t is None else t + (last if lags is None else final.shift(mask))

    for p in keep:
        if p.last_read is not None or p.ready is not None:
            q = Buf(p.memory, p.nbytes, moved(p.ready, p.mr), moved(p.last_read, p.ml))
            if p.ready is None:
                q._ready = None
            q.refs, q.live, q.pos, q.need_ready, q.need_lr = p.refs, p.live, p.pos, p.need_ready, p.need_lr
            q.entry = p.entry
            if lags is not None:
                q.mr, q.ml = final.map(p.mr), final.map(p.ml)
            shifted.append((p, q))
    if shifted:
        swap = {id(p): q for p, q in shifted}
        out.phantoms = [swap.get(id(p), p) for p in b.phantoms]
    else:
        swap = {}
    made: dict[tuple, Buf] = {}

    def at(x: Buf, shift, name=None) -> Buf:
        if x.pos is not None:
            return swap.get(id(x), x)
        key = (id(x), id(shift), name)
        got = made.get(key)
        if got is None:
            got = made[key] = Buf.shifted(x, shift)
        return got

    out.names = {n: AVal(v.shape, v.dtype, at(v.buf, final)) for n, v in b.names.items()}
    scalar_trips = not isinstance(trips, np.ndarray)
    shifts: dict[int, Later] = {}  # iteration trips-1-q starts this much later than the first, q >= 1

    def shift_of(q: int) -> Later:
        got = shifts.get(q)
        if got is None:
            back = trips - 1 - q
            # A candidate with fewer iterations has no such copy from this loop: its copy is from
            # before the loop, long free (what the iterations placed one by one would find there).
            got = shifts[q] = Later(lambda: back * ii if scalar_trips else np.where(back >= 0, back * ii, -INF)) \
                if lags is None else _Iteration(back, ii, lags)
        return got

    for n, lst in b.hist.items():
        own = [x for x in lst if x.pos is None]
        older = [x for x in lst if x.pos is not None]
        if not own:
            out.hist[n] = [at(x, final) for x in lst]
            continue
        entries: list[Buf] = []
        q = 0
        while len(entries) < depth:
            if scalar_trips and trips - 1 - q < 0:
                entries = older[-(depth - len(entries)):] + entries if depth > len(entries) else entries
                break
            if q == 0:
                entries = [at(x, final) for x in own] + entries
            else:  # each name keeps its own buffers, as the interpreter's history does
                entries = [at(x, shift_of(q), n) for x in own] + entries
            q += 1
        out.hist[n] = entries[-depth:]
    out.add_counters(b, trips)
    x = b.xfers()
    if x is not None:
        out.xrows = [_repeat_xfers(b, x, trips, ii, depth, swap, lags)]
    # Occupancy: the first iteration releases the values it was given; the later ones release
    # those of the iteration before, which may differ in size (pipeline copies). A value already
    # dead when the loop began (a place in a name's history only) is released by no iteration.
    steady = dict(b.occ)
    paired: set[int] = set()
    for p in b.phantoms:
        if p.entry and not p.live and p.nbytes is not None and p.memory:
            x = final_at(b, p.pos[0])
            if x is not None and x.pos is None:
                paired.add(id(x))
                if x.nbytes is not p.nbytes:
                    steady[p.memory] = add(steady.get(p.memory, 0), p.nbytes - x.nbytes)
    # A value the first iteration was given under several names (`qn = q` before the loop) outlives
    # it when the body rebinds only some of them; the value the body binds in their place has those
    # names alone, so every later iteration, rebinding them again, releases it.
    for p in b.phantoms:
        if not p.live or not p.memory:
            continue
        for pos in p.pos:
            x = final_at(b, pos) if pos[0] == "name" else None
            if x is not None and x is not p and x.pos is None and x.live and id(x) not in paired:
                paired.add(id(x))
                steady[x.memory] = add(steady.get(x.memory, 0), -x.nbytes)
    more = trips - 1
    for m in set(b.occ) | set(steady):
        out.occ[m] = add(b.occ.get(m, 0), steady.get(m, 0) * more)
    for m, pk in b.peak.items():
        second = add(b.occ.get(m, 0), pk)
        if isinstance(trips, np.ndarray):
            second = np.where(trips >= 2, second, -INF)
        elif trips < 2:
            second = None
        out.peak[m] = mx(pk, second)
    return out


def _repeat_xfers(b: Frame, x: Xfers, trips, ii, depth: int, swap: dict, lags: Lags | None) -> Xfers:
    """The transfers of `trips` iterations of b (iteration t at t * ii), from b's list x.

    What a transfer waits for from outside b (the copy it overwrites, a value it reads) is, for iteration
    t, the buffer an earlier iteration left there, as in steady_interval; for the first iterations it is
    still outside the loop (a ref to the loop's phantom). A candidate with more than XCAP transfers is
    marked over and its list cut short. lags: from the second iteration on, ready times and reads are
    earlier by their lags (Lags), and move with the loop's start.
    """
    k = len(x.ports)
    over = x.over | (np.isfinite(x.start).sum(axis=-1) * trips > XCAP)
    tk = int(np.max(np.where(over, 1, trips)))
    t = np.arange(tk, dtype=np.float64)
    step = np.asarray(ii, dtype=np.float64)[..., None]
    shift = (t * step)[..., :, None]
    valid = t[:, None] < np.asarray(trips)[..., None, None]
    start = np.where(valid, x.start[..., None, :] + shift, INF)
    read = np.where(valid, x.read[..., None, :] + shift + _lags(lags, x.rmask, t), INF)
    ready = x.ready[..., None, :] + shift + _lags(lags, x.ymask, t)
    refs: dict = {}
    ups = []
    def walk(c, kind, mask, chain, pos):
        """Iteration t waits for what iteration t - back left (back: the chain's length when it ends at
        a buffer b makes), or, for t < back, for the loop's phantom chain[t]."""
        while len(chain) <= depth + 1:
            y = final_at(b, pos)
            if y is None:
                break
            if y.pos is None:
                back = len(chain)
                tm = y.ready if kind == "r" else y.last_read
                if tm is not None and back < tk:
                    tm = np.asarray(tm, dtype=np.float64)
                    v = np.where(t >= back, (t - back) * step + tm[..., None], -INF)
                    if lags is not None:  # made by iteration t - back: from the second on, earlier by its lag
                        lag = np.asarray(lags.lag(y.mr if kind == "r" else y.ml), dtype=np.float64)[..., None]
                        v = v + np.where(t >= back + 1, lag, 0.0)
                    m = mask
                    if isinstance(tm, np.ndarray) and tm.ndim and pos[0] == "hist" and pos[2] > 1:
                        # A candidate whose inner loop ran fewer iterations has there a copy from
                        # before it: the phantom one place further in (steady.repeat's history).
                        short = tm == -INF
                        if short.any():
                            ph = _phantom_at(b, ("hist", pos[1], pos[2] - 1))
                            if ph is not None:
                                walk(c, kind, short if mask is None else short & mask, chain + [ph], ph.pos[0])
                                m = ~short if mask is None else ~short & mask
                    if m is not None:
                        v = np.where(np.asarray(m)[..., None], v, -INF)
                    ups.append((c, v))
                break
            chain = chain + [y]
            pos = y.pos[0]
        for q in range(min(len(chain), tk)):
            ph = chain[q]
            refs.setdefault(q * k + c, []).append((swap.get(id(ph), ph), kind, mask))

    for c, lst in x.refs.items():
        for p, kind, mask in lst:
            walk(c, kind, mask, [p], p.pos[0])
    shape = np.broadcast_shapes(start.shape, read.shape, ready.shape, x.cycles[..., None, :].shape,
                                *[np.shape(v)[:-1] + (tk, k) for _, v in ups])
    if ups:
        ready = np.array(np.broadcast_to(ready, shape))
        for c, v in ups:
            np.maximum(ready[..., c], v, out=ready[..., c])
    flat = shape[:-2] + (tk * k,)

    def f(a):
        return np.broadcast_to(a, shape).reshape(flat)

    masks = [m + [ALL] * (k * (tk - 1)) for m in (x.rmask, x.ymask)]  # the later iterations move with the loop
    return Xfers(f(start), f(x.cycles[..., None, :]), f(read), f(ready), x.ports * tk, refs, over, *masks)


def _lags(lags: Lags | None, masks: list, t):
    """The lag of each column of each iteration t >= 1 (Lags), as an array (candidates..., t, columns)."""
    if lags is None or len(t) < 2:
        return 0.0
    cols = [np.asarray(lags.lag(m), dtype=np.float64) for m in masks]
    shape = np.broadcast_shapes(*[c.shape for c in cols])
    lag = np.stack([np.broadcast_to(c, shape) for c in cols], axis=-1)[..., None, :]
    return np.where((t >= 1)[:, None], lag, 0.0)


def _phantom_at(b: Frame, pos: tuple):
    for p in b.phantoms:
        if pos in p.pos:
            return p
    return None
