"""`attn schedule --prove --emit FILE.attn`: the solver's shortest schedule as a runnable ring kernel."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest

from attnlang.api import run

RING = "examples/ring_attention.attn"
D = 16


pytestmark = pytest.mark.usefixtures("in_repo")


def _units(n: int, scheme: str) -> int:
    """The ring schedule's units of MAC work, by the closed forms."""
    if scheme == "full":
        return 2 * n * n
    if scheme == "causal":
        return n * (n + 1)
    return n * (n + 1) // 2 + n * n


# B = 1 with scores and partial states crossing the ring, odd B, causal's folded rows, one PE
@pytest.mark.parametrize("n,m,scheme", [(4, 4, "symmetric"), (6, 2, "symmetric"), (8, 4, "causal"),
                                        (4, 2, "full"), (8, 8, "symmetric"), (3, 1, "symmetric")])
def test_emitted_kernel_checks_runs_and_verifies(sat, reference, attn_main, tmp_path, n, m, scheme):
    out_file = tmp_path / "ring.attn"
    status, out, err = attn_main("schedule", RING, "-D", f"n={n}", "-D", f"m={m}", "-D", f"scheme={scheme}",
                                 "--prove", "--emit", out_file, "--json")
    assert status == 0, err
    report = json.loads(out)
    assert report["emitted"] == str(out_file)
    status, out, err = attn_main("check", out_file)
    assert status == 0 and "warning" not in out + err, out + err
    rng = np.random.default_rng(n * 10 + m)
    q, k, v = (rng.standard_normal((n, D)).astype(np.float32) for _ in range(3))
    if scheme == "symmetric":
        k = q
    r = run(str(out_file), inputs={"Q": q, "K": k, "V": v}, trace=True)
    assert r.verify["O"].ok
    np.testing.assert_allclose(r.outputs["O"], reference(q, k, v, scheme == "causal"), rtol=1e-4, atol=1e-5)
    busy = defaultdict(float)
    for e in r.events:
        if e.name == "matmul":
            busy[e.track] += e.busy_cycles
    if m == 1:                                  # an array of one unit is traced by its bare name
        busy["mac[0]"] = busy.pop("mac")
    units = [round(busy.get(f"mac[{p}]", 0.0) / D) for p in range(m)]
    assert sum(units) == _units(n, scheme)
    assert max(units) <= report["optimum"]      # no PE does more than the optimum's steps of work


def test_emit_needs_prove(attn_main, tmp_path):
    status, out, err = attn_main("schedule", RING, "-D", "n=4", "--emit", tmp_path / "x.attn")
    assert status == 2 and "--emit needs --prove" in err


def test_emit_into_a_missing_directory_is_a_usage_error(sat, attn_main, tmp_path):
    target = tmp_path / "no" / "x.attn"
    status, out, err = attn_main("schedule", RING, "-D", "n=4", "-D", "m=4", "--prove", "--emit", target)
    assert status == 2 and "does not exist" in err and not target.exists()
