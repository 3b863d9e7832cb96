"""`attn explore --cluster` on a local Dask cluster against one worker, on examples/codesign.attn.

    python bench/bench_explore_cluster.py              # 3 repeats, 2 worker processes
    python bench/bench_explore_cluster.py --quick      # 1 repeat
    python bench/bench_explore_cluster.py --workers 4  # a cluster of 4 worker processes

In the same run: the two-stage search of examples/codesign.attn (10,080,000
hardware x mapping candidates) with one worker (no processes), with
`--workers N` (local processes), and over a Dask LocalCluster of N worker
processes of one thread each, started once before the repeats (as a site's
cluster would be running already: its start-up is printed apart). It prints
min and median of the repeats and the speedups against one worker, and checks
that every run gives one worker's result (best, ranking, Pareto front, counts).
Needs Dask distributed (`pip install 'attnlang[cluster]'`).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attnlang.api import explore, load_program  # noqa: E402

CODESIGN = ROOT / "examples" / "codesign.attn"


def _result(ex) -> dict:
    out = ex.to_json()
    for r in (out, out.get("stage1") or {}, out.get("stage2") or {}):
        r.pop("seconds", None)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    try:
        import distributed
    except ImportError:
        print("bench_explore_cluster: skipped: needs Dask distributed (pip install 'attnlang[cluster]')")
        return 0
    prog = load_program(str(CODESIGN))
    explore(prog, defines={"N": 256, "R": 32, "SRAM": 512}, top=3)  # warm: imports, caches
    t0 = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=50)
    started = time.perf_counter() - t0
    ways = {"one worker": {}, f"--workers {args.workers}": {"workers": args.workers},
            f"--cluster ({args.workers} processes)": {"cluster": cluster.scheduler_address}}
    times: dict[str, list[float]] = {w: [] for w in ways}
    results: dict[str, dict] = {}
    try:
        for _ in range(repeat):
            for way, kw in ways.items():
                t = time.perf_counter()
                ex = explore(prog, top=10, **kw)
                times[way].append(time.perf_counter() - t)
                results[way] = _result(ex)
    finally:
        cluster.close()
    one = results["one worker"]
    same = all(r == one for r in results.values())
    cpu = platform.processor() or platform.machine()
    print(f"machine: {platform.system()} {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"Dask distributed {distributed.__version__}; load average {os.getloadavg()[0]:.1f}")
    print(f"codesign.attn: {one['candidates']:,} candidates, {one['stage1']['candidates']:,} costed by stage 1; "
          f"the local cluster started in {started:.1f} s (not counted below)")
    base = min(times["one worker"])
    for way, t in times.items():
        print(f"  {way:<24} {min(t):.3f} s min, {statistics.median(t):.3f} s median; speedup {base / min(t):.2f}x "
              f"by the min, {statistics.median(times['one worker']) / statistics.median(t):.2f}x by the median")
    print(f"  every run gives one worker's result: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
