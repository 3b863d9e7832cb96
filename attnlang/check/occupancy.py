"""Peak bytes per memory, for many parameter choices at once (docs/semantics.md, "Occupancy").

The interpreter's bookkeeping, replayed over types instead of data: a value
occupies its bytes (times the @pipeline copies when it is first assigned in a
pipelined loop body) from the statement that writes it until its name is
assigned again, it is discarded, or the loop body or process that first
assigned it ends; a view (a name, a slice, `.T`) shares its base's buffer;
the intermediate results of a statement are freed at its end.

Every quantity has one entry per candidate, and every statement runs under
a mask of the candidates for which it runs, so one walk evaluates a whole
sweep of params. A loop is walked for its first and second iterations (the
second sees what the first leaves behind, which is the steady state) and,
when sizes or conditions depend on its index, its last.

The walk is written once, over `self.xp`, one of two backends with the same
few operations: `Arrays` (NumPy arrays, for explore's sweeps) and `One`
(plain Python numbers and bools, for a single candidate: the checker,
`feasible`, `peak_bytes`), which gives the same IEEE results without
NumPy's per-call overhead on 1-element arrays. Static values (bounds,
conditions, @pipeline depths) are evaluated over arrays by `veval` either
way, so both backends see the same values; `xp.num`, `xp.bytes` and
`xp.mask` bring them into the bookkeeping. Sizes, the most frequent, are
evaluated with Python numbers for one candidate when a dim is a plain
polynomial in names (`self.scalars`), which gives veval's values there.
`run` hands out arrays of n entries whichever backend walked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..diagnostics import Span
from ..hardware import Hardware
from ..static import free_names
from ..syntax import ast
from . import scope
from .dims import Unknown, dim_of, show, veval
from .types import Analysis, Ty, elem_bytes


class Arrays:
    """The bookkeeping's operations over NumPy arrays, one entry per candidate."""

    def __init__(self, n: int):
        self.n = n

    def full(self, value) -> np.ndarray:
        return np.full(self.n, value)

    where = staticmethod(np.where)
    maximum = staticmethod(np.maximum)

    @staticmethod
    def any(mask) -> bool:
        """mask.any(), without its Python-level wrapper (the walk asks tens of thousands of times)."""
        return np.count_nonzero(mask) > 0

    @staticmethod
    def not_(mask):
        return ~mask

    @staticmethod
    def copy(mask):
        return mask.copy()

    @staticmethod
    def num(value):
        """A static number (a scalar, or an array over the candidates) as a quantity here."""
        return value

    @staticmethod
    def bytes(value):
        """A size in bytes, as a float quantity."""
        return np.asarray(value, dtype=float)

    def mask(self, value) -> np.ndarray:
        """A static condition as a mask over the candidates."""
        return np.broadcast_to(np.asarray(value, dtype=bool), (self.n,))

    @staticmethod
    def first(value):
        """The first candidate's entry (the checker's walk has one candidate)."""
        return value[0]

    @staticmethod
    def array(value) -> np.ndarray:
        """A quantity as an array over the candidates (what the walk hands out)."""
        return value


class One:
    """The same operations for a single candidate, on plain Python numbers and bools."""

    n = 1

    @staticmethod
    def full(value):
        return value

    @staticmethod
    def where(cond, a, b):
        return a if cond else b

    @staticmethod
    def maximum(a, b):
        return b if b > a or b != b else a  # as np.maximum: a NaN wins

    any = staticmethod(bool)

    @staticmethod
    def not_(mask: bool) -> bool:
        return not mask

    @staticmethod
    def copy(mask):
        return mask

    @staticmethod
    def num(value):
        if isinstance(value, np.ndarray):
            value = value.reshape(-1)[0]
        return value.item() if isinstance(value, np.generic) else value

    @staticmethod
    def bytes(value) -> float:
        return float(One.num(value))

    @staticmethod
    def mask(value) -> bool:
        return bool(np.asarray(value, dtype=bool).reshape(-1)[0])

    @staticmethod
    def first(value):
        return value

    @staticmethod
    def array(value) -> np.ndarray:
        return np.array([value], dtype=float)


@dataclass
class Buf:
    memory: str
    amount: object  # bytes charged, per candidate (0 where it was not allocated): an xp quantity
    refs: object
    alive: object
    label: object  # a str, or the expression whose result it holds (printed only when reported)
    ty: Ty | None
    charge: object
    names: list[str] = field(default_factory=list)
    # For the snapshot of a peak (explain): the clock when each name was bound, when it was made and died.
    named_at: list[int] = field(default_factory=list)
    born: int = 0
    died: int | None = None


@dataclass
class Snapshot:
    """What a memory holds at its peak (for the one-candidate walk of the checker)."""

    bytes: float
    span: Span | None
    live: list[tuple[object, Ty | None, float, object]]  # (label: a str or an expression, type, bytes, copies)


class Occupancy:
    def __init__(self, kernel: ast.Kernel, env: Mapping, hw: Hardware, analysis: Analysis, n: int,
                 explain: bool = False, host: bool = False):
        self.k, self.hw, self.a, self.n, self.explain = kernel, hw, analysis, n, explain
        # host: count what a run holds in this machine's memory instead (hostmem.py): every value in
        # one memory called HOST, at the bytes an engine keeps per element, one copy of each.
        self.host = host
        self.xp = xp = One if n == 1 else Arrays(n)
        self.env = {k: (np.broadcast_to(np.asarray(v), (n,)) if not isinstance(v, str) else v)
                    for k, v in env.items()}
        # With one candidate, env's values as Python numbers, for sizes (see size()).
        self.scalars = {k: One.num(v) for k, v in self.env.items()} if xp is One else None
        self.G = xp.full(True)  # the candidates for which the statement being walked runs
        self.names: dict[str, dict[int, object]] = {}  # name -> buffer -> the candidates it holds it for
        self.bufs: list[Buf] = []
        memories = [HOST] if host else list(hw.memories)
        self.occ = {m: xp.full(0.0) for m in memories}
        self.peak = {m: xp.full(0.0) for m in memories}
        # Process peaks are reserved as if every process peaked at once (an upper bound); `solo` is the
        # peak without those reservations, which some interleaving of the processes reaches.
        self.reserved = {m: xp.full(0.0) for m in memories}
        self.solo = {m: xp.full(0.0) for m in memories}
        self.local: dict[str, object] | None = None  # the peak of the process being walked
        self.temps: list[int] = []
        self.loops: list[tuple[object, dict[str, np.ndarray]]] = []
        self.first_instance: list[bool] = []  # for each enclosing `for`: whether its first iteration is walked
        self.snaps: dict[str, Snapshot] = {}
        # A memory's last new peak, listed once the walk ends: (clock, bytes, statement). The clock ticks at
        # every buffer made, named or dead, so what a peak held is known later from the buffers alone;
        # listing it at every new peak was quadratic in a long program (and cubic in a long sum).
        self.peak_at: dict[str, tuple[int, float, Span | None]] = {}
        self.clock = 0
        self.stmt: Span | None = None
        self.sized_by: dict[str, set[str]] = {m: set() for m in memories}  # names sizes depend on (explain)
        self.process_unit: str | None = None

    # ---------------------------------------------------------- buffers
    def run(self) -> dict[str, np.ndarray]:
        """Walk the kernel; occ, peak, reserved and solo are then arrays of n entries (either backend)."""
        root = scope.root_memory(self.hw)
        for t in self.k.inputs + self.k.outputs:
            ty = Ty(tuple(dim_of(d) for d in t.dims), t.dtype, root)
            self.stmt = t.span
            self.alloc(ty, 1, f"{t.name}, a kernel {'input' if t in self.k.inputs else 'output'}", refs=1)
        self.temps = []
        self.block(self.k.body)
        for m in self.peak_at:
            self.list_peak(m)
        for per in (self.occ, self.peak, self.reserved, self.solo):
            for m in per:
                per[m] = self.xp.array(per[m])
        return self.peak

    def size(self, ty: Ty):
        scalars = self.scalars
        per = host_elem_bytes(ty.dtype) if self.host else elem_bytes(ty.dtype)
        if scalars is not None and not any(d.opaque for d in ty.shape):
            # A polynomial in names: Python numbers give NumPy's values (bar int64 wrap-around, checked).
            total = per
            for d in ty.shape:
                total = total * d.eval(scalars)
            if not isinstance(total, int) or -_WRAP < total < _WRAP:
                return total
        # Opaque dims, or a product past int64: in floats, which reach inf rather than wrap around (NumPy's
        # int64 arrays wrap without a word, its scalars print an overflow warning).
        total = float(per)
        with np.errstate(over="ignore"):  # a size past float64 (a slice from -1e308) is inf: over any capacity
            for d in ty.shape:
                total = total * np.asarray(d.eval(self.env), dtype=float)
        return total

    def set_static(self, name: str, value) -> None:
        """Give a static name (a loop index) a value in env, an array over the candidates; None removes it."""
        if value is None:
            self.env.pop(name, None)
        else:
            self.env[name] = value
        if self.scalars is not None:
            if value is None:
                self.scalars.pop(name, None)
            else:
                self.scalars[name] = One.num(value)

    def alloc(self, ty: Ty | None, charge, label, refs: int = 0) -> dict[int, object] | None:
        if ty is None or not ty.tensor or ty.memory not in self.hw.memories:
            return None
        xp = self.xp
        memory = HOST if self.host else ty.memory
        try:
            nbytes = self.size(ty)
            amount = xp.where(self.G, xp.bytes(nbytes) * charge, 0.0)  # a charge that is not a number: E0704
        except OverflowError:  # past int64 (2 ** 70 elements): more than any memory holds
            if not self.host:
                return None
            amount = xp.where(self.G, xp.bytes(float("inf")), 0.0)
        except (Unknown, TypeError, ValueError):
            return None
        if self.explain:
            self.sized_by[memory] |= set().union(*(d.names() for d in ty.shape))
        self.occ[memory] = self.occ[memory] + amount
        bid = self.add_buf(Buf(memory, amount, xp.where(self.G, refs, 0), xp.copy(self.G), label, ty, charge))
        self.temps.append(bid)
        self.note_peak(memory)
        return {bid: xp.copy(self.G)}

    def add_buf(self, buf: Buf) -> int:
        bid = len(self.bufs)
        self.bufs.append(buf)
        self.clock += 1
        buf.born = self.clock
        return bid

    def note_peak(self, memory: str) -> None:
        xp, cur = self.xp, self.occ[memory]
        first = xp.first
        if self.explain and first(cur) > first(self.peak[memory]):
            self.clock += 1
            self.peak_at[memory] = (self.clock, float(first(cur)), self.stmt)
        self.peak[memory] = xp.maximum(self.peak[memory], cur)
        self.solo[memory] = xp.maximum(self.solo[memory], cur - self.reserved[memory])
        if self.local is not None:
            self.local[memory] = xp.maximum(self.local[memory], cur)

    def list_peak(self, memory: str) -> None:
        """The snapshot of memory's last new peak: the buffers alive then, each by the name it had then."""
        at, nbytes, span = self.peak_at[memory]
        first, live = self.xp.first, []
        for b in self.bufs:
            if b.memory == memory and b.born <= at and (b.died is None or b.died > at) and first(b.amount) > 0:
                names = [n for n, t in zip(b.names, b.named_at, strict=True) if t < at]
                # A name, or the expression: printed only if reported (capacity.py, label_text).
                live.append((names[-1] if names else b.label, b.ty, float(first(b.amount)), b.charge))
        self.snaps[memory] = Snapshot(nbytes, span, live)

    def dies(self, b: Buf) -> None:
        """Note when b's candidate of the one-candidate walk died (b.alive was just narrowed)."""
        if self.explain and b.died is None and not self.xp.first(b.alive):
            self.clock += 1
            b.died = self.clock

    def release_dead(self, bid: int) -> None:
        xp, b = self.xp, self.bufs[bid]
        freed = b.alive & (b.refs <= 0)
        if xp.any(freed):
            self.occ[b.memory] = self.occ[b.memory] - xp.where(freed, b.amount, 0.0)
            b.alive = b.alive & xp.not_(freed)
            self.dies(b)

    def bind(self, name: str, binding: dict[int, object]) -> None:
        xp = self.xp
        old = self.names.get(name, {})
        out = xp.not_(self.G)
        new = {b: m & out for b, m in old.items() if xp.any(m & out)}
        for b, m in binding.items():
            m = m & self.G
            new[b] = new.get(b, xp.full(False)) | m
            self.bufs[b].refs = self.bufs[b].refs + m
            if name not in self.bufs[b].names:
                self.bufs[b].names.append(name)
                self.clock += 1
                self.bufs[b].named_at.append(self.clock)
        self.names[name] = new
        self.drop(old, self.G)

    def drop(self, binding: dict[int, object], mask) -> None:
        for b, m in binding.items():
            dec = m & mask
            if self.xp.any(dec):
                self.bufs[b].refs = self.bufs[b].refs - dec
                self.release_dead(b)

    def end_statement(self) -> None:
        for b in self.temps:
            self.release_dead(b)
        self.temps = []

    def present(self, name: str):
        out = self.xp.full(False)
        for m in self.names.get(name, {}).values():
            out = out | m
        return out

    def charge(self, name: str):
        """@pipeline copies for a value first assigned in the innermost loop's body, times the
        iterations of enclosing @parallel loops that run at once (the interpreter's rule)."""
        if not self.loops or self.host:  # an engine keeps one copy on the host, whatever the modeled ones
            return 1
        k, present, copies = self.loops[-1]
        p = present.get(name)
        return (k if p is None else self.xp.where(p, 1, k)) * copies

    # ---------------------------------------------------------- expressions
    def value(self, e, charge) -> dict[int, object] | None:
        """The buffers e's value lives in (allocating what its operations produce), or None for a number."""
        if isinstance(e, ast.Name):
            return {b: m & self.G for b, m in self.names.get(e.id, {}).items()} or None
        if isinstance(e, ast.OnUnit):
            return self.value(e.expr, charge)
        if isinstance(e, (ast.Index, ast.Attr)):
            return self.value(e.base, 1)
        if isinstance(e, ast.Unary):
            self.value(e.operand, 1)
        elif isinstance(e, ast.Binary):
            self.value(e.left, 1)
            self.value(e.right, 1)
        elif isinstance(e, ast.Call):
            if e.func not in ("full", "zeros", "ones"):
                args = [self.value(x, 1) for x in e.args]
                if e.func == "transpose" and args:
                    return args[0]
        else:
            return None
        return self.alloc(self.a.types.get(id(e)), charge, e)

    # ---------------------------------------------------------- statements
    def block(self, body) -> None:
        for s in body:
            handler = self.STMTS.get(type(s))
            if handler is not None:
                if not isinstance(s, (ast.For, ast.If, ast.Process)):
                    self.stmt = s.span
                handler(self, s)

    def s_assign(self, s: ast.Assign) -> None:
        name = s.target.name
        if s.target.index is not None:
            self.value(s.expr, 1)
        elif s.op != "=":
            self.value(s.expr, 1)
            rec = self.a.ops.get(id(s))
            res = self.alloc(rec.result if rec else None, self.charge(name), name)
            if res is not None:
                self.bind(name, res)
        else:
            res = self.value(s.expr, self.charge(name))
            if res is not None:
                self.bind(name, res)
        self.end_statement()

    def s_new(self, s) -> None:  # load and recv: a new buffer for the target
        if s.target.index is None:
            res = self.alloc(self.a.values.get(id(s)), self.charge(s.target.name), s.target.name)
            if res is not None:
                self.bind(s.target.name, res)
        self.end_statement()

    def s_use(self, s) -> None:  # store and send: the expression's intermediates only
        self.value(s.expr, 1)
        self.end_statement()

    def s_discard(self, s: ast.Discard) -> None:
        xp, out = self.xp, self.xp.not_(self.G)
        for n in s.names:
            binding = self.names.get(n.id, {})
            for b, m in binding.items():
                buf = self.bufs[b]
                freed = buf.alive & m & self.G
                self.occ[buf.memory] = self.occ[buf.memory] - xp.where(freed, buf.amount, 0.0)
                buf.alive = buf.alive & xp.not_(freed)
                self.dies(buf)
            self.names[n.id] = {b: m & out for b, m in binding.items() if xp.any(m & out)}

    def s_if(self, s: ast.If) -> None:
        xp, saved = self.xp, self.G
        try:
            c = xp.mask(veval(s.cond, self.env))
        except (Unknown, TypeError, ValueError):
            c = None
        for body, mask in ((s.then, c), (s.orelse, None if c is None else xp.not_(c))):
            self.G = saved if mask is None else saved & mask
            if xp.any(self.G):
                self.block(body)
        self.G = saved

    def iteration(self, body, var: str | None, value, k, need_mask, width=1) -> None:
        """Walk body once, for the candidates in need_mask, with var (an env array) at value."""
        xp, saved = self.xp, self.G
        self.G = saved & need_mask
        if xp.any(self.G):
            if var is not None:
                self.set_static(var, value)
            present = {name: self.present(name) for name in self.names}
            copies = (self.loops[-1][2] if self.loops else 1) * width
            self.loops.append((k, present, copies))
            self.block(body)
            self.loops.pop()
            for name, binding in list(self.names.items()):
                created = self.present(name) & xp.not_(present.get(name, xp.full(False))) & self.G
                if xp.any(created):
                    kept = xp.not_(created)
                    binding_kept = {b: m & kept for b, m in binding.items() if xp.any(m & kept)}
                    if binding_kept:
                        self.names[name] = binding_kept
                    else:  # gone for every candidate: no key left, or every later loop looks at it again
                        del self.names[name]
                    self.drop(binding, created)
        self.G = saved

    def s_for(self, s: ast.For) -> None:
        saved = self.env.get(s.var)
        try:
            lo, hi = veval(s.lo, self.env), veval(s.hi, self.env)
            step = veval(s.step, self.env) if s.step is not None else 1
            with np.errstate(over="ignore", invalid="ignore"):  # a tiny step: trips is inf, as it should be
                trips = np.where(np.asarray(step) > 0, np.ceil((np.asarray(hi) - lo) / np.where(step > 0, step, 1)),
                                 0)
        except (Unknown, TypeError, ValueError):
            self.set_static(s.var, None)
            self.iteration(s.body, None, None, 1, self.xp.full(True))
            return
        xp = self.xp
        k = scope.pipeline_depth(s, self.env)
        k = 1 if k is None else xp.num(k)
        width = xp.num(self._parallel_width(s, trips))
        instances = [(lo, trips >= 1), (lo + step, trips >= 2)]
        if self.depends(s):
            instances.append((lo + (trips - 1) * step, trips >= 3))
        if len(self.first_instance) >= EXACT_LOOP_DEPTH and not all(self.first_instance):
            # Deep inside a later iteration of an enclosing loop, one iteration of this one: each loop
            # walking all its instances in every instance of its enclosing loops is 2 ** depth walks.
            instances = instances[:1]
        for i, (value, need) in enumerate(instances):
            self.first_instance.append(i == 0)
            self.iteration(s.body, s.var, np.broadcast_to(np.asarray(value), (self.n,)), k, xp.mask(need), width)
            self.first_instance.pop()
        self.set_static(s.var, saved)

    def _parallel_width(self, s: ast.For, trips):
        """Iterations of a @parallel(U) loop that run at once: min(|U|, trips) (1 without it)."""
        anns = scope.annotations(s, "parallel")
        if not anns:
            return 1
        arg = anns[0].args[0] if anns[0].args else None
        unit = self.hw.units.get(arg.id) if isinstance(arg, ast.Name) else None
        count = unit.count if unit is not None else trips
        return np.maximum(1, np.minimum(count, trips))

    def depends(self, s: ast.For) -> bool:
        """Whether a loop body's sizes, conditions or inner bounds depend on its index."""
        return s.var in self.names_in(s.body)

    def names_in(self, body) -> set[str]:
        """The names a body's sizes, conditions and inner loop bounds depend on (nested bodies included);
        worked out once per statement and kept with the analysis, which nested loops share."""
        memo = self.a.memo.setdefault("names_in", {})
        out: set[str] = set()
        for t in body:
            names = memo.get(id(t))
            if names is None:
                names = set()
                if isinstance(t, ast.If):
                    names |= free_names(t.cond) | self.names_in(t.then) | self.names_in(t.orelse)
                elif isinstance(t, ast.For):
                    names |= free_names(t.lo) | free_names(t.hi) | free_names(t.step) | self.names_in(t.body)
                elif isinstance(t, ast.Process):
                    names |= self.names_in(t.body)
                for e in scope.exprs_of(t):
                    for x in scope.subexprs(e):
                        ty = self.a.types.get(id(x))
                        if ty is not None and ty.tensor and ty.shape:
                            for d in ty.shape:
                                names |= d.names()
                memo[id(t)] = names
            out |= names
        return out

    def s_process(self, s: ast.Process) -> None:
        """A process runs beside the rest: its peak stays reserved (an upper bound on their overlap)."""
        xp = self.xp
        base = {m: xp.copy(v) for m, v in self.occ.items()}
        outer_local, self.local = self.local, {m: xp.copy(v) for m, v in self.occ.items()}
        count, lo = 1, None
        if s.var is not None:
            try:
                lo, hi = veval(s.lo, self.env), veval(s.hi, self.env)
                count = xp.num(np.maximum(0, np.asarray(hi) - lo))
            except (Unknown, TypeError, ValueError):
                lo = None
        saved_unit, self.process_unit = self.process_unit, s.unit.name
        self.iteration(s.body, s.var if lo is not None else None,
                       None if lo is None else np.broadcast_to(np.asarray(lo), (self.n,)), 1, xp.full(True))
        self.process_unit = saved_unit
        peak, self.local = self.local, outer_local
        for m in self.occ:
            delta = xp.maximum(0.0, peak[m] - base[m]) * count
            if xp.any(delta > 0):
                self.occ[m] = self.occ[m] + xp.where(self.G, delta, 0.0)
                self.reserved[m] = self.reserved[m] + xp.where(self.G, delta, 0.0)
                self.add_buf(Buf(m, xp.where(self.G, delta, 0.0), xp.full(1.0), xp.copy(self.G),
                                 f"process {s.name} at its peak", None, count))
                self.note_peak(m)

    STMTS = {
        ast.Assign: s_assign, ast.Load: s_new, ast.Recv: s_new, ast.Store: s_use, ast.Send: s_use,
        ast.Discard: s_discard, ast.If: s_if, ast.For: s_for, ast.Process: s_process,
    }


#: Loops nested up to this deep walk their first, second (and last) iterations in every iteration of the
#: loops around them; deeper ones do so only where every enclosing loop is in its first iteration (above
#: that, their peaks are those of one iteration). The walk is then linear in depth past this one.
EXACT_LOOP_DEPTH = 4

_WRAP = 2**63  # NumPy's int64 wraps around there; Python's ints do not

#: The one memory of a host walk (Occupancy(host=True)).
HOST = "host"


def host_elem_bytes(dtype: str | None) -> int:
    """Bytes an engine keeps per element on the host: float32, float64 for f64 (dtypes.py)."""
    return 8 if dtype == "f64" else 4


#: A label longer than this is cut (the expression of a long sum would fill the screen).
_LABEL_CHARS = 80


def label_text(label) -> str:
    """What a snapshot's label prints as: a name as it is, an expression as `intermediate EXPR`."""
    if isinstance(label, str):
        return label
    text = show(label)
    return f"intermediate {text if len(text) <= _LABEL_CHARS else text[:_LABEL_CHARS - 1] + '…'}"
