"""Placing one frame into another: Frame.place and what it needs (docs/explore.md, "How the model works").

A finished frame b (a loop body, an iteration, a whole loop) goes into the frame f that encloses it at the
earliest start b's needs allow (`_earliest`), or at a start the steady state gives; inside a `@parallel`
body, transfer by transfer into the ports' idle stretches (`_fill`). Then everything b leaves is carried
into f: its units' and ports' free times and runs, its prefetches, its buffers' times, its names and their
histories, its counters and occupancy. Frame (attnlang/model/frame.py) takes these methods from Placement.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING

import numpy as np

from ..ports import Timeline, place
from .runs import arrays, extend, port_span, port_wait
from .times import ALL, INF, AVal, Buf, Early, Fold, Lane, Xfers, add, mn, mx

if TYPE_CHECKING:
    from .frame import Frame

_NONE = object()


class Placement:
    """Frame's placing of other frames into it (mixed into Frame)."""

    # ---------------------------------------------------------- placing a frame
    def place(self, b: "Frame", lanes=None, at=None):
        """Put frame b into this one at the earliest start its needs allow, or exactly at `at`.

        lanes (a Lane) makes b's LANE unit instances and history slots
        concrete (one @parallel iteration); `at` places a later iteration of a loop whose start the
        steady state gives. Returns the start.
        """
        res = [resolve(self, p.pos, lanes) for p in b.phantoms]
        # The values held on entry by names b was walked with as one value (`qn = q` before a loop):
        # placed again, those names may hold values of their own (liveness after b follows the names,
        # below).
        given = {id(q): q for p in b.phantoms if sum(pos[0] == "name" for pos in p.pos) > 1
                 for pos in p.pos if pos[0] == "name"
                 for q in (resolve(self, [pos], lanes),) if q is not None and q.live}
        moved = {r: lanes.res(r) if lanes is not None else r for r in b.first}
        fill = self._fill_plan(b, lanes, at)
        s, early = self._start(b, res, moved, lanes, at, fill)
        move = early or s
        if fill is not None:
            # One @parallel iteration, transfer by transfer into the ports' idle stretches (_fill); the
            # rest of it slips by as much as its transfers make it wait.
            slip, last = self._fill(b, fill, s, res)
            s = s + slip
            self.end = mx(self.end, last)
        elif any(r[0] == "port" for r in b.free):
            self.tl = None
        self._list_transfers(b, s, res, lanes, early)
        self._carry_resources(b, s, moved, lanes, early)
        self._carry_prefetches(b, s, moved, lanes)
        if fill is not None:
            self.tl.summary(self)
        fix = self._carry_buffers(b, s, res, early)
        for x, v in b.store_end.items():
            self.store_end[x] = mx(self.store_end.get(x), s + v)
        self.end = mx(self.end, s + b.end)
        self._carry_names(b, res, move, lanes, given, fix)
        self.add_counters(b)
        for m, pk in b.peak.items():
            self.peak[m] = mx(self.peak.get(m), add(self.occ.get(m, 0), pk))
        for m, o in b.occ.items():
            self.occ[m] = add(self.occ.get(m, 0), o)
        for m, d in fix.items():
            self.occ[m] = self.occ.get(m, 0) + d
        return s

    def _fill_plan(self, b: "Frame", lanes, at):
        """b's transfers (Xfers) where one @parallel iteration goes into the ports transfer by transfer,
        else None."""
        if lanes is None or at is not None or self.xrows is not None or (
                self.tl is None and any(r[0] == "port" for r in self.free)):
            return None
        fill = b.xfers()
        return fill if fill is not None and fill.ports else None

    def _start(self, b: "Frame", res: list, moved: dict, lanes, at, fill) -> tuple:
        """b's start here, and inside a @parallel body how b's times move with the units they wait for
        (times.Early; None when all move with the start)."""
        if at is not None:
            return at, None
        s, early = self._earliest(b, res, moved, lanes is None, None if fill is None else fill.over,
                                  self.track and b.track and lanes is None)
        if early is None and fill is None:
            s = self._after_tails(b, s, moved, self.body and lanes is None)
        return s, early

    def _list_transfers(self, b: "Frame", s, res: list, lanes, early) -> None:
        """Inside a @parallel body, b's transfers join this frame's list (or the list is given up)."""
        if self.xrows is None:
            return
        bx = b.xfers()
        if lanes is not None or (bx is None and any(r[0] == "port" for r in b.free)):
            self.xrows = None  # a nested @parallel loop, or port work known only as a summary
        elif bx is not None and bx.ports:
            self.xrows.append(placed(bx, s, b.phantoms, res, early=early))

    def _carry_resources(self, b: "Frame", s, moved: dict, lanes, early) -> None:
        """Each unit's and port's free time after b; a port's runs of transfers (first, lead, gap, tail)."""
        free = self.free
        pre = self.body and lanes is None
        for r, last in b.free.items():
            r2 = moved[r]
            if r[0] == "port":
                bfirst, blead = port_span(b, r, pre)
                bflen = b.flen.get(r, 0.0) if pre or r not in b.pneed else 0.0
            if self.track:
                m = early.map(b.fm[r]) if early else ALL
                self.fm[r2] = m if r2 not in free or r[0] != "port" else self.fm.get(r2, ALL) | m
            if r[0] == "port":
                # b's last run is this frame's when b's work on the port comes after the work here
                tail, idle = s + b.tail.get(r, INF), s + b.idle.get(r, -INF)
                if r2 in free:
                    after = tail >= free[r2]
                    idle = mx(idle, free[r2])
                    tail = np.where(after, tail, INF) if arrays(after, tail) else (tail if after else INF)
                self.tail[r2], self.idle[r2] = tail, idle
            if r2 not in free:
                self.first[r2] = s + (bfirst if r[0] == "port" else b.first[r])
                free[r2] = s + last
                if r[0] == "port":
                    self.flen[r2] = bflen
                    self.lead[r2] = s + blead
                    self.gap[r2] = s + b.gap.get(r, INF) if pre or r not in b.pneed else INF
                    if r in b.post:
                        self.post[r2] = s + b.post[r]
            elif r[0] == "port":  # b may have slid into idle time before this frame's last transfer
                # b's first run after this frame's first run and its idle stretch: the second run starts
                # there, unless one started before (where b joins the first run, not followed: INF)
                after = s + bfirst > self.lead[r2]
                g = self.gap.get(r2, INF)
                self.gap[r2] = np.where(after, mn(g, s + bfirst), INF) if arrays(after, g) else (
                    mn(g, s + bfirst) if after else INF)
                self.lead[r2] = extend(self.lead[r2], s + bfirst, s + blead)
                before = s + bfirst < self.first[r2]
                old = self.flen.get(r2, 0.0)
                self.flen[r2] = np.where(before, bflen, old) if arrays(before, bflen, old) else \
                    (bflen if before else old)
                self.first[r2] = mn(self.first[r2], s + bfirst)
                if r in b.post:
                    self.post[r2] = mn(self.post.get(r2), s + b.post[r])
                # The port cannot do all its work faster than back to back.
                free[r2] = mx(mx(free[r2], s + last), add(self.first[r2], add(self.pbusy.get(r2), b.pbusy[r])))
                self.end = mx(self.end, free[r2])
            else:
                free[r2] = s + last

    def _carry_prefetches(self, b: "Frame", s, moved: dict, lanes) -> None:
        """b's prefetched transfers: in a loop body they queue behind this frame's when they are needed
        before it starts; when they are not (or outside a body), they are transfers during it like the
        others."""
        if not b.pcum:
            return
        if self.body and lanes is None:
            for r, need in b.pneed.items():
                r2 = moved[r]
                at = s + need - self.pcum.get(r2, 0.0)
                before = at < 0
                if type(before) is bool:
                    if before:
                        self.pneed[r2] = mn(self.pneed.get(r2), at)
                        self.pcum[r2] = add(self.pcum.get(r2), b.pcum[r])
                    else:
                        self.post[r2] = mn(self.post.get(r2), s + need)
                    continue
                self.pneed[r2] = mn(self.pneed.get(r2), np.where(before, at, INF))
                self.pcum[r2] = add(self.pcum.get(r2, 0.0), np.where(before, b.pcum[r], 0.0))
                self.post[r2] = mn(self.post.get(r2), np.where(before, INF, s + need))
        else:
            for r, need in b.pneed.items():
                r2 = moved[r]
                self.post[r2] = mn(self.post.get(r2), s + need)

    def _carry_buffers(self, b: "Frame", s, res: list, early) -> dict:
        """The times b leaves on the buffers it read or wrote (its phantoms' real buffers here). Returns,
        per memory, how much occupancy differs from what b was built with (released buffers of another
        size)."""
        fix: dict = {}
        for p, q in zip(b.phantoms, res, strict=True):
            if q is None:
                continue
            if q.live and not p.live and q.nbytes is not p.nbytes:
                fix[q.memory] = add(fix.get(q.memory), p.nbytes - q.nbytes)
            if p.last_read is not None:
                if early:
                    q.last_read, q.ml = mx(q.last_read, early.shift(p.ml) + p.last_read), q.ml | early.map(p.ml)
                else:
                    q.last_read, q.ml = mx(q.last_read, s + p.last_read), ALL
            if p.ready is not None:
                if early:
                    q.ready, q.mr = mx(q.ready, early.shift(p.mr) + p.ready), q.mr | early.map(p.mr)
                else:
                    q.ready, q.mr = mx(q.ready, s + p.ready), ALL
            q.refs = p.refs
            if not p.live:
                q.live = False
        return fix

    def _carry_names(self, b: "Frame", res: list, move, lanes, given: dict, fix: dict) -> None:
        """The names b leaves bound, and their histories, with b's buffers moved by `move` (its start, or
        its Early)."""
        mapped = {id(p): q for p, q in zip(b.phantoms, res, strict=True)}

        def conv(x: Buf) -> Buf | None:
            got = mapped.get(id(x), _NONE)
            if got is _NONE:
                got = mapped[id(x)] = Buf.shifted(x, move)
            return got

        names = {}
        for n, v in b.names.items():
            q = conv(v.buf)
            if q is not None:
                names[n] = AVal(v.shape, v.dtype, q)
        self.names = names
        # A value given under several names is freed when no name has it any more, whatever b's walk
        # assumed: a b walked with `qn = q` still aliased keeps the value, and a later placement,
        # where qn has a value of its own, frees that one when b rebinds qn.
        held = {id(v.buf) for v in names.values()} if given else set()
        for key, q in given.items():
            if key not in held and q.live:
                q.live = False
                q.refs = 0
                fix[q.memory] = add(fix.get(q.memory), -q.nbytes)
        hist = {} if lanes is None else dict(self.hist)
        for n, lst in b.hist.items():
            hist[n if lanes is None else lanes.key(n)] = [q for q in (conv(x) for x in lst) if q is not None]
        self.hist = hist

    def _earliest(self, b: "Frame", res: list, moved: dict, serial: bool = True, over=None, early=False):
        """The earliest start of b here; records what this frame needs from outside through b.

        serial: b follows what this frame issued before it (not one of several @parallel iterations).
        In a loop body, b's prefetched transfers then join the body's own (they are done before the
        body starts, see schedule), and only its other transfers queue on the ports here.
        over: b's transfers go into the ports' idle stretches one by one (_fill), except for these
        candidates (Xfers.over): the ports bound the start of those only.
        Returns the start and, where early, where b's times go (Early; None elsewhere).
        """
        fold = Fold(0.0)
        # Early: the start each unit of b allows, and what but units b waits for here (and its mask)
        units, data, dmask = {}, Fold(0.0) if early else None, 0
        fm = self.fm
        free = self.free
        pre = self.body and serial
        ports = fold
        if over is not None:
            ports = Fold(-INF) if np.any(over) else None
        for r, off in b.first.items():
            r2 = moved[r]
            if r[0] == "port" and r in b.pneed:
                # b's prefetched transfers: here they run from when the port is free, in order
                off = mn(b.pneed[r], b.post.get(r)) if not pre else b.post.get(r)
                if off is None:
                    continue
            v = free.get(r2)
            if v is None:
                if not self.body and r[0] != "port":  # nothing here starts before the kernel does
                    fold.take(-off)
                elif not self.body and ports is not None:  # (b's prefetches)
                    ports.take(-off)
                continue
            if r[0] == "port":
                # DMA fills a port's idle stretches in ready order: b's first transfer waits for the
                # first run of back-to-back transfers issued before it, then takes the idle time after.
                if ports is not None:
                    w = port_wait(self, r2, b, r) - off
                    ports.take(w)
                    if early:
                        data.take(w)
                        dmask = dmask | fm.get(r2, ALL)
            else:
                fold.take(v - off)
                if early:
                    units[r] = v - off
        for p, q in zip(b.phantoms, res, strict=True):
            if q is None:
                continue
            if p.need_ready is not None and q.ready is not None:
                fold.take(q.ready - p.need_ready)
                if early:
                    data.take(q.ready - p.need_ready)
                    dmask = dmask | q.mr
            if p.need_lr is not None and q.last_read is not None:
                fold.take(q.last_read - p.need_lr)
                if early:
                    data.take(q.last_read - p.need_lr)
                    dmask = dmask | q.ml
        for x, off in b.need_store.items():
            v = self.store_end.get(x)
            if v is not None:
                fold.take(v - off)
                if early:
                    data.take(v - off)
                    dmask = ALL
        s = fold.value
        if ports is not None and ports is not fold and ports.value is not None:
            s = np.where(over, np.maximum(s, ports.value), s)
        for p, q in zip(b.phantoms, res, strict=True):
            if q is not None and q.pending is not None and p.need_ready is not None:
                self.touch(q, s + p.need_ready)
            if q is not None and q.xrow is not None and p.need_ready is not None:
                self.read_at(q, s + p.need_ready)
            if q is not None and q.pos is not None:
                if p.need_ready is not None:
                    q.need_ready = mn(q.need_ready, s + p.need_ready)
                if p.need_lr is not None:
                    q.need_lr = mn(q.need_lr, s + p.need_lr)
        for x, off in b.need_store.items():
            if x not in self.store_end:
                self.need_store[x] = mn(self.need_store.get(x), s + off)
        if early:
            return s, Early(s, data.value, units, dmask, {r: fm.get(r, ALL) for r in units})
        return s, None

    def _fill(self, b: "Frame", x: Xfers, s, res: list):
        """Put b's transfers (x, b placed at s as a @parallel iteration) into the ports' idle stretches.

        The interpreter issues an iteration's transfers after those of the iterations before it, each
        in the earliest idle stretch long enough on every port of its path, from when what it waits for
        is ready. Here each goes there from its ready time in b plus the slip so far; the slip starts at
        0 and, whenever a transfer ends after its first read plus the slip, grows by the difference: the
        iteration's work after that read waits for it. Returns the slip and the end of the last
        transfer (0 and -INF for the candidates left to the ports' summaries: Xfers.over, or no idle
        stretches known here).
        """
        x = placed(x, s, b.phantoms, res, keep=False)
        shape = np.broadcast_shapes(x.shape, np.shape(s), np.shape(b.end))
        if self.tl is None:
            self.tl = FillTimeline(shape)
        else:
            self.tl.grow(shape)
        shape = self.tl.shape
        n, k = self.tl.n, len(x.ports)

        def flat(a):
            return np.broadcast_to(a, shape + (k,)).reshape(n, k)

        start, read = flat(x.start), flat(x.read)
        ready = flat(x.ready)
        # Nothing is issued before b's first transfer: its prefetches, which run back to back from the
        # latest start that has each in time for its first read (pneed), or its first other one (post).
        first = None
        for r in b.first:
            if r[0] == "port":
                first = mn(first, mn(b.pneed.get(r), b.post.get(r)))
        if first is None:
            first = np.min(start, axis=1, initial=INF)
        else:
            first = np.broadcast_to(s + first, shape).reshape(n)
        if not self.body:  # nothing starts before the kernel does
            first = np.maximum(first, 0.0)
        ready = np.maximum(ready, first[:, None])
        cycles = flat(x.cycles)
        over = np.broadcast_to(x.over, shape).reshape(n) | ~self.tl.valid
        slip, last = np.zeros(n), np.full(n, -INF)
        kinds: dict = {}
        which = [kinds.setdefault(p, len(kinds)) for p in x.ports]
        for c in range(n):
            if over[c]:
                continue
            busy = self.tl.busy[c]
            per = [[busy.setdefault(r, Timeline()) for r in ports] for ports in kinds]
            lists = [per[w] for w in which]
            d, end = fill_one(start[c].tolist(), cycles[c].tolist(), ready[c].tolist(), read[c].tolist(), lists)
            slip[c], last[c] = d, end
        self.tl.valid &= ~over
        if shape == ():
            return float(slip[0]), float(last[0])
        return slip.reshape(shape), last.reshape(shape)


def placed(x: Xfers, s, phantoms: list, res: list, keep: bool = True, early: Early | None = None) -> Xfers:
    """x, a placed frame's transfers, in the frame it is placed in at s (res: its phantoms' buffers there).

    What they wait for from outside becomes the time the buffer there gives, and, where that buffer is
    itself outside (a phantom there; keep), a ref to it. early: a transfer's ready time and its first
    read move with the units they depend on (Early), not with s.
    """
    read = rmask = ymask = None
    if early:
        ready, read = x.ready + shifts(early, x.ymask), x.read + shifts(early, x.rmask)
        rmask, ymask = [early.map(m) for m in x.rmask], [early.map(m) for m in x.ymask]
    else:
        ready = x.ready + np.asarray(s, dtype=np.float64)[..., None]
    if not x.refs:
        return x.shifted(s, ready, {}, read, rmask, ymask)
    index = {id(p): i for i, p in enumerate(phantoms)}
    refs, ups = {}, []
    for c, lst in x.refs.items():
        for p, kind, mask in lst:
            i = index.get(id(p))
            q = res[i] if i is not None else None
            if q is None:
                continue
            t = q.ready if kind == "r" else q.last_read
            if t is not None:
                ups.append((c, t if mask is None else np.where(mask, t, -INF)))
                if ymask is not None:
                    ymask[c] = ymask[c] | (q.mr if kind == "r" else q.ml)
            if keep and q.pos is not None:
                refs.setdefault(c, []).append((q, kind, mask))
    if ups:
        shape = np.broadcast_shapes(ready.shape[:-1], *[np.shape(t) for _, t in ups])
        ready = np.array(np.broadcast_to(ready, shape + ready.shape[-1:]))
        for c, t in ups:
            np.maximum(ready[..., c], t, out=ready[..., c])
    return x.shifted(s, ready, refs, read, rmask, ymask)


def shifts(early: Early, masks: list):
    """Each column's shift (Early.shift of its mask), as an array (candidates..., columns)."""
    cols: dict = {}
    for c, m in enumerate(masks):
        cols.setdefault(m if type(m) is int else id(m), (m, []))[1].append(c)
    vals = [(np.asarray(early.shift(m), dtype=np.float64), idx) for m, idx in cols.values()]
    if len(vals) == 1:
        return vals[0][0][..., None]
    shape = np.broadcast_shapes(*[v.shape for v, _ in vals])
    out = np.empty(shape + (len(masks),))
    for v, idx in vals:
        out[..., idx] = v[..., None]
    return out


def fill_one(start: list, cycles: list, ready: list, read: list, lists: list) -> tuple:
    """Frame._fill for one candidate: its slip and the end of its last transfer.

    Transfers go in program order. A time t of the iteration's own schedule (a transfer's ready time)
    moves by the slip of the reads before it: those are what it waits for.
    """
    slip, last = 0.0, -INF
    reads, slips = [], []  # the reads so far (running max) and the slip after each
    top = -INF
    for k in range(len(start)):
        if start[k] == INF:
            continue
        c = cycles[k]
        j = bisect_right(reads, ready[k])
        t = ready[k] + (slips[j - 1] if j else 0.0)
        t = place(lists[k], t, c)
        e = t + c
        if e > last:
            last = e
        r = read[k]
        if r != INF:
            if e - r > slip:
                slip = e - r
            if r > top:
                top = r
            reads.append(top)
            slips.append(slip)
    return slip, last


class FillTimeline:
    """The busy intervals of a frame's ports, per candidate, from @parallel iterations placed by _fill."""

    def __init__(self, shape: tuple):
        self.shape = shape
        self.n = int(np.prod(shape, dtype=np.int64))
        self.busy = [{} for _ in range(self.n)]  # per candidate: port -> its Timeline
        self.valid = np.ones(self.n, dtype=bool)  # False: some port work known only as a summary

    def grow(self, shape: tuple) -> None:
        shape = np.broadcast_shapes(self.shape, shape)
        if shape == self.shape:
            return
        idx = np.broadcast_to(np.arange(self.n).reshape(self.shape), shape).reshape(-1)
        self.busy = [{r: t.copy() for r, t in self.busy[i].items()} for i in idx.tolist()]
        self.valid = self.valid[idx]
        self.shape, self.n = shape, len(idx)

    def summary(self, f: Frame) -> None:
        """Set f's first use, first back-to-back run, last use of each port from the intervals."""
        ports = {r for d in self.busy for r in d}
        use = self.valid
        for r in ports:
            first, lead, free = np.full(self.n, INF), np.full(self.n, INF), np.full(self.n, -INF)
            for c, d in enumerate(self.busy):
                got = d.get(r)
                if got and got.starts:
                    first[c], lead[c], free[c] = got.starts[0], got.ends[0], got.ends[-1]
            if self.shape == ():
                if not use[0]:
                    continue
                vals = (float(first[0]), float(lead[0]), float(free[0]))
            else:
                vals = tuple(np.where(use, v, np.broadcast_to(old if old is not None else v, self.shape).reshape(-1))
                             .reshape(self.shape) for v, old in ((first, f.first.get(r)), (lead, f.lead.get(r)),
                                                                 (free, f.free.get(r))))
            f.first[r], f.lead[r], f.free[r] = vals
            f.post[r] = vals[0]


def resolve(f: Frame, positions: list, lanes: Lane | None = None) -> Buf | None:
    """The buffer of f at one of a phantom's positions (a name, or a place in a name's history)."""
    for pos in positions:
        if pos[0] == "name":
            v = f.names.get(pos[1])
            if v is not None:
                return v.buf
        else:
            lst = f.hist.get(pos[1] if lanes is None else lanes.key(pos[1]))
            if lst is not None and len(lst) >= pos[2]:
                return lst[-pos[2]]
    return None
