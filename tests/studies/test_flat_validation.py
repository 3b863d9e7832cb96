"""FLAT validation (issue 8): examples/flat_mha.attn against attnlang/reference/flat_validation.csv.

The ideal latency from the analytical model's MAC count must match the
table's ideal_latency to 0.1% on every row with seq_len <= 16K, on the row's
platform; flat_mha must run and verify against its spec at its defaults.
See docs/validation.md.
"""

import time

from attnlang import api
from attnlang.model import validate_flat as vf


def test_reference_rows_cover_both_platforms_up_to_16k():
    rows = vf.reference_rows()
    assert len(rows) == 48
    assert {r["platform"] for r in rows} == {"edge", "cloud"}
    assert max(int(r["M"]) for r in rows) == 16384


def test_ideal_latency_within_0_1_percent_on_every_row_up_to_16k():
    t0 = time.perf_counter()
    results = vf.validate()
    assert len(results) == 48
    for r in results:
        # MACs are exactly FLAT's 2.B.H.M.P.E (QK^T and AV), counted by the model.
        assert r.macs == 2 * r.B * r.H * r.N * r.N * r.d, r
        assert abs(r.ideal_error) < 1e-3, (r.platform, r.model, r.seq_len, r.ideal_s, r.ref_ideal_s)
        # The chosen tiles fit the platform's buffer, and Br is FLAT's P1 or below it.
        assert r.sram_peak <= r.sram_capacity and r.Br <= r.P1
        # Our latency never beats the compute-bound ideal.
        assert r.latency_s >= r.ideal_s
    assert time.perf_counter() - t0 < 10


def test_p1_is_used_where_the_buffer_holds_it():
    by = {(r.platform, r.model, r.seq_len): r for r in vf.validate()}
    assert by["cloud", "BERT", "512"].Br == 256 == by["cloud", "BERT", "512"].P1
    assert by["edge", "BERT", "512"].Br == 32 == by["edge", "BERT", "512"].P1


def test_flat_mha_runs_and_verifies_at_its_defaults():
    res = api.run(str(vf.EXAMPLE))
    assert res.kernel == "flat_mha" and res.hardware == "edge"
    assert res.defines.get("B", 1) == 1 and set(res.verify) == {"O"}
    assert all(v.ok for v in res.verify.values()), res.verify
    assert res.counters["macs"] == 2 * 1 * 2 * 256 * 256 * 64
    assert not res.warnings
