"""Times, buffers and values over candidates: what the model's frames are made of.

Every time is a float or a NumPy array with one entry per candidate (or an
open grid of them); None is "no constraint". A buffer is the storage of one
value (attnlang.interp.machine.Buffer, with times over candidates).
"""

from __future__ import annotations

import threading

import numpy as np

INF = float("inf")

#: The unit instance of the enclosing @parallel iteration; fixed when the iteration is placed.
LANE = -1


class Lane:
    """One iteration of a @parallel loop: its unit instances and its copy of the body's buffers."""

    __slots__ = ("n", "marker", "width", "counts")

    def __init__(self, n: int, marker, width: int, counts: dict):
        self.n, self.marker, self.width, self.counts = n, marker, width, counts

    def res(self, r: tuple) -> tuple:
        return ("unit", r[1], self.n % self.counts[r[1]]) if r[0] == "unit" and r[2] == LANE else r

    def key(self, k):
        """A history key (name, slot) with this loop's marker in the slot made concrete."""
        if type(k) is tuple and self.marker in k[1]:
            return (k[0], tuple(self.n % self.width if x is self.marker else x for x in k[1]))
        return k


def mx(a, b):
    """max of two times, where None means 'no constraint'."""
    if a is None:
        return b
    if b is None:
        return a
    if type(a) is float and type(b) is float:
        return a if a >= b else b
    return np.maximum(a, b)


def mn(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if type(a) is float and type(b) is float:
        return a if a <= b else b
    return np.minimum(a, b)


def add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


class Fold:
    """The max of many times, folded in place into an array the fold owns once it has one.

    The same operations in the same order as `mx` one after another, without a fresh array for
    every step (a loop's interval and a frame's start are the max of dozens of times).
    """

    __slots__ = ("value", "_own")

    def __init__(self, start):
        self.value = start
        self._own = False

    def take(self, x) -> None:
        if x is None:
            return
        v = self.value
        if v is None:
            self.value = x
            return
        if self._own:
            try:
                np.maximum(v, x, out=v)
                return
            except ValueError:  # x spans more candidates than v: a bigger array
                pass
        elif type(v) is float and type(x) is float:
            self.value = v if v >= x else x
            return
        self.value = np.maximum(v, x)
        self._own = type(self.value) is np.ndarray and self.value.dtype == np.float64


class Buf:
    """The storage of one value in one memory (attnlang.interp.machine.Buffer, with times over candidates).

    A phantom stands for a buffer of the enclosing frame: `pos` lists where it
    sits there, its times start unknown (None) and `need_*` record how early
    this frame needs the enclosing buffer's ready / last-read time.

    A buffer placed from another frame keeps that frame's buffer as its base
    and the placement's start as its shift, and adds them only when a time is
    asked for: most buffers a placement creates are never read again.
    """

    __slots__ = ("memory", "nbytes", "_ready", "_lr", "_base", "_shift", "refs", "live", "pos", "need_ready",
                 "need_lr", "pending", "xrow", "mr", "ml", "entry")

    def __init__(self, memory: str, nbytes, ready, last_read=None):
        self.memory = memory
        self.nbytes = nbytes
        self._ready = ready
        self._lr = ready if last_read is None else last_read
        self._base = None
        self._shift = None
        self.refs = 0
        self.live = False
        self.entry = False  # a phantom: its buffer was live when the frame began
        self.pos: list | None = None
        self.need_ready = None
        self.need_lr = None
        self.pending = None  # a load's needs from outside, settled at its first read (Frame.touch)
        self.xrow = None  # its transfer's entry in a @parallel body's list, until its first read (Frame.read_at)
        # Inside a @parallel body (Frame.track): the units whose state on entering the frame its ready and
        # last-read times depend on (masks, unit_bit; ALL: the frame's start, as everywhere else).
        self.mr = self.ml = ALL

    @classmethod
    def shifted(cls, base: "Buf", shift) -> "Buf":
        """base, from a frame placed at shift: a time, a Later, or a Move (each time with its units)."""
        b = cls.__new__(cls)
        b.memory, b.nbytes, b._base, b._shift = base.memory, base.nbytes, base, shift
        b._ready = b._lr = _LAZY
        b.refs, b.live, b.pos, b.need_ready, b.need_lr = base.refs, base.live, None, None, None
        b.entry = False
        b.pending = None
        b.xrow = None
        if isinstance(shift, Move):
            b.mr, b.ml = shift.map(base.mr), shift.map(base.ml)
        else:
            b.mr = b.ml = ALL
        return b

    @property
    def ready(self):
        r = self._ready
        if r is _LAZY:
            base = self._base
            r = self._ready = add(base.ready, self._offset(base.mr))
        return r

    def _offset(self, mask):
        s = self._shift
        if type(s) is Later:
            s = self._shift = s.value
        elif isinstance(s, Move):
            return s.shift(mask)
        return s

    @ready.setter
    def ready(self, v) -> None:
        self._ready = v

    @property
    def last_read(self):
        r = self._lr
        if r is _LAZY:
            base = self._base
            r = self._lr = add(base.last_read, self._offset(base.ml))
        return r

    @last_read.setter
    def last_read(self, v) -> None:
        self._lr = v


#: The mask of a time that moves with its frame's start: it may depend on every unit's state (Buf.mr).
ALL = -1
#: The most units that get a bit of their own in one walk; masks are NumPy int64 where they vary over
#: candidates. A unit past them takes ALL: its times move with their frame's start, as outside @parallel.
MAX_BITS = 62
_LOCAL = threading.local()


def new_units() -> None:
    """Start a walk's register of unit bits (each walk, and each thread, numbers its own units)."""
    _LOCAL.bits = {}


def _bits() -> dict:
    bits = getattr(_LOCAL, "bits", None)
    if bits is None:
        bits = _LOCAL.bits = {}
    return bits


def unit_bit(r: tuple) -> int:
    """The bit of a unit resource in the masks of Buf.mr, Buf.ml and Frame.fm."""
    bits = _bits()
    b = bits.get(r)
    if b is None:
        if len(bits) >= MAX_BITS:
            return ALL
        b = bits[r] = 1 << len(bits)
    return b


def latest_of(units: dict, mask: int, start):
    """The max of start and of units[r] over the unit resources r whose bit is in mask."""
    v = start
    for r, t in units.items():
        if unit_bit(r) & mask:
            v = mx(v, t)
    return v


def per_mask(f, mask):
    """f(mask) for a mask that is an int or an array of them (one per candidate)."""
    if type(mask) is int:
        return f(mask)
    values = np.unique(mask).tolist()
    if len(values) == 1:
        return f(values[0])
    return np.select([mask == m for m in values], [f(m) for m in values])


class Move:
    """Where the times of a placed frame go: each by the shift of the units it depends on (its mask).

    shift(mask): how much later a time with that mask is in the frame it is placed in; map(mask): its
    mask there. Buf.shifted takes one for a lazy buffer.
    """

    __slots__ = ()

    def shift(self, mask):
        raise NotImplementedError

    def map(self, mask):
        raise NotImplementedError


class Early(Move):
    """A frame b placed at s, where a time of b that waits only for some units moves with those units.

    The interpreter starts an operation as soon as its operands, its unit and its destination allow. A
    frame placed rigidly at s starts every operation as late as the unit it waits for most allows: a
    row block's first QK^T on the matrix unit as late as the vector unit, which its later operations
    wait for, makes the block start. Here a time of b with mask M goes to its offset in b plus the
    latest of data and of units[u] for the units u in M, at most s. units: b's unit resource -> the
    start its free time here allows; data: the start what b waits for from outside but units allows
    (dmask: the units that depends on here); fm: the masks of this frame's resources.
    """

    __slots__ = ("s", "data", "units", "dmask", "fm", "_cache")

    def __init__(self, s, data, units: dict, dmask, fm: dict):
        self.s, self.data, self.units, self.dmask, self.fm = s, data, units, dmask, fm
        self._cache: dict = {}

    def shift(self, mask):
        return per_mask(self._shift, mask)

    def _shift(self, mask: int):
        if mask == ALL:
            return self.s
        got = self._cache.get(mask)
        if got is None:
            got = self._cache[mask] = mn(latest_of(self.units, mask, self.data), self.s)
        return got

    def map(self, mask):
        return per_mask(self._map, mask)

    def _map(self, mask: int):
        if mask == ALL:
            return ALL
        out = self.dmask
        for r, b in _bits().items():
            if b & mask:
                out = out | self.fm.get(r, b)
        return out


class Later:
    """A shift worked out when a buffer placed with it is first asked for a time (most never are)."""

    __slots__ = ("_make", "_value")

    def __init__(self, make):
        self._make = make
        self._value = _LAZY

    @property
    def value(self):
        v = self._value
        if v is _LAZY:
            v = self._value = self._make()
            self._make = None
        return v


class AVal:
    """A tensor value: its shape (ints or arrays), dtype and buffer."""

    __slots__ = ("shape", "dtype", "buf")

    def __init__(self, shape: tuple, dtype: str, buf: Buf):
        self.shape = shape
        self.dtype = dtype
        self.buf = buf


#: A time a shifted buffer has not worked out yet.
_LAZY = object()


#: The most transfers a frame inside a @parallel body lists for one candidate (Xfers); a candidate with more
#: (a long loop of small tiles) shares its ports as a summary instead (frame._port_wait).
XCAP = 4096


class Xfers:
    """The transfers of a frame inside a @parallel body, for every candidate: one column per transfer.

    start, cycles, read, ready: arrays of shape (candidates..., K), relative to the frame's start: each
    transfer's start, its cycles, the start of the first operation that reads what it loaded (INF: none,
    as for a store) and when what it waits for is ready (its source, the copy it overwrites; -INF: nothing
    known). A candidate with fewer transfers (loops with fewer iterations) has INF starts in the columns
    it lacks. ports: each column's ports. refs: column -> [(phantom, 'r'|'l', mask)], what a transfer
    also waits for from outside the frame, resolved when the frame is placed (Frame.place) or repeated
    (steady.repeat). over: the candidates (a bool array, or a bool) with more than XCAP transfers, whose
    lists are cut short. rmask, ymask: each column's masks of its read and its ready time (Buf.mr; ALL
    where they move with the frame's start).
    """

    __slots__ = ("start", "cycles", "read", "ready", "ports", "refs", "over", "rmask", "ymask")

    def __init__(self, start, cycles, read, ready, ports: list, refs: dict, over=False, rmask=None, ymask=None):
        self.start, self.cycles, self.read, self.ready = start, cycles, read, ready
        self.ports, self.refs, self.over = ports, refs, over
        self.rmask = [ALL] * len(ports) if rmask is None else rmask
        self.ymask = [ALL] * len(ports) if ymask is None else ymask

    @property
    def shape(self) -> tuple:
        return np.broadcast_shapes(*[np.shape(a)[:-1] for a in (self.start, self.cycles, self.read, self.ready)],
                                   np.shape(self.over))

    @classmethod
    def of_rows(cls, rows: list) -> "Xfers":
        """From [start, cycles, ports, read, ready, refs, read mask, ready mask] rows (times: floats or arrays
        over candidates)."""
        shape = np.broadcast_shapes(*[np.shape(x) for r in rows for x in (r[0], r[1], r[3], r[4])])

        def col(i):
            return np.stack([np.broadcast_to(np.asarray(r[i], dtype=np.float64), shape) for r in rows], axis=-1)

        refs = {k: r[5] for k, r in enumerate(rows) if r[5]}
        return cls(col(0), col(1), col(3), col(4), [r[2] for r in rows], refs, False, [r[6] for r in rows],
                   [r[7] for r in rows])

    @classmethod
    def concat(cls, parts: list) -> "Xfers":
        if not parts:
            e = np.zeros(0)
            return cls(e, e, e, e, [], {})
        if len(parts) == 1:
            return parts[0]
        shape = np.broadcast_shapes(*[p.shape for p in parts], *[np.shape(p.over) for p in parts])

        def cat(attr):
            return np.concatenate([np.broadcast_to(getattr(p, attr), shape + getattr(p, attr).shape[-1:])
                                   for p in parts], axis=-1)

        over, refs, k = False, {}, 0
        for p in parts:
            over = over | p.over
            for c, r in p.refs.items():
                refs[k + c] = r
            k += len(p.ports)
        return cls(cat("start"), cat("cycles"), cat("read"), cat("ready"), [r for p in parts for r in p.ports],
                   refs, over, [m for p in parts for m in p.rmask], [m for p in parts for m in p.ymask])

    def shifted(self, s, ready=None, refs=None, read=None, rmask=None, ymask=None) -> "Xfers":
        """The same transfers in a frame where this one starts at s (ready, refs, read, masks: worked out there)."""
        a = np.asarray(s, dtype=np.float64)[..., None]
        return Xfers(self.start + a, self.cycles, self.read + a if read is None else read,
                     self.ready + a if ready is None else ready, self.ports, self.refs if refs is None else refs,
                     self.over, self.rmask if rmask is None else rmask, self.ymask if ymask is None else ymask)
