"""The ZigZag side of bench/bench_explore_peer.py: runs INSIDE ZigZag's own virtual environment.

    ZIGZAG_PYTHON bench/peer_zigzag.py < spec.json > result.json

It imports nothing of attnlang (ZigZag's environment does not have it): the
spec on stdin says everything — the hardware's numbers and the matmul layers —
and this script writes ZigZag's three inputs (accelerator, workload and
mapping YAML) into a temporary folder, runs ZigZag's mapper once per
objective asked for, and prints one JSON object: for each run, the seconds
the search took, ZigZag's latency (cycles) and energy (pJ) of its best
mapping, per layer and in total, and the mapping it chose.

Only ZigZag's public API (`zigzag.api.get_hardware_performance_zigzag`) and
the fields of the cost model evaluations it returns are used.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import tempfile
import time
from pathlib import Path


def accelerator_yaml(hw: dict) -> str:
    """ZigZag's accelerator: a per-PE output register, the on-chip SRAM that feeds the array, and DRAM.

    ZigZag prices an access at a port's widest (bandwidth_max bits); our figures are per byte, so each
    memory's access cost is its pJ/B times the port's width in bytes."""
    word = hw["word_bits"]
    sram_bits, dram_bits = hw["sram_bits_per_cycle"], hw["dram_bits_per_cycle"]

    def port(name, kind, bits, allocation, low=word):
        alloc = "\n".join(f"          - {a}" for a in allocation)
        return (f"      - name: {name}\n        type: {kind}\n        bandwidth_min: {low}\n"
                f"        bandwidth_max: {bits}\n        allocation:\n{alloc}\n")

    reg = ("  reg_O:\n"
           f"    size: {word}\n    r_cost: 0\n    w_cost: 0\n    area: 0\n    latency: 1\n"
           "    auto_cost_extraction: False\n    operands: [O]\n    ports:\n"
           + port("r_port_1", "read", word, ["O, tl"]) + port("r_port_2", "read", word, ["O, th"])
           + port("w_port_1", "write", word, ["O, fh"]) + port("w_port_2", "write", word, ["O, fl"])
           + "    served_dimensions: []\n")
    sram = ("  sram:\n"
            f"    size: {hw['sram_bytes'] * 8}\n"
            f"    r_cost: {hw['sram_read_pj_per_byte'] * sram_bits / 8}\n"
            f"    w_cost: {hw['sram_write_pj_per_byte'] * sram_bits / 8}\n"
            "    area: 0\n    latency: 1\n    operands: [I1, I2, O]\n    ports:\n"
            + port("r_port_1", "read", sram_bits, ["I1, tl", "I2, tl", "O, tl", "O, th"])
            + port("w_port_1", "write", sram_bits, ["I1, fh", "I2, fh", "O, fh", "O, fl"])
            + "    served_dimensions: [D1, D2]\n")
    dram = ("  dram:\n"
            "    size: 10000000000000\n"
            f"    r_cost: {hw['dram_read_pj_per_byte'] * dram_bits / 8}\n"
            f"    w_cost: {hw['dram_write_pj_per_byte'] * dram_bits / 8}\n"
            "    area: 0\n    latency: 1\n    operands: [I1, I2, O]\n    ports:\n"
            + port("rw_port_1", "read_write", dram_bits,
                   ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"], low=8)
            + "    served_dimensions: [D1, D2]\n")
    return (f"name: {hw['name']}\n\nmemories:\n{reg}\n{sram}\n{dram}\n"
            "operational_array:\n"
            f"  input_precision: [{word}, {word}]\n  unit_energy: {hw['mac_pj']}\n  unit_area: 1\n"
            f"  dimensions: [D1, D2]\n  sizes: [{hw['rows']}, {hw['cols']}]\n")


def workload_yaml(layers: list[dict], word: int) -> str:
    """Each layer O[b][k] += I[b][c] * W[c][k] (m = B, k = C, n = K); a layer's I may be an earlier
    layer's O."""
    out = []
    for i, layer in enumerate(layers):
        source = layer.get("input_from")
        out.append(
            f"- id: {i} # {layer['name']}\n  name: {layer['name']}\n  operator_type: Gemm\n"
            "  equation: O[b][k]+=I[b][c]*W[c][k]\n  loop_dims: [B, K, C]\n"
            f"  loop_sizes: [{layer['m']}, {layer['n']}, {layer['k']}]\n"
            f"  operand_precision:\n    W: {word}\n    I: {word}\n    O: {word}\n    O_final: {word}\n"
            f"  operand_source:\n    I: {i if source is None else source}\n    W: {i}\n")
    return "\n".join(out)


def mapping_yaml(hw: dict) -> str:
    """The array's own dataflow (output stationary: the output's rows on D1, its columns on D2), fixed as
    the hardware fixes it; ZigZag searches the temporal mapping (the loop order and the tiling at each
    memory level)."""
    return ("- name: default\n  spatial_mapping:\n"
            f"    D1:\n      - B, {hw['rows']}\n    D2:\n      - K, {hw['cols']}\n"
            "  memory_operand_links:\n    O: O\n    W: I2\n    I: I1\n")


def run(spec: dict, folder: Path) -> dict:
    from zigzag.api import get_hardware_performance_zigzag

    hw, layers = spec["hardware"], spec["layers"]
    (folder / "accelerator.yaml").write_text(accelerator_yaml(hw))
    (folder / "workload.yaml").write_text(workload_yaml(layers, hw["word_bits"]))
    (folder / "mapping.yaml").write_text(mapping_yaml(hw))
    runs = []
    for opt in spec.get("objectives", ["latency"]):
        noise = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
            energy, latency, cmes = get_hardware_performance_zigzag(
                str(folder / "workload.yaml"), str(folder / "accelerator.yaml"), str(folder / "mapping.yaml"),
                opt=opt, dump_folder=str(folder / f"out-{opt}"), lpf_limit=spec.get("lpf_limit", 6),
                loma_show_progress_bar=False)
        seconds = time.perf_counter() - t0
        per_layer = []
        for cme in cmes[0][1]:
            cme = cme[0] if isinstance(cme, tuple) else cme
            per_layer.append({
                "layer": cme.layer.name, "latency_cycles": float(cme.latency_total2),
                "energy_pj": float(cme.energy_total), "mac_energy_pj": float(cme.mac_energy),
                "memory_energy_pj": float(cme.mem_energy),
                "spatial_mapping": str(cme.spatial_mapping), "temporal_mapping": str(cme.temporal_mapping),
            })
        runs.append({"objective": opt, "seconds": seconds, "latency_cycles": float(latency),
                     "energy_pj": float(energy), "layers": per_layer})
    return {"zigzag_version": _version(), "runs": runs}


def _version() -> str:
    from importlib.metadata import version

    return version("zigzag-dse")


def main() -> int:
    spec = json.load(sys.stdin)
    logging.disable(logging.CRITICAL)  # ZigZag logs each stage at INFO on the root logger
    with tempfile.TemporaryDirectory(prefix="attn-zigzag-") as tmp:
        out = run(spec, Path(tmp))
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
