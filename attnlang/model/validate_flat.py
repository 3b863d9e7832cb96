"""FLAT validation (issue 8): examples/flat_mha.attn against FuseMax's FLAT model.

The reference is attnlang/reference/flat_validation.csv (FLAT, Kao et al., ASPLOS
2023, as modeled in the FuseMax artifact). For every row with seq_len <= 16K
this module costs examples/flat_mha.attn with the analytical model
(attnlang/model/analytic.py) at the row's B, H, N = M = P and d = E, on the
row's platform (hw.edge or hw.cloud, both in scope in the example), and
reports

- the ideal latency from the model's MAC count: macs / (PE rows x cols) / clock,
  which must match the table's `ideal_latency` = 2.B.H.M.P.E / (PE_dim^2 x 940 MHz);
- our modeled latency (cycles / clock) beside the table's `actual_latency`;
- our DRAM traffic (bytes read + written at dram) beside `mem_traffic`.

Tiles: Br is FLAT's P1 from the row where the platform's buffer holds it
(s and p, 2 x Br x N x 2 B, plus the q/k/v tiles and acc, by the model's peak
sram occupancy), else the largest power of two below P1 that fits; Bc is the
value in the kernel's domain (<= N) with the fewest modeled cycles at that Br.

`python -m attnlang.model.validate_flat` prints the table of docs/validation.md.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..hardware import elaborate
from ..program import load
from .analytic import estimate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "flat_mha.attn"
KERNEL = "flat_mha"
MAX_SEQ = 16384

BR_DOMAIN = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
BC_DOMAIN = (16, 32, 64, 128, 256, 512, 1024)


def csv_path() -> Path:
    """The reference table: ATTN_FLAT_CSV where set, else the copy shipped in the package."""
    env = os.environ.get("ATTN_FLAT_CSV")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "reference" / "flat_validation.csv"


def reference_rows(max_seq: int = MAX_SEQ) -> list[dict]:
    """The reference rows with M <= max_seq (attnlang/reference/flat_validation.csv, or where
    ATTN_FLAT_CSV points)."""
    path = csv_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: FLAT's reference table not found")
    with path.open() as f:
        return [r for r in csv.DictReader(f) if int(r["M"]) <= max_seq]


@dataclass
class RowResult:
    platform: str
    model: str
    seq_len: str
    B: int
    H: int
    N: int
    d: int
    P1: int
    Br: int
    Bc: int
    macs: float
    ideal_s: float
    ref_ideal_s: float
    latency_s: float
    ref_latency_s: float
    dram_bytes: float
    ref_dram_bytes: float
    sram_peak: float
    sram_capacity: float

    @property
    def ideal_error(self) -> float:
        return self.ideal_s / self.ref_ideal_s - 1.0

    @property
    def latency_ratio(self) -> float:
        return self.latency_s / self.ref_latency_s

    @property
    def traffic_ratio(self) -> float:
        return self.dram_bytes / self.ref_dram_bytes


_cache: dict = {}


def _program():
    if "prog" not in _cache:
        _cache["prog"] = load(str(EXAMPLE))
    return _cache["prog"]


def _hardware(name: str, env: dict):
    prog = _program()
    hw, diags = elaborate(prog.hardware[name], env)
    if hw is None:
        raise RuntimeError(f"hardware {name}: {diags}")
    return hw


def validate_row(row: dict) -> RowResult:
    prog = _program()
    B, H, N, d, P1 = (int(row[k]) for k in ("B", "H", "M", "E", "P1"))
    assert int(row["P"]) == N and int(row.get("F", d) or d) == d
    dims = dict(B=B, H=H, N=N, d=d)
    hw = _hardware(row["platform"], dims)
    pe = hw.units["pe"]
    cap = hw.memories["sram"].capacity_bytes
    brs = np.array([b for b in BR_DOMAIN if b <= min(P1, N)])[:, None]
    bcs = np.array([c for c in BC_DOMAIN if c <= N])[None, :]
    est = estimate(prog, KERNEL, {**dims, "Br": brs, "Bc": bcs}, hw=hw)
    ok = est.peak_bytes["sram"] <= cap
    for reason_mask in est.invalid.values():
        ok &= ~reason_mask
    fits = np.nonzero(ok.any(axis=1))[0]
    if len(fits) == 0:
        raise RuntimeError(f"no Br fits {row['platform']} at N={N}")
    i = fits[-1]  # the largest Br <= P1 that fits
    cyc = np.where(ok[i], est.cycles[i], np.inf)
    j = int(np.argmin(cyc))
    macs = float(est.macs[i, j])
    clock = hw.clock_hz
    return RowResult(
        platform=row["platform"], model=row["models"], seq_len=row["seq_len"], B=B, H=H, N=N, d=d, P1=P1,
        Br=int(brs[i, 0]), Bc=int(bcs[0, j]), macs=macs,
        ideal_s=macs / (pe.rows * pe.cols) / clock, ref_ideal_s=float(row["ideal_latency"]),
        latency_s=float(est.cycles[i, j]) / clock, ref_latency_s=float(row["actual_latency"]),
        dram_bytes=float(est.read_bytes["dram"][i, j] + est.write_bytes["dram"][i, j]),
        ref_dram_bytes=float(row["mem_traffic"]),
        sram_peak=float(est.peak_bytes["sram"][i, j]), sram_capacity=float(cap))


def validate(max_seq: int = MAX_SEQ) -> list[RowResult]:
    return [validate_row(r) for r in reference_rows(max_seq)]


def markdown(results: list[RowResult]) -> str:
    head = ("| platform | model | N | B | H | d | P1 | Br | Bc | ideal (ours) | ideal (FLAT) | err | "
            "latency (ours) | latency (FLAT) | ratio | DRAM (ours) | DRAM (FLAT) | ratio |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        lines.append(
            f"| {r.platform} | {r.model} | {r.seq_len} | {r.B} | {r.H} | {r.d} | {r.P1} | {r.Br} | {r.Bc} | "
            f"{r.ideal_s:.6g} s | {r.ref_ideal_s:.6g} s | {r.ideal_error * 100:+.4f}% | "
            f"{r.latency_s:.4g} s | {r.ref_latency_s:.4g} s | {r.latency_ratio:.2f} | "
            f"{r.dram_bytes / 2**30:.2f} GiB | {r.ref_dram_bytes / 2**30:.2f} GiB | {r.traffic_ratio:.2f} |")
    return "\n".join(lines)


def main() -> None:
    import time
    t = time.perf_counter()
    res = validate()
    print(markdown(res))
    worst = max(abs(r.ideal_error) for r in res)
    print(f"\n{len(res)} rows, worst ideal-latency error {worst * 100:.2e}%, {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
