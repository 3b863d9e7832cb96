"""`attn run` as the process a user starts: wall time and peak RSS, next to a NumPy script.

    python bench/bench_run_process.py                 # N = 1024, 4096; every --verify; 5 repeats
    python bench/bench_run_process.py --quick         # N = 1024, 4096; 3 repeats
    python bench/bench_run_process.py -N 32768 --verify full --verify off --repeat 1 --no-reference --no-start
    python bench/bench_run_process.py -N 4096 --against /tmp/prev   # beside another version, same run
    python bench/bench_run_process.py -N 4096 --engines 4096   # and the README's JIT-against-interpreter line

(--against takes a folder holding another version of the repository, e.g. from
`git worktree add /tmp/prev COMMIT`; its `attn run` is timed in each round too,
from its own folder, with its own JIT cache warm.)

Each measurement is a fresh process, timed from start to exit, its CPU time (user + system, steadier than
the wall time on a busy machine; the NumPy script's counts its BLAS threads) and peak resident set read off
`os.wait4`:

- `attn run examples/flash.attn -D N=... --engine jit --verify MODE` (d = 64, Br = Bc = 64), the
  JIT's disk cache warm (one untimed run first, in a cache folder of its own);
- a NumPy script doing the same attention: import NumPy, draw Q, K, V from a standard normal
  (rounded through float16, as the kernel's f16 inputs are), softmax(QK^T/sqrt(d))V in float32.
  The reference for time and for memory, measured in the same run, alternating with attn;
- the start-up processes of bench/bench_startup.py: `python -c pass`, `python -c "import numpy"`,
  `python -c "import attnlang.cli"` and `attn check` on a generated 200-line program.

Memory is set against what a run must hold: its tensors (Q, K, V as float32 and the float64
they are drawn in, O as float32), the modeled on-chip working set (the run's peak of its
on-chip memory, from --json), and a baseline (the same command at N = 64 with --verify off:
the interpreter's imports, NumPy, llvmlite and the compiled code), and, when verifying, the
verification's float64 copies (O(N d)) and its blocks of rows (a fixed 4 x spec_eval.BLOCK_BYTES, 16 MiB). Times and
RSS: min and median of the repeats. Bytecode is cached, as for an installed package. The
figures in docs/performance.md come from this script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attnlang.spec.evaluate import BLOCK_BYTES  # noqa: E402

FLASH = ROOT / "examples" / "flash.attn"

NUMPY_SCRIPT = """
import sys
import numpy as np
n, d = int(sys.argv[1]), 64
rng = np.random.default_rng(0)
q, k, v = (rng.standard_normal((n, d)).astype(np.float16).astype(np.float32) for _ in range(3))
s = q @ k.T / np.float32(np.sqrt(d))
s = np.exp(s - s.max(axis=1, keepdims=True))
o = (s / s.sum(axis=1, keepdims=True)) @ v
print(float(o[0, 0]))
"""


def measure(cmd: list[str], env: dict, root: Path = ROOT) -> tuple[float, float, str, float]:
    """(wall seconds, peak RSS in MiB, stdout, CPU seconds) of one process, started in root."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=root)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {p.returncode}: {err.decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out.decode(), usage.ru_utime + usage.ru_stime


def attn_cmd(n: int, verify: str, *extra: str, root: Path = ROOT, engine: str = "jit") -> list[str]:
    return [sys.executable, "-m", "attnlang", "run", str(root / "examples" / "flash.attn"), "-D", f"N={n}",
            "--engine", engine, "--verify", verify, *extra]


def other_env(env: dict, root: Path) -> dict:
    """env for another version's processes: its own folder first on the path, its own bytecode cache."""
    return dict(env, PYTHONPATH=str(root), PYTHONPYCACHEPREFIX=os.path.join(env["XDG_CACHE_HOME"], "pyc-other"))


def summary(values: list[float]) -> str:
    return f"{min(values):.3f} / {statistics.median(values):.3f}"


def ratio(values: list[float], reference: list[float], median: bool = True) -> str:
    """min(values) / min(reference) (and the medians' ratio), or '-' without a reference."""
    if not reference:
        return "-"
    out = f"{min(values) / min(reference):.2f}"
    return out + f", {statistics.median(values) / statistics.median(reference):.2f}" if median else out


def bench_size(n: int, modes: list[str], repeat: int, env: dict, baseline_mib: float,
               against: Path | None = None, reference: bool = True) -> None:
    info = json.loads(measure(attn_cmd(n, "off", "--json"), env)[2])  # also warms the JIT cache
    if against is not None:
        measure(attn_cmd(n, "off", root=against), other_env(env, against), against)
    sram_mib = max(m["peak_bytes"] for name, m in info["memories"].items() if name != "dram") / 2**20
    tensors_mib = (3 * n * 64 * (4 + 8) + n * 64 * 4) / 2**20
    np_t, np_rss, np_cpu = [], [], []
    runs = {m: ([], [], []) for m in modes}
    others = {m: ([], [], []) for m in modes} if against is not None else {}
    for _ in range(repeat):  # alternate, so the box's load falls on both alike
        if reference:
            t, rss, _, cpu = measure([sys.executable, "-c", NUMPY_SCRIPT, str(n)], env)
            np_t.append(t)
            np_rss.append(rss)
            np_cpu.append(cpu)
        for m in modes:
            for got, root, menv in [(runs[m], ROOT, env)] + ([(others[m], against, other_env(env, against))]
                                                              if m in others else []):
                t, rss, _, cpu = measure(attn_cmd(n, m, root=root), menv, root)
                got[0].append(t)
                got[1].append(rss)
                got[2].append(cpu)
    # verification: float64 copies of the inputs, the spec's value and the comparison's arrays (O(N d)),
    # and the blocks of rows (a fixed few times spec_eval.BLOCK_BYTES, whatever N)
    verify_mib = (8 * n * 64 * 8 + 4 * BLOCK_BYTES) / 2**20
    bound = tensors_mib + sram_mib + baseline_mib + verify_mib
    print(f"N = {n}: tensors {tensors_mib:.1f} MiB, on-chip working set {sram_mib * 1024:.0f} KiB, "
          f"baseline {baseline_mib:.0f} MiB, verification {verify_mib:.0f} MiB: bound {bound:.0f} MiB")
    print(f"  {'process':<28} {'seconds min / median':>22} {'x NumPy (min, med)':>19} "
          f"{'CPU s min / median':>19} {'peak RSS MiB min / median':>27} {'x NumPy':>8}")
    if reference:
        print(f"  {'NumPy script, float32':<28} {summary(np_t):>22} {'':>19} {summary(np_cpu):>19} "
              f"{summary(np_rss):>27}")
    off_rss = min(runs["off"][1]) if "off" in runs else None
    for m in modes:
        t, rss, cpu = runs[m]
        print(f"  {'attn --verify ' + m:<28} {summary(t):>22} {ratio(t, np_t):>19} {summary(cpu):>19} "
              f"{summary(rss):>27} {ratio(rss, np_rss, median=False):>8}"
              + (f"  {min(rss) / off_rss:.2f}x off" if off_rss else "")
              + ("" if min(rss) <= bound else "  ABOVE THE BOUND"))
    for m, (t, rss, cpu) in others.items():
        print(f"  {'--against: --verify ' + m:<28} {summary(t):>22} {ratio(t, np_t):>19} {summary(cpu):>19} "
              f"{summary(rss):>27} {ratio(rss, np_rss, median=False):>8}")
    print(f"  (load average now {os.getloadavg()[0]:.1f})", flush=True)


def bench_engines(n: int, repeat: int, env: dict) -> None:
    """The README's line: the JIT against the interpreter at N, default tiles, JIT cache warm. As processes
    (the command a user types, default --verify), and the run alone (--verify off: the interpreter's
    api.run, its check included, against the JIT's native run, compiling excluded)."""
    procs = {"interp": [], "jit": []}
    runs = {"interp": [], "jit": []}
    measure(attn_cmd(n, "auto", engine="jit"), env)  # the JIT's cache
    for _ in range(repeat):
        for engine in procs:
            procs[engine].append(measure(attn_cmd(n, "auto", engine=engine), env)[0])
            info = json.loads(measure(attn_cmd(n, "off", "--json", engine=engine), env)[2])
            runs[engine].append(info["jit"]["run_seconds"] if engine == "jit" else info["wall_seconds"])
    print(f"JIT against the interpreter, N = {n}, Br = Bc = 64, seconds min / median:")
    print(f"  processes, --verify auto: interpreter {summary(procs['interp'])}, jit {summary(procs['jit'])}: "
          f"{min(procs['interp']) / min(procs['jit']):.1f}x (min), "
          f"{statistics.median(procs['interp']) / statistics.median(procs['jit']):.1f}x (median)")
    print(f"  the run alone: interpreter's api.run {summary(runs['interp'])}, JIT's native run "
          f"{summary(runs['jit'])}: {min(runs['interp']) / min(runs['jit']):.1f}x (min), "
          f"{statistics.median(runs['interp']) / statistics.median(runs['jit']):.1f}x (median)")
    print(flush=True)


def bench_start(repeat: int, env: dict) -> None:
    """The start-up processes (bench_startup.py's table), in the same run."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_startup import startup

    print("start-up:")
    startup(repeat, env)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-N", type=int, action="append", help="sequence length (repeatable)")
    ap.add_argument("--verify", action="append", help="--verify modes to time (repeatable)")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="3 repeats")
    ap.add_argument("--against", type=Path, help="a folder with another version, timed in the same rounds")
    ap.add_argument("--engines", type=int, metavar="N", help="also time the interpreter against the JIT at N")
    ap.add_argument("--no-start", action="store_true", help="leave out the start-up processes")
    ap.add_argument("--no-reference", action="store_true",
                    help="leave out the NumPy script (it holds N x N: 12 GiB at N = 32768)")
    args = ap.parse_args(argv)
    sizes = args.N or [1024, 4096]
    modes = args.verify or ["full", "rows=256", "off", "auto"]
    repeat = args.repeat or (3 if args.quick else 5)
    cache = tempfile.mkdtemp(prefix="attn-bench-")
    # as an installed package runs: bytecode cached (here in a folder of the bench's own)
    env = dict(os.environ, XDG_CACHE_HOME=cache, PYTHONPYCACHEPREFIX=os.path.join(cache, "pyc"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; {repeat} repeats, processes alternating; load average "
          f"{os.getloadavg()[0]:.1f}")
    measure(attn_cmd(64, "off"), env)
    baseline = min(measure(attn_cmd(64, "off"), env)[1] for _ in range(3))
    for n in sizes:
        bench_size(n, modes, repeat, env, baseline, args.against, not args.no_reference)
    if args.engines:
        bench_engines(args.engines, repeat, env)
    if not args.no_start:
        bench_start(repeat, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
