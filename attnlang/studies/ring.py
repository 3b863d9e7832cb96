"""`attn study ring`: ring scheduling of self-attention over m units (Yu & Fujita).

n vectors over m PEs in a unidirectional ring (attnlang/studies/ring.attn, on stdlib/hw/ring.attn).
Each size is run with the three schemes: `full`, `symmetric` (Q = K: each dot product once) and
`causal` (future keys skipped), and the savings against `full` are set beside the paper's closed
forms, (n - 1)/(4n) and (n - 1)/(2n), the share of the MAC work each scheme removes. Two tables: the
small sizes at d = 16 on 8 PEs, where every fixed cost weighs, and n = 256 to 4096 at d = 64 on 8 and
16 PEs. `speedup` is one PE's cycles over the m PEs' (full): the one-PE run where it fits one PE's
8 MiB of registers (n <= 512), else the one-PE MAC work 2 n^2 d, which no one-PE run can beat (so the
speedup shown there is a lower bound; at n = 256 and 512 the run is within 0.1% of it). Each run's
peak register use per PE is reported; a run that does not fit (the checker's or the run's capacity
error) is reported as such.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..api import run
from ..diagnostics import AttnError

KERNEL = Path(__file__).resolve().parent / "ring.attn"
SCHEMES = ("full", "symmetric", "causal")
#: (n values, d, m values, the n at which the one-PE baseline runs)
TABLES = (((16, 32, 64), 16, (8,), (16, 32, 64)), ((256, 512, 1024, 2048, 4096), 64, (8, 16), (256, 512)))
SIZES = tuple(n for sizes, *_ in TABLES for n in sizes)


@dataclass
class Row:
    n: int
    m: int
    d: int
    cycles: dict                          # scheme -> cycles, or None where the run does not fit
    errors: dict                          # scheme -> why it did not run
    peak_bytes_per_pe: dict = field(default_factory=dict)  # scheme -> the registers' peak / m
    one_pe_cycles: int | None = None      # full on one PE, where it was run

    def saving(self, scheme: str) -> float | None:
        full, other = self.cycles.get("full"), self.cycles.get(scheme)
        return 1 - other / full if full and other else None

    def closed_form(self, scheme: str) -> float:
        return (self.n - 1) / ((4 if scheme == "symmetric" else 2) * self.n)

    @property
    def one_pe_bound(self) -> int:
        """One PE's MAC work: n^2 dot products and n^2 weighted-sum updates of d cycles each."""
        return 2 * self.n * self.n * self.d

    @property
    def speedup(self) -> float | None:
        full = self.cycles.get("full")
        return (self.one_pe_cycles or self.one_pe_bound) / full if full else None

    def to_json(self) -> dict:
        out = asdict(self)
        for s in ("symmetric", "causal"):
            out[f"{s}_saving"] = self.saving(s)
            out[f"{s}_closed_form"] = self.closed_form(s)
        out["one_pe_bound"] = self.one_pe_bound
        out["speedup"] = self.speedup
        out["speedup_from"] = "run" if self.one_pe_cycles else "bound"
        return out


def _run(n: int, m: int, scheme: str, d: int):
    return run(str(KERNEL), defines={"n": n, "m": m, "d": d, "scheme": scheme}, verify="off")


def study(sizes=SIZES, tables=TABLES) -> list[Row]:
    """One row per (n, m) of the tables with n in sizes: cycles and peak registers of the three schemes;
    at each table's baseline sizes also full on one PE."""
    rows = []
    for ns, d, ms, base in tables:
        for n in ns:
            if n not in sizes:
                continue
            for m in ms:
                row = Row(n, m, d, {}, {})
                for s in SCHEMES:
                    try:
                        r = _run(n, m, s, d)
                    except AttnError as exc:
                        row.cycles[s] = None
                        row.errors[s] = str(exc).splitlines()[0]
                        continue
                    row.cycles[s] = r.cycles
                    row.peak_bytes_per_pe[s] = r.to_json()["memories"]["regs"]["peak_bytes"] / m
                if n in base:
                    row.one_pe_cycles = _run(n, 1, "full", d).cycles
                rows.append(row)
    return rows


def _num(x) -> str:
    return f"{x:,}" if x is not None else "-"


def _ratio(x) -> str:
    return f"{x:.4f}" if x is not None else "-"


def _mib(row: Row) -> str:
    return "/".join(f"{row.peak_bytes_per_pe[s] / 2**20:.2f}" if s in row.peak_bytes_per_pe else "-"
                    for s in SCHEMES)


def text_table(rows: list[Row]) -> str:
    head = (f"{'n':>5} {'d':>3} {'m':>3} {'full':>12} {'speedup':>8} {'symmetric':>12} {'saving':>7} "
            f"{'(n-1)/4n':>9} {'causal':>12} {'saving':>7} {'(n-1)/2n':>9}  {'MiB/PE f/s/c':>16}")
    lines = ["ring study (Yu & Fujita): cycles", head, "-" * len(head)]
    for r in rows:
        speedup = f"{r.speedup:.2f}{'' if r.one_pe_cycles else '*'}" if r.speedup else "-"
        lines.append(f"{r.n:>5} {r.d:>3} {r.m:>3} {_num(r.cycles['full']):>12} {speedup:>8} "
                     f"{_num(r.cycles['symmetric']):>12} {_ratio(r.saving('symmetric')):>7} "
                     f"{r.closed_form('symmetric'):>9.4f} {_num(r.cycles['causal']):>12} "
                     f"{_ratio(r.saving('causal')):>7} {r.closed_form('causal'):>9.4f}  {_mib(r):>16}")
    lines.append("speedup: one PE's cycles over m PEs' (full); * against one PE's MAC work 2 n^2 d, a lower "
                 "bound on one PE's cycles (one PE cannot hold n x n scores in 8 MiB)")
    for (n, d), r in {(r.n, r.d): r for r in rows if r.one_pe_cycles}.items():
        lines.append(f"one PE at n = {n}, d = {d}: {r.one_pe_cycles:,} cycles (MAC work {r.one_pe_bound:,})")
    for r in rows:
        for s, why in r.errors.items():
            lines.append(f"n = {r.n}, m = {r.m}, {s}: does not run: {why}")
    return "\n".join(lines)
