"""Start-up of the `attn` command: `attn check` on a 200-line file as a whole process, beside Python's own.

    python bench/bench_startup.py                  # 10 repeats of each process, alternating
    python bench/bench_startup.py --repeat 20 --breakdown
    python bench/bench_startup.py --instructions   # also count instructions (valgrind; steady under load),
                                                   # and those of a cached `attn run` at N = 256

Each measurement is a fresh process, timed from start to exit; its CPU time (user + system) is read off
`os.wait4`, and is steadier than the wall time on a busy machine. Bytecode is cached and the parse cache
warm (one untimed run of each first), as for an installed package run a second time. In each round, in
turn:

- `python -c pass`: the interpreter's own start, the floor;
- `python -c "import numpy"`: NumPy's import, which the checker needs (its bounds, races and capacity
  rules evaluate slices over all of a loop's points as arrays), the reference for what a process that
  does anything numerical pays;
- `python -c "import attnlang.cli"`: the command's own module, which imports only what every command needs;
- `attn check FILE` on bench_parse.py's generated 216-line program (one hardware block, six kernels).

The goal (issue 19): `attn check` on a 200-line file under 0.25 s as a process, which includes importing
attnlang.cli. The script prints min / median of each and the check's ratio to the NumPy-import process in
the same run, which carries over between a quiet and a busy machine better than the seconds do.
--breakdown adds where one check process's time goes (`-X importtime` by top-level package, then the
phases: imports, reading and parsing, checking). --instructions counts instructions with valgrind's
cachegrind (no cache simulation), which the machine's load does not move.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process, started in the repository's root."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {err.decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def bench_env() -> dict:
    """A cache folder of the bench's own (parse cache, bytecode), and this checkout first on the path."""
    cache = tempfile.mkdtemp(prefix="attn-startup-")
    env = dict(os.environ, XDG_CACHE_HOME=cache, PYTHONPYCACHEPREFIX=os.path.join(cache, "pyc"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def two_hundred_lines(env: dict) -> Path:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_parse import program

    path = Path(env["XDG_CACHE_HOME"]) / "two_hundred.attn"
    path.write_text(program())
    return path


def commands(path: Path) -> dict[str, list[str]]:
    py = sys.executable
    return {"python -c pass": [py, "-c", "pass"],
            "python -c 'import numpy'": [py, "-c", "import numpy"],
            "python -c 'import attnlang.cli'": [py, "-c", "import attnlang.cli"],
            "attn check (216 lines)": [py, "-m", "attnlang", "check", str(path)]}


def summary(values: list[float]) -> str:
    return f"{min(values):.3f} / {statistics.median(values):.3f}"


def startup(repeat: int, env: dict, out=print) -> dict[str, tuple[list[float], list[float]]]:
    """Time the start-up processes, alternating; print a table; return name -> (walls, cpus)."""
    path = two_hundred_lines(env)
    cmds = commands(path)
    for cmd in cmds.values():  # bytecode and the parse cache, as on a second run
        measure(cmd, env)
    got = {name: ([], []) for name in cmds}
    for _ in range(repeat):
        for name, cmd in cmds.items():
            wall, cpu = measure(cmd, env)
            got[name][0].append(wall)
            got[name][1].append(cpu)
    numpy_wall, numpy_cpu = got["python -c 'import numpy'"]
    out(f"  {'process':<34} {'wall s, min / median':>21} {'CPU s, min / median':>21} {'x import numpy (min, med)':>26}")
    for name, (wall, cpu) in got.items():
        ratio = f"{min(wall) / min(numpy_wall):.2f}, {statistics.median(wall) / statistics.median(numpy_wall):.2f}"
        out(f"  {name:<34} {summary(wall):>21} {summary(cpu):>21} {ratio:>26}")
    check = got["attn check (216 lines)"][0]
    out(f"  goal: attn check under 0.250 s as a process: {min(check):.3f} s min, "
        f"{statistics.median(check):.3f} s median ({'met' if min(check) < 0.25 else 'NOT met'} by the min)")
    return got


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def breakdown(env: dict) -> None:
    """Where one `attn check` process goes: its imports by top-level package, then its phases."""
    path = two_hundred_lines(env)
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "attnlang", "check", str(path)],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    groups: dict[str, int] = {}
    for line in p.stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if m:
            name = m.group(4)
            parts = name.split(".")
            # attnlang by subpackage, the AST's module (its frozen dataclasses) on its own, others by package
            key = name if name == "attnlang.syntax.ast" else ".".join(parts[:2]) if parts[0] == "attnlang" \
                else parts[0]
            groups[key] = groups.get(key, 0) + int(m.group(1))  # self time: no double counting
    total = sum(groups.values())
    top = sorted(groups.items(), key=lambda kv: -kv[1])[:10]
    print(f"  imports of one check process (-X importtime, self times summed by package): {total / 1e3:.0f} ms; "
          + ", ".join(f"{k} {v / 1e3:.0f}" for k, v in top))
    phases = (
        "import time\nt0 = time.perf_counter()\nimport attnlang.cli\nfrom attnlang.check import check\n"
        "from attnlang.program import load\nt1 = time.perf_counter()\n"
        f"prog = load({str(path)!r}, ())\nt2 = time.perf_counter()\ncheck(prog, {{}}, None)\n"
        "t3 = time.perf_counter()\nprint(t1 - t0, t2 - t1, t3 - t2)\n")
    runs = [tuple(map(float, subprocess.run([sys.executable, "-c", phases], capture_output=True, text=True,
                                            env=env, cwd=ROOT, check=True).stdout.split())) for _ in range(5)]
    imports, load, chk = (min(r[i] for r in runs) for i in range(3))
    print(f"  phases, best of 5 processes: imports {imports * 1e3:.0f} ms, reading and parsing (cached) "
          f"{load * 1e3:.0f} ms, checking {chk * 1e3:.0f} ms")


#: a cached JIT run whose own work is small: what is left is its start (imports, the cached parse and object)
RUN = ["-m", "attnlang", "run", "examples/flash.attn", "-D", "N=256", "--engine", "jit", "--verify", "rows=256"]


def instructions(env: dict) -> None:
    """Instructions executed by each start-up process (cachegrind, no cache simulation), and by a cached
    `attn run` of flash at N = 256 (its JIT cache warmed under valgrind first, whose CPU LLVM sees as
    another: a compile of a minute or two)."""
    if shutil.which("valgrind") is None:
        print("  --instructions: valgrind is not installed")
        return
    grind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    subprocess.run([*grind, sys.executable, *RUN], capture_output=True, env=env, cwd=ROOT)
    counts = {}
    todo = dict(commands(two_hundred_lines(env)), **{"attn run flash N=256 rows=256": [sys.executable, *RUN]})
    for name, cmd in todo.items():
        p = subprocess.run([*grind, *cmd], capture_output=True, text=True, env=env, cwd=ROOT)
        m = re.search(r"I\s+refs:\s+([\d,]+)", p.stderr)
        counts[name] = int(m.group(1).replace(",", "")) if m else 0
    bare = counts["python -c pass"]
    for name, n in counts.items():
        print(f"  {name:<34} {n / 1e6:>8.0f} M instructions ({(n - bare) / 1e6:>6.0f} M above python -c pass)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--breakdown", action="store_true", help="where one check process's time goes")
    ap.add_argument("--instructions", action="store_true", help="count instructions with valgrind")
    args = ap.parse_args(argv)
    env = bench_env()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; {args.repeat} repeats, processes alternating; load average {load:.1f}")
    startup(args.repeat, env)
    if args.breakdown:
        breakdown(env)
    if args.instructions:
        instructions(env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
