"""A forward checker for DRUP refutations, so that an UNSAT answer is checked, not taken on trust.

A DRUP proof (what CaDiCaL and the other solvers of python-sat write, and what drat-trim reads) is
a list of lemmas, each a clause `l1 l2 ... 0`, and deletions `d l1 l2 ... 0`. It refutes a CNF when
every lemma is a reverse-unit-propagation (RUP) consequence of the formula and the lemmas before it
(asserting the negation of each of its literals and propagating units reaches a conflict), and unit
propagation over the formula and all the lemmas finally reaches a conflict (the empty clause).

Deletions are read and ignored: checking each lemma against a superset of the clauses the solver
kept is still sound (every clause there is the formula's or follows from it), only slower, and the
proofs of `attn schedule --prove` are short. Propagation uses two watched literals per clause.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Check:
    refuted: bool        # the formula is proven unsatisfiable
    lemmas: int          # lemmas checked (each one RUP)
    deletions: int       # deletion lines read (and ignored)
    reason: str          # why not, when not refuted; how, when refuted


class _Propagator:
    """Clauses with two watched literals, an assignment and a trail, for unit propagation."""

    def __init__(self, nvars: int):
        self.val = [0] * (nvars + 1)          # +1 true, -1 false, 0 unassigned (by variable)
        self.watches: dict[int, list[list[int]]] = {}
        self.trail: list[int] = []
        self.head = 0                          # trail entries propagated so far
        self.conflict = False                  # a conflict with no assumptions: the formula is refuted

    def value(self, lit: int) -> int:
        v = self.val[abs(lit)] if abs(lit) < len(self.val) else 0
        return v if lit > 0 else -v

    def assign(self, lit: int) -> None:
        var = abs(lit)
        if var >= len(self.val):
            self.val.extend([0] * (var + 1 - len(self.val)))
        self.val[var] = 1 if lit > 0 else -1
        self.trail.append(lit)

    def add(self, clause: list[int]) -> None:
        """Add a clause at the top level and propagate what it implies there."""
        if self.conflict:
            return
        lits = sorted(set(clause), key=lambda x: self.value(x) == -1)   # the non-false literals first
        if any(-x in lits for x in lits) or any(self.value(x) == 1 for x in lits):
            if len(lits) >= 2:                  # satisfied or a tautology: kept for later checks
                self._watch(lits)
            return
        if not lits or self.value(lits[0]) == -1:
            self.conflict = True
            return
        if len(lits) >= 2:
            self._watch(lits)
        if len(lits) == 1 or self.value(lits[1]) == -1:
            self.assign(lits[0])
            if not self.propagate():
                self.conflict = True

    def _watch(self, lits: list[int]) -> None:
        self.watches.setdefault(lits[0], []).append(lits)
        self.watches.setdefault(lits[1], []).append(lits)

    def propagate(self) -> bool:
        """Propagate the trail's unpropagated entries; False on a conflict."""
        while self.head < len(self.trail):
            false_lit = -self.trail[self.head]
            self.head += 1
            ws = self.watches.get(false_lit)
            if not ws:
                continue
            keep: list[list[int]] = []
            for i, c in enumerate(ws):
                if c[0] == false_lit:
                    c[0], c[1] = c[1], c[0]
                if self.value(c[0]) == 1:
                    keep.append(c)
                    continue
                for k in range(2, len(c)):
                    if self.value(c[k]) != -1:
                        c[1], c[k] = c[k], c[1]
                        self.watches.setdefault(c[1], []).append(c)
                        break
                else:
                    keep.append(c)
                    if self.value(c[0]) == -1:
                        keep.extend(ws[i + 1:])
                        self.watches[false_lit] = keep
                        return False
                    self.assign(c[0])
            self.watches[false_lit] = keep
        return True

    def rup(self, lemma: list[int]) -> bool:
        """Does asserting the lemma's negation and propagating reach a conflict? (Undone after.)"""
        mark = len(self.trail)
        ok = False
        for lit in lemma:
            v = self.value(lit)
            if v == 1:                                  # true already: its negation conflicts at once
                ok = True
                break
            if v == 0:
                self.assign(-lit)
        if not ok:
            ok = not self.propagate()
        for lit in self.trail[mark:]:
            self.val[abs(lit)] = 0
        del self.trail[mark:]
        self.head = mark
        return ok


def _clause(line: str) -> list[int] | None:
    nums = [int(x) for x in line.split()]
    if not nums or nums[-1] != 0:
        return None
    return nums[:-1]


def check(cnf: list[list[int]], proof: list[str]) -> Check:
    """Check a DRUP refutation of `cnf` (clauses as lists of nonzero ints) given as proof lines."""
    nvars = max((abs(x) for c in cnf for x in c), default=0)
    prop = _Propagator(nvars)
    for c in cnf:
        prop.add(list(c))
        if prop.conflict:
            return Check(True, 0, 0, "the formula's unit clauses propagate to a conflict")
    lemmas = deletions = 0
    for n, raw in enumerate(proof, 1):
        line = raw.strip()
        if not line or line.startswith("c"):
            continue
        if line.startswith("d"):
            if _clause(line[1:]) is None:
                return Check(False, lemmas, deletions, f"proof line {n} is not a clause: {line!r}")
            deletions += 1
            continue
        lemma = _clause(line)
        if lemma is None:
            return Check(False, lemmas, deletions, f"proof line {n} is not a clause: {line!r}")
        if not prop.rup(lemma):
            return Check(False, lemmas, deletions, f"proof line {n}: lemma {line!r} does not follow by unit "
                                                   "propagation")
        lemmas += 1
        prop.add(lemma)
        if prop.conflict:
            return Check(True, lemmas, deletions, f"lemma {lemmas} (proof line {n}) completes the refutation")
    if prop.rup([]):
        return Check(True, lemmas, deletions, "unit propagation over the formula and the lemmas conflicts")
    return Check(False, lemmas, deletions, "the proof ends without a conflict: the empty clause does not follow")
