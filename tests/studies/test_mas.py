"""MAS-Attention's two streams against FLAT on the same edge hardware."""

from __future__ import annotations

import json
import re
from pathlib import Path

from attnlang.api import run
from attnlang.cli import main

ROOT = Path(__file__).resolve().parents[2]
MAS = ROOT / "examples" / "mas_attention.attn"
FLAT = ROOT / "examples" / "flat.attn"


def _best(path: Path, n: int, capsys) -> dict:
    assert main(["explore", str(path), "-D", f"N={n}", "--json"]) == 0
    return json.loads(capsys.readouterr().out)["best"]


def test_mas_is_no_slower_than_flat_on_edge_at_1024(capsys):
    mas = _best(MAS, 1024, capsys)
    flat = _best(FLAT, 1024, capsys)
    # Both tuned by the model, then run through the interpreter at their best params. With the vector
    # unit pipelined, this example's pipelining across row blocks gains little over FLAT (the study's
    # kernel, attnlang/studies/mas.attn, overlaps a key tile at a time), so the test holds only that
    # it is not the slower one and that the model's pick agrees with the simulation to 10%.
    mas_run = run(str(MAS), defines=mas["defines"])
    flat_run = run(str(FLAT), defines=flat["defines"])
    assert mas_run.ok and flat_run.ok
    assert mas_run.cycles < flat_run.cycles
    assert abs(mas["cycles"] - mas_run.cycles) <= 0.1 * mas_run.cycles
    assert abs(flat["cycles"] - flat_run.cycles) <= 0.1 * flat_run.cycles


def _on_spill_sram(src: str, kib: int) -> str:
    hw = (ROOT / "attnlang/stdlib/hw/edge.attn").read_text()
    hw = hw.replace("hardware edge", "hardware edge_spill").replace("capacity 512 KiB", f"capacity {kib} KiB")
    hw = hw.replace("policy strict", "policy spill")
    return src.replace("use hw.edge", hw).replace("on edge", "on edge_spill")


def test_discarding_dead_buffers_avoids_spill_traffic():
    src = _on_spill_sram(MAS.read_text(), 96)
    without = re.sub(r"\n\s*discard \w+", "", src)
    defines = {"N": 256, "Br": 32, "Bc": 64}
    kept = run(src, defines=defines, check=False)
    dropped = run(without, defines=defines, check=False)
    assert kept.ok and dropped.ok
    assert kept.counters["spill_bytes"] < dropped.counters["spill_bytes"]
    assert kept.memories["dram"]["write_bytes"] < dropped.memories["dram"]["write_bytes"]
