"""Exploration: exhaustive within the model, pruned by `where` and by capacity, and the
vectorized model equal to the model one candidate at a time."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from attnlang.api import load_program, run
from attnlang.binding import static_decls
from attnlang.diagnostics import AttnError
from attnlang.explorer.search import explore
from attnlang.model.analytic import estimate, hardware_for_env
from attnlang.model.statics import aeval, where_conds
from attnlang.program import load_source
from attnlang.syntax import ast

FIXED = {"N": 256, "P": 2, "Pv": 1}  # a small mmee space: 16 symbolic combinations x 504 tilings


def _space(kernel: ast.Kernel, fixed: dict) -> list[dict]:
    """Every candidate, one dict each: the brute force the explorer must agree with."""
    axes = []
    for d in static_decls(kernel):
        if isinstance(d, ast.Param) and d.name not in fixed and d.domain:
            axes.append((d.name, [e.id if isinstance(e, ast.Name) else int(e.value) for e in d.domain]))
    return [dict(fixed, **dict(zip([a for a, _ in axes], vals, strict=True)))
            for vals in itertools.product(*[v for _, v in axes])]


def _flat(cands: list[dict]) -> dict:
    return {k: np.array([c[k] for c in cands]) for k in cands[0]}


@pytest.fixture(scope="module")
def mmee(request):
    root = request.config.rootpath
    return load_program(str(root / "examples" / "mmee.attn"))


def _brute_force(prog, fixed):
    """Every candidate costed by the model on flat arrays; feasibility decided candidate by candidate."""
    k = prog.kernel(None)
    cands = _space(k, fixed)
    params = _flat(cands)
    env = {**params, **{s: s for s in ("q_outer", "kv_outer", "tile", "row", "inner", "outer", "sub")}}
    ok = np.ones(len(cands), dtype=bool)
    for cond in where_conds(k):
        ok &= np.broadcast_to(np.asarray(aeval(cond, {**env, "d": 64}), dtype=bool), ok.shape)
    est = estimate(prog, k, params)
    for mask in est.invalid.values():
        ok &= ~mask
    ok &= est.peak_bytes["sram"] <= 512 * 1024
    return cands, est, ok


def test_best_is_the_brute_force_best(mmee):
    cands, est, ok = _brute_force(mmee, FIXED)
    ex = explore(mmee, None, FIXED, top=5)
    assert ex.candidates == len(cands)
    assert ex.feasible == int(ok.sum())
    cycles = np.where(ok, est.cycles, np.inf)
    assert ex.best.cycles == int(cycles.min())
    distinct = sorted({(int(c), float(e)) for c, e, k in zip(est.cycles, est.energy_pj, ok, strict=True) if k})
    assert [c.cycles for c in ex.top] == [c for c, _ in sorted(distinct, key=lambda p: (p[0], p[1]))[:5]]
    # The candidate reported is one the brute force costs the same.
    chosen = {k: v for k, v in ex.best.defines.items() if k != "d"}
    assert est.cycles[cands.index(chosen)] == cycles.min()
    assert ok[cands.index(chosen)]


def test_candidates_of_identical_cost_are_one_line_of_the_ranking(mmee):
    cands, est, ok = _brute_force(mmee, FIXED)
    ex = explore(mmee, None, FIXED, top=10)
    costs = [(c.cycles, c.energy_pj) for c in ex.top]
    assert len(set(costs)) == len(costs) == 10
    feasible = [(int(c), float(e)) for c, e, k in zip(est.cycles, est.energy_pj, ok, strict=True) if k]
    for c in ex.top:  # each line counts the others that cost exactly what it costs
        assert c.same_cost == sum(1 for p in feasible if p[0] == c.cycles and p[1] == pytest.approx(c.energy_pj,
                                                                                                   rel=1e-12)) - 1
    assert any(c.same_cost for c in ex.top)  # this space has such twins: the test sees a collapse


def test_energy_and_edp_objectives(mmee):
    cands, est, ok = _brute_force(mmee, FIXED)
    energy = np.where(ok, est.energy_pj, np.inf)
    ex = explore(mmee, None, FIXED, minimize="energy", top=3)
    assert ex.best.energy_pj == pytest.approx(float(energy.min()))
    edp = np.where(ok, est.energy_pj * est.cycles, np.inf)
    ex = explore(mmee, None, FIXED, minimize="edp", top=3)
    assert ex.best.energy_pj * ex.best.cycles == pytest.approx(float(edp.min()))


def test_pareto_front_is_exactly_the_non_dominated_set(mmee):
    cands, est, ok = _brute_force(mmee, FIXED)
    pts = {(int(c), float(e)) for c, e in zip(est.cycles[ok], est.energy_pj[ok], strict=True)}
    front = {p for p in pts if not any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in pts)}
    ex = explore(mmee, None, FIXED)
    got = {(c.cycles, c.energy_pj) for c in ex.pareto}
    assert {(c, round(e)) for c, e in got} == {(c, round(e)) for c, e in front}
    assert [c.cycles for c in ex.pareto] == sorted(c.cycles for c in ex.pareto)


def test_vectorized_model_equals_one_candidate_at_a_time(mmee):
    k = mmee.kernel(None)
    cands = _space(k, {"N": 512})
    rng = np.random.default_rng(0)
    pick = [cands[i] for i in rng.choice(len(cands), 24, replace=False)]
    flat = estimate(mmee, k, _flat(pick))
    for i, c in enumerate(pick):
        one = estimate(mmee, k, c)
        assert float(one.cycles) == flat.cycles[i], c
        assert float(one.energy_pj) == pytest.approx(flat.energy_pj[i], rel=1e-12)
        assert float(one.peak_bytes["sram"]) == flat.peak_bytes["sram"][i]


def test_open_grid_equals_flat_candidates(repo_root):
    prog = load_program(str(repo_root / "examples" / "flash.attn"))
    k = prog.kernel(None)
    br = np.array([16, 32, 64, 128]).reshape(4, 1)
    bc = np.array([16, 32, 64, 128]).reshape(1, 4)
    grid = estimate(prog, k, {"N": 512, "Br": br, "Bc": bc})
    assert grid.cycles.shape == (4, 4)
    for i, j in itertools.product(range(4), range(4)):
        one = estimate(prog, k, {"N": 512, "Br": int(br[i, 0]), "Bc": int(bc[0, j])})
        assert grid.cycles[i, j] == float(one.cycles)
        assert grid.energy_pj[i, j] == pytest.approx(float(one.energy_pj))


def test_layout_costs_the_grid_points_that_pass_where(mmee):
    """The walk's layout (model/layout.py) holds the grid candidates that pass `where Bc % Bv == 0`,
    each costed exactly as the declared grid costs it."""
    from attnlang.explorer.space import kernel_space
    from attnlang.model.analytic import _walk

    sp = kernel_space(mmee, mmee.kernel(None), {"N": 512})
    lay = sp.layout
    grid = sp.grid_env(sp.combos()[0])
    shape = sp.shape
    bc = np.broadcast_to(grid["Bc"], shape).reshape(-1)
    bv = np.broadcast_to(grid["Bv"], shape).reshape(-1)
    assert sorted(lay.full) == list(np.flatnonzero(bc % bv == 0))
    assert lay.shape[-1] == max(lay.shape)  # the longest axis innermost
    combo = ("kv_outer", "tile", "outer", "sub")
    ci = sp.combos().index(combo)
    on_grid = _walk(sp.hw, sp.kernel, sp.grid_env(combo))
    on_layout = _walk(sp.hw, sp.kernel, sp.env(sp.combos()[ci]))
    for field in ("cycles", "energy_pj"):
        want = np.broadcast_to(getattr(on_grid, field), shape).reshape(-1)[lay.full]
        got = np.broadcast_to(getattr(on_layout, field), lay.shape).reshape(-1)
        assert np.array_equal(got, want), field


def test_chunks_for_workers_give_the_same_answer(mmee):
    from attnlang.explorer.space import evaluate_combo, kernel_space

    sp = kernel_space(mmee, mmee.kernel(None), {"N": 256})
    whole = evaluate_combo(sp, 0, 0)
    n = sp.layout.shape[sp.layout.chunk_axis]
    parts = [evaluate_combo(sp, 0, 0, slice(a, min(a + 7, n))) for a in range(0, n, 7)]
    assert sum(p.considered for p in parts) == whole.considered
    order = np.argsort(np.concatenate([p.index for p in parts]))
    assert np.array_equal(np.concatenate([p.index for p in parts])[order], whole.index)
    assert np.array_equal(np.concatenate([p.cycles for p in parts])[order], whole.cycles)
    removed = {}
    for p in parts:
        for st in p.stages:
            removed[st.what] = removed.get(st.what, 0) + st.removed
    assert removed == {st.what: st.removed for st in whole.stages}
    one = explore(mmee, None, {"N": 256}, top=20)
    five = explore(mmee, None, {"N": 256}, top=20, workers=5)  # 8 combinations in 16 chunks
    for key in ("candidates", "feasible", "evaluated", "best", "top", "pareto"):
        assert one.to_json()[key] == five.to_json()[key], key


# ---------------------------------------------------------------- pruning

BIG = """
use hw.edge
kernel big(X: f16[N, N]) -> (Y: f16[N, N])
  on edge
  spec Y = X * 2
{
  dim N = 1024
  param T in {16, 32, 64, 128, 256, 512} = 16
  param U in {1, 2, 3} = 1
  WHERE
  for i in 0 .. N by T @pipeline(U) {
    x = load X[i : i+T, :] -> sram
    store x * 2 -> Y[i : i+T, :]
  }
}
"""


def _big(where: str = "", **subs) -> object:
    text = BIG.replace("WHERE", where)
    for a, b in subs.items():
        text = text.replace(a, b)
    return load_source(text, "<big>")


def test_where_prunes_before_evaluation():
    ex = explore(_big("where T * U <= 128"), None, {})
    assert ex.candidates == 18
    allowed = [(t, u) for t in (16, 32, 64, 128, 256, 512) for u in (1, 2, 3) if t * u <= 128]
    stage = next(s for s in ex.pruned if s.what == "where T * U <= 128")
    assert stage.removed == 18 - len(allowed)
    assert ex.evaluated == len(allowed)
    assert {(c.defines["T"], c.defines["U"]) for c in ex.top[:len(allowed)]} <= set(allowed)


def test_capacity_prunes_what_does_not_fit():
    prog = _big()
    ex = explore(prog, None, {}, top=20)
    k = prog.kernel(None)
    fits = []
    for t, u in itertools.product((16, 32, 64, 128, 256, 512), (1, 2, 3)):
        peak = float(estimate(prog, k, {"T": t, "U": u}).peak_bytes["sram"])
        assert peak == t * 1024 * 2 * (u + 1)  # U copies of x (@pipeline), and x * 2 while it is stored
        if peak <= 512 * 1024:
            fits.append((t, u))
    assert ex.feasible == len(fits)
    # Candidates of identical cost are one line, with the count of the others.
    costs = {}
    for t, u in fits:
        e = estimate(prog, k, {"T": t, "U": u})
        costs.setdefault((int(e.cycles), float(e.energy_pj)), []).append((t, u))
    assert len(ex.top) == len(costs)
    for c in ex.top:
        group = costs[(c.cycles, c.energy_pj)]
        assert (c.defines["T"], c.defines["U"]) in group and c.same_cost == len(group) - 1
    stage = next(s for s in ex.pruned if s.what == "capacity of sram")
    assert stage.removed == 18 - len(fits)
    sim = run(prog, None, {"T": 64, "U": 2})
    assert sim.memories["sram"]["peak_bytes"] == 64 * 1024 * 2 * 3


def test_capacity_removing_everything_says_so():
    prog = _big(**{"dim N = 1024": "dim N = 65536"})
    with pytest.raises(AttnError) as exc:
        explore(prog, None, {})
    d = exc.value.diagnostics[0]
    assert d.code == "E1402"
    assert "capacity of sram removed all 18 candidates; the smallest needs 4.00 MiB" in d.message
    assert d.span.file.endswith("edge.attn")  # points at the memory
    assert d.notes == ("sram holds 512 KiB",)


TWICE = """
use hw.edge
kernel twice(X: f16[N, N]) -> (Y: f16[N, N])
  on edge
  spec Y = X * 2
{
  dim N = 1024
  param T in {32, 64, 128} = 64
  for i in 0 .. N by T {
    a = load X[i : i+T, :] -> sram
    b = load X[i : i+T, :] -> sram
    store b * 2 -> Y[i : i+T, :]
    store a * 2 -> Y[i : i+T, :]
  }
}
"""


def _spilling(text: str) -> object:
    """A program on edge with an SRAM that spills instead of refusing."""
    from importlib import resources

    hw = resources.files("attnlang").joinpath("stdlib", "hw", "edge.attn").read_text(encoding="utf-8")
    hw = hw.replace("hardware edge", "hardware edge_spill").replace("policy strict", "policy spill")
    return load_source(text.replace("use hw.edge", hw).replace("on edge", "on edge_spill"), "<spill>")


def test_a_memory_that_spills_prunes_what_overflows_it():
    prog = _spilling(TWICE)
    ex = explore(prog, None, {})
    stage = next(s for s in ex.pruned if s.what.startswith("capacity of sram"))
    assert stage.what == "capacity of sram (it spills, and the model does not cost spill traffic)"
    assert stage.removed == 1 and ex.feasible == 2
    assert {c.defines["T"] for c in ex.top} == {32, 64}
    # T = 128 runs, spilling: the model, which costs no spill traffic, would undercount it.
    sim = run(prog, None, {"T": 128})
    est = estimate(prog, prog.kernel(None), {"T": 128})
    assert sim.counters["spill_bytes"] > 0
    assert sim.memories["dram"]["read_bytes"] > float(est.read_bytes["dram"])


def test_a_memory_that_spills_removing_everything_says_why():
    prog = _spilling(TWICE.replace("dim N = 1024", "dim N = 65536"))
    with pytest.raises(AttnError) as exc:
        explore(prog, None, {})
    d = exc.value.diagnostics[0]
    assert d.code == "E1402"
    assert "removed all 3 candidates; the smallest needs" in d.message
    assert d.notes[0] == "sram holds 512 KiB"
    assert "spills when full" in d.notes[1] and "attn run" in d.notes[1]


def test_where_removing_everything_names_it():
    with pytest.raises(AttnError) as exc:
        explore(_big("where T > 5000"), None, {})
    d = exc.value.diagnostics[0]
    assert d.code == "E1402"
    assert d.message == "where T > 5000 removed all 18 candidates"
    assert d.span.file == "<big>" and d.span.line == 10


def test_empty_domain_is_an_empty_space():
    prog = _big(**{"param U in {1, 2, 3} = 1": "param U in 4 .. 2 = 1"})
    with pytest.raises(AttnError) as exc:
        explore(prog, None, {})
    assert exc.value.diagnostics[0].code == "E1403"
    assert "empty domain" in exc.value.diagnostics[0].message


def test_fixed_params_and_params_without_domain():
    prog = _big(**{"param U in {1, 2, 3} = 1": "param U = 2"})
    ex = explore(prog, None, {})
    assert ex.candidates == 6
    assert any("param U of kernel 'big' has no domain; it is fixed at its default 2" in n for n in ex.notes)
    ex = explore(prog, None, {"T": 64})
    assert ex.candidates == 1
    assert any("nothing varies" in n for n in ex.notes)
    assert ex.best.defines == {"N": 1024, "T": 64, "U": 2}


def test_capacity_agrees_with_the_checker(mmee):
    """explore prunes on the model's peaks; the checker's capacity rule must agree on every candidate."""
    from attnlang.check.capacity import feasible_many

    cands, est, ok = _brute_force(mmee, {"N": 1024, "P": 3, "Pv": 2, "v_at": "sub"})
    valid = np.ones(len(cands), dtype=bool)
    for mask in est.invalid.values():
        valid &= ~mask
    hw = hardware_for_env(mmee, mmee.kernel(None), {"N": 1024})
    theirs = feasible_many(mmee, mmee.kernel(None), _flat(cands), hw)
    assert np.array_equal(ok[valid], theirs[valid])


TWO = """
use hw.edge
kernel rows(X: f16[N, N]) -> (Y: f16[N, N])
  on edge
  spec Y = X * 2
{
  dim N = 256
  param T in {16, 32, 64} = 16
  for i in 0 .. N by T {
    x = load X[i : i+T, :] -> sram
    store x * 2 -> Y[i : i+T, :]
  }
}
kernel cols(X: f16[N, N]) -> (Y: f16[N, N])
  on edge
  spec Y = X * 2
{
  dim N = 256
  param T in {16, 32, 64, 128} = 16
  for j in 0 .. N by T @pipeline(2) {
    x = load X[:, j : j+T] -> sram
    store x * 2 -> Y[:, j : j+T]
  }
}
"""


def test_kernels_sharing_a_spec_are_explored_together():
    prog = load_source(TWO, "<two>")
    ex = explore(prog, None, {}, top=7)
    assert ex.kernels == ["rows", "cols"] and ex.candidates == 7
    every = [(float(estimate(prog, k, {"T": t}).cycles), k) for k, ts in (("rows", (16, 32, 64)),
                                                                          ("cols", (16, 32, 64, 128))) for t in ts]
    assert ex.best.cycles == min(c for c, _ in every)
    distinct = {(int(c), k) for c, k in every}  # ties within a kernel are one line; across kernels, two
    assert sorted((c.cycles, c.kernel) for c in ex.top) == sorted(distinct)
    assert sum(c.same_cost + 1 for c in ex.top) == len(every)
    assert {c.kernel for c in ex.top} == {"rows", "cols"}
    only = explore(prog, ["cols"], {"T": 64})
    assert only.candidates == 1 and only.best.kernel == "cols"


def test_kernels_with_different_specs_need_k():
    from attnlang.diagnostics import UsageError

    prog = load_source(TWO.replace("spec Y = X * 2\n{\n  dim N = 256\n  param T in {16, 32, 64, 128}",
                                   "spec Y = X * 3\n{\n  dim N = 256\n  param T in {16, 32, 64, 128}"), "<two>")
    with pytest.raises(UsageError, match="different specs"):
        explore(prog, None, {})
    assert explore(prog, ["rows"], {}).candidates == 3
