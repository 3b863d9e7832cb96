"""Ring scheduling of self-attention over m PEs (Yu & Fujita)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from attnlang.api import run

RING = "examples/ring_attention.attn"


pytestmark = pytest.mark.usefixtures("in_repo")


def _cycles(n, scheme, m=8):
    return run(RING, defines={"n": n, "m": m, "scheme": scheme}, check=False).cycles


@pytest.mark.parametrize("scheme", ["full", "causal"])
@pytest.mark.parametrize("n,m", [(16, 4), (32, 8), (64, 8), (24, 8)])
def test_ring_matches_numpy(reference, scheme, n, m):
    rng = np.random.default_rng(n + m)
    q, k, v = (rng.standard_normal((n, 16)).astype(np.float32) for _ in range(3))
    r = run(RING, inputs={"Q": q, "K": k, "V": v}, defines={"m": m, "scheme": scheme})
    np.testing.assert_allclose(r.outputs["O"], reference(q, k, v, scheme == "causal"), rtol=1e-4, atol=1e-5)
    assert r.verify["O"].ok


def test_symmetric_matches_numpy(reference):
    rng = np.random.default_rng(0)
    x, v = (rng.standard_normal((32, 16)).astype(np.float32) for _ in range(2))
    r = run(RING, inputs={"Q": x, "K": x, "V": v}, defines={"scheme": "symmetric"})
    np.testing.assert_allclose(r.outputs["O"], reference(x, x, v), rtol=1e-4, atol=1e-5)
    assert r.verify["O"].ok


# m = 1 (no ring), m = 2 (only the split pair), odd m (no split pair), odd B (an uneven split), B = 1
@pytest.mark.parametrize("n,m", [(8, 1), (8, 2), (12, 3), (12, 4), (15, 5), (24, 8), (8, 8)])
def test_symmetric_reads_q_for_the_keys_and_computes_each_dot_product_once(reference, n, m):
    """symmetric is attention with K = Q: the kernel never reads K (the spec uses Q in its place), and
    its MAC cell does n(n+1)/2 dot products and n^2 weighted-sum updates of length d."""
    rng = np.random.default_rng(n + m)
    q, k, v = (rng.standard_normal((n, 16)).astype(np.float32) for _ in range(3))
    r = run(RING, inputs={"Q": q, "K": k, "V": v}, defines={"m": m, "scheme": "symmetric"})
    np.testing.assert_allclose(r.outputs["O"], reference(q, q, v), rtol=1e-4, atol=1e-5)
    assert r.verify["O"].ok
    assert r.counters["macs"] == (n * (n + 1) // 2 + n * n) * 16


def test_n_not_divisible_by_m_is_a_checker_error():
    out = subprocess.run([sys.executable, "-m", "attnlang", "check", RING, "--json", "-D", "n=30", "-D", "m=8"],
                         capture_output=True, text=True)
    assert out.returncode == 1
    errors = [d for d in json.loads(out.stdout) if d["severity"] == "error"]
    assert [d["code"] for d in errors] == ["E0951"]
    assert errors[0]["message"] == "where n % m == 0 fails at n = 30, m = 8"


def test_m_fold_speedup():
    one, eight = _cycles(64, "full", m=1), _cycles(64, "full", m=8)
    assert one / eight >= 0.9 * 8


@pytest.mark.parametrize("n", [16, 32, 64])
def test_causal_saves_half(n):
    saved = 1 - _cycles(n, "causal") / _cycles(n, "full")
    target = (n - 1) / (2 * n)
    assert abs(saved - target) <= 0.02, (saved, target)


@pytest.mark.parametrize("n,m", [(16, 4), (32, 8), (24, 4), (12, 1)])
def test_causal_skips_every_future_key_and_balances_the_triangle(n, m):
    """n(n+1)/2 dot products and as many weighted-sum updates of length d, shared evenly by the PEs."""
    r = run(RING, defines={"n": n, "m": m, "scheme": "causal"}, trace=True, check=False)
    assert r.counters["macs"] == n * (n + 1) * 16
    busy = {}
    for e in r.events:
        if e.name == "matmul":
            busy[e.track] = busy.get(e.track, 0) + e.end - e.start
    assert len(busy) == m and len(set(busy.values())) == 1, busy


@pytest.mark.parametrize("n", [16, 32, 64])
def test_symmetric_saves_a_quarter(n):
    """Q = K: n(n+1)/2 of the n^2 dot products, all n^2 weighted sums: (n-1)/(4n) of the work saved."""
    saved = 1 - _cycles(n, "symmetric") / _cycles(n, "full")
    target = (n - 1) / (4 * n)
    assert abs(saved - target) <= 0.01, (saved, target)
