"""bench/bench_explore_peer.py's inputs: what it tells ZigZag, and the attnlang side of the same work.

ZigZag itself lives in its own environment and is not run here (the benchmark is optional); these check
that the hardware it is given is mmee.attn's, that the YAML it is given says so, and that the kernel
written for the comparison computes what its spec says.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from attnlang.api import run

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_explore_peer  # noqa: E402
import peer_zigzag  # noqa: E402


def test_the_peer_gets_mmees_hardware_and_matmuls():
    s = bench_explore_peer.spec(4096, ["latency"])
    # hw.edge, as its source states it: 32 x 32 at 0.3 pJ, 512 KiB at 256 B/cycle and 1.5 pJ/B,
    # 50 GiB/s at 940 MHz and 32 pJ/B, 2-byte words
    assert s["hardware"] == {
        "name": "edge", "word_bits": 16, "rows": 32, "cols": 32, "mac_pj": 0.3, "sram_bytes": 512 * 1024,
        "sram_bits_per_cycle": 2048, "sram_read_pj_per_byte": 1.5, "sram_write_pj_per_byte": 1.5,
        "dram_bits_per_cycle": int(50 * 2**30 / 940e6 * 8), "dram_read_pj_per_byte": 32.0,
        "dram_write_pj_per_byte": 32.0}
    assert s["layers"] == [{"name": "QKT", "m": 4096, "k": 64, "n": 4096},
                           {"name": "PV", "m": 4096, "k": 4096, "n": 64, "input_from": 0}]


def test_the_yaml_zigzag_reads():
    s = bench_explore_peer.spec(1024, ["latency"])
    hw = s["hardware"]
    acc = yaml.safe_load(peer_zigzag.accelerator_yaml(hw))
    assert acc["operational_array"]["sizes"] == [32, 32]
    assert acc["operational_array"]["unit_energy"] == 0.3
    sram, dram = acc["memories"]["sram"], acc["memories"]["dram"]
    assert sram["size"] == 512 * 1024 * 8
    # an access is a port's width: pJ/B x bytes
    assert sram["r_cost"] == 1.5 * 256 and dram["r_cost"] == 32.0 * hw["dram_bits_per_cycle"] / 8
    assert {p["bandwidth_max"] for p in sram["ports"]} == {2048}
    layers = yaml.safe_load(peer_zigzag.workload_yaml(s["layers"], 16))
    assert [(la["loop_dims"], la["loop_sizes"]) for la in layers] == [(["B", "K", "C"], [1024, 1024, 64]),
                                                                       (["B", "K", "C"], [1024, 64, 1024])]
    assert layers[1]["operand_source"]["I"] == 0  # PV reads QK^T's output
    mapping = yaml.safe_load(peer_zigzag.mapping_yaml(hw))
    assert mapping[0]["spatial_mapping"] == {"D1": ["B, 32"], "D2": ["K, 32"]}  # output stationary


def test_the_matmuls_kernel_computes_its_spec(repo_root):
    path = str(repo_root / "bench" / "peer_matmuls.attn")
    for order in ("rows", "cols"):
        r = run(path, defines={"N": 128, "order": order, "Bi": 64, "Bj": 32, "Ti": 32, "Tj": 64})
        assert r.verify and all(v.ok for v in r.verify.values())


def test_without_the_peer_the_benchmark_says_so(repo_root, tmp_path):
    bench = str(repo_root / "bench" / "bench_explore_peer.py")
    got = subprocess.run([sys.executable, bench, "--peer-python", str(tmp_path / "no-python")],
                         capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stderr
    assert "bench_explore_peer: skipped: cannot run" in got.stdout
