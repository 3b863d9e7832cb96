"""The long fuzz campaign: many mutants of the shipped programs, counted by outcome.

    python bench/fuzz_campaign.py                     # 1,000 mutants, seed 0, JIT on every 10th that runs
    python bench/fuzz_campaign.py -n 10000 --seed 1 --jit-every 1 --workers 2
    python bench/fuzz_campaign.py -n 200 --save-failures out/   # write each failing mutant to out/

Each mutant (bench/fuzzing.py: token-level and semantic mutators over the examples and the standard
hardware) is checked, run on the interpreter at small sizes, and, for every K-th mutant the checker
accepts (--jit-every K; the JIT compiles for seconds each), on the JIT as well, with the two compared.
Each mutant runs in its own forked process, its engine runs under a wall-time limit (--timeout) and its
address space capped (--memory); a process still running at twice the limit plus 30 s is killed and
counted as a hang, one that dies without answering as a crash (an internal error); an engine run that
ends more than fuzzing.LATE_S seconds past its --timeout is counted as late (the limit did not hold).
Prints the counts by outcome, the internal errors, the disagreements, the hangs and the late runs; exit
status 1 if there was any.
docs/robustness.md has the figures of one run.
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
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _child(job: tuple[int, int, bool, float], conn, memory_gib: float) -> None:
    """One mutant in a forked process: its address space capped, its result sent back through conn."""
    import resource

    limit = int(memory_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # a huge allocation fails here, not the box
    os.chdir(tempfile.mkdtemp(prefix="attn-fuzz-"))  # a mutant's `use "file"` finds nothing
    warnings.simplefilter("error", RuntimeWarning)  # NumPy's warnings would reach the user's stderr: a finding
    try:
        conn.send(_one(job))
    finally:
        conn.close()
        os._exit(0)  # skip the parent's atexit handlers and pool finalizers


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


def _lost(job, why: str, seconds: float):
    """The record of a mutant whose process never answered: killed past its deadline, or crashed."""
    import fuzzing

    seed, index, _, _ = job
    name, applied, text = fuzzing.mutant(random.Random(seed * 1_000_003 + index))
    return index, name, applied, text, fuzzing.Outcome(why, detail=why), seconds


def run_all(jobs, workers: int, deadline: float, memory_gib: float, stop: float | None = None):
    """Yield each job's result, running up to `workers` forked children at once (none started after the
    perf_counter time `stop`).

    One child per mutant: a child past `deadline` seconds is killed and reported as a hang, one that
    dies without answering (a signal, an abort in native code) as a crash; neither stalls the rest."""
    ctx = mp.get_context("fork")
    todo = list(jobs)[::-1]
    live: dict = {}  # connection -> (process, job, start)
    while todo or live:
        if stop is not None and time.perf_counter() > stop:
            todo = []
        while todo and len(live) < workers:
            job = todo.pop()
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(job, send, memory_gib), daemon=True)
            proc.start()
            send.close()
            live[recv] = (proc, job, time.perf_counter())
        for conn in mp.connection.wait(list(live), timeout=1.0):
            proc, job, start = live.pop(conn)
            try:
                result = conn.recv()
            except (EOFError, OSError):
                proc.join()
                result = _lost(job, f"crash (exit {proc.exitcode})", time.perf_counter() - start)
            conn.close()
            proc.join()
            yield result
        now = time.perf_counter()
        for conn, (proc, job, start) in list(live.items()):
            if now - start > deadline:
                proc.kill()
                proc.join()
                conn.close()
                del live[conn]
                yield _lost(job, "hang", now - start)


def _warm() -> None:
    """Import attnlang and build its parser once, in the parent, so each forked child starts warm."""
    import fuzzing

    import attnlang

    attnlang.check_program(fuzzing.EXAMPLES["flash.attn"])


def save(out: Path, index: int, name: str, applied: list[str], text: str, o) -> None:
    """Write a failing mutant's text and what happened to it into out/ (--save-failures)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"mutant-{index}.attn").write_text(text, encoding="utf-8")
    (out / f"mutant-{index}.txt").write_text(f"{name} {applied}\n{label(o)}\n{o.detail}", encoding="utf-8")


def label(o) -> str:
    if o.check in ("errors", "internal", "hang") or o.check.startswith("crash"):
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
    ap.add_argument("--memory", type=float, default=4.0, help="GiB of address space per mutant (default 4)")
    ap.add_argument("--save-failures", metavar="DIR", help="write each failing mutant's text and outcome here")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="start no mutant after this many seconds; count those done (default: run all -n)")
    args = ap.parse_args(argv)
    import fuzzing

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="attn-fuzz-cache-")
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))  # as `attn` sets it
    _warm()
    jobs = [(args.seed, i, args.jit_every > 0 and i % args.jit_every == 0, args.timeout) for i in range(args.n)]
    counts: collections.Counter = collections.Counter()
    by_mutator: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failures, slow, late = [], [], []
    both = agree = 0
    deadline = 2 * args.timeout + 30
    t0 = time.perf_counter()
    stop = None if args.max_seconds is None else time.perf_counter() + args.max_seconds
    done = 0
    for done, (index, name, applied, text, o, seconds) in enumerate(
            run_all(jobs, args.workers, deadline, args.memory, stop), 1):
        counts[label(o)] += 1
        for m in applied:
            by_mutator[m]["internal" if o.internal else o.check] += 1
        if o.agree is not None:
            both += 1
            agree += o.agree
        if o.check == "hang":
            slow.append((index, name, applied, seconds))
        if o.late:
            late.append((index, name, applied, o.late))
        if o.internal or o.agree is False or o.check == "hang" or o.late:
            failures.append((index, name, applied, text, o))
            if args.save_failures:
                save(Path(args.save_failures), index, name, applied, text, o)
        if done % 500 == 0:
            print(f"  {done:,} mutants, {time.perf_counter() - t0:.0f} s, {len(failures)} failing",
                  file=sys.stderr, flush=True)
    wall = time.perf_counter() - t0

    print(f"{done:,} mutants of {args.n:,} (seed {args.seed}, JIT on every {args.jit_every}th), {wall:.0f} s, "
          f"{args.workers} workers\n")
    print(f"{'count':>7}  outcome")
    for key, n in counts.most_common():
        print(f"{n:>7,}  {key}")
    internal = sum(1 for f in failures if f[4].internal and f[4].check != "hang")
    disagree = sum(1 for f in failures if f[4].agree is False)
    print(f"\ninternal errors: {internal}; run on both engines and compared: {both:,}, agreeing: {agree:,}, "
          f"disagreeing: {disagree}; past twice the time limit: {len(slow)}; an engine run ending more than "
          f"{fuzzing.LATE_S:g} s past its --timeout: {len(late)}")
    print("\nby mutator (a mutant counts once for each mutator applied to it):")
    for m, c in sorted(by_mutator.items()):
        print(f"  {m:<16} " + ", ".join(f"{k} {v:,}" for k, v in sorted(c.items())))
    for index, name, applied, _text, o in failures[:20]:
        print(f"\n#{index} {name} {applied}: {label(o)} agree={o.agree}\n{o.detail[-1500:]}")
    return 1 if failures or slow or late else 0


if __name__ == "__main__":
    sys.exit(main())
