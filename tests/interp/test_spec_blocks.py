"""Spec verification in blocks of rows and on drawn rows, against NumPy written out here.

The references below are plain float64 NumPy, one line per spec, written without attnlang; the
code under test evaluates the same specs a block of rows at a time (interp/spec_eval.py).
"""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlang import api
from attnlang.cli import main
from attnlang.spec import VerifyPlan, check_output
from attnlang.spec.evaluate import SpecEval


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def mask(x, i, j):
    r = np.arange(x.shape[-2])[:, None]
    c = np.arange(x.shape[-1])[None, :]
    return np.where(j + c > i + r, -np.inf, x)


def quiet(f):
    with np.errstate(invalid="ignore"):
        return f()


def scores(Q, K):
    return Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])


# spec text, output dims, NumPy reference
SPECS = {
    "sdpa": ("softmax(Q @ K.T / sqrt(d)) @ V", "N, d", lambda Q, K, V: softmax(scores(Q, K)) @ V),
    "causal": ("softmax(causal(Q @ K.T / sqrt(d), 0, 0)) @ V", "N, d",
               lambda Q, K, V: softmax(mask(scores(Q, K), 0, 0)) @ V),
    "causal_lift": ("softmax(causal(Q @ K.T / sqrt(d), 3, 1)) @ V", "N, d",
                    lambda Q, K, V: softmax(mask(scores(Q, K), 3, 1)) @ V),
    "where": ("where(Q @ K.T > 0, Q @ K.T, 0) @ V", "N, d",
              lambda Q, K, V: np.where(Q @ K.T > 0, Q @ K.T, 0) @ V),
    "rowsum": ("exp(Q @ K.T) / rowsum(exp(Q @ K.T))", "N, N",
               lambda Q, K, V: np.exp(Q @ K.T) / np.exp(Q @ K.T).sum(axis=-1)),
    "whole_reductions": ("V * sum(Q @ K.T) + max(Q @ K.T) - mean(abs(Q @ K.T))", "N, d",
                         lambda Q, K, V: V * (Q @ K.T).sum() + (Q @ K.T).max() - np.abs(Q @ K.T).mean()),
    "transposed": ("(Q @ K.T).T @ V", "N, d", lambda Q, K, V: (Q @ K.T).T @ V),
    "rowmax_vector": ("rowmax(Q @ K.T)", "N", lambda Q, K, V: (Q @ K.T).max(axis=-1)),
    # the same value twice, and operations written over their operand's block: each side its own numbers
    "twice": ("(-(Q @ K.T) * (Q @ K.T) + exp(-(Q @ K.T))) @ V * 2", "N, d",
              lambda Q, K, V: (-(Q @ K.T) * (Q @ K.T) + np.exp(-(Q @ K.T))) @ V * 2),
    "kept_operand": ("Q @ K.T + exp(-rowmax(K @ Q.T))", "N, N",  # a value worked out once, read by each block
                     lambda Q, K, V: Q @ K.T + np.exp(-(K @ Q.T).max(axis=-1))),
    "softmax_both_sides": ("softmax(Q @ K.T) @ softmax(K @ Q.T) @ V", "N, d",
                           lambda Q, K, V: softmax(Q @ K.T) @ softmax(K @ Q.T) @ V),
    "softmax_scaled": ("softmax(Q @ K.T) * 2 @ V + softmax(V)", "N, d",
                       lambda Q, K, V: softmax(Q @ K.T) * 2 @ V + softmax(V)),
    "masked_rows": ("softmax(causal(Q @ K.T, 0, 3)) @ V", "N, d",  # rows 0..2 all masked: NaN, as NumPy's
                    lambda Q, K, V: quiet(lambda: softmax(mask(Q @ K.T, 0, 3)) @ V)),
}


def spec_expr(text: str, out_dims: str, dims: str = "N, d"):
    src = f"""use hw.edge
kernel s(Q: f32[{dims}], K: f32[{dims}], V: f32[{dims}]) -> (O: f32[{out_dims}])
  on edge
  spec O = {text}
{{
  q = load Q -> sram
  store q -> O
}}
"""
    return api.load_program(src).kernel("s").specs[0].expr


def tensors(n: int, d: int, seed: int = 0, batch: tuple = ()):
    rng = np.random.default_rng(seed)
    return {x: rng.standard_normal(batch + (n, d)) for x in "QKV"}


def blocked(expr, t, env, block_rows):
    """The whole value, assembled from blocks the way check_output assembles it."""
    ev = SpecEval(t, env, block_rows)
    s = ev.shape(expr)
    if len(s) < 2:
        return np.asarray(ev.rows(expr, slice(None)))
    return np.concatenate([ev.rows(expr, slice(i, i + block_rows)) for i in range(0, s[-2], block_rows)], axis=-2)


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("block_rows", [1, 3, 16, 40])
def test_blocks_give_the_numpy_value(name, block_rows):
    text, out, ref = SPECS[name]
    n, d = 17, 5
    t = tensors(n, d)
    got = blocked(spec_expr(text, out), t, {"N": n, "d": d}, block_rows)
    np.testing.assert_allclose(got, ref(t["Q"], t["K"], t["V"]), rtol=1e-12, atol=1e-12)


def test_batch_axes_are_kept_per_block():
    t = tensors(9, 4, batch=(2, 3))
    got = blocked(spec_expr(SPECS["causal"][0], "B, H, N, d", "B, H, N, d"), t, {"N": 9, "d": 4}, 2)
    np.testing.assert_allclose(got, softmax(mask(scores(t["Q"], t["K"]), 0, 0)) @ t["V"], rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(SPECS)), n=st.integers(1, 24), d=st.integers(1, 6),
       block_rows=st.integers(1, 30), seed=st.integers(0, 2**16))
def test_any_block_size_gives_the_numpy_value(name, n, d, block_rows, seed):
    text, out, ref = SPECS[name]
    t = tensors(n, d, seed)
    with np.errstate(all="ignore"):
        want = ref(t["Q"], t["K"], t["V"])
        got = blocked(spec_expr(text, out), t, {"N": n, "d": d}, block_rows)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


def verdict(got, want, rtol=1e-4, atol=1e-5):
    """The f32 tolerance of docs/cli.md, written out: |got - want| <= atol * max(max|want|, 1) + rtol * |want|."""
    scale = max(np.max(np.abs(want)), 1.0)
    return bool(np.all(np.abs(got - want) <= atol * scale + rtol * np.abs(want)))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 40), block_rows=st.integers(1, 45), seed=st.integers(0, 2**16),
       bad_row=st.integers(0, 39), size=st.sampled_from([0.0, 1e-7, 1e-2, 1.0]), k=st.integers(1, 12))
def test_verdicts_match_numpy_in_every_mode(n, block_rows, seed, bad_row, size, k):
    """A kernel's output with one row off by `size`: full mode fails exactly when NumPy's comparison
    does; rows mode fails exactly when the bad row is among the rows it reports."""
    d = 4
    t = tensors(n, d, seed)
    want = softmax(mask(scores(t["Q"], t["K"]), 0, 0)) @ t["V"]
    got = want.copy()
    bad_row %= n
    got[bad_row] += size
    expr = spec_expr(SPECS["causal"][0], "N, d")
    env = {"N": n, "d": d}
    full = check_output("O", expr, t, env, got, "f32", VerifyPlan("full"), None, block_rows)
    assert full.ok == verdict(got, want)
    rows = check_output("O", expr, t, env, got, "f32", VerifyPlan("rows", k, seed), None, block_rows)
    if k >= n:
        assert rows.rows is None and rows.ok == full.ok
    else:
        assert len(rows.rows) == k == len(set(rows.rows)) and list(rows.rows) == sorted(rows.rows)
        picked = list(rows.rows)
        assert rows.ok == verdict(got[picked], want[picked])
        if not full.ok:
            assert rows.ok == (bad_row not in picked)
    if not full.ok:
        assert full.worst_index[0] == bad_row
        if not rows.ok:
            assert rows.worst_index[0] == bad_row  # the index is the output's, not the sample's


def test_blocks_never_hold_n_by_n():
    n, d = 2048, 8  # the score matrix alone is 32 MiB in float64
    t = tensors(n, d)
    expr = spec_expr(SPECS["causal"][0], "N, d")
    got = (softmax(mask(scores(t["Q"], t["K"]), 0, 0)) @ t["V"]).astype(np.float32)
    tracemalloc.start()
    v = check_output("O", expr, t, {"N": n, "d": d}, got, "f32", VerifyPlan("full"), None, 64)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert v.ok
    assert peak < 8 * n * n // 4, f"peak {peak / 2**20:.1f} MiB"


WRONG = """use hw.edge

kernel unscaled(Q: f16[N, d], K: f16[N, d], V: f16[N, d]) -> (O: f16[N, d])
  on edge
  spec O = softmax(Q @ K.T / sqrt(d)) @ V
{
  dim N = 64, d = 16
  q = load Q -> sram
  k = load K -> sram
  v = load V -> sram
  store softmax(q @ k.T) @ v -> O
}
"""


@pytest.mark.parametrize("mode", ["full", "rows=5"])
def test_a_wrong_kernel_fails_in_both_modes(tmp_path, capsys, mode):
    p = tmp_path / "wrong.attn"
    p.write_text(WRONG)
    r = api.run(str(p), verify=mode)
    assert not r.ok and r.verify_mode == mode
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((64, 16)).astype(np.float16).astype(np.float64) for _ in range(3))
    want = softmax(q @ k.T / 4.0) @ v
    got = r.outputs["O"].astype(np.float64)
    rows = r.verify["O"].rows if mode != "full" else range(64)
    assert not verdict(got[list(rows)], want[list(rows)], 2e-2, 1e-2)  # f16 tolerance: NumPy agrees it fails
    assert main(["run", str(p), "--verify", mode, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["verify"]["O"]["ok"] is False and out["verify_mode"] == mode
    assert ("rows" in out["verify"]["O"]) == (mode != "full")


def test_the_report_says_what_was_checked(capsys):
    assert main(["run", "examples/flash.attn", "-D", "N=256", "--verify", "rows=4", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    r = api.run("examples/flash.attn", defines={"N": 256}, verify="rows=4", seed=3)
    rows = r.verify["O"].rows
    assert "(4 rows drawn at random, one in each stretch of rows, every element of each)" in text
    assert "rows     " + " ".join(map(str, rows)) in text
    assert main(["run", "examples/flash.attn", "-D", "N=256", "--verify", "off", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verify"] == {} and out["verify_mode"] == "off"
    assert main(["run", "examples/flash.attn", "-D", "N=256", "--verify", "rows=0"]) == 2
    assert "--verify expects auto, full, off or rows=K" in capsys.readouterr().err


def test_auto_checks_every_element_while_small_and_draws_rows_beyond(monkeypatch):
    from attnlang.spec import evaluate as spec_eval

    n, d = 32, 4
    t = tensors(n, d)
    expr = spec_expr(SPECS["sdpa"][0], "N, d")
    want = softmax(scores(t["Q"], t["K"])) @ t["V"]
    v = check_output("O", expr, t, {"N": n, "d": d}, want, "f32", VerifyPlan("auto"), None)
    assert v.rows is None and v.ok
    monkeypatch.setattr(spec_eval, "AUTO_FULL_NUMBERS", n * n - 1)
    monkeypatch.setattr(spec_eval, "AUTO_ROWS", 8)
    v = check_output("O", expr, t, {"N": n, "d": d}, want, "f32", VerifyPlan("auto", 0, 5), None)
    assert v.ok and len(v.rows) == 8
    assert [r // 4 for r in v.rows] == list(range(8))  # one row in each stretch of 32 / 8 rows


@pytest.mark.parametrize("busy, expected", [(10.0, 1), (0.0, None)])
def test_the_check_takes_no_more_blas_threads_than_cores_are_free(monkeypatch, busy, expected):
    """On a busy machine the check's BLAS runs on one thread, and gets its threads back after."""
    import os

    from attnlang import blas

    load = busy * (os.cpu_count() or 1)

    assert blas.bundled_openblas() is not None  # NumPy's wheels bundle OpenBLAS (docs/performance.md)
    before = blas.threads()
    seen = []
    real_rows = SpecEval.rows

    def rows(self, e, r):
        seen.append(blas.threads())
        return real_rows(self, e, r)

    monkeypatch.setattr(blas.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(SpecEval, "rows", rows)
    r = api.run("examples/flash.attn", defines={"N": 128}, verify="full")
    assert r.verify["O"].ok and seen
    assert set(seen) == {expected if expected is not None else before}
    assert blas.threads() == before
