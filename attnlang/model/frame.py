"""Frames: the schedule of one block relative to its own start, for every candidate at once.

The interpreter schedules operation by operation (docs/semantics.md, "Time"):
an operation starts at max(operands ready, resource free, destination free).
The model schedules a loop body the same way once, in a fresh Frame whose
outside world — the enclosing frame's resources, buffers, history of names
and stores — is represented by *phantoms* at time 0. The frame records, for
every phantom, how early its block needs it (`need_*`) and how it leaves it
(`free`, `last_read`, new bindings). `Frame.place` then puts a finished
frame into another at the earliest start its needs allow, shifting every time
in it: a loop body, an iteration, or a whole loop become one rigid step of
the enclosing schedule (docs/explore.md, "How the model works"). In a loop
body, a load that needs nothing the body makes is prefetched: done before the
body starts, as the interpreter issues it during the iteration before
(`Frame._prefetch`). Inside a `@parallel` body frames also list their
transfers (`Xfers`), and each @parallel iteration's transfers go one by one
into the ports' idle stretches the iterations before it leave (`Frame._fill`),
and their times carry the units they depend on, so that a placed frame moves
each with those units rather than all with its start (`times.Early`).
Every time is a float or an array over candidates (attnlang/model/times.py).
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

from ..limits import MAX_PIPELINE
from ..ports import Timeline, place
from .times import ALL, INF, AVal, Buf, Early, Fold, Lane, Xfers, add, mn, mx, unit_bit


class Frame:
    """One block's schedule, counters and occupancy, relative to the block's start."""

    def __init__(self):
        self.names: dict[str, AVal] = {}
        self.hist: dict[str, list[Buf]] = {}
        self.free: dict[tuple, object] = {}  # resource -> end of its last operation here
        self.first: dict[tuple, object] = {}  # resource -> start of its first operation here
        self.post: dict[tuple, object] = {}  # port -> start of its first transfer here not prefetched
        self.pcum: dict[tuple, object] = {}  # port -> cycles of the transfers prefetched here
        self.pneed: dict[tuple, object] = {}  # port -> when it must be free for them to arrive in time
        self.store_end: dict[str, object] = {}
        self.need_store: dict[str, object] = {}
        self.phantoms: list[Buf] = []
        self.end = 0.0
        self.energy: dict[str, object] = {}
        self.rbytes: dict[str, object] = {}
        self.wbytes: dict[str, object] = {}
        self.busy: dict[str, object] = {}
        self.pbusy: dict[tuple, object] = {}  # port -> cycles it is busy
        self.lead: dict[tuple, object] = {}  # port -> end of its first run of back-to-back transfers
        #: port -> start of its second run: the idle stretch after the first run ends there (INF: no
        #: second run, or this frame does not know it)
        self.gap: dict[tuple, object] = {}
        #: port -> start of its last run of back-to-back transfers; INF where this frame does not know it
        self.tail: dict[tuple, object] = {}
        #: port -> where the idle stretch before its last run begins (-INF: at the frame's start)
        self.idle: dict[tuple, object] = {}
        #: port -> cycles of the transfer that starts at first; 0 where this frame does not know it
        self.flen: dict[tuple, object] = {}
        self.macs = 0
        self.vops = 0
        self.occ: dict[str, object] = {}
        self.peak: dict[str, object] = {}
        self.temps: list[Buf] = []
        self.pending: list[Buf] = []
        #: a loop body's frame: a load that needs nothing made in it is prefetched (see schedule)
        self.body = False
        #: inside a @parallel body: this frame's transfers, [start, cycles, ports, first read] rows and
        #: Xfers from frames placed in it (see xfers); None elsewhere, or where a frame placed in it
        #: holds its port work only as a summary
        self.xrows: list | None = None
        #: the ports' busy intervals, per candidate, after @parallel iterations placed transfer by
        #: transfer (place); None when some of the port work here is known only as a summary
        self.tl: "_Timeline | None" = None
        #: inside a @parallel body: each time carries the units it depends on (Buf.mr, Early), so that what
        #: waits only for some units moves with those when the frame is placed; fm: the masks of the
        #: resources' free times, om: the last operation's (schedule)
        self.track = False
        self.fm: dict[tuple, object] = {}
        self.om = ALL

    # ---------------------------------------------------------- building
    @classmethod
    def mirror(cls, parent: "Frame", assigned: dict[str, int] | None = None) -> "Frame":
        """A fresh frame whose outside world is parent's state, as phantoms.

        assigned: names the block writes, with how far back their writes look
        (pipeline copies); history the parent lacks yet gets placeholders, so
        that a later iteration's write waits for an earlier one's reads.
        """
        f = cls()
        f.body = True
        seen: dict[int, Buf] = {}

        def ph(b: Buf, pos: tuple) -> Buf:
            p = seen.get(id(b))
            if p is None:
                p = seen[id(b)] = Buf(b.memory, b.nbytes, None, None)
                p.refs, p.live, p.pos = b.refs, b.live, [pos]
                p.entry = b.live
                p.mr = p.ml = 0  # what comes from outside is data on entering the frame (Early)
                f.phantoms.append(p)
            else:
                p.pos.append(pos)
            return p

        for name, v in parent.names.items():
            f.names[name] = AVal(v.shape, v.dtype, ph(v.buf, ("name", name)))
        for name, lst in parent.hist.items():
            n = len(lst)
            f.hist[name] = [ph(b, ("hist", name, n - i)) for i, b in enumerate(lst)]
        for name, depth in (assigned or {}).items():
            have = f.hist.setdefault(name, [])
            for d in range(len(have) + 1, min(depth, MAX_PIPELINE) + 1):
                p = Buf("", 0, None, None)
                p.pos = [("hist", name, d)]
                f.phantoms.append(p)
                have.insert(0, p)
        return f

    # ---------------------------------------------------------- one operation
    def schedule(self, resources: tuple, cycles, waits: list, result: "Buf | None" = None, umask=ALL,
                 prefetch: bool = True) -> tuple:
        """Start one operation on resources after waits; returns (start, end).

        waits: (value, phantom or None, kind 'r'|'l'|'s', mask or None) — a
        time to wait for; with a phantom, this frame needs the outside time
        too (kind: its ready, its last read, or a store's end), for the
        candidates in mask. umask: the units the waits' values depend on
        (Buf.mr); with the resources', the operation's mask is then om.
        """
        if self.track:
            om = umask
            for r in resources:
                if r in self.free:
                    om = om | self.fm.get(r, ALL)
                elif r[0] == "unit":
                    om = om | unit_bit(r)
            self.om = om
        if resources[0][0] == "port":
            self.tl = None
            if self.xrows is not None:
                start, end = self._schedule(resources, cycles, waits, result, umask, prefetch)
                ready, refs = -INF, None
                for value, p, kind, mask in waits:
                    if value is not None:
                        ready = mx(ready, value)
                    if p is not None and kind != "s":
                        refs = (refs or []) + [(p, kind, mask)]
                row = [start, cycles, resources, None if result is not None else INF, ready, refs, ALL, umask]
                self.xrows.append(row)
                if result is not None:
                    result.xrow = row
                return start, end
        return self._schedule(resources, cycles, waits, result, umask, prefetch)

    def _schedule(self, resources: tuple, cycles, waits: list, result: "Buf | None" = None, umask=ALL,
                  prefetch: bool = True) -> tuple:
        """prefetch: a load that needs nothing the body makes may be a prefetch (_prefetch)."""
        if result is not None and self.body and prefetch:
            pf = _prefetchable(waits)
            if pf is True:
                return self._prefetch(resources, cycles, waits, result, umask)
            if pf is not False:
                return self._mixed(resources, cycles, waits, result, pf)
        start = 0.0
        for value, _p, _k, _m in waits:
            if value is not None:
                start = mx(start, value)
        free = self.free
        for r in resources:
            v = free.get(r)
            if v is not None:
                start = mx(start, v)
        end = start + cycles
        for r in resources:
            if r[0] == "port":
                self.pbusy[r] = add(self.pbusy.get(r), cycles)
                lead = self.lead.get(r)
                self.gap[r] = INF if lead is None else _second_run(self.gap.get(r, INF), lead, start)
                self.lead[r] = end if lead is None else _extend(lead, start, end)
                self._new_tail(r, start)
            if r not in free:
                self.first[r] = start
                self.flen[r] = cycles
            free[r] = end
            if r[0] == "port" and r not in self.post:
                self.post[r] = start
            if self.track:
                self.fm[r] = self.om
        if result is not None:
            # A load need not start before its value is first read: what it waits for from outside
            # is needed only that late (settled by touch, or at the end of the frame).
            late = [(p, kind, mask) for _v, p, kind, mask in waits if p is not None]
            if late:
                port = resources[0]  # the port work queued before this load: its slack ends where
                result.pending = (late, start, port, self.pbusy[port] - cycles)  # what follows is queued
                self.pending.append(result)
            waits = ()
        for _v, p, kind, mask in waits:
            if p is not None:
                self._need(p, kind, mask, start)
        self.end = mx(self.end, end)
        return start, end

    def _after_tails(self, b: "Frame", s, moved: dict, pre: bool):
        """s, or later where b's first transfer on a port cannot fit before the last run of transfers
        here and would start inside it: the interpreter's DMA finds no idle stretch long
        enough, so b's transfers wait until the port is free."""
        for r in b.free:
            r2 = moved[r]
            if r[0] != "port" or r2 not in self.tail or r2 not in self.free:
                continue
            bfirst, _ = _port_span(b, r, pre)
            length = b.flen.get(r, 0.0)
            free, tail, idle = self.free[r2], self.tail[r2], self.idle.get(r2, -INF)
            at = s + bfirst
            # (a last run before this frame's start was prefetched: b's prefetches join it there)
            clash = (at < free) & ((at + length > tail) | (at < idle)) & (tail >= 0)
            if r in b.pneed:  # prefetched: it may wait for the idle stretch and still fit before the run
                clash = clash & ((b.pneed[r] == INF) | (mx(at, idle) + length > tail))
            s = np.where(clash, free - bfirst, s) if isinstance(clash, np.ndarray) else \
                (free - bfirst if clash else s)
        return s

    def _new_tail(self, r: tuple, start) -> None:
        """A transfer on port r from start, placed after the port's work so far: a new last run when it
        starts after the port is free (where the last run is known)."""
        prev = self.free.get(r)
        if prev is None:
            self.tail[r] = start
            self.idle[r] = -INF
        else:
            tail, idle = self.tail.get(r, INF), self.idle.get(r, -INF)
            if _arrays(start, prev, tail, idle):
                self.tail[r] = np.where(start > prev, start, tail)
                self.idle[r] = np.where(start > prev, prev, idle)
            elif start > prev:
                self.tail[r], self.idle[r] = start, prev

    def _need(self, p, kind: str, mask, at) -> None:
        """This frame needs phantom p (from outside) by `at`, for the candidates in mask: its value ready
        ('r'), its last read done ('l'), or the stores to it ended (a store's)."""
        at = at if mask is None else np.where(mask, at, INF)
        if kind == "r":
            p.need_ready = mn(p.need_ready, at)
        elif kind == "l":
            p.need_lr = mn(p.need_lr, at)
        else:
            self.need_store[p] = mn(self.need_store.get(p), at)

    def _prefetch(self, resources: tuple, cycles, waits: list, result: "Buf", umask=ALL) -> tuple:
        """A load in a loop body that needs nothing the body makes: ready when the body starts.

        In the interpreter such a load is issued as soon as its port and its destination copy are
        free, which in a loop's steady state is during the iteration before: the next iteration's
        operations find its value there. So it goes before the body's start, ahead of the transfers
        the body has on its ports so far (pcum counts them). Where the body has no iteration before
        (placed first, or as a @parallel iteration) they run back to back from when the port is
        free, each in time for its first read: pneed, settled by touch.
        """
        first, free = self.first, self.free
        head = 0.0
        for r in resources:
            head = mn(head, first.get(r))
        start = head - cycles
        end = head
        for r in resources:
            self.pbusy[r] = add(self.pbusy.get(r), cycles)
            lead = self.lead.get(r)
            old = first.get(r)
            # it joins the first run of back-to-back transfers when it ends where that run begins;
            # else that run becomes the second, after an idle stretch from its end
            self.gap[r] = INF if old is None else _after_join(self.gap.get(r, INF), old, end)
            self.lead[r] = end if lead is None else _join(lead, old, end)
            if old is None:
                self.tail[r] = start
            else:  # ahead of the first run: the last run too when that is the only one
                tail = self.tail.get(r, INF)
                self.tail[r] = np.where(tail == old, start, tail) if _arrays(tail, old) else \
                    (start if tail == old else tail)
            first[r] = start
            self.flen[r] = cycles
            if r not in free:
                free[r] = end
                if self.track:
                    self.fm[r] = umask
            self.pcum[r] = add(self.pcum.get(r), cycles)
        if self.track:  # done before the body starts: it waits for what it loads from only
            self.om = umask
        # What it waits for from outside is needed no earlier than the latest start that still
        # delivers it in time, with every transfer issued here so far behind it (it went ahead of
        # them); settled at its first read (touch), as is when the port must be free for it.
        late = [(p, kind, mask) for _v, p, kind, mask in waits if p is not None]
        result.pending = (late, start, resources[0], 0.0, (self.pcum[resources[0]], resources, None))
        self.pending.append(result)
        return start, end

    def _mixed(self, resources: tuple, cycles, waits: list, result: "Buf", pf) -> tuple:
        """A load prefetched for the candidates in pf, scheduled as any operation for the others."""
        first, free = self.first, self.free
        start_n = 0.0
        for value, _p, _k, _m in waits:
            if value is not None:
                start_n = mx(start_n, value)
        head = 0.0
        for r in resources:
            start_n = mx(start_n, free.get(r))
            head = mn(head, first.get(r))
        end_n = start_n + cycles
        start, end = np.where(pf, head - cycles, start_n), np.where(pf, head, end_n)
        for r in resources:
            old_first, old_free, lead = first.get(r), free.get(r), self.lead.get(r)
            self.gap[r] = INF  # (not followed here)
            if lead is None:
                self.lead[r] = end
            else:
                self.lead[r] = np.where(pf, _join(lead, old_first, head), _extend(lead, start_n, end_n))
            first[r] = start if old_first is None else np.where(pf, start, old_first)
            self.flen[r] = cycles if old_first is None else np.where(pf, cycles, self.flen.get(r, 0.0))
            free[r] = end if old_free is None else np.where(pf, old_free, end_n)
            # prefetched: ahead of the first run (the last too when it is the only one); else as _new_tail
            if old_free is None:
                self.tail[r], self.idle[r] = start, -INF
            else:
                tail, idle = self.tail.get(r, INF), self.idle.get(r, -INF)
                later = start_n > old_free
                self.tail[r] = np.where(pf, np.where(tail == old_first, start, tail), np.where(later, start_n, tail))
                self.idle[r] = np.where(pf | ~later, idle, old_free)
            if r not in self.post:
                self.post[r] = np.where(pf, INF, start_n)
            self.pcum[r] = add(self.pcum.get(r), np.where(pf, cycles, 0.0))
            self.pbusy[r] = add(self.pbusy.get(r), cycles)
            if self.track:
                self.fm[r] = self.fm.get(r, 0) | self.om
        port = resources[0]
        late = [(p, kind, mask) for _v, p, kind, mask in waits if p is not None]
        result.pending = (late, start, port, np.where(pf, 0.0, self.pbusy[port] - cycles),
                          (self.pcum[port], resources, pf))
        self.pending.append(result)
        self.end = mx(self.end, end)
        return start, end

    def touch(self, buf: "Buf", start) -> None:
        """buf is first read by an operation starting at start: settle the needs of its load.

        A load need not start before the latest start that still delivers its value in time, given
        the transfers queued behind it on its port; what it waits for from outside is needed only then.
        """
        late, load_start, port, before, *pre = buf.pending
        buf.pending = None
        if pre:
            # Prefetched: before the body's first iteration, the transfers prefetched up to this one
            # run back to back on its ports from when they are free, and this one is read at start.
            cum, resources, only = pre[0]
            at = (self.end if start is None else start) - cum
            if only is not None:  # prefetched for these candidates only
                at = np.where(only, at, INF)
            for r in resources:
                self.pneed[r] = mn(self.pneed.get(r), at)
        # The latest start that still delivers it in time: before its read, after it, the port also
        # carries what was queued behind it.
        off = load_start if start is None else mx(load_start, start - (self.pbusy[port] - before))
        for p, kind, mask in late:
            self._need(p, kind, mask, off)

    def read_at(self, buf: "Buf", start, mask=ALL) -> None:
        """buf, loaded here inside a @parallel body, is first read by an operation starting at start (mask:
        the units that start depends on, Early)."""
        row = buf.xrow
        buf.xrow = None
        if row[3] is None:
            row[3] = start
            row[6] = mask

    def settle(self) -> None:
        """Loads never read here need what they waited for when they started."""
        for b in self.pending:
            if b.pending is not None:
                self.touch(b, None)
        self.pending = []
        if self.xrows is not None:
            for row in self.xrows:
                if type(row) is list and row[3] is None:
                    row[3] = INF

    def xfers(self) -> "Xfers | None":
        """This frame's transfers as one Xfers (None when it does not list them)."""
        rows = self.xrows
        if rows is None:
            return None
        if len(rows) == 1 and type(rows[0]) is Xfers:
            return rows[0]
        parts, run = [], []
        for r in rows:
            if type(r) is list:
                run.append(r)
                continue
            if run:
                parts.append(Xfers.of_rows(run))
                run = []
            parts.append(r)
        if run:
            parts.append(Xfers.of_rows(run))
        x = Xfers.concat(parts)
        self.xrows = [x]
        return x

    def count(self, table: dict, key: str, value) -> None:
        table[key] = add(table.get(key), value)

    def allocate(self, buf: Buf, charge) -> None:
        if charge is not None and not (type(charge) is int and charge == 1):
            buf.nbytes = buf.nbytes * charge
        m = buf.memory
        occ = add(self.occ.get(m, 0), buf.nbytes)
        self.occ[m] = occ
        self.peak[m] = mx(self.peak.get(m), occ)
        buf.live = True

    def release(self, buf: Buf) -> None:
        if not buf.live:
            return
        buf.live = False
        self.occ[buf.memory] = self.occ.get(buf.memory, 0) - buf.nbytes

    # ---------------------------------------------------------- placing a frame
    def place(self, b: "Frame", lanes=None, at=None):
        """Put frame b into this one at the earliest start its needs allow, or exactly at `at`.

        lanes (a Lane) makes b's LANE unit instances and history slots
        concrete (one @parallel iteration); `at` places a later iteration of a loop whose start the
        steady state gives. Returns the start.
        """
        res = [_resolve(self, p.pos, lanes) for p in b.phantoms]
        # The values held on entry by names b was walked with as one value (`qn = q` before a loop):
        # placed again, those names may hold values of their own (liveness after b follows the names,
        # below).
        given = {id(q): q for p in b.phantoms if sum(pos[0] == "name" for pos in p.pos) > 1
                 for pos in p.pos if pos[0] == "name"
                 for q in (_resolve(self, [pos], lanes),) if q is not None and q.live}
        free = self.free
        moved = {}
        for r in b.first:
            moved[r] = lanes.res(r) if lanes is not None else r
        fill = None
        if lanes is not None and at is None and self.xrows is None and (
                self.tl is not None or not any(r[0] == "port" for r in free)):
            fill = b.xfers()
            if fill is not None and not fill.ports:
                fill = None
        early = None  # inside a @parallel body, b's times move with the units they wait for, not all with s
        if at is None:
            s, early = self._earliest(b, res, moved, lanes is None, None if fill is None else fill.over,
                                      self.track and b.track and lanes is None)
            if early is None and fill is None:
                s = self._after_tails(b, s, moved, self.body and lanes is None)
        else:
            s = at
        move = early or s
        if fill is not None:
            # One @parallel iteration, transfer by transfer into the ports' idle stretches (_fill); the
            # rest of it slips by as much as its transfers make it wait.
            slip, last = self._fill(b, fill, s, res)
            s = s + slip
            self.end = mx(self.end, last)
        elif any(r[0] == "port" for r in b.free):
            self.tl = None
        if self.xrows is not None:
            bx = b.xfers()
            if lanes is not None or (bx is None and any(r[0] == "port" for r in b.free)):
                self.xrows = None  # a nested @parallel loop, or port work known only as a summary
            elif bx is not None and bx.ports:
                self.xrows.append(_placed(bx, s, b.phantoms, res, early=early))
        # Updates.
        pre = self.body and lanes is None
        for r, last in b.free.items():
            r2 = moved[r]
            if r[0] == "port":
                bfirst, blead = _port_span(b, r, pre)
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
                    tail = np.where(after, tail, INF) if _arrays(after, tail) else (tail if after else INF)
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
                self.gap[r2] = np.where(after, mn(g, s + bfirst), INF) if _arrays(after, g) else (
                    mn(g, s + bfirst) if after else INF)
                self.lead[r2] = _extend(self.lead[r2], s + bfirst, s + blead)
                before = s + bfirst < self.first[r2]
                old = self.flen.get(r2, 0.0)
                self.flen[r2] = np.where(before, bflen, old) if _arrays(before, bflen, old) else \
                    (bflen if before else old)
                self.first[r2] = mn(self.first[r2], s + bfirst)
                if r in b.post:
                    self.post[r2] = mn(self.post.get(r2), s + b.post[r])
                # The port cannot do all its work faster than back to back.
                free[r2] = mx(mx(free[r2], s + last), add(self.first[r2], add(self.pbusy.get(r2), b.pbusy[r])))
                self.end = mx(self.end, free[r2])
            else:
                free[r2] = s + last
        if b.pcum:
            if self.body and lanes is None:
                # b's prefetched transfers queue behind this frame's when they are needed before it
                # starts; when they are not, they are transfers during it like the others.
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
            else:  # here they are transfers like the others
                for r, need in b.pneed.items():
                    r2 = moved[r]
                    self.post[r2] = mn(self.post.get(r2), s + need)
        if fill is not None:
            self.tl.summary(self)
        fix: dict = {}  # released buffers that differ in size from the phantoms b was built with
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
        for x, v in b.store_end.items():
            self.store_end[x] = mx(self.store_end.get(x), s + v)
        self.end = mx(self.end, s + b.end)
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
        self.add_counters(b)
        for m, pk in b.peak.items():
            self.peak[m] = mx(self.peak.get(m), add(self.occ.get(m, 0), pk))
        for m, o in b.occ.items():
            self.occ[m] = add(self.occ.get(m, 0), o)
        for m, d in fix.items():
            self.occ[m] = self.occ.get(m, 0) + d
        return s

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
                    w = _port_wait(self, r2, b, r) - off
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
        x = _placed(x, s, b.phantoms, res, keep=False)
        shape = np.broadcast_shapes(x.shape, np.shape(s), np.shape(b.end))
        if self.tl is None:
            self.tl = _Timeline(shape)
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
            d, end = _fill_one(start[c].tolist(), cycles[c].tolist(), ready[c].tolist(), read[c].tolist(), lists)
            slip[c], last[c] = d, end
        self.tl.valid &= ~over
        if shape == ():
            return float(slip[0]), float(last[0])
        return slip.reshape(shape), last.reshape(shape)

    def add_counters(self, b: "Frame", times=1) -> None:
        """Add b's energy, traffic and busy time, `times` over (an array or a number)."""
        one = type(times) is int and times == 1
        for mine, theirs in ((self.energy, b.energy), (self.rbytes, b.rbytes), (self.wbytes, b.wbytes),
                             (self.busy, b.busy), (self.pbusy, b.pbusy)):
            for k, v in theirs.items():
                mine[k] = add(mine.get(k), v if one else v * times)
        self.macs = self.macs + (b.macs if one else b.macs * times)
        self.vops = self.vops + (b.vops if one else b.vops * times)


_NONE = object()


def _placed(x: Xfers, s, phantoms: list, res: list, keep: bool = True, early: Early | None = None) -> Xfers:
    """x, a placed frame's transfers, in the frame it is placed in at s (res: its phantoms' buffers there).

    What they wait for from outside becomes the time the buffer there gives, and, where that buffer is
    itself outside (a phantom there; keep), a ref to it. early: a transfer's ready time and its first
    read move with the units they depend on (Early), not with s.
    """
    read = rmask = ymask = None
    if early:
        ready, read = x.ready + _shifts(early, x.ymask), x.read + _shifts(early, x.rmask)
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


def _shifts(early: Early, masks: list):
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


def _fill_one(start: list, cycles: list, ready: list, read: list, lists: list) -> tuple:
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


class _Timeline:
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


def _resolve(f: Frame, positions: list, lanes: Lane | None = None) -> Buf | None:
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


#: A port this busy over its span (work issued so far, plus the new frame's) is congested.
CONGESTED = 0.75


def _port_wait(f: Frame, r2, b: Frame, r):
    """When b's first transfer on port r can start after what f has issued on it.

    The interpreter puts a transfer in the earliest idle stretch long enough
    for it, earlier-issued transfers first. On a lightly used port, b's
    transfers find room right after f's first run of back-to-back transfers;
    on a congested one the stretches left are too short, and b waits for the
    work issued before it, as if it were packed from the port's first use.
    """
    lead = f.lead[r2]
    used = f.pbusy.get(r2, 0.0)
    fluid = f.first[r2] + used
    congested = (used + b.pbusy.get(r, 0.0)) > CONGESTED * (f.free[r2] - f.first[r2])
    if isinstance(congested, np.ndarray):
        return np.where(congested, fluid, lead)
    return fluid if congested else lead


def _prefetchable(waits: list):
    """Whether a load waits for nothing made in this frame: True, False, or per candidate."""
    pf = True
    for value, _p, kind, _m in waits:
        if kind == "s" and value is not None:  # the stores to an output this frame made before it
            return False
        if value is None:  # from outside: a value, or the stores to an output before the frame
            continue
        if isinstance(value, np.ndarray):
            m = value == -INF  # a copy another candidate's @pipeline depth reaches back to
            if not m.any():
                return False
            pf = m if pf is True else pf & m
        elif value != -INF:
            return False
    if pf is not True and pf.all():
        return True
    return pf


def _port_span(b: Frame, r, pre: bool) -> tuple:
    """The start of b's first transfer on port r and the end of its first run of back-to-back ones.

    pre: b is placed in a loop body after what the body issued, where its prefetched transfers
    join the body's (before its start). Elsewhere they run back to back from when the port is free,
    finishing in time for their reads (pneed, pcum).
    """
    need = b.pneed.get(r)
    if pre or need is None:
        return b.first[r], b.lead[r]
    lead = mx(b.lead[r], need + b.pcum[r])
    if isinstance(need, np.ndarray):  # INF where nothing is prefetched
        lead = np.where(need == INF, b.lead[r], lead)
    return mn(need, b.post.get(r)), lead


def _join(lead, old_first, end):
    """The end of a port's first busy run after a transfer ending at end goes before it."""
    if type(lead) is float and type(old_first) is float and type(end) is float:
        return lead if old_first <= end else end
    return np.where(old_first <= end, lead, end)


def _arrays(*xs) -> bool:
    return any(isinstance(x, np.ndarray) for x in xs)


def _second_run(gap, lead, start):
    """The start of a port's second run after a transfer from start is put after its work so far."""
    if type(gap) is float and type(lead) is float and type(start) is float:
        return start if gap == INF and start > lead else gap
    return np.where((gap == INF) & (start > lead), start, gap)


def _after_join(gap, old_first, end):
    """The start of a port's second run after a prefetch ending at end goes before its first run."""
    if type(gap) is float and type(old_first) is float and type(end) is float:
        return gap if old_first <= end else old_first
    return np.where(old_first <= end, gap, old_first)


def _extend(lead, start, end):
    """The end of a port's first busy run, after a transfer from start to end."""
    if type(lead) is float and type(start) is float:
        return end if start <= lead else lead
    return np.where(start <= lead, end, lead)


def final_at(b: Frame, pos: tuple) -> Buf | None:
    """The buffer at a position of b's state when b ends."""
    if pos[0] == "name":
        v = b.names.get(pos[1])
        return v.buf if v is not None else None
    lst = b.hist.get(pos[1])
    return lst[-pos[2]] if lst is not None and len(lst) >= pos[2] else None


