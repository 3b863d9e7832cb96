"""Candidates per second of `attn explore` on examples/mmee.attn, vectorized and one at a time.

    python bench/bench_explore.py              # N = 4096 (the mmee study), 3 repeats
    python bench/bench_explore.py --quick      # one repeat, a smaller scalar sample
    python bench/bench_explore.py -N 1024 --scalar 400

In the same run, on one core:

- the vectorized model: `attnlang.explorer.search.explore(..., exhaustive=True)` over the whole space
  (every param of mmee.attn varies, N and d fixed), as `attn explore --json`
  reports it: `evaluated` (candidates that reach the model, after `where`)
  over `seconds` (the whole search: spaces, pruning, the model, ranking);
- the scalar model: the same model called once per candidate with Python
  numbers (`attnlang.model.analytic.estimate`), on a random sample of the
  candidates the vectorized search evaluated; its rate is sample / seconds.

It prints both rates and their ratio. The figures in docs/performance.md
("Explore") come from this script.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attnlang.api import load_program  # noqa: E402
from attnlang.explorer.search import explore  # noqa: E402
from attnlang.explorer.space import kernel_space  # noqa: E402
from attnlang.model.analytic import estimate  # noqa: E402
from attnlang.model.statics import aeval, where_conds  # noqa: E402

MMEE = ROOT / "examples" / "mmee.attn"


def _sample(prog, n_dim: int, size: int, seed: int = 0) -> list[dict]:
    """Random candidates of the space that pass its `where` constraints."""
    k = prog.kernel(None)
    sp = kernel_space(prog, k, {"N": n_dim})
    axes = sp.split + sp.grid
    rng = np.random.default_rng(seed)
    out: list[dict] = []
    while len(out) < size:
        cand = {a.name: a.values[int(rng.integers(len(a.values)))] for a in axes}
        env = {**sp.fixed, **cand, **{s: s for s in ("q_outer", "kv_outer", "tile", "row", "inner", "outer", "sub")}}
        if all(bool(aeval(c, env)) for c in where_conds(k)):
            out.append({"N": n_dim, **cand})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-N", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scalar", type=int, default=300, help="candidates in the one-at-a-time sample")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.repeat, args.scalar = 1, 100

    prog = load_program(str(MMEE))
    explore(prog, None, {"N": args.N}, exhaustive=True)  # warm caches (imports, stdlib hardware)
    best = None
    for _ in range(args.repeat):
        ex = explore(prog, None, {"N": args.N}, exhaustive=True)
        if best is None or ex.seconds < best.seconds:
            best = ex
    vec_rate = best.evaluated / best.seconds

    sample = _sample(prog, args.N, args.scalar)
    k = prog.kernel(None)
    t0 = time.perf_counter()
    for cand in sample:
        estimate(prog, k, cand)
    scalar_seconds = time.perf_counter() - t0
    scalar_rate = len(sample) / scalar_seconds

    cpu = platform.processor() or platform.machine()
    print(f"machine: {platform.system()} {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"NumPy {np.__version__}; one core")
    print(f"examples/mmee.attn at N = {args.N}, d = 64: {best.candidates:,} candidates, "
          f"{best.evaluated:,} evaluated (after `where`), {best.feasible:,} feasible")
    print(f"  vectorized model: {best.seconds:.3f} s -> {vec_rate:,.0f} candidates/s (best of {args.repeat})")
    print(f"  scalar model:     {len(sample)} candidates in {scalar_seconds:.3f} s -> {scalar_rate:,.0f} "
          f"candidates/s ({1e3 * scalar_seconds / len(sample):.2f} ms each)")
    print(f"  ratio:            {vec_rate / scalar_rate:,.0f}x")
    print(f"  best: {best.best.cycles:,} cycles, {best.best.energy_pj * 1e-9:.3f} mJ, {best.best.defines}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
