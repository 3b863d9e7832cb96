"""Channel events per wall second on examples/stream_sdpa.attn (issue 5).

An event is one send or one receive. The reference measured in the same run
is NumPy attention on the same inputs, so the ratio says how far the
element-level simulation is from the arithmetic alone.

    python bench/bench_streams.py                       # N = 512, both engines (the interpreter: minutes)
    python bench/bench_streams.py --n 128               # quicker
    python bench/bench_streams.py --engine jit          # the JIT alone: compile, then the native run

The JIT's figure is for its native run (`run_seconds`); its compile time is
printed beside it, measured with an empty cache (a private one, removed after).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from attnlang.api import run

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--engine", choices=["interp", "jit", "both"], default="both")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((args.n, args.d)).astype(np.float32) for _ in range(3))

    t0 = time.perf_counter()
    s = q @ k.T / np.sqrt(args.d)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    _ = (p / p.sum(axis=1, keepdims=True)) @ v
    numpy_s = time.perf_counter() - t0

    def simulate(engine: str):
        t0 = time.perf_counter()
        r = run(str(ROOT / "examples/stream_sdpa.attn"), defines={"N": args.n, "d": args.d},
                inputs={"Q": q, "K": k, "V": v}, check=False, engine=engine)
        return r, time.perf_counter() - t0

    engines = ["interp", "jit"] if args.engine == "both" else [args.engine]
    print(f"stream_sdpa N={args.n} d={args.d}; numpy attention on the same inputs: {numpy_s * 1e3:.2f} ms")
    for engine in engines:
        if engine == "interp":
            r, sim_s = simulate("interp")
            label = "interpreter"
        else:
            with tempfile.TemporaryDirectory() as cache:
                os.environ["XDG_CACHE_HOME"] = cache
                r, _ = simulate("jit")
            if r.engine != "jit":
                raise SystemExit(f"the JIT fell back to the interpreter: {r.fallback}")
            sim_s = r.jit["run_seconds"]
            label = f"jit (compiled in {r.jit['compile_seconds']:.2f} s), native run"
        events = 2 * sum(c["sent"] for c in r.channels.values())
        print(f"  {r.cycles:,} cycles ({r.cycles / args.n**2:.3f} per score)")
        print(f"  {label}: {sim_s:.4f} s for {events:,} channel events = {events / sim_s:,.0f} events/s "
              f"(goal 1,000,000); / numpy = {sim_s / numpy_s:,.1f}x")


if __name__ == "__main__":
    main()
