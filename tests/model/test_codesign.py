"""Hardware params (`param` and `where` in a hardware block), explored with the mapping's params."""

from __future__ import annotations

import json

import numpy as np
import pytest

import attnlang.explorer.stage1 as stage1
from attnlang.api import explore, load_program
from attnlang.binding import hardware_for
from attnlang.explorer.search import spaces, tasks
from attnlang.explorer.space import evaluate_combo
from attnlang.explorer.stage1 import evaluate_block
from attnlang.explorer.stages import stage1_tasks

HW = """hardware npu {
  param R in {8, 16, 32} = 32
  param SRAM in {64, 128, 512} = 512
  param BW in {25, 50} = 50
  param L in {8, 32} = 32
  param DF in {os, ws} = os
  param area = 0.0025 * R * R + 0.0012 * SRAM + 0.01 * L
  where area <= AREA
  clock 940 MHz
  memory dram { bandwidth BW * 1 GiB/s; read 32 pJ/B; write 32 pJ/B }
  memory sram { capacity SRAM * 1 KiB; bandwidth 256 B/cycle; read 1.5 pJ/B; write 1.5 pJ/B; parent dram }
  unit pe  : matrix { size R, R; dataflow DF; mac 0.3 pJ; memory sram }
  unit vec : vector { lanes L; memory sram
                      op add, sub, mul, max { interval 1; latency 1; energy 0.1 pJ }
                      op exp               { interval 1; latency 4; energy 1.2 pJ }
                      op div               { interval 1; latency 8; energy 1.5 pJ } }
}
kernel flash(Q: f16[N, d], K: f16[N, d], V: f16[N, d]) -> (O: f16[N, d])
  on npu
  spec O = softmax(Q @ K.T / sqrt(d)) @ V
{
  dim N = 256, d = 64
  param Br in {16, 32, 64, 128} = 64
  param Bc in {16, 32, 64, 128} = 64
  param P in {1, 2} = 2
  for i in 0 .. N by Br {
    q   = load Q[i : i+Br, :] -> sram
    m   = full([Br], -inf)
    l   = zeros([Br])
    acc = zeros([Br, d])
    for j in 0 .. N by Bc @pipeline(P) {
      k = load K[j : j+Bc, :] -> sram
      v = load V[j : j+Bc, :] -> sram
      s     = q @ k.T / sqrt(d)
      m_new = max(m, rowmax(s))
      p     = exp(s - m_new[:, None])
      corr  = exp(m - m_new)
      l     = l * corr + rowsum(p)
      acc   = acc * corr[:, None] + p @ v
      m     = m_new
    }
    store acc / l[:, None] -> O[i : i+Br, :]
  }
}
"""


@pytest.fixture
def npu(tmp_path):
    def make(area: float = 100.0) -> str:
        path = tmp_path / "npu.attn"
        path.write_text(HW.replace("AREA", str(area)))
        return str(path)
    return make


def test_hardware_params_elaborate_as_the_literals_they_stand_for(npu):
    prog = load_program(npu())
    k = prog.kernel("flash")
    hw, diags = hardware_for(prog, k, {"R": 16, "SRAM": 128, "BW": 25, "L": 8, "DF": "ws"})
    assert not diags
    assert (hw.units["pe"].rows, hw.units["pe"].cols, hw.units["pe"].dataflow) == (16, 16, "ws")
    assert hw.units["vec"].lanes == 8
    assert hw.memories["sram"].capacity_bytes == 128 * 1024
    assert hw.memories["dram"].bandwidth_bytes_per_cycle == pytest.approx(25 * 2**30 / 940e6)


def test_run_takes_a_hardware_param_with_D(attn_main, npu):
    status, out, err = attn_main("run", npu(), "-D", "R=8", "-D", "DF=ws", "--json")
    assert status == 0, err
    r = json.loads(out)
    assert r["defines"]["R"] == 8 and r["defines"]["DF"] == "ws" and r["verify"]["O"]["ok"]
    status, out, err = attn_main("run", npu(), "--json")
    assert json.loads(out)["cycles"] < r["cycles"]  # a 32 x 32 array is faster than 8 x 8


def test_a_capacity_that_is_a_plain_number_is_an_error(attn_main, tmp_path, npu):
    path = tmp_path / "bad.attn"
    path.write_text(open(npu()).read().replace("capacity SRAM * 1 KiB", "capacity SRAM"))
    status, _, err = attn_main("check", str(path))
    assert status == 1 and "E0202" in err and "capacity" in err


def _both(path, defines=None):
    prog = load_program(path)
    sps, _ = spaces(prog, None, defines or {})
    detailed, first = {}, {}
    for t in tasks(sps, 1)[0]:
        p = evaluate_combo(sps[t.kernel], t.kernel, t.combo)
        detailed.update({(t.combo, int(i)): (c, e) for i, c, e in zip(p.index, p.cycles, p.energy_pj, strict=True)})
    for t in stage1_tasks(sps, 1):
        b = evaluate_block(sps[t.kernel], t.kernel, t.combo, t.chunk, t.lead)
        first.update({(int(bc), int(i)): (c, e)
                      for bc, i, c, e in zip(b.combo, b.index, b.cycles, b.energy_pj, strict=True)})
    return detailed, first


def test_stage1_over_hardware_params_against_the_detailed_model(npu, monkeypatch):
    detailed, first = _both(npu())
    assert len(detailed) > 300
    assert set(detailed) <= set(first)
    for key, (cycles, energy) in detailed.items():
        assert first[key][1] == pytest.approx(energy, rel=1e-12)
        assert first[key][0] <= cycles
    # blocks of a few candidates (leading hardware params fixed, layouts chunked) give the same
    monkeypatch.setattr(stage1, "BLOCK", 20)
    assert _both(npu())[1] == first


def test_two_stage_pick_and_where_counts_against_exhaustive(npu):
    path = npu(area=3.0)
    two = explore(path, top=3)
    ex = explore(path, top=3, exhaustive=True)
    assert two.best.seconds <= 1.02 * ex.best.seconds
    assert two.best.defines["area"] <= 3.0
    where = {s.what: s.removed for s in ex.pruned if s.what.startswith("where")}
    assert where and where == {s.what: s.removed for s in two.pruned if s.what.startswith("where")}
    assert two.stage1["candidates"] == ex.evaluated
    assert two.candidates == ex.candidates == 3 * 3 * 2 * 2 * 2 * 32


def test_codesign_example_on_a_slice(repo_root):
    path = str(repo_root / "examples" / "codesign.attn")
    slice_ = {"N": 1024, "R": 32, "C": 32, "SRAM": 512, "SRAM_BW": 256, "DRAM_BW": 50}
    two = explore(path, defines=slice_, top=3)
    ex = explore(path, defines=slice_, top=3, exhaustive=True)
    assert two.best.seconds <= 1.02 * ex.best.seconds
    assert two.kernels == ["attention"] and {c.defines["style"] for c in two.pareto + two.top} <= {"flash", "flat"}
    workers = explore(path, defines=slice_, top=3, workers=2)
    assert [c.to_json() for c in workers.top] == [c.to_json() for c in two.top]
    assert [c.to_json() for c in workers.pareto] == [c.to_json() for c in two.pareto]


def test_codesign_spans_ten_million_candidates(repo_root):
    prog = load_program(str(repo_root / "examples" / "codesign.attn"))
    sps, _ = spaces(prog, None, {})
    assert sum(sp.size for sp in sps) >= 10**7
    assert [sp.hw_axes for sp in sps] == [["R", "C", "SRAM", "SRAM_BW", "DRAM_BW", "LANES"]]
    assert [a.name for a in sps[0].split[:2]] == ["DF", "style"]  # symbols: one value at a time
    assert np.prod([len(a.values) for a in sps[0].hw_split]) == 10_000
