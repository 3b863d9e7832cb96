"""The JIT against NumPy attention and against the interpreter, measured in one run.

    python bench/bench_jit.py            # the issue's two measurements (takes about a minute)
    python bench/bench_jit.py --quick    # smaller N for the interpreter comparison

1. examples/flash.attn at N = 4096, d = 64, Br = Bc = 64: the native run (loops, tile
   arithmetic and the whole cycle/energy accounting; compilation excluded) against a
   plain NumPy float32 softmax(QK^T/sqrt(d))V on the same inputs. Goal: within 2x.
2. The same kernel with Br = Bc = 16: the native run against the interpreter's run
   (Engine and Machine only: checking, input generation and spec verification are
   left out of both). Goal: at least 20x faster.

Compile time (LLVM O2 and code generation, the in-memory and disk caches bypassed)
and the time to load the compiled code from the disk cache are reported too. Both
engines must give the same cycles and energy; the script checks it. The figures in
docs/performance.md come from this script.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_interp import best_of, numpy_attention  # noqa: E402  (bench/ is on the path of a bench script)

from attnlang.api import run  # noqa: E402
from attnlang.jit import cache, native  # noqa: E402

FLASH = ROOT / "examples" / "flash.attn"


def jit_run(defines, inputs):
    r = run(str(FLASH), defines=defines, inputs=inputs, engine="jit", check=False)
    assert r.fallback is None and r.ok, r.fallback
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 512 for the interpreter comparison")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="attn-bench-")  # a cold disk cache
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, BLAS from NumPy: {native.has_symbol('attn_sgemm')}")

    n, d = 4096, 64
    rng = np.random.default_rng(0)
    inputs = {x: rng.standard_normal((n, d)).astype(np.float16).astype(np.float32) for x in "QKV"}
    defines = {"N": n, "d": d, "Br": 64, "Bc": 64}
    first = jit_run(defines, inputs)
    cache.forget_memory_cache()
    from_disk = jit_run(defines, inputs)
    runs = [jit_run(defines, inputs).jit["run_seconds"] for _ in range(args.repeat)]
    q, k, v = (inputs[x] for x in "QKV")
    np_s, ref = best_of(max(args.repeat, 3), lambda: numpy_attention(q, k, v))
    err = float(np.max(np.abs(first.outputs["O"] - ref)))
    print(f"flash N={n} d={d} Br=Bc=64: jit run {min(runs) * 1e3:.1f} ms, NumPy {np_s * 1e3:.1f} ms, "
          f"ratio {min(runs) / np_s:.2f}x (goal <= 2x); compile {first.jit['compile_seconds']:.2f} s, "
          f"load from disk cache {from_disk.jit['compile_seconds'] * 1e3:.0f} ms; cycles {first.cycles:,}; "
          f"max abs err vs NumPy {err:.2g}")

    n2 = 512 if args.quick else 1024
    inputs2 = {x: a[:n2] for x, a in inputs.items()}
    defines2 = {"N": n2, "d": d, "Br": 16, "Bc": 16}
    j = jit_run(defines2, inputs2)
    jit_s = min(jit_run(defines2, inputs2).jit["run_seconds"] for _ in range(args.repeat))
    t0 = time.perf_counter()
    i = run(str(FLASH), defines=defines2, inputs=inputs2, engine="interp", check=False)
    interp_total = time.perf_counter() - t0
    # the interpreter's own run: its total less the same setup and verification the JIT run also pays
    setup = j.wall_seconds - j.jit["run_seconds"] - j.jit["compile_seconds"]
    interp_s = max(interp_total - setup, 1e-9)
    assert (i.cycles, i.energy_pj) == (j.cycles, j.energy_pj), "the engines disagree"
    print(f"flash N={n2} d={d} Br=Bc=16: jit run {jit_s * 1e3:.1f} ms, interpreter {interp_s:.2f} s, "
          f"speedup {interp_s / jit_s:.0f}x (goal >= 20x); compile {j.jit['compile_seconds']:.2f} s; "
          f"cycles {j.cycles:,} in both")


if __name__ == "__main__":
    main()
