"""The ring schedule of self-attention as units of work (Yu & Fujita), and the kernel's own order.

n vectors over m PEs in a unidirectional ring (PE p sends only to PE (p+1) % m), B = n/m of them per
PE. The unit of work is one length-d vector operation on a PE's MAC cell, d cycles on the 1 x 1
matrix unit of stdlib/hw/ring.attn:

    D(i, j)   the dot product q_i . k_j, which makes the score s(i, j)
    W(i, j)   the weighted-sum update acc_i += p_ij v_j, which needs s(i, j) and v_j

A step is one unit; a PE runs at most one unit per step. Data: `kv j` (key j and value j; with
scheme = symmetric the key is q_j) starts on the PE that owns vector j, and `s i,j` on the PE where
its D runs; a datum moves one hop per step along the ring, and is never used up. Softmax, merges and
rescaling are vector-unit work, free here: every unit of MAC work is counted, nothing else.

Two options make the model closer to the interpreter's timing (a Timing; the default is neither):

- softmax_steps L: the vector unit's softmax between a score and its weighted sum takes L steps:
  W(i, j) runs at least L steps after s(i, j) is on its PE (made there at t: from t + 1 + L). On
  hw.ring the softmax of a block is about 5 vector cycles, under one step from d = 5 on: L = 1.
- link_capacity C: a link carries at most C data a step (each PE receives at most C a step from the
  previous one); unlimited by default. With it every W runs on its row's PE (a W run elsewhere
  would send a partial state, which the model does not carry as data).

Who runs what (the ring schedule's rule: row work is owned by the PE that owns the query row):

- full:      every D(i, j) and W(i, j) on owner(i).
- causal:    the same for j <= i; rows owned folded as the kernel owns them (PE p: chunk p of the first
             half of the rows, chunk m-1-p of the second).
- symmetric: Q = K, so s(i, j) = s(j, i): one D per pair i <= j, on owner(i) or owner(j). W(i, j) on
             owner(i), or on owner(j) where v_j lives, folded into a partial softmax state that must
             then reach owner(i) by the end, one hop per step. (The kernel runs every W on owner(i)
             and sends the scores there instead.)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

SCHEMES = ("full", "symmetric", "causal")


@dataclass(frozen=True)
class Op:
    """One unit of work."""

    name: str                      # "D(3,5)", "W(3,5)"
    needs: tuple[str, ...]         # data it reads
    makes: str | None              # the datum it produces (a D's score)
    pes: tuple[int, ...]           # the PEs it may run on
    home: int                      # the PE that owns its row: a W run elsewhere sends its partial state here


@dataclass(frozen=True)
class Timing:
    """What the work-unit model charges besides the units (see the module's docstring)."""

    softmax_steps: int = 0             # steps between a score on its W's PE and the W
    link_capacity: int | None = None   # data a link carries a step; None: unlimited

    def describe(self) -> str:
        if self == Timing():
            return "the unit-step model (softmax free, links unlimited)"
        links = "unlimited links" if self.link_capacity is None else \
            f"links carrying {self.link_capacity} datum{'s' * (self.link_capacity != 1)} a step"
        return f"the timed model (softmax {self.softmax_steps} step{'s' * (self.softmax_steps != 1)}, {links})"

    def to_json(self) -> dict:
        return {"softmax_steps": self.softmax_steps, "link_capacity": self.link_capacity}


@dataclass(frozen=True)
class RingProblem:
    n: int
    m: int
    scheme: str
    owner: tuple[int, ...]         # owner[i]: the PE that owns vector i (its query row and, at first, kv i)
    ops: tuple[Op, ...]
    data: tuple[str, ...]
    timing: Timing = Timing()

    @property
    def rows_per_pe(self) -> int:
        return self.n // self.m

    def hops(self, src: int, dst: int) -> int:
        """Steps a datum takes from PE src to PE dst on the unidirectional ring."""
        return (dst - src) % self.m

    def initial(self, datum: str) -> int | None:
        """The PE that holds datum at step 0 (the kv vectors), or None (a score: made by a D)."""
        return self.owner[int(datum.split()[1])] if datum.startswith("kv ") else None


def owned_rows(n: int, m: int, scheme: str, p: int) -> list[int]:
    """The rows PE p owns, in the kernel's order (examples/ring_attention.attn)."""
    b = n // m
    if scheme != "causal":
        return list(range(p * b, (p + 1) * b))
    first, second = (b + 1) // 2, b // 2              # chunk p of the first half, chunk m-1-p of the second
    return list(range(p * first, (p + 1) * first)) + \
        list(range(m * first + (m - 1 - p) * second, m * first + (m - p) * second))


def problem(n: int, m: int, scheme: str, timing: Timing = Timing()) -> RingProblem:
    """The units of work of the ring schedule for n vectors on m PEs (n % m == 0)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}")
    owner = [0] * n
    for p in range(m):
        for i in owned_rows(n, m, scheme, p):
            owner[i] = p
    ops: list[Op] = []
    if scheme == "symmetric":
        for i in range(n):
            for j in range(i, n):
                ops.append(Op(f"D({i},{j})", (f"kv {i}", f"kv {j}"), _score(i, j), _pes(owner, i, j), owner[i]))
        for i in range(n):
            for j in range(n):
                pes = (owner[i],) if timing.link_capacity is not None else _pes(owner, i, j)
                ops.append(Op(f"W({i},{j})", (_score(min(i, j), max(i, j)), f"kv {j}"), None, pes, owner[i]))
    else:
        pairs = [(i, j) for i in range(n) for j in range(n) if scheme == "full" or j <= i]
        ops += [Op(f"D({i},{j})", (f"kv {j}",), _score(i, j), (owner[i],), owner[i]) for i, j in pairs]
        ops += [Op(f"W({i},{j})", (_score(i, j), f"kv {j}"), None, (owner[i],), owner[i]) for i, j in pairs]
    data = [f"kv {j}" for j in range(n)] + [o.makes for o in ops if o.makes]
    return RingProblem(n, m, scheme, tuple(owner), tuple(ops), tuple(data), timing)


def _score(i: int, j: int) -> str:
    return f"s {i},{j}"


def _pes(owner, i: int, j: int) -> tuple[int, ...]:
    return (owner[i],) if owner[i] == owner[j] else (owner[i], owner[j])


def lower_bound(pr: RingProblem) -> tuple[int, str]:
    """A step count no schedule can beat, and why: the busiest PE's pinned work, or all the work shared."""
    pinned = [0] * pr.m
    for o in pr.ops:
        if len(o.pes) == 1:
            pinned[o.pes[0]] += 1
    total = -(-len(pr.ops) // pr.m)
    busiest = max(range(pr.m), key=lambda p: pinned[p])
    if pinned[busiest] >= total:
        return pinned[busiest], f"PE {busiest} must run {pinned[busiest]} units itself, one per step"
    return total, f"{len(pr.ops)} units over {pr.m} PEs, one per PE per step"


# --- the kernel's own schedule ---------------------------------------------------------------------

@dataclass
class KernelSchedule:
    """The kernel's order of units on each PE, timed in the work-unit model."""

    steps: int
    placed: dict[str, tuple[int, int]] = field(default_factory=dict)   # op name -> (pe, step)
    units: list[int] = field(default_factory=list)                     # units per PE


def kernel_schedule(pr: RingProblem) -> KernelSchedule:
    """What examples/ring_attention.attn does, unit by unit, timed as soon as the model allows.

    Each PE issues its program in order (as the kernel's process does): a `wait` stops the issue until
    a datum has arrived (a recv), a `send` passes a datum on one hop (arriving a step later, or at the
    first later step its link has room for it), and a unit starts when the MAC cell is free, the unit
    is issued and its operands are there (a W's score softmax_steps before).
    """
    ops = {o.name: o for o in pr.ops}
    lag = pr.timing.softmax_steps
    cap = pr.timing.link_capacity
    carried: list[dict[int, int]] = [defaultdict(int) for _ in range(pr.m)]  # link into pe -> step -> data
    programs = [_program(pr, p) for p in range(pr.m)]
    avail = [dict() for _ in range(pr.m)]          # pe -> datum -> first step it is there
    for d in pr.data:
        if pr.initial(d) is not None:
            avail[pr.initial(d)][d] = 0
    issue, free, pc = [0] * pr.m, [0] * pr.m, [0] * pr.m
    out = KernelSchedule(0, units=[sum(1 for it in prog if it[0] == "op") for prog in programs])
    inf = float("inf")
    while any(pc[p] < len(programs[p]) for p in range(pr.m)):
        moved = False
        for p in range(pr.m):
            while pc[p] < len(programs[p]):
                kind, what = programs[p][pc[p]]
                needs = ops[what].needs if kind == "op" else (what,)
                late = lag if kind == "op" and ops[what].makes is None else 0   # a W: its score's softmax
                ready = max((avail[p].get(d, inf) + (late if d.startswith("s ") else 0) for d in needs),
                            default=0)
                if ready == inf:
                    break                          # waits for another PE
                if kind == "wait":
                    issue[p] = max(issue[p], ready)
                elif kind == "send":               # a copy moves on one hop
                    q, at = (p + 1) % pr.m, max(issue[p], ready) + 1
                    while cap is not None and carried[q][at] >= cap:
                        at += 1
                    carried[q][at] += 1
                    avail[q][what] = min(avail[q].get(what, inf), at)
                else:
                    start = max(free[p], issue[p], ready)
                    free[p] = start + 1
                    out.placed[what] = (p, start)
                    if ops[what].makes:
                        avail[p][ops[what].makes] = start + 1
                pc[p] += 1
                moved = True
        if not moved:
            raise RuntimeError("the kernel's ring schedule waits on itself")  # a bug in _program
    out.steps = max(free)
    return out


def _program(pr: RingProblem, p: int) -> list[tuple]:
    """PE p's program: ("op", name), ("wait", datum), ("send", datum)."""
    if pr.scheme == "symmetric":
        return _symmetric_program(pr, p)
    m, mine = pr.m, owned_rows(pr.n, pr.m, pr.scheme, p)

    def keys(s):
        return owned_rows(pr.n, m, pr.scheme, (p - s) % m)

    def pairs(s):
        return [(i, j) for i in mine for j in keys(s) if pr.scheme == "full" or j <= i]

    # each step's dot products go before the previous step's weighted sums (the kernel's pipelining)
    prog: list[tuple] = [("op", f"D({i},{j})") for i, j in pairs(0)]
    if m > 1:
        prog += [("send", f"kv {j}") for j in keys(0)]
    for s in range(m):
        if s < m - 1:
            prog += [("wait", f"kv {j}") for j in keys(s + 1)]
            if s < m - 2:
                prog += [("send", f"kv {j}") for j in keys(s + 1)]
            prog += [("op", f"D({i},{j})") for i, j in pairs(s + 1)]
        prog += [("op", f"W({i},{j})") for i, j in pairs(s)]
    return prog


def split_rows(b: int) -> tuple[int, int]:
    """The split of a block pair at ring distance m/2 (m even): of the B x B scores S[x, x + m/2]
    (x < m/2), PE x computes rows 0 .. hr and the first hc keys of row hr, ceil(B^2 / 2) in all, and
    PE x + m/2 the rest; (hr, hc) = divmod(ceil(B^2 / 2), B)."""
    return divmod((b * b + 1) // 2, b)


def _symmetric_program(pr: RingProblem, p: int) -> list[tuple]:
    """The kernel's symmetric program, slot by slot (examples/ring_attention.attn, scheme = symmetric).

    Every weighted sum runs on its row's PE; the dot products of a block pair {p, p - s} run on PE p,
    and their scores travel on to PE p - s (m - s hops) in a score stream. Slot t of PE p holds, in
    order: the receipt of K/V block p - t (t < m, passed on unless t = m - 1); the hop of each score
    stream s made at slot 2s that reaches it now (h = t - 2s hops, 1 <= h <= m - s; passed on unless
    h = m - s, where it is PE p's own); then its units, scores before weighted sums: slot 0 the
    diagonal block's upper triangle; the scores of the pair at distance s (1 <= s <= m/2; at m/2 with
    m even the PE's part of the split pair) at slot 2s - 2 (slot 1 for s = 1), a slot before its rows'
    weighted sums against them at slot 2s, which then sends the scores on (so that the vector unit's
    softmax between a pair's scores and its sums overlaps the next pair's scores); the diagonal
    block's weighted sums at slot m (m odd), m + 1 (m even, p < m/2) or m - 1 (m even, p >= m/2,
    whose part of the split pair is the smaller); at slot m + s the weighted sums against the scores
    of stream s that have just arrived.
    """
    m, b = pr.m, pr.rows_per_pe
    half, even = m // 2, m % 2 == 0
    hr, hc = split_rows(b)

    def block(x):
        return list(range((x % m) * b, (x % m + 1) * b))

    def first(x):                  # the pairs (i of x, j of x + m/2), x < m/2, that PE x scores
        return [(i, j) for r, i in enumerate(block(x)) for c, j in enumerate(block(x + half))
                if r < hr or (r == hr and c < hc)]

    def made(s, q):                # the pairs (i of q, j) whose scores PE q computes in stream s
        q %= m
        if not (even and s == half):
            return [(i, j) for i in block(q) for j in block(q - s)]
        if q < half:
            return first(q)
        mine = set(first(q - half))
        return [(j, i) for i in block(q - half) for j in block(q) if (i, j) not in mine]

    def scores(s, q):
        return [f"s {min(i, j)},{max(i, j)}" for i, j in made(s, q)]

    items: list[tuple[int, int, tuple]] = []      # (slot, 0 receive / 1 scores / 2 sums / 3 send, item)

    def units(slot, ops, order=2):
        items.extend((slot, order, ("op", o)) for o in ops)

    def receive(slot, data, pass_on):
        items.extend((slot, 0, x) for d in data for x in [("wait", d)] + [("send", d)] * pass_on)

    mine = block(p)
    units(0, [f"D({i},{j})" for a, i in enumerate(mine) for j in mine[a:]], 1)
    if m > 1:
        items.extend((0, 3, ("send", f"kv {j}")) for j in mine)
    for t in range(1, m):
        receive(t, [f"kv {j}" for j in block(p - t)], t < m - 1)
    for s in range(1, half + 1):
        own = made(s, p)
        units(max(2 * s - 2, 1), [f"D({min(i, j)},{max(i, j)})" for i, j in own], 1)
        units(2 * s, [f"W({i},{j})" for i, j in own])
        items.extend((2 * s, 3, ("send", d)) for d in scores(s, p))
        for h in range(1, m - s + 1):
            receive(2 * s + h, scores(s, p - h), h < m - s)
    diag = m if not even else (m + 1 if p < half else m - 1)
    units(diag, [f"W({i},{j})" for i in mine for j in mine])
    for s in range(1, half + 1):
        units(m + s, [f"W({j},{i})" for i, j in made(s, p + s)])
    items.sort(key=lambda x: (x[0], x[1]))        # stable: within a slot, in the order made above
    return [x for _, _, x in items]
