"""`attn study ring`: ring scheduling of self-attention over m units (Yu & Fujita).

n vectors over m PEs in a unidirectional ring (attnlang/studies/ring.attn, on stdlib/hw/ring.attn).
Each size is run with the three schemes: `full`, `symmetric` (Q = K: each dot product once) and
`causal` (future keys skipped), and the savings against `full` are set beside the paper's closed
forms, (n - 1)/(4n) and (n - 1)/(2n), the share of the MAC work each scheme removes. `speedup` is
the one-PE run's cycles over the m-PE run's (full).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..api import run

KERNEL = Path(__file__).resolve().parent / "ring.attn"
SIZES = (16, 32, 64)
UNITS = 8
D = 16


@dataclass
class Row:
    n: int
    m: int
    d: int
    full_cycles: int
    symmetric_cycles: int
    causal_cycles: int
    one_pe_cycles: int | None = None     # full on one PE, for the speedup

    @property
    def symmetric_saving(self) -> float:
        return 1 - self.symmetric_cycles / self.full_cycles

    @property
    def causal_saving(self) -> float:
        return 1 - self.causal_cycles / self.full_cycles

    @property
    def symmetric_closed_form(self) -> float:
        return (self.n - 1) / (4 * self.n)

    @property
    def causal_closed_form(self) -> float:
        return (self.n - 1) / (2 * self.n)

    @property
    def speedup(self) -> float | None:
        return self.one_pe_cycles / self.full_cycles if self.one_pe_cycles else None

    def to_json(self) -> dict:
        out = asdict(self)
        for k in ("symmetric_saving", "causal_saving", "symmetric_closed_form", "causal_closed_form", "speedup"):
            out[k] = getattr(self, k)
        return out


def _cycles(n: int, m: int, scheme: str, d: int) -> int:
    return run(str(KERNEL), defines={"n": n, "m": m, "d": d, "scheme": scheme}, verify="off").cycles


def study(sizes=SIZES, m: int = UNITS, d: int = D, speedup_at: int | None = 64) -> list[Row]:
    """One row per n: cycles of the three schemes on m PEs; at n = speedup_at also full on one PE."""
    rows = []
    for n in sizes:
        row = Row(n, m, d, *(_cycles(n, m, s, d) for s in ("full", "symmetric", "causal")))
        if n == speedup_at:
            row.one_pe_cycles = _cycles(n, 1, "full", d)
        rows.append(row)
    return rows


def text_table(rows: list[Row]) -> str:
    head = (f"ring study (Yu & Fujita): d = {rows[0].d}, m = {rows[0].m}, cycles\n"
            f"{'n':>5} {'full':>9} {'symmetric':>10} {'saving':>7} {'(n-1)/4n':>9} "
            f"{'causal':>9} {'saving':>7} {'(n-1)/2n':>9}")
    lines = [head, "-" * len(head.splitlines()[1])]
    for r in rows:
        lines.append(f"{r.n:>5} {r.full_cycles:>9,} {r.symmetric_cycles:>10,} {r.symmetric_saving:>7.3f} "
                     f"{r.symmetric_closed_form:>9.3f} {r.causal_cycles:>9,} {r.causal_saving:>7.3f} "
                     f"{r.causal_closed_form:>9.3f}")
    for r in rows:
        if r.speedup:
            lines.append(f"speedup at n = {r.n}: one PE {r.one_pe_cycles:,} cycles, {r.m} PEs {r.full_cycles:,}: "
                         f"{r.speedup:.2f}x (ideal {r.m})")
    return "\n".join(lines)
