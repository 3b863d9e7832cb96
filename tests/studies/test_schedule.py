"""`attn schedule --prove`: the fewest steps of the ring schedule, proven by SAT (issue 8).

The model (attnlang/studies/schedule/ring.py): a unit of work is one length-d operation on a PE's MAC cell, a
dot product D(i,j) or a weighted-sum update W(i,j); a PE runs one unit per step; data move one hop
per step on the ring p -> p+1. The optimal step counts asserted here, by hand:

- full, n = 8, m = 4 (B = 2 rows per PE): a PE owns its 2 rows' 2 x 8 dot products and 2 x 8 weighted
  sums, 32 units that only it may run, one per step: at least 32 steps. The kernel's order meets it:
  it starts on its own block, and the block at ring distance s arrives at step s, long before the
  kernel reaches it (step 8s). So 32, and 31 is impossible.
- full, n = 4, m = 4: 1 row x 4 keys x 2 = 8 units per PE: 8.
- full, n = 4, m = 1: all 2 x 4 x 4 = 32 units on one PE: 32.
- causal, n = 8, m = 4: rows are owned folded, PE p has rows p and 7 - p, which see p + 1 and 8 - p
  keys: 9 dot products and 9 weighted sums, 18 units on every PE: 18 (the kernel meets it).
- causal, n = 4, m = 4: PE 3 owns row 3 and its 4 keys: 8 units. Key 0 reaches PE 3 at step 3 and
  D(3,0), W(3,0) can run at steps 6 and 7: 8.
- symmetric, n = 8, m = 4: 8·9/2 = 36 dot products (one per pair) and 64 weighted sums: 100 units on
  4 PEs, one each per step: at least 25. The kernel gives every PE 3 + 4 + 2 = 9 dot products and
  the 16 weighted sums of its own rows, the scores it needs from other PEs arriving while it works:
  25, optimal.
- symmetric, n = 8, m = 2: 100 units on 2 PEs: 50, which the kernel meets.
- symmetric, n = 4, m = 4 (B = 1): 10 + 16 = 26 units on 4 PEs: at least 7 (ceil(26/4)). The kernel
  splits the one-row pair at distance 2 unevenly (PEs 0 and 1 score it), so PEs 0, 1 get 3 + 4 and
  PEs 2, 3 get 2 + 4 units; each score travels on to the other row's PE, the farthest (distance 1,
  3 hops) made at step 1 and used at step 5 or 6: 7, optimal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnlang.studies.schedule.ring import kernel_schedule, problem

RING = "examples/ring_attention.attn"

CASES = [  # n, m, scheme, optimum, kernel's steps
    (8, 4, "full", 32, 32),
    (4, 4, "full", 8, 8),
    (4, 1, "full", 32, 32),
    (8, 4, "causal", 18, 18),
    (4, 4, "causal", 8, 8),
    (8, 4, "symmetric", 25, 25),
    (8, 2, "symmetric", 50, 50),
    (4, 4, "symmetric", 7, 7),
    (8, 8, "symmetric", 13, 13),        # the misses of the earlier kernel (odd n/m): 17, 60 steps
    (12, 4, "symmetric", 56, 56),
]


pytestmark = pytest.mark.usefixtures("in_repo")


def owner_of(n: int, m: int, scheme: str) -> list[int]:
    """Who owns vector i: blocks of n/m, or for causal folded halves: PE p owns chunk p of the first
    half (ceil(b/2) rows a chunk) and chunk m-1-p of the second (floor(b/2) rows a chunk)."""
    b = n // m
    if scheme != "causal":
        return [i // b for i in range(n)]
    first = (b + 1) // 2
    return [i // first if i < m * first else m - 1 - (i - m * first) // (b - first) for i in range(n)]


def assert_valid(n: int, m: int, scheme: str, steps: int, placed: dict) -> None:
    """The model's rules, written out again: a schedule of `steps` steps does every unit once."""
    owner = owner_of(n, m, scheme)

    def hops(a, b):
        return (b - a) % m

    pairs = [(i, j) for i in range(n) for j in range(n) if scheme != "causal" or j <= i]
    dots = [(i, j) for i, j in pairs if scheme != "symmetric" or i <= j]
    assert set(placed) == {f"D({i},{j})" for i, j in dots} | {f"W({i},{j})" for i, j in pairs}
    slots = [(p, t) for p, t in placed.values()]
    assert len(slots) == len(set(slots)), "two units on one PE at one step"
    assert all(0 <= t < steps and 0 <= p < m for p, t in slots)
    for i, j in dots:
        p, t = placed[f"D({i},{j})"]
        assert p in ({owner[i], owner[j]} if scheme == "symmetric" else {owner[i]})
        assert t >= hops(owner[j], p) and t >= hops(owner[i], p), f"D({i},{j}) before its vectors arrive"
    for i, j in pairs:
        p, t = placed[f"W({i},{j})"]
        dp, dt = placed[f"D({min(i, j)},{max(i, j)})" if scheme == "symmetric" else f"D({i},{j})"]
        assert p in ({owner[i], owner[j]} if scheme == "symmetric" else {owner[i]})
        assert t >= dt + 1 + hops(dp, p), f"W({i},{j}) before its score arrives"
        assert t >= hops(owner[j], p), f"W({i},{j}) before v_{j} arrives"
        assert t + (hops(p, owner[i]) + 1 if p != owner[i] else 0) <= steps, \
            f"W({i},{j})'s partial state cannot reach PE {owner[i]} by step {steps}"


@pytest.mark.parametrize("n,m,scheme,optimum,kernel", CASES)
def test_optimum_proven(sat, n, m, scheme, optimum, kernel):
    from attnlang.studies.schedule.sat import prove

    pr = problem(n, m, scheme)
    ks = kernel_schedule(pr)
    assert ks.steps == kernel
    assert_valid(n, m, scheme, ks.steps, ks.placed)
    proof = prove(pr, ks)
    assert proof.optimum == optimum
    assert_valid(n, m, scheme, proof.optimum, proof.schedule)
    answers = {s.steps: s.sat for s in proof.solves if not s.with_kernel}
    assert answers[optimum - 1] is False, "no UNSAT answer one step below the optimum"
    assert proof.unsat_proof is not None
    assert proof.proof_check.refuted, proof.proof_check.reason
    assert proof.kernel_is_optimal == (kernel == optimum)


def test_cli_prove_json(sat, attn_main):
    status, out, err = attn_main("schedule", RING, "-D", "n=4", "-D", "m=4", "-D", "scheme=symmetric",
                                 "--prove", "--json")
    assert status == 0, err
    r = json.loads(out)
    assert (r["optimum"], r["kernel_steps"], r["lower_bound"], r["unsat_below"]) == (7, 7, 7, True)
    assert r["kernel_is_optimal"] is True
    assert r["kernel_units_per_pe"] == [7, 7, 6, 6]        # counted from a run of the kernel
    assert [s["sat"] for s in r["solves"] if s["steps"] == 6] == [False]
    assert len(r["schedule"]) == 4 and all(len(row) == 7 for row in r["schedule"])


def test_cli_prove_text_and_proof_files(sat, attn_main, tmp_path):
    from pysat.formula import CNF
    from pysat.solvers import Solver

    prefix = tmp_path / "below"
    status, out, err = attn_main("schedule", RING, "-D", "n=8", "-D", "m=4", "-D", "scheme=causal",
                                 "--prove", "--proof", prefix)
    assert status == 0, err
    assert "optimum (SAT)          18 steps; 17 steps: UNSAT" in out
    assert "DRUP proof checked:" in out
    assert "the kernel's schedule is optimal" in out
    with Solver(name="glucose4", bootstrap_with=CNF(from_file=str(prefix) + ".cnf").clauses) as s:
        assert s.solve() is False                            # another solver agrees: 17 steps is UNSAT
    assert Path(str(prefix) + ".drup").exists()


def test_without_prove_needs_no_solver(attn_main):
    status, out, err = attn_main("schedule", RING, "-D", "n=16", "-D", "m=4", "-D", "scheme=symmetric", "--json")
    assert status == 0, err
    r = json.loads(out)
    assert (r["kernel_steps"], r["lower_bound"]) == (98, 98)   # (136 + 256) / 4
    assert "optimum" not in r


def test_missing_python_sat_is_a_usage_error(attn_main, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pysat", None)
    monkeypatch.setitem(__import__("sys").modules, "pysat.solvers", None)
    status, out, err = attn_main("schedule", RING, "-D", "n=8", "-D", "m=4", "--prove")
    assert status == 2
    assert "pip install 'attnlang[sat]'" in err and "Traceback" not in err


def test_too_large_for_sat(attn_main):
    status, _, err = attn_main("schedule", RING, "--prove")          # n = 64 by default
    assert status == 2
    assert "n = 64 is too large for the SAT encoding: --prove takes n <= 16" in err


def test_not_a_ring_kernel(attn_main):
    status, _, err = attn_main("schedule", "examples/flash.attn")
    assert status == 2
    assert "needs integer n and m" in err


LOCAL_ONLY = """use hw.ring
kernel local_only(Q: f32[n, d], K: f32[n, d], V: f32[n, d]) -> (O: f32[n, d]) on ring {
  dim n = 8, d = 16
  param m = 4
  where n % m == 0
  param B = n // m
  process pe[p in 0 .. m] on vec[p] {
    q = load Q[p * B : (p + 1) * B, :] -> regs
    k = load K[p * B : (p + 1) * B, :] -> regs
    v = load V[p * B : (p + 1) * B, :] -> regs
    w = softmax((q @ k.T on mac[p]) / sqrt(d))
    store (w @ v on mac[p]) -> O[p * B : (p + 1) * B, :]
  }
}
"""


def test_a_kernel_that_skips_the_ring_is_E1501(attn_main, tmp_path):
    """Attention within each PE's own block only: 8 units per PE where the ring schedule has 32."""
    path = tmp_path / "local.attn"
    path.write_text(LOCAL_ONLY)
    status, _, err = attn_main("schedule", path)
    assert status == 1
    assert "error[E1501]: kernel 'local_only' does not do the work of the ring schedule (full, n = 8, m = 4): " \
           "a run gives its PEs 8, 8, 8, 8 units of MAC work, the ring schedule 32, 32, 32, 32" in err


def test_drup_checker_accepts_a_real_refutation_and_rejects_a_bad_one(sat):
    """The checker of the UNSAT answers, on a formula that needs a long proof: pigeonhole, 7 pigeons in 6
    holes, refuted by CaDiCaL. A lemma that does not follow, a truncated proof and a satisfiable formula
    are all rejected."""
    from pysat.examples.genhard import PHP
    from pysat.solvers import Solver

    from attnlang.studies.schedule.drup import check

    php = PHP(6).clauses
    with Solver(name="cadical153", bootstrap_with=php, with_proof=True) as s:
        assert s.solve() is False
        proof = s.get_proof()
    good = check(php, proof)
    assert good.refuted and good.lemmas > 100, good
    lemma = next(i for i, line in enumerate(proof) if not line.startswith("d"))
    assert not check(php, proof[:lemma] + ["1 0"] + proof[lemma + 1:]).refuted    # x1 alone does not follow
    assert not check(php, proof[:lemma] + ["7 0"] + proof[lemma + 1:]).refuted
    assert not check(php, proof[: len(proof) // 2]).refuted                        # no conflict at the end
    assert not check(php[1:], proof).refuted                                       # one pigeon less: SAT
    assert not check([[1, 2], [-1, 2], [1, -2]], ["2 0", "0"]).refuted            # satisfiable: x1 = x2 = 1


def _instances(largest: int) -> list[tuple[int, int]]:
    return [(n, m) for n in range(1, largest + 1) for m in range(1, n + 1) if n % m == 0]


def _prove_kernel(n: int, m: int, scheme: str) -> None:
    """The kernel's schedule takes as many steps as the SAT solver's optimum, and the solver's UNSAT answer
    one step below is refuted by a checked DRUP proof."""
    from attnlang.studies.schedule.sat import prove

    pr = problem(n, m, scheme)
    ks = kernel_schedule(pr)
    assert_valid(n, m, scheme, ks.steps, ks.placed)
    proof = prove(pr, ks)
    assert ks.steps == proof.optimum, f"{scheme} n = {n}, m = {m}: {ks.steps} steps, optimum {proof.optimum}"
    assert proof.unsat_proof is not None and proof.proof_check.refuted, proof.proof_check


@pytest.mark.parametrize("scheme", ["full", "symmetric", "causal"])
@pytest.mark.parametrize("n,m", [nm for nm in _instances(10) if nm[1] > 1 or nm[0] <= 6])
def test_kernel_meets_the_sat_optimum(sat, n, m, scheme):
    _prove_kernel(n, m, scheme)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["full", "symmetric", "causal"])
@pytest.mark.parametrize("n,m", [nm for nm in _instances(16) if nm[0] > 10 or (nm[1] == 1 and nm[0] > 6)])
def test_kernel_meets_the_sat_optimum_to_n_16(sat, n, m, scheme):
    _prove_kernel(n, m, scheme)


@pytest.mark.parametrize("n,m", [(8, 8), (12, 4), (6, 2), (9, 3), (3, 1),
                                 pytest.param(16, 16, marks=pytest.mark.slow)])
def test_cli_symmetric_kernel_is_optimal_odd_blocks(sat, attn_main, n, m):
    """Through the command line: the kernel is run, its MAC work per PE counted and matched to the model's
    program, and its schedule proven optimal (the issue's n = 8, m = 8 and n = 12, m = 4 among them)."""
    status, out, err = attn_main("schedule", RING, "-D", f"n={n}", "-D", f"m={m}", "-D", "scheme=symmetric",
                                 "--prove", "--json")
    assert status == 0, err
    r = json.loads(out)
    assert r["kernel_is_optimal"] and r["kernel_steps"] == r["optimum"] and r["proof_checked"]
    total = n * (n + 1) // 2 + n * n
    assert sum(r["kernel_units_per_pe"]) == total
    assert max(r["kernel_units_per_pe"]) == -(-total // m)     # balanced to within one unit


def test_kernel_schedule_meets_the_work_bound_beyond_sat():
    """Above n = 16 (too large for SAT) the counting bound: no schedule beats the busiest PE's own work
    (full, causal: every unit of a row runs on its PE) or the work shared evenly (symmetric); the
    kernel's steps equal it for every m | n up to 32 on two or more PEs, every scheme (up to 48 under
    pytest -m slow: test_kernel_schedule_meets_the_work_bound_to_n_48)."""
    _work_bound(32, 2)


@pytest.mark.slow
def test_kernel_schedule_meets_the_work_bound_to_n_48():
    _work_bound(48, 1)


def _work_bound(largest: int, fewest_pes: int) -> None:
    for scheme in ("full", "symmetric", "causal"):
        for n, m in _instances(largest):
            if m < fewest_pes:
                continue
            owner = owner_of(n, m, scheme)
            pairs = [(i, j) for i in range(n) for j in range(n) if scheme != "causal" or j <= i]
            if scheme == "symmetric":
                bound = -(-(n * (n + 1) // 2 + n * n) // m)
            else:
                bound = max(2 * sum(owner[i] == p for i, _ in pairs) for p in range(m))
            assert kernel_schedule(problem(n, m, scheme)).steps == bound, (scheme, n, m)


# ---------------------------------------------------------------- the timed model
TIMED = [  # n, m, scheme, softmax steps, link capacity, optimum, kernel's steps
    (4, 4, "full", 1, 1, 8, 8),
    (8, 4, "causal", 1, 1, 18, 18),
    (8, 4, "symmetric", 1, None, 25, 25),
    (4, 4, "symmetric", 1, None, 7, 8),
    (4, 4, "symmetric", 0, 1, 7, 9),
    (4, 4, "symmetric", 1, 1, 8, 10),
    (8, 4, "symmetric", 1, 1, 25, 30),
]


@pytest.mark.parametrize("n,m,scheme,softmax,links,optimum,kernel", TIMED)
def test_optimum_in_the_timed_model(sat, n, m, scheme, softmax, links, optimum, kernel):
    """With the vector unit's softmax (a weighted sum `softmax` steps after its score is on its PE) and
    links that carry `links` data a step. full and causal: the kernel still meets the work bound (a PE
    receives one kv vector a step, the ring's own pace, and its scores are made a step early). Symmetric:
    the kernel's score streams share the links with the kv blocks, and at B = 1 its pair's weighted sums
    wait on the softmax; the optimum is the work bound but at n = m = 4 with both (8: 7 is UNSAT)."""
    from attnlang.studies.schedule.ring import Timing
    from attnlang.studies.schedule.sat import prove

    timing = Timing(softmax, links)
    pr = problem(n, m, scheme, timing)
    ks = kernel_schedule(pr)
    assert ks.steps == kernel
    proof = prove(pr, ks)
    assert proof.optimum == optimum
    for steps, placed in ((ks.steps, ks.placed), (proof.optimum, proof.schedule)):
        assert_valid(n, m, scheme, steps, placed)
        _assert_softmax_waits(n, m, scheme, placed, softmax)
        if links is not None:  # every weighted sum on its row's PE
            owner = owner_of(n, m, scheme)
            assert all(placed[w][0] == owner[int(w[2:-1].split(",")[0])] for w in placed if w[0] == "W")
    assert proof.unsat_proof is not None and proof.proof_check.refuted
    untimed = prove(problem(n, m, scheme), kernel_schedule(problem(n, m, scheme)))
    assert proof.optimum >= untimed.optimum          # the timed model only adds constraints


def _assert_softmax_waits(n, m, scheme, placed, softmax):
    for w, (p, t) in placed.items():
        if w[0] == "W":
            i, j = map(int, w[2:-1].split(","))
            dp, dt = placed[f"D({min(i, j)},{max(i, j)})" if scheme == "symmetric" else f"D({i},{j})"]
            assert t >= dt + 1 + (p - dp) % m + softmax, f"{w} before its score's softmax"


def test_cli_says_which_model_each_proof_is_in(sat, attn_main):
    args = ("schedule", RING, "-D", "n=4", "-D", "m=4", "-D", "scheme=symmetric", "--prove")
    status, out, err = attn_main(*args, "--softmax-steps", "1", "--link-capacity", "1", "--json")
    assert status == 0, err
    r = json.loads(out)
    assert r["model"] == {"softmax_steps": 1, "link_capacity": 1}
    assert (r["optimum"], r["kernel_steps"], r["kernel_is_optimal"]) == (8, 10, False)
    status, out, err = attn_main(*args)
    assert status == 0, err
    assert "in the unit-step model (softmax free, links unlimited)" in out
    status, out, err = attn_main(*args, "--link-capacity", "1")
    assert "in the timed model (softmax 0 steps, links carrying 1 datum a step)" in out
    for bad in (("--softmax-steps", "-1"), ("--link-capacity", "0")):
        status, _, err = attn_main(*args, *bad)
        assert status == 2 and bad[0] in err and "Traceback" not in err
