"""`attn study ring`: the ring study's table, against docs/studies.md and the paper's closed forms."""

from __future__ import annotations

import json
import re
from pathlib import Path

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


def test_study_ring_json_matches_the_doc_and_the_closed_forms(attn_main):
    status, out, err = attn_main("study", "ring", "--max-seq", "32", "--json")
    assert status == 0, err
    rows = json.loads(out)
    doc = _doc_rows()
    assert [(r["n"], r["m"], r["d"]) for r in rows] == [(16, 8, 16), (32, 8, 16)]
    for r in rows:
        n, cells = r["n"], doc[r["n"], r["m"]]
        assert [_int(cells[i]) for i in (3, 4, 7)] == [r["cycles"][s] for s in ("full", "symmetric", "causal")]
        assert abs(r["symmetric_saving"] - (n - 1) / (4 * n)) <= 0.01
        assert abs(r["causal_saving"] - (n - 1) / (2 * n)) <= 0.02


def test_at_n_256_the_savings_meet_the_closed_forms_and_the_speedup_is_m():
    """The issue's targets at a realistic size (d = 64, 8 and 16 PEs): savings within half a point of
    (n-1)/(4n) and (n-1)/(2n), speedup over one PE at least 0.95 m; the cycles are the doc's."""
    doc = _doc_rows()
    rows = ring.study((256,))
    assert [(r.n, r.m, r.d) for r in rows] == [(256, 8, 64), (256, 16, 64)]
    for r in rows:
        assert abs(r.saving("symmetric") - 255 / 1024) <= 0.005
        assert abs(r.saving("causal") - 255 / 512) <= 0.005
        assert r.speedup >= 0.95 * r.m
        assert [_int(doc[r.n, r.m][i]) for i in (3, 4, 7)] == [r.cycles[s] for s in ring.SCHEMES]


def test_study_ring_text(attn_main):
    status, out, err = attn_main("study", "ring", "--max-seq", "16")
    assert status == 0, err
    assert re.search(r"^\s+16\s+16\s+8\s+1,048\s", out, re.M), out
    assert "(n-1)/4n" in out


def test_study_ring_max_seq_too_small(attn_main):
    status, out, err = attn_main("study", "ring", "--max-seq", "8")
    assert status == 2 and "n = 16, 32, 64" in err
