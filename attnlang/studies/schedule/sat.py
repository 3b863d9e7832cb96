"""The ring schedule as SAT, and the search for the fewest steps (python-sat).

Variables, for a horizon of T steps:

    exec[op, pe, t]   unit op runs on PE pe at step t (only where the op may run, and only in the
                      window of steps its operands can have arrived by and its results still leave
                      in time for)
    holds[d, pe, t]   PE pe holds datum d at step t
    busy[pe, t]       PE pe runs some unit at step t

Clauses:

- every op runs exactly once; a PE runs at most one op per step;
- an op runs only at a step where its PE holds every operand;
- holds[d, p, t] needs holds[d, p, t-1], holds[d, p-1, t-1] (one hop per step, from the previous PE
  on the ring) or an op making d on p at t-1; at step 0 a PE holds only its own kv vectors;
- symmetric: a W run away from its row's PE ends at least hops(pe, home) steps before T, so that its
  partial state reaches the row's PE by the end.

With the problem's Timing (ring.py): softmax_steps L, a W at t needs its score on its PE at t - L;
link_capacity C, variables move[d, pe, t] (d hops from pe - 1 to pe, arriving at t, which needs
holds[d, pe - 1, t - 1]) replace the free hop in the holds clause, at most C of them per PE and step.

Two more constraints follow from these and are added only to make the counting argument visible to
the solver: a PE's busy steps are at least the units it runs, and all busy steps at least all units.
Without them the proofs below the work bound are pigeonhole formulas, which take CDCL solvers time
exponential in the number of units.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import drup as drup_check
from .ring import KernelSchedule, RingProblem, lower_bound

SOLVER = "cadical153"


@dataclass
class Solve:
    steps: int
    sat: bool
    seconds: float
    variables: int
    clauses: int
    with_kernel: bool = False          # the kernel's own placement was assumed
    proof_lines: int | None = None     # the DRUP proof's length, for an UNSAT answer
    placed: dict | None = None         # a SAT answer's schedule: op name -> (pe, step)


@dataclass
class Proof:
    optimum: int
    lower_bound: int
    lower_bound_reason: str
    kernel_steps: int
    solves: list[Solve] = field(default_factory=list)
    schedule: dict = field(default_factory=dict)   # a shortest schedule: op name -> (pe, step)
    unsat_cnf: list[list[int]] | None = None       # the formula at optimum - 1 ...
    unsat_proof: list[str] | None = None           # ... and the solver's DRUP refutation of it
    proof_check: drup_check.Check | None = None    # ... checked by drup.py

    @property
    def kernel_is_optimal(self) -> bool:
        return self.kernel_steps == self.optimum

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.solves)


class Encoding:
    """The clauses for one horizon T."""

    def __init__(self, pr: RingProblem, steps: int) -> None:
        from pysat.card import CardEnc, EncType
        from pysat.formula import IDPool

        self.pr, self.T, self.pool, self.clauses = pr, steps, IDPool(), []
        self._card, self._enc = CardEnc, EncType
        self.makers = {o.makes: o for o in pr.ops if o.makes}
        self.windows = self._windows()
        self._exactly_once()
        self._one_per_step()
        self._holds()
        self._counting()

    def x(self, k: int, p: int, t: int) -> int | None:
        lo, hi = self.windows.get((k, p), (1, 0))
        return self.pool.id(("x", k, p, t)) if lo <= t <= hi else None

    def h(self, d: str, p: int, t: int) -> int | None:
        return self.pool.id(("h", d, p, t)) if t >= self.arrive[d][p] else None

    def lag(self, o, d: str) -> int:
        """Steps before its run that op o needs datum d on its PE: a W's score, the softmax's."""
        return self.pr.timing.softmax_steps if o.makes is None and d.startswith("s ") else 0

    def _windows(self) -> dict[tuple[int, int], tuple[int, int]]:
        """The steps at which op k can run on PE p: not before its operands can be there, not so late
        that what it makes (a score, a partial state) cannot reach where it is needed by T."""
        pr, m = self.pr, self.pr.m
        self.arrive = {}
        for d in pr.data:                                    # kv first: scores depend on them
            if pr.initial(d) is not None:
                self.arrive[d] = [pr.hops(pr.initial(d), p) for p in range(m)]
        ready = {}
        for k, o in enumerate(pr.ops):
            for p in o.pes:
                ready[k, p] = max((self.arrive[d][p] for d in o.needs if d in self.arrive), default=0)
            if o.makes:
                self.arrive[o.makes] = [min(ready[k, q] + 1 + pr.hops(q, p) for q in o.pes) for p in range(m)]
        for k, o in enumerate(pr.ops):                       # a W waits for its score, made above
            for p in o.pes:
                ready[k, p] = max(self.arrive[d][p] + self.lag(o, d) for d in o.needs)
        users = {}
        for o in pr.ops:
            for d in o.needs:
                users.setdefault(d, []).append(o)
        out = {}
        for k, o in enumerate(pr.ops):
            for p in o.pes:
                last = self.T - 1 - (pr.hops(p, o.home) if o.makes is None else 0)
                if o.makes:                                   # the nearest user of the score runs after it
                    last = self.T - 2 - pr.timing.softmax_steps - min(pr.hops(p, q) for u in users[o.makes]
                                                                      for q in u.pes)
                if ready[k, p] <= last:
                    out[k, p] = (ready[k, p], last)
        return out

    def _amo(self, lits: list[int]) -> None:
        if len(lits) > 1:
            enc = self._card.atmost(lits, 1, vpool=self.pool, encoding=self._enc.seqcounter)
            self.clauses += enc.clauses

    def _atmost(self, lits: list[int], bound: int) -> None:
        if bound < 0:
            self.clauses.append([])
        elif bound < len(lits):
            enc = self._card.atmost(lits, bound, vpool=self.pool, encoding=self._enc.kmtotalizer)
            self.clauses += enc.clauses

    def _exactly_once(self) -> None:
        for k, o in enumerate(self.pr.ops):
            lits = [v for p in o.pes for t in range(self.T) if (v := self.x(k, p, t))]
            self.clauses.append(lits)                        # empty when the op cannot fit: UNSAT
            self._amo(lits)

    def _one_per_step(self) -> None:
        self.running = {}
        for k, o in enumerate(self.pr.ops):
            for p in o.pes:
                for t in range(self.T):
                    if v := self.x(k, p, t):
                        self.running.setdefault((p, t), []).append(v)
        for lits in self.running.values():
            self._amo(lits)

    def _holds(self) -> None:
        pr, m = self.pr, self.pr.m
        cap = pr.timing.link_capacity
        index = {o.name: k for k, o in enumerate(pr.ops)}
        moves: dict[tuple[int, int], list[int]] = {}
        for d in pr.data:
            k = index[self.makers[d].name] if d in self.makers else None
            for p in range(m):
                for t in range(self.arrive[d][p], self.T):
                    here = self.h(d, p, t)
                    if t == 0:                               # only a kv vector on its owner
                        continue
                    came = [v for v in (self.h(d, p, t - 1),) if v]
                    if hop := self.h(d, (p - 1) % m, t - 1):
                        if cap is None or m == 1:
                            came.append(hop)
                        else:                                # a move over the link, which carries cap a step
                            mv = self.pool.id(("move", d, p, t))
                            self.clauses.append([-mv, hop])
                            moves.setdefault((p, t), []).append(mv)
                            came.append(mv)
                    if k is not None and (v := self.x(k, p, t - 1)):
                        came.append(v)
                    self.clauses.append([-here] + came)
        for lits in moves.values():
            self._atmost(lits, cap)
        for k, o in enumerate(pr.ops):
            for p in o.pes:
                for t in range(self.T):
                    if v := self.x(k, p, t):
                        for d in o.needs:
                            hv = self.h(d, p, t - self.lag(o, d)) if t >= self.lag(o, d) else None
                            self.clauses.append([-v, hv] if hv else [-v])

    def _counting(self) -> None:
        """busy[p, t] is exactly 'some op runs on p at t'; then the implied counts."""
        pr, T = self.pr, self.T
        busy = {}
        for p in range(pr.m):
            for t in range(T):
                b = busy[p, t] = self.pool.id(("busy", p, t))
                lits = self.running.get((p, t), [])
                self.clauses.append([-b] + lits)
                self.clauses += [[-v, b] for v in lits]
        for p in range(pr.m):
            pinned = sum(1 for o in pr.ops if o.pes == (p,))
            flexible = []
            for k, o in enumerate(pr.ops):
                if len(o.pes) > 1 and p in o.pes:
                    on = self.pool.id(("on", k, p))
                    flexible.append(on)
                    self.clauses += [[-v, on] for t in range(T) if (v := self.x(k, p, t))]
            self._atmost(flexible + [-busy[p, t] for t in range(T)], T - pinned)
        self._atmost([-b for b in busy.values()], pr.m * T - len(pr.ops))


def solve(pr: RingProblem, steps: int, kernel: KernelSchedule | None = None,
          proof: bool = False) -> tuple[Solve, Encoding, list[str] | None]:
    """Is there a schedule of at most `steps` steps? With kernel, is the kernel's own placement one?"""
    from pysat.solvers import Solver

    t0 = time.perf_counter()
    enc = Encoding(pr, steps)
    assume = []
    if kernel is not None:
        for k, o in enumerate(pr.ops):
            p, t = kernel.placed[o.name]
            v = enc.x(k, p, t)
            if v is None:                                    # outside every window: not a schedule here
                return Solve(steps, False, time.perf_counter() - t0, enc.pool.top, len(enc.clauses), True), \
                    enc, None
            assume.append(v)
    with Solver(name=SOLVER, bootstrap_with=enc.clauses, with_proof=proof) as s:
        sat = s.solve(assumptions=assume)
        drup = s.get_proof() if proof and not sat else None
        model = set(s.get_model()) if sat else set()
    placed = {o.name: (p, t) for k, o in enumerate(pr.ops) for p in o.pes for t in range(steps)
              if enc.x(k, p, t) in model} if sat else None
    out = Solve(steps, bool(sat), time.perf_counter() - t0, enc.pool.top, len(enc.clauses), kernel is not None,
                len(drup) if drup is not None else None, placed)
    return out, enc, drup


def prove(pr: RingProblem, kernel: KernelSchedule) -> Proof:
    """The fewest steps, by bisection between the work bound less one (proven UNSAT) and the kernel's
    own schedule (checked to be a solution of the same encoding)."""
    lb, why = lower_bound(pr)
    result = Proof(0, lb, why, kernel.steps)
    check, _, _ = solve(pr, kernel.steps, kernel)
    result.solves.append(check)
    if not check.sat:
        raise RuntimeError(f"the kernel's own {kernel.steps}-step schedule does not satisfy the encoding")
    best = check.placed
    lo, hi = lb - 1, kernel.steps
    below = None
    while True:
        if lo < 0:
            lo = -1
            break
        s, enc, drup = solve(pr, lo, proof=True)
        result.solves.append(s)
        if not s.sat:
            below = (enc.clauses, drup)
            break
        hi, lo, best = lo, lo - 1, s.placed                  # never with a sound lower bound
    while hi - lo > 1:
        mid = (lo + hi) // 2
        s, enc, drup = solve(pr, mid, proof=True)
        result.solves.append(s)
        if s.sat:
            hi, best = mid, s.placed
        else:
            lo, below = mid, (enc.clauses, drup)
    result.optimum, result.schedule = hi, best
    if below is not None and lo == hi - 1:
        result.unsat_cnf, result.unsat_proof = below
        result.proof_check = drup_check.check(*below)
    return result
