"""Channel events per wall second on examples/stream_sdpa.attn (issue 5).

An event is one send or one receive. The reference measured in the same run
is NumPy attention on the same inputs, so the ratio says how far the
element-level simulation is from the arithmetic alone.

    python bench/bench_streams.py            # N = 512 (several minutes)
    python bench/bench_streams.py --n 128    # quicker
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from attnlang.api import run

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--d", type=int, default=16)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((args.n, args.d)).astype(np.float32) for _ in range(3))

    t0 = time.perf_counter()
    s = q @ k.T / np.sqrt(args.d)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    _ = (p / p.sum(axis=1, keepdims=True)) @ v
    numpy_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    r = run(str(ROOT / "examples/stream_sdpa.attn"), defines={"N": args.n, "d": args.d},
            inputs={"Q": q, "K": k, "V": v}, check=False)
    sim_s = time.perf_counter() - t0
    events = 2 * sum(c["sent"] for c in r.channels.values())
    print(f"stream_sdpa N={args.n} d={args.d}: {r.cycles:,} cycles ({r.cycles / args.n**2:.3f} per score)")
    print(f"  interpreter: {sim_s:.2f} s for {events:,} channel events = {events / sim_s:,.0f} events/s "
          f"(goal 1,000,000)")
    print(f"  numpy attention on the same inputs: {numpy_s * 1e3:.2f} ms; interpreter / numpy = "
          f"{sim_s / numpy_s:,.0f}x")


if __name__ == "__main__":
    main()
