"""The two-stage search: stage 1's closed forms against the detailed model, and the pick against --exhaustive."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlang.api import explore, load_program
from attnlang.explorer.search import spaces, tasks
from attnlang.explorer.space import evaluate_combo
from attnlang.explorer.stage1 import evaluate_block
from attnlang.explorer.stages import Pool, reduce, stage1_tasks


def _both(path, defines):
    prog = load_program(str(path))
    sps, _ = spaces(prog, None, defines)
    detailed, first = {}, {}
    for t in tasks(sps, 1)[0]:
        p = evaluate_combo(sps[t.kernel], t.kernel, t.combo)
        detailed.update({(t.combo, int(i)): (c, e) for i, c, e in zip(p.index, p.cycles, p.energy_pj, strict=True)})
    for t in stage1_tasks(sps, 1):
        b = evaluate_block(sps[t.kernel], t.kernel, t.combo)
        first.update({(int(bc), int(i)): (c, e)
                      for bc, i, c, e in zip(b.combo, b.index, b.cycles, b.energy_pj, strict=True)})
    return detailed, first


def test_stage1_energy_is_the_detailed_models_and_it_never_prunes_what_the_detailed_model_keeps(repo_root):
    detailed, first = _both(repo_root / "examples" / "mmee.attn", {"N": 256})
    assert len(detailed) > 1000
    assert set(detailed) <= set(first)  # stage 1's peaks are lower bounds
    for key, (_, energy) in detailed.items():
        assert abs(first[key][1] - energy) <= 1e-9 * energy
    # its cycles are the throughput bound: never above the detailed schedule's
    assert all(first[k][0] <= detailed[k][0] for k in detailed)


def test_stage1_ranks_like_the_detailed_model(repo_root):
    detailed, first = _both(repo_root / "examples" / "mmee.attn", {"N": 1024})
    keys = sorted(detailed)
    a = np.array([detailed[k][0] for k in keys])
    b = np.array([first[k][0] for k in keys])
    rho = np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1]
    assert rho > 0.9
    best = min(keys, key=lambda k: detailed[k])
    order = sorted(first, key=lambda k: first[k])
    assert order.index(best) < 512  # inside the default k


def test_two_stage_pick_against_exhaustive(repo_root):
    for name, defines in (("mmee", {"N": 1024}), ("flash", {}), ("flat", {}), ("flat_mha", {})):
        path = str(repo_root / "examples" / f"{name}.attn")
        two = explore(path, defines=defines)
        ex = explore(path, defines=defines, exhaustive=True)
        assert two.stage1 is not None and ex.stage1 is None
        assert two.stage1["candidates"] == ex.evaluated
        assert two.best.seconds <= 1.02 * ex.best.seconds, name
        assert [c.defines for c in two.pareto][:1] == [c.defines for c in ex.pareto][:1]


def test_two_workers_give_the_same_result(repo_root):
    path = str(repo_root / "examples" / "mmee.attn")
    one = explore(path, defines={"N": 512, "P": 1}, top=5)
    two = explore(path, defines={"N": 512, "P": 1}, top=5, workers=2)
    assert [c.to_json() for c in one.top] == [c.to_json() for c in two.top]
    assert [c.to_json() for c in one.pareto] == [c.to_json() for c in two.pareto]
    assert (one.feasible, one.evaluated) == (two.feasible, two.evaluated)


def test_json_has_stage1_beside_best(attn_main, repo_root):
    path = str(repo_root / "examples" / "flash.attn")
    status, out, err = attn_main("explore", path, "--json", "--rerank", "4")
    assert status == 0, err
    r = json.loads(out)
    assert r["stage1"]["candidates"] == r["evaluated"] and r["stage1"]["seconds"] >= 0
    assert r["stage2"]["k"] == 4 and r["stage2"]["candidates"] >= 4
    status, out, err = attn_main("explore", path, "--json", "--exhaustive")
    assert status == 0, err
    assert "stage1" not in json.loads(out)
    status, out, err = attn_main("explore", path, "--rerank", "0")
    assert status == 2 and "--rerank" in err


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 6)), min_size=1, max_size=60),
       st.integers(1, 8), st.randoms(use_true_random=False), st.sampled_from(["latency", "energy", "edp"]))
def test_reduce_does_not_depend_on_the_order_of_blocks(points, k, rnd, minimize):
    n = len(points)
    pool = Pool(np.zeros(n, dtype=np.int64), np.arange(n) % 3, np.arange(n), np.array([p[0] for p in points], float),
                np.array([p[1] for p in points], float), np.array([p[0] for p in points], float) / 10)
    whole = reduce(pool, k, minimize)
    perm = list(range(n))
    rnd.shuffle(perm)
    kept = Pool.empty()
    for chunk in np.array_split(np.array(perm), max(1, n // 7)):
        kept = reduce(Pool.join([kept, reduce(pool.take(chunk), k, minimize)]), k, minimize)
    assert kept.index.tolist() == whole.index.tolist()


def test_a_loop_of_no_iteration_at_one_trip_count_is_skipped_as_the_detailed_model_skips_it(repo_root):
    # mas_attention's `for i in Br .. N - Br by Br` runs nothing at Br = N / 2: not a pruned candidate
    path = str(repo_root / "examples" / "mas_attention.attn")
    two = explore(path, defines={"N": 256})
    ex = explore(path, defines={"N": 256}, exhaustive=True)
    assert two.feasible == ex.feasible == 24
    assert two.best.to_json() == ex.best.to_json()
