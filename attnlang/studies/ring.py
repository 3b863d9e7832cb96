"""`attn study ring`: ring scheduling of self-attention over m units (Yu & Fujita).

n vectors over m PEs in a unidirectional ring (attnlang/studies/ring.attn, on stdlib/hw/ring.attn).
Each size is run with the three schemes: `full`, `symmetric` (Q = K: each dot product once) and
`causal` (future keys skipped), and the savings against `full` are set beside the paper's closed
forms, (n - 1)/(4n) and (n - 1)/(2n), the share of the MAC work each scheme removes. `speedup` is
the one-PE run's cycles over the m-PE run's (full). Two tables: the small sizes at d = 16 on 8 PEs,
where every fixed cost weighs, and n = 256 to 1024 at d = 64 on 8 and 16 PEs. A run that does not fit
a PE's 4 MiB of registers (the checker's or the run's capacity error) is reported as such.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..api import run
from ..diagnostics import AttnError

KERNEL = Path(__file__).resolve().parent / "ring.attn"
SCHEMES = ("full", "symmetric", "causal")
#: (n values, d, m values, the n at which the one-PE baseline runs)
TABLES = (((16, 32, 64), 16, (8,), 64), ((256, 512, 1024), 64, (8, 16), 256))
SIZES = tuple(n for sizes, *_ in TABLES for n in sizes)


@dataclass
class Row:
    n: int
    m: int
    d: int
    cycles: dict                          # scheme -> cycles, or None where the run does not fit
    errors: dict                          # scheme -> why it did not run
    one_pe_cycles: int | None = None      # full on one PE, for the speedup

    def saving(self, scheme: str) -> float | None:
        full, other = self.cycles.get("full"), self.cycles.get(scheme)
        return 1 - other / full if full and other else None

    def closed_form(self, scheme: str) -> float:
        return (self.n - 1) / ((4 if scheme == "symmetric" else 2) * self.n)

    @property
    def speedup(self) -> float | None:
        full = self.cycles.get("full")
        return self.one_pe_cycles / full if self.one_pe_cycles and full else None

    def to_json(self) -> dict:
        out = asdict(self)
        for s in ("symmetric", "causal"):
            out[f"{s}_saving"] = self.saving(s)
            out[f"{s}_closed_form"] = self.closed_form(s)
        out["speedup"] = self.speedup
        return out


def _cycles(n: int, m: int, scheme: str, d: int) -> int:
    return run(str(KERNEL), defines={"n": n, "m": m, "d": d, "scheme": scheme}, verify="off").cycles


def study(sizes=SIZES) -> list[Row]:
    """One row per (n, m) of TABLES with n in sizes: cycles of the three schemes; at each table's
    baseline n also full on one PE."""
    rows = []
    for ns, d, ms, base in TABLES:
        for n in ns:
            if n not in sizes:
                continue
            for m in ms:
                row = Row(n, m, d, {}, {})
                for s in SCHEMES:
                    try:
                        row.cycles[s] = _cycles(n, m, s, d)
                    except AttnError as exc:
                        row.cycles[s] = None
                        row.errors[s] = str(exc).splitlines()[0]
                if n == base:
                    row.one_pe_cycles = _cycles(n, 1, "full", d)
                rows.append(row)
    return rows


def _num(x) -> str:
    return f"{x:,}" if x is not None else "-"


def _ratio(x) -> str:
    return f"{x:.4f}" if x is not None else "-"


def text_table(rows: list[Row]) -> str:
    head = (f"{'n':>5} {'d':>3} {'m':>3} {'full':>11} {'symmetric':>11} {'saving':>7} {'(n-1)/4n':>9} "
            f"{'causal':>11} {'saving':>7} {'(n-1)/2n':>9}")
    lines = ["ring study (Yu & Fujita): cycles", head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.n:>5} {r.d:>3} {r.m:>3} {_num(r.cycles['full']):>11} {_num(r.cycles['symmetric']):>11} "
                     f"{_ratio(r.saving('symmetric')):>7} {r.closed_form('symmetric'):>9.4f} "
                     f"{_num(r.cycles['causal']):>11} {_ratio(r.saving('causal')):>7} "
                     f"{r.closed_form('causal'):>9.4f}")
    for r in rows:
        if r.speedup:
            lines.append(f"speedup at n = {r.n}, d = {r.d}: one PE {r.one_pe_cycles:,} cycles, {r.m} PEs "
                         f"{r.cycles['full']:,}: {r.speedup:.2f}x (ideal {r.m})")
    for r in rows:
        for s, why in r.errors.items():
            lines.append(f"n = {r.n}, m = {r.m}, {s}: does not run: {why}")
    return "\n".join(lines)
