"""FLAT validation (issue 8): examples/flat_mha.attn against FuseMax's FLAT model.

The reference is shared/reference/flat_validation.csv (FLAT, Kao et al., ASPLOS
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
import io
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

#: The table's rows with seq_len <= 16K and the columns used here, copied from
#: shared/reference/flat_validation.csv so the check needs no shared checkout;
#: `reference_rows()` reads the CSV itself where it is found.
ROWS_CSV = """\
platform,models,seq_len,B,H,E,M,P,fusion_granularity,P1,mem_traffic,ideal_latency,actual_latency
cloud,BERT,512,64,12,64,512,512,head,256,352485376.00000006,0.0004183148936170213,0.00105107083142869
cloud,BERT,1K,64,12,64,1024,1024,head,256,1308786688.0000005,0.0016732595744680852,0.00418843253355635
cloud,BERT,2K,64,12,64,2048,2048,head,256,5033328640.000001,0.006693038297872341,0.016737879342066986
cloud,BERT,4K,64,12,64,4096,4096,head,256,20179643177.67442,0.026772153191489362,0.06693566657610954
cloud,BERT,8K,64,12,64,8192,8192,row,1024,78114881536.00002,0.10708861276595745,0.2677611304058968
cloud,BERT,16K,64,12,64,16384,16384,row,1024,318039995034.7908,0.4283544510638298,1.0709649431718542
cloud,TrXL,512,64,16,64,512,512,head,256,469925888.00000006,0.0005577531914893617,0.0014013006186627327
cloud,TrXL,1K,64,16,64,1024,1024,head,256,1744994304.0000005,0.002231012765957447,0.005584449554832945
cloud,TrXL,2K,64,16,64,2048,2048,head,256,6711050240.000001,0.008924051063829787,0.022317045299513796
cloud,TrXL,4K,64,16,64,4096,4096,head,256,26906136290.23256,0.03569620425531915,0.0892474282782372
cloud,TrXL,8K,64,16,64,8192,8192,row,1024,104153120768.00002,0.1427848170212766,0.35701471338462015
cloud,TrXL,16K,64,16,64,16384,16384,row,1024,424053272099.721,0.5711392680851064,1.4279531304058968
cloud,T5,512,64,8,64,512,512,head,256,235044864.00000003,0.00027887659574468086,0.0007008410441946476
cloud,T5,1K,64,8,64,1024,1024,head,256,872579072.0000002,0.0011155063829787234,0.002792415512279754
cloud,T5,2K,64,8,64,2048,2048,head,256,3355607040.0000005,0.004462025531914894,0.01115871338462018
cloud,T5,4K,64,8,64,4096,4096,head,256,13453150065.11628,0.017848102127659575,0.04462390487398188
cloud,T5,8K,64,8,64,8192,8192,row,1024,52076642304.00001,0.0713924085106383,0.17850754742717337
cloud,T5,16K,64,8,64,16384,16384,row,1024,212026717969.8605,0.2855696340425532,0.7139767559378116
cloud,XLM,512,64,16,128,512,512,head,256,671547392.0,0.0011155063829787234,0.0016808638599152262
cloud,XLM,1K,64,16,128,1024,1024,head,256,2684878848.0,0.004462025531914894,0.006700795171210107
cloud,XLM,2K,64,16,128,2048,2048,head,256,9664462847.999998,0.017848102127659575,0.026780520416389626
cloud,XLM,4K,64,16,128,4096,4096,head,256,43630369415.91273,0.0713924085106383,0.10709820069398271
cloud,XLM,8K,64,16,128,8192,8192,row,1024,141734445055.99997,0.2855696340425532,0.4284079611286569
cloud,XLM,16K,64,16,128,16384,16384,row,1024,594926982817.5817,1.1422785361702128,1.7135236036818484
edge,BERT,512,64,12,64,512,512,head,32,1409490944.0,0.026772153191489362,0.026780870016414562
edge,BERT,1K,64,12,64,1024,1024,head,32,5677436349.557253,0.10708861276595745,0.10710136689271318
edge,BERT,2K,64,12,64,2048,2048,row,128,14467195629.971828,0.4283544510638298,0.42845971643274183
edge,BERT,4K,64,12,64,4096,4096,row,64,70535384124.23529,1.7134178042553192,1.7138365006186627
edge,BERT,8K,64,12,64,8192,8192,row,128,413927520256.0,6.853671217021277,7.710419192273988
edge,BERT,16K,64,12,64,16384,16384,row,128,1652488714240.0,27.414684868085107,30.780837507167604
edge,TrXL,512,64,16,64,512,512,head,32,1879252992.0,0.03569620425531915,0.03570655512279754
edge,TrXL,1K,64,16,64,1024,1024,head,32,7569803858.076337,0.1427848170212766,0.1427997498714366
edge,TrXL,2K,64,16,64,2048,2048,row,128,19289581885.295773,0.5711392680851064,0.5712793930284865
edge,TrXL,4K,64,16,64,4096,4096,row,64,94047172005.64706,2.2845570723404256,2.2851152070016414
edge,TrXL,8K,64,16,64,8192,8192,row,128,551903344640.0,9.138228289361702,10.28055863057186
edge,TrXL,16K,64,16,64,16384,16384,row,128,2203318269952.0,36.55291315744681,41.04111638376335
edge,T5,512,64,8,64,512,512,head,32,939728896.0,0.017848102127659575,0.01785518491003158
edge,T5,1K,64,8,64,1024,1024,head,32,3785068841.0381684,0.0713924085106383,0.07140298391398978
edge,T5,2K,64,8,64,2048,2048,row,128,9644809374.647886,0.2855696340425532,0.28564003983699715
edge,T5,4K,64,8,64,4096,4096,row,64,47023596242.82353,1.1422785361702128,1.142557794235684
edge,T5,8K,64,8,64,8192,8192,row,128,275951695872.0,4.569114144680851,5.140279753976116
edge,T5,16K,64,8,64,16384,16384,row,128,1101659158528.0,18.276456578723405,20.52055863057186
edge,XLM,512,64,16,128,512,512,head,32,3221460992.0,0.0713924085106383,0.07140551030611078
edge,XLM,1K,64,16,128,1024,1024,row,128,13153359872.0,0.2855696340425532,0.2856397728081886
edge,XLM,2K,64,16,128,2048,2048,row,128,48490234019.83999,1.1422785361702128,1.1424189662893742
edge,XLM,4K,64,16,128,4096,4096,row,128,242665715712.0,4.569114144680851,4.569394203832748
edge,XLM,8K,64,16,128,8192,8192,row,128,966367705088.0,18.276456578723405,18.277015514471046
edge,XLM,16K,64,16,128,16384,16384,row,128,3856880695296.0,73.10582631489362,73.10694300383275
"""

BR_DOMAIN = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
BC_DOMAIN = (16, 32, 64, 128, 256, 512, 1024)


def _csv_path() -> Path | None:
    for p in (os.environ.get("ATTN_FLAT_CSV"), ROOT.parent / "shared" / "reference" / "flat_validation.csv",
              ROOT / "shared" / "reference" / "flat_validation.csv"):
        if p and Path(p).is_file():
            return Path(p)
    return None


def reference_rows(max_seq: int = MAX_SEQ) -> list[dict]:
    """The reference rows with M <= max_seq: from the shared CSV if present, else the copy above."""
    path = _csv_path()
    text = path.read_text() if path is not None else ROWS_CSV
    rows = [r for r in csv.DictReader(io.StringIO(text)) if int(r["M"]) <= max_seq]
    return rows


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
