"""Check time against program size, up to 10**4 lines: the checker must stay near linear.

    python bench/bench_check_scaling.py                  # 100, 1,000 and 10,000 lines, best of 3
    python bench/bench_check_scaling.py --sizes 1000 20000 --runs 1

Each family is a shape of program that once made the checker (or the parser's
error path) super-linear (issue 21): the timed step is `load_source` then
`check`, as `attn check` and the language server do, with the grammar tables
built in a warm-up. Families, each generated at about SIZE lines:

- kernels:  bench_parse.py's realistic FlashAttention kernels, one after another;
- straight: one kernel of SIZE loads and element-wise statements;
- nested:   loops nested 40 deep with a load and an update at every level,
            repeated to SIZE lines (each level once doubled the walk);
- sum:      a sum of SIZE / 2 tiles in one statement that overflows sram, so
            E0801 names what its peak holds (labels were once cubic);
- error:    a syntax error after a name of 6 x SIZE characters (the message's
            "after '...'" was once quadratic in it).

Prints one row per family and size, and for each family the time ratio of the
largest size to the one ten times smaller (10 for linear). docs/performance.md,
"Checking large programs", has the figures of one run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_parse import program as kernels_program  # noqa: E402

from attnlang.check import check  # noqa: E402
from attnlang.program import load_source  # noqa: E402

HEAD = "use hw.edge\n\nkernel k(Q: f16[N, d]) -> (O: f16[N, d]) on edge {\n  dim N = {n}, d = 64\n"


def head(n: int = 64) -> str:
    return HEAD.replace("{n}", str(n))


def straight(size: int) -> str:
    lines = [head(), "  acc = zeros([64, 64])"]
    for i in range((size - 6) // 2):
        lines.append(f"  t{i} = load Q[0:64, :] -> sram")
        lines.append(f"  acc = acc + t{i} * {i % 7 + 1}")
    lines += ["  store acc -> O[0:64, :]", "}"]
    return "\n".join(lines) + "\n"


def nested(size: int, depth: int = 40) -> str:
    lines = [head(), "  acc = zeros([64, 64])"]
    n = 0
    while len(lines) < size - 2:
        for i in range(depth):
            pad = "  " * (i + 1)
            lines += [f"{pad}for i{n}_{i} in 0 .. 4 {{", f"{pad}  t{n}_{i} = load Q[0:64, :] -> sram",
                      f"{pad}  acc = acc + t{n}_{i}"]
        lines += ["  " * (depth - i) + "}" for i in range(depth)]
        n += 1
    lines += ["  store acc -> O[0:64, :]", "}"]
    return "\n".join(lines) + "\n"


def long_sum(size: int) -> str:
    terms = " + ".join(["q"] * max(2, size // 2))
    return head(4096) + f"  q = load Q[0:N, :] -> sram\n  x = {terms}\n  store x -> O[0:N, :]\n}}\n"


def error_after_long_name(size: int) -> str:
    return head() + "  x = " + "a" * (6 * size) + " b\n}\n"


FAMILIES = {"kernels": kernels_program, "straight": straight, "nested": nested, "sum": long_sum,
            "error": error_after_long_name}


def timed(text: str, runs: int) -> tuple[float, list[str]]:
    best, codes = float("inf"), []
    for _ in range(runs):
        t0 = time.perf_counter()
        diags = check(load_source(text, "scaling.attn"))
        best = min(best, time.perf_counter() - t0)
        codes = sorted({d.code for d in diags if d.severity == "error"})
    return best, codes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000], help="program sizes in lines")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per point; the best is reported")
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    args = ap.parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))  # as `attn` sets it
    check(load_source(straight(20), "warm.attn"))  # warm-up: grammar tables, imports
    print(f"{'family':<9} {'lines':>7} {'chars':>9} {'check s':>9} {'ms / 1k lines':>14}  errors")
    for family in args.families:
        seconds = {}
        for size in args.sizes:
            text = FAMILIES[family](size)
            lines = text.count("\n")
            best, codes = timed(text, args.runs)
            seconds[size] = best
            print(f"{family:<9} {lines:>7,} {len(text):>9,} {best:>9.3f} {best / max(lines, 1) * 1e6:>14.1f}  "
                  f"{', '.join(codes) or '-'}", flush=True)
        big = max(args.sizes)
        if big // 10 in seconds:
            print(f"{family:<9} time({big:,}) / time({big // 10:,}) = {seconds[big] / seconds[big // 10]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
