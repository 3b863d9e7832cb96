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
into the ports' idle stretches the iterations before it leave (`Frame._fill`, place.py),
and their times carry the units they depend on, so that a placed frame moves
each with those units rather than all with its start (`times.Early`).
Every time is a float or an array over candidates (attnlang/model/times.py).
"""

from __future__ import annotations

import numpy as np

from ..limits import MAX_PIPELINE
from .place import FillTimeline, Placement
from .runs import after_join, arrays, extend, join, port_span, second_run
from .times import ALL, INF, AVal, Buf, Xfers, add, mn, mx, unit_bit


class Frame(Placement):
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
        self.tl: "FillTimeline | None" = None
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
                self.gap[r] = INF if lead is None else second_run(self.gap.get(r, INF), lead, start)
                self.lead[r] = end if lead is None else extend(lead, start, end)
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
            bfirst, _ = port_span(b, r, pre)
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
            if arrays(start, prev, tail, idle):
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
            self.gap[r] = INF if old is None else after_join(self.gap.get(r, INF), old, end)
            self.lead[r] = end if lead is None else join(lead, old, end)
            if old is None:
                self.tail[r] = start
            else:  # ahead of the first run: the last run too when that is the only one
                tail = self.tail.get(r, INF)
                self.tail[r] = np.where(tail == old, start, tail) if arrays(tail, old) else \
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
                self.lead[r] = np.where(pf, join(lead, old_first, head), extend(lead, start_n, end_n))
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


    def add_counters(self, b: "Frame", times=1) -> None:
        """Add b's energy, traffic and busy time, `times` over (an array or a number)."""
        one = type(times) is int and times == 1
        for mine, theirs in ((self.energy, b.energy), (self.rbytes, b.rbytes), (self.wbytes, b.wbytes),
                             (self.busy, b.busy), (self.pbusy, b.pbusy)):
            for k, v in theirs.items():
                mine[k] = add(mine.get(k), v if one else v * times)
        self.macs = self.macs + (b.macs if one else b.macs * times)
        self.vops = self.vops + (b.vops if one else b.vops * times)


#: A port this busy over its span (work issued so far, plus the new frame's) is congested.
CONGESTED = 0.75


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


def final_at(b: Frame, pos: tuple) -> Buf | None:
    """The buffer at a position of b's state when b ends."""
    if pos[0] == "name":
        v = b.names.get(pos[1])
        return v.buf if v is not None else None
    lst = b.hist.get(pos[1])
    return lst[-pos[2]] if lst is not None and len(lst) >= pos[2] else None


