"""How good stage 1 is as a filter: recall, rank correlation and regret of the two-stage search.

    python bench/bench_explore_stages.py            # every example the model costs
    python bench/bench_explore_stages.py --quick    # mmee at N = 1024 and flash only

For each example, in the same run: the exhaustive search (the detailed model
over every candidate, `attn explore --exhaustive`) and stage 1 over every
candidate. It prints

- the stage-1 rank of the detailed model's best candidate (the recall of the
  two-stage search holds at every k above it; the default k is 1,024);
- Spearman's rank correlation of the two stages' cycles, over a random
  sample of up to 2,000 candidates feasible in both (ties share their mean
  rank), and the largest energy difference (stage 1's energy is the
  detailed model's counters: it should be exact);
- the regret of the two-stage pick against the exhaustive one, at the
  default k: (two-stage best latency - exhaustive best) / exhaustive best;
- both searches' times (min and median of the repeats) and their ratio.

The figures in docs/explore.md ("Two stages") come from this script.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attnlang.api import load_program  # noqa: E402
from attnlang.explorer.search import explore, spaces, tasks  # noqa: E402
from attnlang.explorer.space import evaluate_combo  # noqa: E402
from attnlang.explorer.stage1 import evaluate_block  # noqa: E402
from attnlang.explorer.stages import DEFAULT_K, stage1_tasks  # noqa: E402

CASES = [("mmee", {"N": 1024}), ("mmee", {"N": 4096}), ("mmee", {"N": 256}), ("mmee", {"N": 512}), ("flash", {}),
         ("flash", {"N": 4096}), ("flat", {}), ("flat_mha", {}), ("flash_causal", {}), ("mas_attention", {}),
         ("naive", {}), ("mha", {})]
QUICK = CASES[:1] + CASES[4:5]


def ranks(a: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties sharing their mean rank."""
    order = np.argsort(a, kind="stable")
    r = np.empty(len(a))
    r[order] = np.arange(len(a))
    _, inv = np.unique(a, return_inverse=True)
    return (np.bincount(inv, r) / np.bincount(inv))[inv]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def costs(prog, defines: dict) -> tuple[dict, dict]:
    """(kernel, combo, grid index) -> (cycles, energy): the detailed model's and stage 1's, feasible ones."""
    sps, _ = spaces(prog, None, defines)
    detailed, first = {}, {}
    for t in tasks(sps, 1)[0]:
        p = evaluate_combo(sps[t.kernel], t.kernel, t.combo)
        detailed.update({(p.kernel, p.combo, int(i)): (c, e)
                         for i, c, e in zip(p.index, p.cycles, p.energy_pj, strict=True)})
    for t in stage1_tasks(sps, 1):
        b = evaluate_block(sps[t.kernel], t.kernel, t.combo)
        first.update({(b.kernel, int(bc), int(i)): (c, e)
                      for bc, i, c, e in zip(b.combo, b.index, b.cycles, b.energy_pj, strict=True)})
    return detailed, first


def timed(prog, defines: dict, repeat: int, **kw) -> tuple[list[float], object]:
    times, ex = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        ex = explore(prog, None, defines, **kw)
        times.append(time.perf_counter() - t0)
    return times, ex


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'example':<22} {'cands':>7} {'rank':>5} {'spearman':>8} {'energy':>7} {'regret':>7} "
          f"{'exhaustive s':>13} {'two-stage s':>12} {'ratio':>6}")
    for name, defines in (QUICK if args.quick else CASES):
        prog = load_program(str(ROOT / "examples" / f"{name}.attn"))
        detailed, first = costs(prog, defines)
        keys = [k for k in detailed if k in first]
        best = min(detailed, key=lambda k: (detailed[k][0], detailed[k][1], k))
        order = sorted(first, key=lambda k: (first[k][0], first[k][1], k))
        rank = order.index(best) if best in first else -1
        sample = [keys[i] for i in rng.choice(len(keys), min(2000, len(keys)), replace=False)]
        rho = spearman(np.array([detailed[k][0] for k in sample]), np.array([first[k][0] for k in sample]))
        energy = max(abs(first[k][1] - detailed[k][1]) / detailed[k][1] for k in keys)
        t_ex, ex = timed(prog, defines, args.repeat, exhaustive=True)
        t_two, two = timed(prog, defines, args.repeat)
        regret = two.best.seconds / ex.best.seconds - 1
        label = name + "".join(f" {k}={v}" for k, v in defines.items())
        print(f"{label:<22} {ex.evaluated:>7,} {rank:>5} {rho:>8.3f} {energy:>7.1%} {regret:>7.2%} "
              f"{min(t_ex):>6.3f}/{statistics.median(t_ex):<6.3f} {min(t_two):>5.3f}/{statistics.median(t_two):<6.3f}"
              f" {min(t_ex) / min(t_two):>5.1f}x")
    print(f"(rank: the detailed best's place in stage 1's order, from 0; two-stage k = {DEFAULT_K}; "
          "times min/median of the repeats)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
