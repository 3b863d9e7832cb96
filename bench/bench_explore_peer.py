"""A peer mapper on the same work: ZigZag against `attn explore`, on mmee.attn's matmuls and hardware.

    python bench/bench_explore_peer.py --peer-python /path/to/venv-zigzag/bin/python
    python bench/bench_explore_peer.py --peer-python ... -D N=1024 --repeat 3
    python bench/bench_explore_peer.py --peer-python ... --write bench/peer_zigzag_mmee.json

ZigZag (KU Leuven's mapper and design-space explorer, `zigzag-dse` on PyPI)
lives in its own virtual environment: its dependencies (ONNX, pandas,
seaborn, sympy...) are no business of attnlang's. Make it once:

    python3 -m venv /tmp/venv-zigzag
    /tmp/venv-zigzag/bin/pip install zigzag-dse==3.9.1 six   # 3.9.1 imports six without declaring it

Without --peer-python (or ZIGZAG_PYTHON in the environment), or where that
interpreter cannot import zigzag, the benchmark says so and stops (exit 0):
the peer is optional.

In the same run, on one core:

- attnlang: `explore` over every candidate of examples/mmee.attn (the fused
  attention kernel: QK^T, the online softmax on the vector unit and PV, with
  loop orders, tiles, placements and pipeline depths), its time to its best
  (min and median of --repeat runs) and the best's latency and energy; and
  the same over bench/peer_matmuls.attn: ZigZag's work exactly — the two
  matmuls, no softmax, S written to DRAM and read back — with its own tiles,
  loop order and pipeline depth to explore;
- ZigZag: its mapper (LOMA, the loop-order search, with its default lpf_limit
  of 6) over the same two matmuls — S = Q K^T (N x d by d x N) and O = P V
  (N x N by N x d), the second reading the first's output — on the same
  hardware, written in ZigZag's terms by bench/peer_zigzag.py (run by ZigZag's
  interpreter, in a subprocess): the 32 x 32 array at 0.3 pJ a MAC, output
  stationary as the hardware's matrix unit is; the 512 KiB SRAM at 256 B a
  cycle and 1.5 pJ/B; DRAM at 57 B a cycle (50 GiB/s at 940 MHz) and 32 pJ/B;
  16-bit words. Its time to its best, and the best's latency and energy.

It prints each tool's figures and the ratios, and with --write, ZigZag's raw
output and both tools' figures as JSON (bench/peer_zigzag_mmee.json is that
file, committed with this script). What the two tools model differently is in
docs/explore.md ("A peer: ZigZag").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attnlang.api import explore, load_program  # noqa: E402
from attnlang.explorer.search import spaces  # noqa: E402

MMEE = ROOT / "examples" / "mmee.attn"
MATMULS = ROOT / "bench" / "peer_matmuls.attn"
DRIVER = ROOT / "bench" / "peer_zigzag.py"
WIDTH = 66  # the label column of the table


def spec(n: int, objectives: list[str]) -> dict:
    """What ZigZag needs, read from mmee.attn's hardware (one source for both tools)."""
    sp = spaces(load_program(str(MMEE)), None, {"N": n})[0][0]
    hw = sp.hw
    d = _dim(sp, "d")
    matrix = [u for u in hw.units.values() if u.kind == "matrix"]
    if len(matrix) != 1 or set(hw.memories) != {"dram", "sram"}:
        raise SystemExit("bench_explore_peer: the hardware is no longer one matrix unit on sram and dram")
    pe, sram, dram = matrix[0], hw.memories["sram"], hw.memories["dram"]
    word_bits = int(hw.word_bytes * 8)
    return {
        "hardware": {
            "name": "edge", "word_bits": word_bits, "rows": pe.rows, "cols": pe.cols, "mac_pj": pe.mac_pj,
            "sram_bytes": int(sram.capacity_bytes),
            "sram_bits_per_cycle": int(sram.bandwidth_bytes_per_cycle * 8),
            "sram_read_pj_per_byte": sram.read_pj_per_byte, "sram_write_pj_per_byte": sram.write_pj_per_byte,
            # ZigZag's port widths are whole bits: 50 GiB/s at 940 MHz is 456.9 bits a cycle
            "dram_bits_per_cycle": int(dram.bandwidth_bytes_per_cycle * 8),
            "dram_read_pj_per_byte": dram.read_pj_per_byte, "dram_write_pj_per_byte": dram.write_pj_per_byte,
        },
        "clock_hz": hw.clock_hz,
        "layers": [{"name": "QKT", "m": n, "k": d, "n": n},
                   {"name": "PV", "m": n, "k": n, "n": d, "input_from": 0}],
        "objectives": objectives,
    }


def _dim(sp, name: str) -> int:
    combo = sp.combos()[0]
    return int(sp.defines(combo, tuple(0 for _ in sp.shape))[name])


def peer_python(given: str | None) -> str | None:
    """The interpreter of ZigZag's environment, or None (with a message) when there is none usable."""
    exe = given or os.environ.get("ZIGZAG_PYTHON")
    if not exe:
        print("bench_explore_peer: skipped: no ZigZag environment named (--peer-python or ZIGZAG_PYTHON); "
              "make one as this script's docstring says")
        return None
    try:
        got = subprocess.run([exe, "-c", "import zigzag.api"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"bench_explore_peer: skipped: cannot run {exe}: {exc}")
        return None
    if got.returncode != 0:
        last = (got.stderr.strip().splitlines() or ["?"])[-1]
        print(f"bench_explore_peer: skipped: {exe} cannot import zigzag ({last})")
        return None
    return exe


def run_zigzag(exe: str, s: dict) -> tuple[dict, float]:
    t0 = time.perf_counter()
    got = subprocess.run([exe, str(DRIVER)], input=json.dumps(s), capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    if got.returncode != 0:
        raise SystemExit(f"bench_explore_peer: ZigZag failed:\n{got.stderr[-4000:]}")
    return json.loads(got.stdout), wall


def run_attn(path: Path, n: int, objective: str, repeat: int) -> tuple[list[float], object]:
    prog = load_program(str(path))
    times, ex = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        ex = explore(prog, defines={"N": n}, minimize=objective, top=1)
        times.append(time.perf_counter() - t0)
    return times, ex


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-python", help="the python of ZigZag's environment (default: $ZIGZAG_PYTHON)")
    ap.add_argument("-D", dest="defines", action="append", default=[], metavar="N=VALUE",
                    help="the sequence length (default: mmee.attn's, 4096)")
    ap.add_argument("--minimize", choices=("latency", "energy"), action="append",
                    help="the objective (repeatable; default: latency, then energy)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of attn explore (ZigZag runs once: it is slow)")
    ap.add_argument("--write", metavar="FILE.json", help="write ZigZag's output and both tools' figures")
    args = ap.parse_args()
    exe = peer_python(args.peer_python)
    if exe is None:
        return 0
    n = 4096
    for item in args.defines:
        name, _, value = item.partition("=")
        if name != "N" or not value.isdigit():
            raise SystemExit("bench_explore_peer: -D takes N=VALUE only")
        n = int(value)
    objectives = args.minimize or ["latency", "energy"]
    s = spec(n, objectives)
    clock = s["clock_hz"]

    run_attn(MMEE, 256, "latency", 1)  # warm: imports, the standard library, caches
    ours = {(label, obj): run_attn(path, n, obj, args.repeat)
            for obj in objectives for label, path in (("mmee.attn", MMEE), ("peer_matmuls.attn", MATMULS))}
    zz, zz_wall = run_zigzag(exe, s)

    cpu = platform.processor() or platform.machine()
    print(f"machine: {platform.system()} {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"one core; load average {os.getloadavg()[0]:.1f}; ZigZag {zz['zigzag_version']}")
    print(f"attention at N = {n}, d = {s['layers'][0]['k']} on mmee.attn's hardware (edge); ZigZag's whole run "
          f"took {zz_wall:.1f} s with its start-up and parsing")
    written = []
    for z in zz["runs"]:
        obj = z["objective"]
        z_secs, z_lat, z_energy = z["seconds"], z["latency_cycles"] / clock, z["energy_pj"]
        print()
        print(f"best by {obj}:{'':<{WIDTH - 9}} {'time to best':>10} {'latency':>11} {'energy':>11}")

        def row(label, secs, lat, energy, extra=""):
            print(f"  {label:<{WIDTH}} {secs:>8.3f} s {lat * 1e3:>8.3f} ms {energy * 1e-9:>8.3f} mJ{extra}")

        for label in ("mmee.attn", "peer_matmuls.attn"):
            t, ex = ours[(label, obj)]
            what = "fused, with the softmax" if label == "mmee.attn" else "the two matmuls, S through DRAM"
            row(f"attn explore, {label} ({what})", min(t), ex.best.seconds, ex.best.energy_pj,
                f"   {ex.evaluated:,} candidates; median {statistics.median(t):.3f} s")
        row("ZigZag (LOMA), the two matmuls", z_secs, z_lat, z_energy)
        for layer in z["layers"]:
            print(f"      ZigZag {layer['layer']:<4} {layer['latency_cycles']:>11,.0f} cycles "
                  f"{layer['energy_pj'] * 1e-9:>7.3f} mJ  {layer['temporal_mapping']}")
        print("  ratios, ZigZag / attn explore:")
        for label in ("mmee.attn", "peer_matmuls.attn"):
            t, ex = ours[(label, obj)]
            print(f"    vs {label:<18} time to best {z_secs / min(t):>7.1f}x   latency "
                  f"{z_lat / ex.best.seconds:>5.2f}x   energy {z_energy / ex.best.energy_pj:>5.2f}x")
            written.append({"objective": obj, "tool": "attn explore", "file": label, "seconds_min": min(t),
                            "seconds_median": statistics.median(t), "candidates": ex.evaluated,
                            "best": ex.best.to_json()})
        written.append({"objective": obj, "tool": "zigzag", "seconds": z_secs, "latency_s": z_lat,
                        "energy_pj": z_energy})
    if args.write:
        out = {"n": n, "spec": s, "figures": written, "zigzag": zz, "zigzag_wall_seconds": zz_wall}
        tmp = Path(args.write).with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=2) + "\n")
        tmp.replace(args.write)
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
