"""`attn run --trace FILE.json`: valid Chrome trace-event JSON, written atomically."""

from __future__ import annotations

import itertools
import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

from attnlang.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

CASES = [
    ("flash.attn", ["-D", "N=128", "-D", "d=32", "-D", "Br=32", "-D", "Bc=32"]),
    ("mha.attn", ["-D", "B=1", "-D", "H=4", "-D", "N=64", "-D", "d=16", "-D", "Br=32", "-D", "Bc=32"]),
    ("naive.attn", ["-D", "N=64", "-D", "d=16", "-D", "T=32"]),
    ("stream_sdpa.attn", ["-D", "N=16", "-D", "d=8"]),
]


def run_traced(tmp_path, capsys, example: str, args: list[str]) -> dict:
    out = tmp_path / "trace.json"
    assert main(["run", str(EXAMPLES / example), "--trace", str(out), "--json", *args]) == 0
    report = json.loads(capsys.readouterr().out)
    trace = json.loads(out.read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace.json"]  # no temporary left behind
    trace["_report"] = report
    return trace


@pytest.mark.parametrize("example,args", CASES, ids=[c[0] for c in CASES])
def test_trace_is_chrome_trace_json(tmp_path, capsys, example, args):
    trace = run_traced(tmp_path, capsys, example, args)
    report = trace.pop("_report")
    assert set(trace) >= {"traceEvents"}
    events = trace["traceEvents"]
    assert isinstance(events, list) and events
    meta = [e for e in events if e["ph"] == "M"]
    spans = [e for e in events if e["ph"] != "M"]
    assert {e["ph"] for e in spans} == {"X"}
    names = {e["tid"]: e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    for e in spans:
        assert isinstance(e["name"], str) and e["name"]
        assert isinstance(e["pid"], int) and e["tid"] in names
        assert isinstance(e["ts"], (int, float)) and isinstance(e["dur"], (int, float))
        assert e["ts"] >= 0 and e["dur"] >= 0
        assert e["args"]["end_cycle"] >= e["args"]["start_cycle"]
    # every unit that did work has a track; the last event ends with the run
    assert max(max(e["args"]["end_cycle"], e["args"]["ready_cycle"]) for e in spans) == report["cycles"]
    for unit, u in report["units"].items():
        tracks = [t for t in names.values() if t == unit or t.startswith(unit + "[")]
        assert bool(tracks) == (u["busy_cycles"] > 0), unit
        busy = sum(e["args"]["busy_cycles"] for e in spans if names[e["tid"]] in tracks)
        assert busy == pytest.approx(u["busy_cycles"])


@pytest.mark.parametrize("example,args", CASES, ids=[c[0] for c in CASES])
def test_each_track_is_sorted_and_never_overlaps(tmp_path, capsys, example, args):
    trace = run_traced(tmp_path, capsys, example, args)
    by_track = defaultdict(list)
    for e in trace["traceEvents"]:
        if e["ph"] == "X":
            by_track[e["tid"]].append(e)
    assert by_track
    for tid, evs in by_track.items():
        ts = [e["ts"] for e in evs]
        assert ts == sorted(ts), tid
        # one operation at a time on a unit instance or a memory port (exact, in cycles)
        for a, b in itertools.pairwise(evs):
            assert a["args"]["end_cycle"] <= b["args"]["start_cycle"], (tid, a, b)
            assert a["ts"] + a["dur"] <= b["ts"] + 1e-9


def test_trace_times_are_microseconds_at_the_clock(tmp_path, capsys):
    trace = run_traced(tmp_path, capsys, *CASES[0])
    clock_hz = 940e6  # stdlib/hw/edge.attn
    for e in trace["traceEvents"]:
        if e["ph"] == "X":
            assert e["ts"] == pytest.approx(e["args"]["start_cycle"] / clock_hz * 1e6)
            assert e["dur"] == pytest.approx((e["args"]["end_cycle"] - e["args"]["start_cycle"]) / clock_hz * 1e6)


def test_trace_replaces_an_existing_file(tmp_path, capsys):
    out = tmp_path / "trace.json"
    out.write_text("old contents")
    assert main(["run", str(EXAMPLES / "flash.attn"), "-D", "N=64", "-D", "d=16", "--trace", str(out)]) == 0
    assert "traceEvents" in json.loads(out.read_text())
    assert os.listdir(tmp_path) == ["trace.json"]


def test_trace_into_a_missing_directory_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / "nowhere" / "trace.json"
    assert main(["run", str(EXAMPLES / "flash.attn"), "-D", "N=64", "-D", "d=16", "--trace", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "Traceback" not in err
    assert not out.parent.exists()
    assert os.listdir(tmp_path) == []


def test_no_trace_is_written_when_the_program_is_wrong(tmp_path, capsys):
    out = tmp_path / "trace.json"
    # a tile that does not divide N runs off the end of Q: exit 1, and no trace
    code = main(["run", str(EXAMPLES / "flash.attn"), "-D", "N=96", "-D", "Br=64", "--trace", str(out)])
    assert code == 1
    assert os.listdir(tmp_path) == []
