#!/usr/bin/env python3
"""Check closed forms for SCALE-Sim 3.0.0's GEMM counts against scalesim_gemm.csv.

Standard library only; any python 3 runs it:

    python tests/reference/scalesim/fit_check.py [path/to/scalesim_gemm.csv]

C[M,N] = A[M,K] (ifmap) . B[K,N] (filter) on an R x C array (R rows, C cols).
Each dataflow maps two GEMM dimensions onto the array, one per axis, and
streams the third (T) through it; a fold is one array-sized tile of the two
mapped dimensions, and SCALE-Sim runs folds back to back without overlap:

    df  rows<-  cols<-  T   folds                per-fold cycles
    os  M       N       K   ceil(M/R)*ceil(N/C)  R + C + K - 2
    ws  K       N       M   ceil(K/R)*ceil(N/C)  2R + C + M - 2
    is  K       M       N   ceil(K/R)*ceil(M/C)  2R + C + N - 2

    Total Cycles = folds * per_fold - 1        (+ stall cycles; 0 here)

Partial folds cost as much as full ones (padding rows/cols are idle PEs).

SRAM counts (words) are what the compute model requests, per fold:

    os  ifmap reads  = ceil(N/C) * M*K    filter reads = ceil(M/R) * K*N
        ofmap writes = M*N + folds*(R + C)   (SCALE-Sim adds the padded fold's
                                              height+width once per fold: a bug)
    ws  ifmap reads  = ceil(N/C) * M*K    filter reads = K*N
        ofmap writes = ceil(K/R) * M*N    (one partial-sum write per K-fold)
    is  ifmap reads  = M*K                filter reads = ceil(M/C) * K*N
        ofmap writes = ceil(K/R) * M*N

No ofmap SRAM reads are modelled (partial sums are not read back).

DRAM reads are the prefetch matrices, which carry the padding of partial folds
(counted in whole bandwidth-wide lines; bandwidth 1 in this data set, so exact):

    os  ifmap = ceil(M/R)*R * K           filter = ceil(N/C)*C * K
    ws  ifmap = ceil(K/R)*R * M           filter = ceil(N/C)*C * K
    is  ifmap = ceil(M/C)*C * K           filter = ceil(K/R)*R * N

DRAM ofmap writes = the real (unpadded) ofmap SRAM writes: M*N for os,
ceil(K/R)*M*N for ws and is, up to the few padding words the write buffer
counts when it drains mid-run (see the report printed below).
"""

import csv
import os
import sys
from math import ceil

HERE = os.path.dirname(os.path.abspath(__file__))


def folds(df, M, N, K, R, C):
    if df == "os":
        return ceil(M / R) * ceil(N / C)
    if df == "ws":
        return ceil(K / R) * ceil(N / C)
    if df == "is":
        return ceil(K / R) * ceil(M / C)
    raise ValueError(df)


def per_fold(df, M, N, K, R, C):
    if df == "os":
        return R + C + K - 2
    if df == "ws":
        return 2 * R + C + M - 2
    return 2 * R + C + N - 2


def total_cycles(df, M, N, K, R, C):
    return folds(df, M, N, K, R, C) * per_fold(df, M, N, K, R, C) - 1


def sram(df, M, N, K, R, C):
    """(ifmap_sram_reads, filter_sram_reads, ofmap_sram_writes)."""
    f = folds(df, M, N, K, R, C)
    if df == "os":
        return ceil(N / C) * M * K, ceil(M / R) * K * N, M * N + f * (R + C)
    if df == "ws":
        return ceil(N / C) * M * K, K * N, ceil(K / R) * M * N
    return M * K, ceil(M / C) * K * N, ceil(K / R) * M * N


def dram(df, M, N, K, R, C):
    """(ifmap_dram_reads, filter_dram_reads, ofmap_dram_writes)."""
    if df == "os":
        return ceil(M / R) * R * K, ceil(N / C) * C * K, M * N
    if df == "ws":
        return ceil(K / R) * R * M, ceil(N / C) * C * K, ceil(K / R) * M * N
    return ceil(M / C) * C * K, ceil(K / R) * R * N, ceil(K / R) * M * N


QUANTITIES = [
    ("total_cycles", lambda *a: total_cycles(*a)),
    ("ifmap_sram_reads", lambda *a: sram(*a)[0]),
    ("filter_sram_reads", lambda *a: sram(*a)[1]),
    ("ofmap_sram_writes", lambda *a: sram(*a)[2]),
    ("ifmap_dram_reads", lambda *a: dram(*a)[0]),
    ("filter_dram_reads", lambda *a: dram(*a)[1]),
    ("ofmap_dram_writes", lambda *a: dram(*a)[2]),
]


def load(path):
    with open(path) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def main(argv):
    path = argv[1] if len(argv) > 1 else os.path.join(HERE, "scalesim_gemm.csv")
    rows = load(path)
    print("%s: %d rows" % (path, len(rows)))
    worst = {}                       # (df, quantity) -> (max |diff|, example row)
    count = {}
    stalls = 0
    for r in rows:
        df = r["dataflow"]
        M, N, K, R, C = (int(r[k]) for k in ("M", "N", "K", "rows", "cols"))
        count[df] = count.get(df, 0) + 1
        stalls += int(r["stall_cycles"]) != 0
        for name, fn in QUANTITIES:
            d = int(float(r[name])) - fn(df, M, N, K, R, C)
            key = (df, name)
            if key not in worst or abs(d) > abs(worst[key][0]):
                worst[key] = (d, r)
    print("rows with stall_cycles != 0: %d" % stalls)
    dfs = [d for d in ("os", "ws", "is") if d in count]
    print("%-18s" % "max |diff|" + "".join("%14s" % ("%s (%d rows)" % (d, count[d]))
                                           for d in dfs))
    for name, _ in QUANTITIES:
        print("%-18s" % name + "".join("%14d" % abs(worst[(d, name)][0]) for d in dfs))
    for name, _ in QUANTITIES:
        for d in dfs:
            diff, r = worst[(d, name)]
            if diff:
                print("  %s %s: worst %+d at %sx%s M=%s N=%s K=%s (csv %s)"
                      % (d, name, diff, r["rows"], r["cols"], r["M"], r["N"], r["K"],
                         r[name]))
    ok = all(worst[(d, "total_cycles")][0] == 0 for d in dfs) and stalls == 0
    print("total_cycles formula exact for every row: %s" % ("yes" if ok else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
