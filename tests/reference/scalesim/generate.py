#!/usr/bin/env python3
"""Generate scalesim_gemm.csv: SCALE-Sim 3.0.0 cycle and access counts for GEMMs.

Standalone: run it with the SCALE-Sim venv's python, not with attnlang's
(see README.md beside this file for the venv recipe).  It does not import
attnlang.

    /work/scalesim-venv/bin/python tests/reference/scalesim/generate.py          # full list
    /work/scalesim-venv/bin/python tests/reference/scalesim/generate.py --quick  # small subset

For each (array R x C, dataflow, GEMM) it writes a config, a one-layer GEMM
topology and a dummy layout CSV to a temporary directory, runs SCALE-Sim
through its Python API, reads COMPUTE_REPORT.csv and DETAILED_ACCESS_REPORT.csv
and appends one row to the output CSV.

GEMM convention (SCALE-Sim's `-i gemm` topology, "name, M, N, K,"):
C[M,N] = A[M,K] . B[K,N]; A is SCALE-Sim's "ifmap", B its "filter",
C its "ofmap".  Counts are in words (SCALE-Sim's word is 1 byte).

The config (CONFIG_TEMPLATE below) gives every SRAM 8192 kB (8 Mi words,
half of it the active buffer) so each whole operand is prefetched before
cycle 0 and never evicted, and the ofmap buffer never drains before the end:
stall_cycles is 0 in every row, so total_cycles is SCALE-Sim's stall-free
compute time.  DRAM bandwidth (USER mode) is 1 word/cycle for every operand:
SCALE-Sim counts DRAM reads as whole bandwidth-wide lines, so bandwidth 1 makes
the DRAM read columns exact word counts (of the prefetch matrices, which
include the padding of partial folds); bandwidth cannot cause stalls here since
the whole prefetch is scheduled before cycle 0.
"""

import argparse
import csv
import io
import math
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "scalesim_gemm.csv")

SRAM_KB = 8192        # per operand; word size is 1 byte in SCALE-Sim 3.0.0
DRAM_BW = 1           # words/cycle, ifmap and filter DRAM (USER mode)
OFMAP_BW = 32         # words/cycle, ofmap DRAM (USER mode)

CONFIG_TEMPLATE = """\
[general]
run_name = gemm

[architecture_presets]
ArrayHeight : {rows}
ArrayWidth : {cols}
IfmapSramSzkB : {sram_kb}
FilterSramSzkB : {sram_kb}
OfmapSramSzkB : {sram_kb}
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : {ofmap_bw}
Dataflow : {dataflow}
ReadRequestBuffer : 32
WriteRequestBuffer : 32

[layout]
IfmapCustomLayout : False
IfmapSRAMBankBandwidth : {dram_bw}
IfmapSRAMBankNum : 1
IfmapSRAMBankPort : 2
FilterCustomLayout : False
FilterSRAMBankBandwidth : {dram_bw}
FilterSRAMBankNum : 1
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth : USER
UseRamulatorTrace : False
"""

# SCALE-Sim 3.0.0 always parses a layout CSV, even with custom layouts off.
# 20 integer fields after the name, as in its layouts/ examples; unused here.
LAYOUT_CSV = (
    "Layer name, IFMAP Height Intraline Factor, IFMAP Width Intraline Factor, "
    "Filter Height Intraline Factor, Filter Width Intraline Factor, "
    "Channel Intraline Factor, Num Filter Intraline Factor, "
    "IFMAP Height Intraline Order, IFMAP Width Intraline Order, "
    "Channel Intraline Order, IFMAP Height Interline Order, "
    "IFMAP Width Interline Order, Channel Interline Order, "
    "Num Filter Intraline Order, Channel Intraline Order, "
    "Filter Height Intraline Order, Filter Width Intraline Order, "
    "Num Filter Interline Order, Channel Interline Order, "
    "Filter Height Interline Order, Filter Width Interline Order,\n"
    "gemm, 1, 1, 1, 1, 1, 1, 0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3,\n"
)

ARRAYS = [(32, 32), (8, 32), (128, 128)]          # (R rows, C cols)
DATAFLOWS = ["os", "ws", "is"]
HEAD_DIMS = [64, 128]
SEQ_LENS = [64, 128, 256, 512, 1024]
TILE_GEMMS = [                                    # (M, N, K)
    (64, 64, 64), (16, 64, 64), (32, 32, 64), (64, 16, 64), (128, 128, 64),
    (64, 64, 128), (48, 40, 24), (33, 65, 17), (100, 7, 50),
]

# Combinations left out of the full run because they are too slow on a
# 2-core machine (see README.md).  Filled in after timing; (R, C, df, M, N, K).
SKIP = set()


def gemm_list():
    """(kind, M, N, K) for every GEMM of the full run, deduplicated in order."""
    out, seen = [], set()

    def add(kind, m, n, k):
        if (m, n, k) not in seen:
            seen.add((m, n, k))
            out.append((kind, m, n, k))

    for d in HEAD_DIMS:
        for s in SEQ_LENS:
            add("qk_d%d_s%d" % (d, s), s, s, d)      # S = Q K^T: M=seq, N=seq, K=d
            add("pv_d%d_s%d" % (d, s), s, d, s)      # O = P V:   M=seq, N=d,   K=seq
    for m, n, k in TILE_GEMMS:
        add("tile", m, n, k)
    return out


def quick_list():
    keep = {(64, 64, 64), (48, 40, 24), (33, 65, 17), (100, 7, 50), (128, 64, 128)}
    return [g for g in gemm_list() if (g[1], g[2], g[3]) in keep]


FIELDS = [
    "rows", "cols", "dataflow", "gemm", "M", "N", "K",
    "total_cycles", "stall_cycles", "total_cycles_incl_prefetch",
    "overall_util_pct", "mapping_eff_pct", "compute_util_pct",
    "ifmap_sram_reads", "filter_sram_reads", "ofmap_sram_writes",
    "ifmap_dram_reads", "filter_dram_reads", "ofmap_dram_writes",
    "ifmap_sram_start", "ifmap_sram_stop", "filter_sram_start", "filter_sram_stop",
    "ofmap_sram_start", "ofmap_sram_stop",
    "wall_s",
]


def _read_report(path):
    with open(path) as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip()]
    header = [h.strip() for h in lines[0].split(",")]
    values = [v.strip() for v in lines[1].split(",")]
    return dict(zip(header, values, strict=True))


def _num(s):
    v = float(s)
    return int(v) if v == int(v) else v


class _NoBar:
    """Stand-in for tqdm.tqdm: iterates its iterable, draws nothing.

    SCALE-Sim 3.0.0 builds a (disabled) tqdm bar for every demand line it
    services, three per simulated cycle; that costs about a quarter of its run
    time.  Every bar it builds is disabled here (verbose=False), so replacing
    the class changes nothing but speed.  `--stock` turns the patch off.
    """

    def __init__(self, iterable=None, *args, **kwargs):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def update(self, n=1):
        pass

    def close(self):
        pass


PATCH_TQDM = True


def _patch_tqdm():
    import importlib
    for name in ("scalesim.memory.read_buffer", "scalesim.memory.write_buffer",
                 "scalesim.memory.double_buffered_scratchpad_mem",
                 "scalesim.memory.read_buffer_estimate_bw",
                 "scalesim.compute.systolic_compute_os",
                 "scalesim.compute.systolic_compute_ws",
                 "scalesim.compute.systolic_compute_is"):
        mod = importlib.import_module(name)
        if hasattr(mod, "tqdm"):
            mod.tqdm = _NoBar


def run_one(job):
    """Run SCALE-Sim for one (R, C, dataflow, gemm) and return a CSV row dict."""
    rows, cols, df, kind, m, n, k = job
    from scalesim.scale_sim import scalesim
    if PATCH_TQDM:
        _patch_tqdm()

    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="scalesim_") as tmp:
        cfg = os.path.join(tmp, "gemm.cfg")
        topo = os.path.join(tmp, "gemm_topo.csv")
        layout = os.path.join(tmp, "gemm_layout.csv")
        with open(cfg, "w") as f:
            f.write(CONFIG_TEMPLATE.format(rows=rows, cols=cols, dataflow=df,
                                           sram_kb=SRAM_KB, dram_bw=DRAM_BW,
                                           ofmap_bw=OFMAP_BW))
        with open(topo, "w") as f:
            f.write("Layer, M, N, K,\n")
            f.write("gemm, %d, %d, %d,\n" % (m, n, k))
        with open(layout, "w") as f:
            f.write(LAYOUT_CSV)
        sink = io.StringIO()
        with redirect_stdout(sink):      # SCALE-Sim prints a banner even when quiet
            sim = scalesim(save_disk_space=True, verbose=False, config=cfg,
                           topology=topo, layout=layout, input_type_gemm=True)
            sim.run_scale(top_path=os.path.join(tmp, "out"))
        rep_dir = os.path.join(tmp, "out", "gemm")
        comp = _read_report(os.path.join(rep_dir, "COMPUTE_REPORT.csv"))
        det = _read_report(os.path.join(rep_dir, "DETAILED_ACCESS_REPORT.csv"))
    row = {
        "rows": rows, "cols": cols, "dataflow": df, "gemm": kind,
        "M": m, "N": n, "K": k,
        "total_cycles": _num(comp["Total Cycles"]),
        "stall_cycles": _num(comp["Stall Cycles"]),
        "total_cycles_incl_prefetch": _num(comp["Total Cycles (incl. prefetch)"]),
        "overall_util_pct": round(float(comp["Overall Util %"]), 4),
        "mapping_eff_pct": round(float(comp["Mapping Efficiency %"]), 4),
        "compute_util_pct": round(float(comp["Compute Util %"]), 4),
        "ifmap_sram_reads": _num(det["SRAM IFMAP Reads"]),
        "filter_sram_reads": _num(det["SRAM Filter Reads"]),
        "ofmap_sram_writes": _num(det["SRAM OFMAP Writes"]),
        "ifmap_dram_reads": _num(det["DRAM IFMAP Reads"]),
        "filter_dram_reads": _num(det["DRAM Filter Reads"]),
        "ofmap_dram_writes": _num(det["DRAM OFMAP Writes"]),
        "ifmap_sram_start": _num(det["SRAM IFMAP Start Cycle"]),
        "ifmap_sram_stop": _num(det["SRAM IFMAP Stop Cycle"]),
        "filter_sram_start": _num(det["SRAM Filter Start Cycle"]),
        "filter_sram_stop": _num(det["SRAM Filter Stop Cycle"]),
        "ofmap_sram_start": _num(det["SRAM OFMAP Start Cycle"]),
        "ofmap_sram_stop": _num(det["SRAM OFMAP Stop Cycle"]),
        "wall_s": round(time.time() - t0, 2),
    }
    return row


def est_lines(job):
    """SCALE-Sim's demand-matrix length (its main loop count): a cost estimate."""
    r, c, df, _, m, n, k = job
    if df == "os":
        return math.ceil(m / r) * math.ceil(n / c) * (r + c + k - 2)
    if df == "ws":
        return math.ceil(k / r) * math.ceil(n / c) * (2 * r + c + m - 2)
    return math.ceil(k / r) * math.ceil(m / c) * (2 * r + c + n - 2)


def versions():
    import numpy
    try:
        from importlib.metadata import version
        ss = version("scalesim")
    except Exception:                                   # pragma: no cover
        ss = "unknown"
    return ss, numpy.__version__, platform.python_version()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small subset of the GEMM list")
    ap.add_argument("--out", default=None,
                    help="output CSV (default: scalesim_gemm.csv beside this script; "
                         "with --quick, scalesim_gemm_quick.csv in the temp dir)")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--arrays", default=None,
                    help="comma list of RxC to restrict to, e.g. 32x32,8x32")
    ap.add_argument("--dataflows", default=None, help="comma list of os,ws,is")
    ap.add_argument("--max-seq", type=int, default=None,
                    help="leave out the attention GEMMs with a sequence length above this")
    ap.add_argument("--stock", action="store_true",
                    help="leave SCALE-Sim's tqdm progress bars in place (slower; "
                         "same numbers)")
    args = ap.parse_args(argv)
    global PATCH_TQDM
    PATCH_TQDM = not args.stock

    gemms = quick_list() if args.quick else gemm_list()
    if args.max_seq is not None:
        gemms = [g for g in gemms if g[0] == "tile" or int(g[0].rsplit("_s", 1)[1]) <= args.max_seq]
    arrays = ARRAYS
    if args.arrays:
        arrays = [tuple(int(x) for x in a.split("x")) for a in args.arrays.split(",")]
    dfs = args.dataflows.split(",") if args.dataflows else DATAFLOWS

    jobs, skipped = [], []
    for (r, c) in arrays:
        for df in dfs:
            for (kind, m, n, k) in gemms:
                job = (r, c, df, kind, m, n, k)
                if (r, c, df, m, n, k) in SKIP:
                    skipped.append(job)
                else:
                    jobs.append(job)
    order = {j: i for i, j in enumerate(jobs)}
    # Longest first so the pool's tail is short; output is re-sorted below.
    todo = sorted(jobs, key=est_lines, reverse=True)

    out = args.out
    if out is None:
        out = (os.path.join(tempfile.gettempdir(), "scalesim_gemm_quick.csv")
               if args.quick else DEFAULT_OUT)

    ss_ver, np_ver, py_ver = versions()
    print("scalesim %s, numpy %s, python %s; %d runs (%d skipped), %d jobs"
          % (ss_ver, np_ver, py_ver, len(jobs), len(skipped), args.jobs), flush=True)

    t0 = time.time()
    results = []
    ctx = mp.get_context("fork")
    with ctx.Pool(args.jobs, maxtasksperchild=1) as pool:
        for i, row in enumerate(pool.imap_unordered(run_one, todo), 1):
            results.append(row)
            print("[%4d/%d %7.1fs] %3dx%-3d %s M=%-5d N=%-5d K=%-5d cycles=%-9d stalls=%d (%.1fs)"
                  % (i, len(todo), time.time() - t0, row["rows"], row["cols"],
                     row["dataflow"], row["M"], row["N"], row["K"],
                     row["total_cycles"], row["stall_cycles"], row["wall_s"]),
                  flush=True)
    wall = time.time() - t0

    key = lambda r: order[(r["rows"], r["cols"], r["dataflow"], r["gemm"],
                           r["M"], r["N"], r["K"])]
    results.sort(key=key)
    with open(out, "w", newline="") as f:
        f.write("# SCALE-Sim %s (pip scalesim==%s), numpy %s, python %s; generated by "
                "tests/reference/scalesim/generate.py%s\n"
                % (ss_ver, ss_ver, np_ver, py_ver,
                   (" --quick" if args.quick else "")
                   + (" --max-seq %d" % args.max_seq if args.max_seq is not None else "")))
        f.write("# config: SRAM %d kB per operand (word = 1 byte), InterfaceBandwidth USER, "
                "DRAM bandwidth %d word/cycle per operand, no custom layout, no sparsity, "
                "no Ramulator; GEMM C[M,N] = A[M,K] (ifmap) . B[K,N] (filter)\n"
                % (SRAM_KB, DRAM_BW))
        f.write("# counts in words; total_cycles = COMPUTE_REPORT 'Total Cycles' "
                "(includes stall_cycles); wall_s = this run's wall time\n")
        if skipped:
            f.write("# skipped (too slow): %s\n" % "; ".join(
                "%dx%d %s M=%d N=%d K=%d" % (j[0], j[1], j[2], j[4], j[5], j[6])
                for j in skipped))
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(results)
    stalls = sum(1 for r in results if r["stall_cycles"] != 0)
    print("wrote %s: %d rows, %d with stalls, wall %.1fs" % (out, len(results), stalls, wall))
    return 0 if stalls == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
