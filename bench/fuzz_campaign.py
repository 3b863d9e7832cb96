"""The long fuzz campaign: many mutants of the shipped programs, counted by outcome.

    python bench/fuzz_campaign.py                     # 1,000 mutants, seed 0, JIT on every 10th that runs
    python bench/fuzz_campaign.py -n 10000 --seed 1 --jit-every 1 --workers 2
    python bench/fuzz_campaign.py -n 200 --save-failures out/   # write each failing mutant to out/

Each mutant (bench/fuzzing.py: token-level and semantic mutators over the examples and the standard
hardware) is checked, run on the interpreter at small sizes, and, for every K-th mutant the checker
accepts (--jit-every K; the JIT compiles for seconds each), on the JIT as well, with the two compared.
Each mutant runs in a worker process under a wall-time limit (--timeout; a worker that overruns it by
far is a hang). Prints the counts by outcome, the internal errors, the disagreements and the hangs;
exit status 1 if there was any. docs/robustness.md has the figures of one run.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _init(cache: str) -> None:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    os.environ["XDG_CACHE_HOME"] = cache
    os.chdir(tempfile.mkdtemp(prefix="attn-fuzz-"))  # a mutant's `use "file"` finds nothing


def _one(job: tuple[int, int, bool, float]):
    import fuzzing

    seed, index, with_jit, timeout = job
    rng = random.Random(seed * 1_000_003 + index)
    name, applied, text = fuzzing.mutant(rng)
    t0 = time.perf_counter()
    try:
        o = fuzzing.outcome(text, engines=("interp", "jit") if with_jit else ("interp",), timeout=timeout)
    except Exception:  # noqa: BLE001 - anything that escapes is an internal error, counted, not fatal
        import traceback

        o = fuzzing.Outcome("internal", detail=traceback.format_exc())
    return index, name, applied, text, o, time.perf_counter() - t0


def label(o) -> str:
    if o.check in ("errors", "internal"):
        return f"check: {o.check}"
    engines = ", ".join(f"{e} {k}" for e, k in sorted(o.engines.items()))
    return f"check: {o.check}; {engines}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=1000, help="mutants (default 1000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jit-every", type=int, default=10, help="run the JIT too on every K-th mutant (default 10)")
    ap.add_argument("--timeout", type=float, default=20.0, help="wall seconds per engine run (default 20)")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)))
    ap.add_argument("--save-failures", metavar="DIR", help="write each failing mutant's text and outcome here")
    args = ap.parse_args(argv)

    cache = tempfile.mkdtemp(prefix="attn-fuzz-cache-")
    jobs = [(args.seed, i, args.jit_every > 0 and i % args.jit_every == 0, args.timeout) for i in range(args.n)]
    counts: collections.Counter = collections.Counter()
    by_mutator: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failures, slow = [], []
    both = agree = 0
    t0 = time.perf_counter()
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(args.workers, _init, (cache,), maxtasksperchild=200) as pool:
        for done, (index, name, applied, text, o, seconds) in enumerate(pool.imap_unordered(_one, jobs), 1):
            counts[label(o)] += 1
            for m in applied:
                by_mutator[m]["internal" if o.internal else o.check] += 1
            if o.agree is not None:
                both += 1
                agree += o.agree
            if o.internal or o.agree is False:
                failures.append((index, name, applied, text, o))
            if seconds > 2 * args.timeout + 30:
                slow.append((index, name, applied, seconds))
            if done % 500 == 0:
                print(f"  {done:,} mutants, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t0

    print(f"{args.n:,} mutants (seed {args.seed}, JIT on every {args.jit_every}th), {wall:.0f} s, "
          f"{args.workers} workers\n")
    print(f"{'count':>7}  outcome")
    for key, n in counts.most_common():
        print(f"{n:>7,}  {key}")
    internal = sum(1 for f in failures if f[4].internal)
    disagree = sum(1 for f in failures if f[4].agree is False)
    print(f"\ninternal errors: {internal}; run on both engines and compared: {both:,}, agreeing: {agree:,}, "
          f"disagreeing: {disagree}; past twice the time limit: {len(slow)}")
    print("\nby mutator (a mutant counts once for each mutator applied to it):")
    for m, c in sorted(by_mutator.items()):
        print(f"  {m:<16} " + ", ".join(f"{k} {v:,}" for k, v in sorted(c.items())))
    for index, name, applied, _text, o in failures[:20]:
        print(f"\n#{index} {name} {applied}: {label(o)} agree={o.agree}\n{o.detail[-1500:]}")
    if args.save_failures:
        out = Path(args.save_failures)
        out.mkdir(parents=True, exist_ok=True)
        for index, name, applied, text, o in failures:
            (out / f"mutant-{index}.attn").write_text(text, encoding="utf-8")
            (out / f"mutant-{index}.txt").write_text(f"{name} {applied}\n{label(o)}\n{o.detail}", encoding="utf-8")
    return 1 if failures or slow else 0


if __name__ == "__main__":
    sys.exit(main())
