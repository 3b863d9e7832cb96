"""Wall time of the reference interpreter on examples/flash.attn, next to NumPy attention.

    python bench/bench_interp.py            # N = 1024 and 4096, d = 64, default tiles
    python bench/bench_interp.py --quick    # N = 1024 only, one repeat
    python bench/bench_interp.py -N 2048 --repeat 3

For each N it times `attnlang.api.run` end to end (checking, the modeled
run with its cycle and energy accounting, and the verification against the
spec) and, on the same inputs in the same process, a plain NumPy
softmax(QK^T/sqrt(d))V in float32 and in float64. It prints the best of the
repeats and the ratio interpreter / NumPy. The figures in docs/performance.md
come from this script.
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

from attnlang.api import run  # noqa: E402

FLASH = ROOT / "examples" / "flash.attn"


def numpy_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    s = q @ k.T / np.sqrt(q.shape[1]).astype(q.dtype)
    s = np.exp(s - s.max(axis=1, keepdims=True))
    return (s / s.sum(axis=1, keepdims=True)) @ v


def best_of(repeat: int, fn) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def bench(n: int, d: int, repeat: int) -> dict:
    rng = np.random.default_rng(0)
    inputs = {name: rng.standard_normal((n, d)).astype(np.float16).astype(np.float32) for name in "QKV"}
    interp_s, result = best_of(repeat, lambda: run(str(FLASH), defines={"N": n, "d": d}, inputs=inputs))
    q32, k32, v32 = (inputs[x] for x in "QKV")
    q64, k64, v64 = (inputs[x].astype(np.float64) for x in "QKV")
    np32_s, _ = best_of(max(repeat, 5), lambda: numpy_attention(q32, k32, v32))
    np64_s, ref = best_of(max(repeat, 5), lambda: numpy_attention(q64, k64, v64))
    err = float(np.max(np.abs(result.outputs["O"] - ref)))
    return {"N": n, "d": d, "interp_s": interp_s, "numpy32_s": np32_s, "numpy64_s": np64_s,
            "cycles": result.cycles, "max_abs_err": err, "ok": result.ok}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-N", type=int, action="append", help="sequence length (repeatable)")
    p.add_argument("-d", type=int, default=64)
    p.add_argument("--repeat", type=int, default=None, help="runs per size; the best is reported")
    p.add_argument("--quick", action="store_true", help="N = 1024 only, one run")
    args = p.parse_args(argv)
    sizes = args.N or ([1024] if args.quick else [1024, 4096])
    repeat = args.repeat or (1 if args.quick else 2)
    print(f"# flash.attn, d = {args.d}, default tiles (Br = Bc = 64); best of {repeat}")
    print(f"# {platform.python_implementation()} {platform.python_version()}, NumPy {np.__version__}, "
          f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs")
    header = (f"{'N':>6} {'interp s':>10} {'numpy f32 s':>12} {'numpy f64 s':>12} {'interp/f32':>11} "
              f"{'interp/f64':>11} {'cycles':>12} {'max abs err':>12}")
    print(header)
    for n in sizes:
        r = bench(n, args.d, repeat)
        print(f"{r['N']:>6} {r['interp_s']:>10.3f} {r['numpy32_s']:>12.5f} {r['numpy64_s']:>12.5f} "
              f"{r['interp_s'] / r['numpy32_s']:>11.0f} {r['interp_s'] / r['numpy64_s']:>11.0f} "
              f"{r['cycles']:>12,} {r['max_abs_err']:>12.2e}" + ("" if r["ok"] else "  SPEC MISMATCH"),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
