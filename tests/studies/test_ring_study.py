"""`attn study ring`: the ring study's table, against docs/studies.md and the paper's closed forms."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from attnlang.studies import ring

ROOT = Path(__file__).resolve().parents[2]


def _doc_rows() -> dict[tuple[int, int], list[str]]:
    """The rows of the table under 'Our figures' in docs/studies.md's ring section: (n, m) -> cells."""
    text = (ROOT / "docs" / "studies.md").read_text()
    section = text[text.index("## Ring scheduling"):text.index("## SAT-proved ring schedules")]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0].isdigit():
            rows[int(cells[0]), int(cells[2])] = cells
    return rows


def _int(cell: str) -> int | None:
    return None if cell == "-" else int(cell.replace(",", ""))


CYCLES = (3, 5, 8)  # the doc table's columns of full, symmetric and causal cycles


def test_study_ring_json_matches_the_doc_and_the_closed_forms(attn_main):
    status, out, err = attn_main("study", "ring", "--max-seq", "32", "--json")
    assert status == 0, err
    rows = json.loads(out)["rows"]
    doc = _doc_rows()
    assert [(r["n"], r["m"], r["d"]) for r in rows] == [(16, 8, 16), (32, 8, 16)]
    for r in rows:
        n, cells = r["n"], doc[r["n"], r["m"]]
        assert [_int(cells[i]) for i in CYCLES] == [r["cycles"][s] for s in ("full", "symmetric", "causal")]
        assert abs(r["symmetric_saving"] - (n - 1) / (4 * n)) <= 0.01
        assert abs(r["causal_saving"] - (n - 1) / (2 * n)) <= 0.02
        assert r["speedup_from"] == "run" and r["speedup"] == r["one_pe_cycles"] / r["cycles"]["full"]
        assert r["one_pe_bound"] == 2 * n * n * 16 <= r["one_pe_cycles"]
        assert set(r["peak_bytes_per_pe"]) == set(ring.SCHEMES)


def _meets_the_targets(rows, sizes):
    """The issue's targets (d = 64, 8 and 16 PEs): savings within half a point of (n-1)/(4n) and
    (n-1)/(2n), speedup over one PE at least 0.95 m; the cycles are the doc's, and every scheme fits a
    PE's 8 MiB."""
    doc = _doc_rows()
    assert [(r.n, r.m, r.d) for r in rows] == [(n, m, 64) for n in sizes for m in (8, 16)]
    for r in rows:
        n = r.n
        assert not r.errors
        assert abs(r.saving("symmetric") - (n - 1) / (4 * n)) <= 0.005
        assert abs(r.saving("causal") - (n - 1) / (2 * n)) <= 0.005
        assert r.speedup >= 0.95 * r.m
        assert [_int(doc[r.n, r.m][i]) for i in CYCLES] == [r.cycles[s] for s in ring.SCHEMES]
        assert max(r.peak_bytes_per_pe.values()) <= 8 * 2**20


def test_at_n_256_the_savings_meet_the_closed_forms_and_the_speedup_is_m():
    rows = ring.study((256,))
    _meets_the_targets(rows, (256,))
    for r in rows:  # the one-PE run, within 0.1% of its MAC work
        assert r.one_pe_bound <= r.one_pe_cycles <= 1.001 * r.one_pe_bound


@pytest.mark.slow
def test_up_to_n_4096_the_savings_meet_the_closed_forms_and_the_speedup_is_m():
    """n = 512 to 4096 (about 3 minutes); from n = 1024 the speedup is against one PE's MAC work 2 n^2 d,
    which one PE cannot hold the n x n scores to run."""
    sizes = (512, 1024, 2048, 4096)
    rows = ring.study(sizes)
    _meets_the_targets(rows, sizes)
    assert [r.one_pe_cycles is not None for r in rows] == [True, True] + [False] * 6


def test_study_ring_text(attn_main):
    status, out, err = attn_main("study", "ring", "--max-seq", "16")
    assert status == 0, err
    assert re.search(r"^\s+16\s+16\s+8\s+1,048\s+7\.85\s+807\s", out, re.M), out
    assert "(n-1)/4n" in out


def test_study_ring_max_seq_too_small(attn_main):
    status, out, err = attn_main("study", "ring", "--max-seq", "8")
    assert status == 2 and "n = 16, 32, 64" in err
