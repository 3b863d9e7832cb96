"""`attn study ring`: the ring study's table, against docs/studies.md and the paper's closed forms."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _doc_rows() -> dict[int, list[str]]:
    """The rows of the table under 'Our figures' in docs/studies.md's ring section: n -> cells."""
    text = (ROOT / "docs" / "studies.md").read_text()
    section = text[text.index("## Ring scheduling"):text.index("## SAT-proved ring schedules")]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0].isdigit():
            rows[int(cells[0])] = cells
    return rows


def test_study_ring_json_matches_the_doc_and_the_closed_forms(attn_main):
    status, out, err = attn_main("study", "ring", "--max-seq", "32", "--json")
    assert status == 0, err
    rows = json.loads(out)
    doc = _doc_rows()
    assert [r["n"] for r in rows] == [16, 32]
    for r in rows:
        n = r["n"]
        cells = doc[n]
        assert int(cells[1].replace(",", "")) == r["full_cycles"]
        assert int(cells[2].replace(",", "")) == r["symmetric_cycles"]
        assert int(cells[5].replace(",", "")) == r["causal_cycles"]
        assert abs(r["symmetric_saving"] - (n - 1) / (4 * n)) <= 0.04
        assert abs(r["causal_saving"] - (n - 1) / (2 * n)) <= 0.02


def test_study_ring_text(attn_main):
    status, out, err = attn_main("study", "ring", "--max-seq", "16")
    assert status == 0, err
    assert re.search(r"^\s+16\s+1,048\s", out, re.M), out
    assert "(n-1)/4n" in out


def test_study_ring_max_seq_too_small(attn_main):
    status, out, err = attn_main("study", "ring", "--max-seq", "8")
    assert status == 2 and "n = 16, 32, 64" in err
