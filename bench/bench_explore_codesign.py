"""Stage 1's rate on examples/codesign.attn (hardware x mapping co-design), against the detailed model.

    python bench/bench_explore_codesign.py               # 3 repeats of stage 1 over the whole space
    python bench/bench_explore_codesign.py --quick       # 1 repeat
    python bench/bench_explore_codesign.py --scale 100   # 1,008,000,000 candidates (wider domains), peak RSS

In the same run, on one core (no workers):

- stage 1 over every candidate of examples/codesign.attn (10,080,000: 30,000
  hardware points x 336 mappings of two styles), as the two-stage search runs it — blocks,
  pruning, keeping each block's best k and Pareto front — counting, as
  `attn explore --json` does, the candidates whose costs were computed
  (`stage1.candidates`: those that pass `where`) over its seconds;
- the reference: the detailed model (`--exhaustive`) over a slice of the same
  space (R = C = 32, SRAM = 512 KiB: 20,160 candidates), its rate the same way;
- the whole two-stage search once, and its pick.

It prints min and median of the repeats, the ratio of the rates, and the
process's peak resident memory. --scale S multiplies the space by widening
the hardware domains (a copy of the example in a temporary folder), to show
that memory stays bounded: stage 1 holds one block (at most 2^21
candidates) and k survivors at a time. The figures in docs/explore.md and
docs/performance.md come from this script.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attnlang.api import load_program  # noqa: E402
from attnlang.explorer.search import explore, spaces  # noqa: E402
from attnlang.explorer.stages import DEFAULT_K, Pool, reduce, stage1_task, stage1_tasks  # noqa: E402

CODESIGN = ROOT / "examples" / "codesign.attn"
SLICE = {"R": 32, "C": 32, "SRAM": 512}
#: --scale: more values of the hardware params, applied in this order (scales 2, 10, 50 and 100)
WIDER = [
    (2, "param LANES in {8, 16, 32, 64, 128} = 32",
     "param LANES in {8, 16, 24, 32, 48, 64, 96, 128, 192, 256} = 32"),
    (5, "param R  in {8, 16, 32, 64, 128} = 32",
     "param R  in {4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 160, 192, "
     "224, 256, 512} = 32"),
    (5, "param C  in {8, 16, 32, 64, 128} = 32",
     "param C  in {4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 160, 192, "
     "224, 256, 512} = 32"),
    (2, "param SRAM in {128, 256, 512, 1024, 2048} = 512",
     "param SRAM in {64, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048} = 512"),
]


def stage1(path: str, defines: dict) -> tuple[float, int, int]:
    """(seconds, candidates costed, blocks) of stage 1 over the space, as explore runs it."""
    prog = load_program(path)
    t0 = time.perf_counter()
    sps, _ = spaces(prog, None, defines)
    kept, costed = Pool.empty(), 0
    work = stage1_tasks(sps, 1)
    for task in work:
        b, mine = stage1_task(sps, task, DEFAULT_K, "latency")
        costed += b.considered
        kept = reduce(Pool.join([kept, mine]), DEFAULT_K, "latency")
    return time.perf_counter() - t0, costed, len(work)


def scaled(factor: int) -> str:
    text = CODESIGN.read_text()
    got = 1
    for f, old, new in WIDER:
        if got == factor:
            break
        assert old in text, old
        text = text.replace(old, new)
        got *= f
    if got != factor:
        raise SystemExit("--scale takes 1, 2, 10, 50 or 100")
    path = Path(tempfile.mkdtemp()) / "codesign_scaled.attn"
    path.write_text(text)
    return str(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--scale", type=int, default=1)
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    path = str(CODESIGN) if args.scale == 1 else scaled(args.scale)
    stage1(path, {"N": 256})  # warm: imports, the standard library, caches
    runs = [stage1(path, {}) for _ in range(repeat)]
    secs = [r[0] for r in runs]
    costed, blocks = runs[0][1], runs[0][2]
    prog = load_program(str(CODESIGN))
    ref = []
    for _ in range(repeat):
        ex = explore(prog, None, SLICE, exhaustive=True)
        ref.append((ex.seconds, ex.evaluated))
    ref_rate = max(n / s for s, n in ref)
    rate = costed / min(secs)
    cpu = platform.processor() or platform.machine()
    print(f"machine: {platform.system()} {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"NumPy {np.__version__}; one core; load average {os.getloadavg()[0]:.1f}")
    total = sum(sp.size for sp in spaces(load_program(path), None, {})[0])
    print(f"{Path(path).name}: {total:,} candidates, {costed:,} costed by stage 1 (after `where`), "
          f"{blocks} blocks")
    print(f"  stage 1:        {min(secs):.3f} s min, {statistics.median(secs):.3f} s median "
          f"-> {rate:,.0f} candidates/s (median {costed / statistics.median(secs):,.0f})")
    print(f"  detailed model: {ref[0][1]:,} candidates of the slice {SLICE} -> {ref_rate:,.0f} candidates/s "
          f"(best of {repeat})")
    print(f"  ratio:          {rate / ref_rate:,.0f}x")
    if args.scale == 1:
        t0 = time.perf_counter()
        two = explore(prog, None, {}, top=1)
        print(f"  two-stage search: {time.perf_counter() - t0:.2f} s (stage 1 {two.stage1['seconds']:.2f} s, "
              f"stage 2 {two.stage2['seconds']:.2f} s over {two.stage2['candidates']} candidates); best "
              f"{two.best.kernel} {two.best.defines} at {two.best.cycles:,} cycles")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak resident memory of this process: {peak:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
