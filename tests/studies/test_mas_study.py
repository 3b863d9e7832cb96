"""`attn study mas`: the ablation flat -> flat_softmax -> mas on edge, and docs/studies.md's table.

The doc's table is the study command's output; this test reruns the study at the smallest size and
compares it with the doc's rows, so the doc cannot go stale.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from attnlang.cli import main
from attnlang.studies import mas

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "studies.md"


@pytest.fixture(scope="module")
def rows():
    return mas.study([512])


def _doc_rows() -> dict[tuple[int, str], dict]:
    """The rows of the study's table in docs/studies.md's MAS section."""
    text = DOC.read_text()
    section = text[text.index("## MAS-Attention"):text.index("**On cloud**")]
    out = {}
    for line in section.splitlines():
        m = re.match(r"\s*(\d+) (flat|flat_softmax|mas)\s+(\d+)\s+(\d+)\s+([\d,]+)\s+([+-][\d.]+)%\s+([\d.]+)", line)
        if m:
            out[(int(m[1]), m[2])] = {"Br": int(m[3]), "Bc": int(m[4]), "cycles": int(m[5].replace(",", "")),
                                      "energy_uj": float(m[7])}
    return out


def test_the_doc_table_is_the_study_output_at_512(rows):
    doc = _doc_rows()
    assert {v for n, v in doc if n == 512} == set(mas.VARIANTS)
    for r in rows:
        d = doc[(r.N, r.variant)]
        assert (r.Br, r.Bc, r.cycles) == (d["Br"], d["Bc"], d["cycles"])
        assert r.energy_pj * 1e-6 == pytest.approx(d["energy_uj"], abs=0.06)


def test_mas_overlaps_the_units_and_beats_both_flat_variants(rows):
    by = {r.variant: r for r in rows}
    assert by["mas"].cycles < by["flat_softmax"].cycles < by["flat"].cycles
    # the two units busy at once for a third of MAS's run, against a few percent for the FLAT schedule
    assert by["mas"].overlap_cycles > 0.3 * by["mas"].cycles
    assert by["flat_softmax"].overlap_cycles < 0.1 * by["flat_softmax"].cycles
    s = mas.speedups(rows)[512]
    assert s["total"] == pytest.approx(s["arithmetic"] * s["overlap"])


def test_the_model_is_within_ten_percent_of_the_simulation(rows):
    for r in rows:
        assert abs(r.model_error) <= 0.10, (r.variant, r.model_cycles, r.cycles)


def test_study_command_json(capsys):
    assert main(["study", "mas", "--json", "--max-seq", "512"]) == 0
    out = json.loads(capsys.readouterr().out)["rows"]
    assert [r["variant"] for r in out] == list(mas.VARIANTS)
    for r in out:
        assert {"N", "variant", "cycles", "energy_pj", "dram_bytes", "model_error"} <= set(r)
        assert r["N"] == 512


def test_study_command_rejects_a_size_below_the_smallest(capsys):
    assert main(["study", "mas", "--max-seq", "256"]) == 2
    assert "leaves no size" in capsys.readouterr().err


def test_the_same_kernels_on_cloud(capsys):
    """--platform cloud: the kernels on hw.cloud, each row saying so; MAS still overlaps the units and
    beats both FLAT variants there, and the model stays within 10% of the simulation."""
    assert main(["study", "mas", "--json", "--max-seq", "512", "--platform", "cloud"]) == 0
    out = {r["variant"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert {r["platform"] for r in out.values()} == {"cloud"}
    assert out["mas"]["cycles"] < out["flat_softmax"]["cycles"] < out["flat"]["cycles"]
    assert out["mas"]["overlap_cycles"] > 0.3 * out["mas"]["cycles"]
    for r in out.values():
        assert abs(r["model_error"]) <= 0.10, r["variant"]
    edge = mas.study([512])
    assert all(r.platform == "edge" for r in edge)
    assert {r.variant: r.cycles for r in edge} != {v: r["cycles"] for v, r in out.items()}


def test_platform_is_for_the_mas_study_only(capsys):
    assert main(["study", "flat", "--platform", "cloud"]) == 2
    assert "--platform is for the mas study" in capsys.readouterr().err
