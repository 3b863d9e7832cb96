"""The Python API from the package itself (`import attnlang`): what `attn check`, `run` and `explore` do,
as functions (docs/api.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import attnlang

ROOT = Path(__file__).resolve().parents[1]
FLASH = str(ROOT / "examples" / "flash.attn")


def sdpa(q, k, v):
    s = q.astype(np.float64) @ k.astype(np.float64).T / np.sqrt(q.shape[1])
    p = np.exp(s - s.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)) @ v.astype(np.float64)


def test_run_gives_the_numbers_of_numpy_attention_and_the_costs():
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((128, 64)).astype(np.float16).astype(np.float32) for _ in range(3))
    r = attnlang.run(FLASH, defines={"N": 128, "Br": 32, "Bc": 64}, inputs={"Q": q, "K": k, "V": v})
    assert r.ok and r.outputs["O"].shape == (128, 64)
    assert np.allclose(r.outputs["O"], sdpa(q, k, v), atol=3e-3, rtol=3e-3)
    # 128 x 128 x 64 multiply-accumulates twice (QK^T and PV)
    assert r.counters["macs"] == 2 * 128 * 128 * 64
    assert r.cycles > 0 and r.energy_pj > 0 and r.to_json()["cycles"] == r.cycles


def test_a_kernel_bound_once_runs_with_other_inputs_and_engines():
    """bind_kernel checks and binds once; run takes the bound kernel, each run against NumPy's attention."""
    b = attnlang.bind_kernel(FLASH, defines={"N": 128, "Br": 32, "Bc": 64})
    assert {k: b.env[k] for k in ("N", "d", "Br", "Bc")} == {"N": 128, "d": 64, "Br": 32, "Bc": 64}
    assert b.hardware.name == "edge" and b.warnings == [] and b.errors == []
    rng = np.random.default_rng(5)
    for engine in ("interp", "jit"):
        q, k, v = (rng.standard_normal((128, 64)).astype(np.float16).astype(np.float32) for _ in range(3))
        r = attnlang.run(b, inputs={"Q": q, "K": k, "V": v}, engine=engine)
        assert r.ok and r.engine == engine and np.allclose(r.outputs["O"], sdpa(q, k, v), atol=3e-3, rtol=3e-3)
        assert r.defines == {"N": 128, "d": 64, "Br": 32, "Bc": 64}
    with pytest.raises(attnlang.UsageError, match="as it was bound"):
        attnlang.run(b, defines={"N": 256})
    with pytest.raises(attnlang.UsageError, match=r"expected shape \[128, 64\]"):
        attnlang.run(b, inputs={"Q": np.zeros((64, 64), dtype=np.float32)})
    with pytest.raises(attnlang.AttnError) as exc:
        attnlang.bind_kernel(FLASH, defines={"N": 96, "Br": 64})
    assert exc.value.diagnostics[0].code == "E0602"


def test_a_partial_binding_keeps_its_errors_and_what_it_could_type():
    """What the language server binds of a program being edited: unknown hardware, yet typed values."""
    from attnlang.check import bind_kernel

    text = Path(FLASH).read_text().replace("on edge", "on nowhere")
    prog = attnlang.load_program(text)
    with pytest.raises(attnlang.AttnError):
        bind_kernel(prog, "flash")
    b = bind_kernel(prog, "flash", partial=True, rules=False)
    assert b.hardware is None and [d.code for d in b.errors] == ["E0105"]
    types = {(name, span.line): v for (name, span), v in b.shapes.items()}
    assert types[("s", 21)].shape == (64, 64) and types[("s", 21)].dtype == "f16"
    with pytest.raises(attnlang.AttnError):
        attnlang.run(b)


def test_check_program_returns_the_diagnostics_instead_of_raising():
    assert attnlang.check_program(FLASH) == []
    diags = attnlang.check_program(str(ROOT / "examples" / "naive.attn"), defines={"T": 512})
    assert [(d.code, d.severity) for d in diags] == [("E0801", "error"), ("E0954", "warning")]
    assert diags[0].span.line > 0 and "sram needs" in diags[0].message
    assert "T = 512 is outside its domain" in diags[1].message


def test_a_wrong_program_raises_attn_error_with_its_place():
    with pytest.raises(attnlang.AttnError) as exc:
        attnlang.run(FLASH, defines={"N": 96, "Br": 64})
    d = exc.value.diagnostics[0]
    assert d.code == "E0602" and d.span.file.endswith("flash.attn")
    with pytest.raises(attnlang.UsageError):
        attnlang.run(FLASH, defines={"nothing": 1})


def test_explore_ranks_every_candidate_and_its_best_runs_as_the_model_says():
    ex = attnlang.explore(FLASH, defines={"N": 128, "d": 32}, top=16)
    assert (ex.candidates, ex.evaluated) == (16, 16)
    cycles = [c.cycles for c in ex.top]
    assert cycles == sorted(cycles) and ex.best == ex.top[0]
    # every candidate, run in the interpreter: the model's order is the simulation's, within the model's 10%
    runs = {(c.defines["Br"], c.defines["Bc"]): attnlang.run(FLASH, defines=c.defines).cycles for c in ex.top}
    assert min(runs.values()) >= 0.9 * ex.best.cycles
    for c in ex.top:
        assert abs(c.cycles - runs[c.defines["Br"], c.defines["Bc"]]) <= 0.1 * c.cycles
    v = attnlang.validate(FLASH, ex.top[:2])
    assert [x["sim_cycles"] for x in v] == [runs[c.defines["Br"], c.defines["Bc"]] for c in ex.top[:2]]
    assert all(x["verified"] for x in v)


def test_explore_checks_the_program_first():
    bad = "use hw.edge\nkernel k(Q: f16[N]) -> (O: f16[N]) on edge { dim N = 4\n  store qq -> O\n}\n"
    with pytest.raises(attnlang.AttnError) as exc:
        attnlang.explore(bad)
    assert exc.value.diagnostics[0].code == "E0310"


def test_estimate_costs_an_open_grid_of_candidates_at_once():
    br = np.array([16, 32, 64])[:, None]
    bc = np.array([16, 64])[None, :]
    est = attnlang.estimate(FLASH, params={"N": 128, "Br": br, "Bc": bc})
    assert est.cycles.shape == (3, 2)
    prog = attnlang.load_program(FLASH)
    for i, b in enumerate((16, 32, 64)):
        for j, c in enumerate((16, 64)):
            sim = attnlang.run(prog, defines={"N": 128, "Br": b, "Bc": c})
            assert abs(est.cycles[i, j] - sim.cycles) <= 0.1 * sim.cycles
            assert est.energy_pj[i, j] == pytest.approx(sim.energy_pj, rel=0.01)
            assert est.read_bytes["dram"][i, j] == sim.memories["dram"]["read_bytes"]


def test_the_api_is_loaded_on_first_use():
    import subprocess
    import sys

    code = ("import sys, attnlang; print('attnlang.api' in sys.modules); attnlang.run; "
            "print('attnlang.api' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout.split()
    assert out == ["False", "True"]
    with pytest.raises(AttributeError):
        attnlang.nothing  # noqa: B018
