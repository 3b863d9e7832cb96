"""`attn study flat`: FLAT's published table beside our model, on FLAT's assumptions.

The reference is attnlang/reference/flat_validation.csv: FLAT's cost model
(Kao et al., ASPLOS 2023) as the FuseMax artifact ships it, one row per
platform, model and sequence length, with FLAT's own mapping choices (where Q,
K, V and the scores live, output- or weight-stationary, the fused block P1) and
its outputs (latency, DRAM traffic, energy).

For each row with seq_len <= 16K this module costs the dataflow FLAT chose for
that row — one of the kernels of attnlang/studies/flat.attn, with the row's
placements as params — with the analytical model on hw.flat_edge or
hw.flat_cloud, which state FLAT's assumptions in .attn terms, and again on our
own hw.edge or hw.cloud. The mapping from a row to a kernel and its params is
`mapping()`, the one place that reads FLAT's columns.

FLAT's table counts DRAM energy only (32 pJ per byte moved, on every row), so
`energy_pj` is our DRAM energy; `total_energy_pj` adds the on-chip energy our
model charges (the buffer, the array and the vector unit).
"""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..cost import ideal_matmul_cycles
from ..hardware import elaborate
from ..model.analytic import estimate
from ..program import load

HERE = Path(__file__).resolve().parent
KERNELS = HERE / "flat.attn"
MAX_SEQ = 16384
#: FLAT's platforms: our hardware on FLAT's assumptions, and our own realistic hardware
ON_FLAT = {"edge": "flat_edge", "cloud": "flat_cloud"}
ON_OURS = {"edge": "edge", "cloud": "cloud"}
#: the fused-block sizes a kernel may take, largest first
BLOCKS = (16384, 8192, 4096, 2048, 1024, 512, 256, 128, 64, 32)
#: the key columns of a block whose scores flat_ws_spill may send to DRAM, fewest first
SPILLS = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


def csv_path() -> Path:
    """The reference table: ATTN_FLAT_CSV where set, else the copy shipped in the package."""
    env = os.environ.get("ATTN_FLAT_CSV")
    if env:
        return Path(env)
    return HERE.parent / "reference" / "flat_validation.csv"


def reference_rows(max_seq: int = MAX_SEQ) -> list[dict]:
    """The reference rows with M <= max_seq."""
    path = csv_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: FLAT's reference table not found")
    with path.open() as f:
        return [r for r in csv.DictReader(f) if int(r["M"]) <= max_seq]


@dataclass
class Costed:
    """One kernel and its params costed by the model on one hardware."""

    hardware: str
    params: dict
    latency_s: float
    dram_bytes: float
    energy_pj: float  # DRAM only, as FLAT's table counts it
    total_energy_pj: float
    macs: float
    ideal_s: float  # the MACs on the whole array at the clock
    pe_busy: float  # the array's share of the latency
    sram_peak: float
    sram_capacity: float


@dataclass
class Row:
    platform: str
    model: str
    seq_len: str
    B: int
    H: int
    N: int
    d: int
    kernel: str
    flat_p1: int  # FLAT's fused block (P1 = N for head granularity)
    proportion_buffered: float  # FLAT's: below 1 its mapping overflows the buffer and it charges a spill
    ref_latency_s: float
    ref_dram_bytes: float
    ref_energy_pj: float
    ref_ideal_s: float
    ideal_s: float  # our MAC count on the whole array
    ours: Costed  # on FLAT's assumptions
    default: Costed = field(repr=False)  # on our own hardware

    @property
    def latency_s(self) -> float:
        return self.ours.latency_s

    @property
    def dram_bytes(self) -> float:
        return self.ours.dram_bytes

    @property
    def energy_pj(self) -> float:
        return self.ours.energy_pj

    def ratios(self) -> dict:
        return {"latency": self.latency_s / self.ref_latency_s, "dram": self.dram_bytes / self.ref_dram_bytes,
                "energy": self.energy_pj / self.ref_energy_pj}

    def to_json(self) -> dict:
        return {"platform": self.platform, "model": self.model, "seq_len": self.seq_len,
                "latency_s": self.latency_s, "ref_latency_s": self.ref_latency_s,
                "dram_bytes": self.dram_bytes, "ref_dram_bytes": self.ref_dram_bytes,
                "energy_pj": self.energy_pj, "ref_energy_pj": self.ref_energy_pj,
                "B": self.B, "H": self.H, "N": self.N, "d": self.d, "kernel": self.kernel,
                "flat_p1": self.flat_p1, "proportion_buffered": self.proportion_buffered,
                "ideal_s": self.ideal_s, "ref_ideal_s": self.ref_ideal_s,
                "on_flat_assumptions": asdict(self.ours), "on_our_hardware": asdict(self.default)}


def mapping(row: dict, block: int, pe: int) -> tuple[str, dict]:
    """FLAT's mapping of a row as one of our kernels and its params, with the fused block `block` on
    an array of pe x pe.

    - Scores on chip, output stationary: flat_os, query and key tiles of the array's size.
    - Scores on chip, weight stationary: flat_ws with P1 = block.
    - Scores off chip: flat_scores_offchip, query tiles of `block` rows (weight stationary) or of the
      array's size (output stationary), V read in column chunks of the array's width.
    FLAT's "on-chip" Q, K or V is `hold`, "off-chip" is `stream`; a weight-stationary mapping reads K
    and V once per block whatever their placement.
    """
    B, H, N, d = (int(row[k]) for k in ("B", "H", "M", "E"))
    ws = row["QK_stationarity"] == "weight"

    def at(col: str) -> str:
        return "hold" if row[col] == "onchip" else "stream"

    params = {"G": B * H, "N": N, "d": d, "Tk": min(pe, N), "q_at": at("Q_loc")}
    if row["QK_loc"] != "onchip":
        tq = block if ws else pe
        # a held next tile (and a held next head's K and V) arrives R rows per key tile
        params.update(Tq=tq, Fc=min(d, pe), R=max(1, tq * params["Tk"] // N),
                      k_at="stream" if ws else at("K_loc"), v_at="stream" if ws else at("V_loc"))
        return "flat_scores_offchip", params
    if ws:
        params.update(P1=block)
        return "flat_ws", params
    params.update(Tq=pe, k_at=at("K_loc"), v_at=at("V_loc"))
    return "flat_os", params


def _candidates(row: dict, flat_p1: int, pe: int):
    """The row's mappings in the order the study tries them; the first that fits the buffer is costed.

    FLAT's own block first. Where a weight-stationary block with the scores on chip does not fit,
    FLAT keeps the block and spills what does not fit: so does flat_ws_spill, with the scores of the
    fewest key columns (Ns, from SPILLS) in DRAM. Where no spill makes it fit, smaller blocks.
    """
    kernel, params = mapping(row, flat_p1, pe)
    yield kernel, params
    if kernel == "flat_os":
        return
    if kernel == "flat_ws":
        for ns in SPILLS:
            if ns < params["N"] and ns % params["Tk"] == 0:
                yield "flat_ws_spill", dict(params, Ns=ns)
    for block in BLOCKS:
        if block < flat_p1:
            yield mapping(row, block, pe)


def _flat_p1(row: dict) -> int:
    """FLAT's fused block: P1 = N for head granularity (the table's P1 column is unused there)."""
    return int(row["M"]) if row["fusion_granularity"] == "head" else int(row["P1"])


_cache: dict = {}


def _program():
    if "prog" not in _cache:
        _cache["prog"] = load(str(KERNELS))
    return _cache["prog"]


def _cost(row: dict, hw_name: str) -> tuple[str, Costed]:
    """The row's mapping on hw_name with the largest fused block up to FLAT's that fits the buffer."""
    prog = _program()
    flat_p1 = _flat_p1(row)
    dims = {"G": int(row["B"]) * int(row["H"]), "N": int(row["M"]), "d": int(row["E"])}
    hw, diags = elaborate(prog.hardware[hw_name], dims)
    if hw is None:
        raise RuntimeError(f"hardware {hw_name}: {diags}")
    cap = hw.memories["sram"].capacity_bytes
    array = hw.units["pe"]
    for kernel, params in _candidates(row, flat_p1, array.rows):
        est = estimate(prog, kernel, params, hw=hw)
        if float(est.peak_bytes["sram"]) <= cap and not any(bool(m.any()) for m in est.invalid.values()):
            break
    else:
        raise RuntimeError(f"{row['platform']} {row['models']} {row['seq_len']}: no block fits {hw_name}")
    dram = hw.memories["dram"]
    dram_bytes = float(est.read_bytes["dram"] + est.write_bytes["dram"])
    cycles = float(est.cycles)
    return kernel, Costed(
        hardware=hw_name, params=params, latency_s=cycles / hw.clock_hz, dram_bytes=dram_bytes,
        energy_pj=float(est.energy_breakdown_pj.get(dram.name, 0.0)), total_energy_pj=float(est.energy_pj),
        macs=float(est.macs), ideal_s=float(ideal_matmul_cycles(est.macs, array.rows, array.cols)) / hw.clock_hz,
        pe_busy=float(est.busy_cycles["pe"]) / cycles,
        sram_peak=float(est.peak_bytes["sram"]), sram_capacity=float(cap))


def study_row(row: dict) -> Row:
    B, H, N, d = (int(row[k]) for k in ("B", "H", "M", "E"))
    kernel, ours = _cost(row, ON_FLAT[row["platform"]])
    _, default = _cost(row, ON_OURS[row["platform"]])
    return Row(
        platform=row["platform"], model=row["models"], seq_len=row["seq_len"], B=B, H=H, N=N, d=d,
        kernel=kernel, flat_p1=_flat_p1(row),
        proportion_buffered=float(row["proportion_buffered"]),
        ref_latency_s=float(row["actual_latency"]), ref_dram_bytes=float(row["mem_traffic"]),
        ref_energy_pj=float(row["energy"]), ref_ideal_s=float(row["ideal_latency"]),
        ideal_s=ours.ideal_s, ours=ours, default=default)


def study(max_seq: int = MAX_SEQ) -> list[Row]:
    return [study_row(r) for r in reference_rows(max_seq)]


def summary(rows: list[Row], within: float = 0.10) -> dict:
    """For each quantity: how many rows are within `within` of the table, and the worst row."""
    out = {}
    for q in ("latency", "dram", "energy"):
        errs = [(abs(r.ratios()[q] - 1.0), r) for r in rows]
        worst = max(errs, key=lambda e: e[0])
        out[q] = {"within": sum(e <= within for e, _ in errs), "rows": len(rows),
                  "worst": f"{worst[1].platform} {worst[1].model} {worst[1].seq_len}",
                  "worst_ratio": worst[1].ratios()[q]}
    return out


def text_table(rows: list[Row]) -> str:
    head = (f"{'platform':8} {'model':5} {'N':>4} {'kernel':20} {'block':>9} "
            f"{'latency ms':>10} {'FLAT':>10} {'ratio':>6} {'DRAM GiB':>9} {'FLAT':>9} {'ratio':>6} "
            f"{'energy mJ':>9} {'FLAT':>9} {'ratio':>6}   {'ours on our hw: ms':>18}")
    lines = [head, "-" * len(head)]
    for r in rows:
        q = r.ratios()
        p = r.ours.params
        block = p.get("P1", p.get("Tq"))
        if "Ns" in p:
            block = f"{block}-{p['Ns']}"
        lines.append(
            f"{r.platform:8} {r.model:5} {r.seq_len:>4} {r.kernel:20} {block:>9} "
            f"{r.latency_s * 1e3:>10.4g} {r.ref_latency_s * 1e3:>10.4g} {q['latency']:>6.3f} "
            f"{r.dram_bytes / 2**30:>9.3f} {r.ref_dram_bytes / 2**30:>9.3f} {q['dram']:>6.3f} "
            f"{r.energy_pj * 1e-9:>9.4g} {r.ref_energy_pj * 1e-9:>9.4g} {q['energy']:>6.3f}   "
            f"{r.default.latency_s * 1e3:>18.4g}")
    s = summary(rows)
    lines.append("")
    for q, name in (("latency", "latency"), ("dram", "DRAM traffic"), ("energy", "energy")):
        v = s[q]
        lines.append(f"{name}: {v['within']} of {v['rows']} rows within 10% of FLAT's table; "
                     f"worst {v['worst']} at {v['worst_ratio']:.3f}x")
    return "\n".join(lines)
