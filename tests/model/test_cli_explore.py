"""`attn explore`: the command-line contract (docs/cli.md)."""

from __future__ import annotations

import json
import sys

import pytest

SMALL = ["-D", "N=256", "-D", "P=2", "-D", "Pv=1", "-D", "Br=64"]  # 16 x 72 candidates of examples/mmee.attn

BIG = """use hw.edge
kernel big(X: f16[N, N]) -> (Y: f16[N, N])
  on edge
  spec Y = X * 2
{
  dim N = 65536
  param T in {16, 32} = 16
  WHERE
  for i in 0 .. N by T {
    x = load X[i : i+T, :] -> sram
    store x * 2 -> Y[i : i+T, :]
  }
}
"""


@pytest.fixture
def mmee(repo_root):
    return str(repo_root / "examples" / "mmee.attn")


def _big(tmp_path, where: str = "", n: int = 65536) -> str:
    path = tmp_path / "big.attn"
    path.write_text(BIG.replace("WHERE", where).replace("65536", str(n)))
    return str(path)


def test_json_fields(attn_main, mmee):
    status, out, err = attn_main("explore", mmee, *SMALL, "--json", "--top", "3")
    assert status == 0, err
    r = json.loads(out)
    for key in ("candidates", "feasible", "evaluated", "seconds", "best", "top", "pareto"):
        assert key in r
    assert r["candidates"] == 16 * 72
    assert 0 < r["feasible"] <= r["evaluated"] <= r["candidates"]
    assert r["seconds"] > 0
    assert set(r["best"]) >= {"kernel", "defines", "cycles", "energy_pj"}
    assert r["best"]["kernel"] == "mmee" and isinstance(r["best"]["cycles"], int)
    assert r["best"]["defines"]["N"] == 256 and r["best"]["defines"]["Br"] == 64
    assert len(r["top"]) == 3 and r["top"][0] == r["best"]
    assert [t["cycles"] for t in r["top"]] == sorted(t["cycles"] for t in r["top"])
    assert r["pareto"] and all(set(p) >= {"kernel", "defines", "cycles", "energy_pj"} for p in r["pareto"])
    assert "validated" not in r


def test_validate_runs_the_interpreter(attn_main, mmee):
    status, out, err = attn_main("explore", mmee, *SMALL, "--json", "--top", "2", "--validate", "2")
    assert status == 0, err
    v = json.loads(out)["validated"]
    assert len(v) == 2
    # the runs take seconds each: progress on stderr from the first, and at the end
    assert "validate:   0%" in err and "0/2 [" in err
    assert "validate: 100%" in err and "2/2 [" in err and "runs in the interpreter/s]" in err
    for item in v:
        assert set(item) >= {"kernel", "defines", "model_cycles", "sim_cycles", "error"}
        assert item["error"] == pytest.approx((item["model_cycles"] - item["sim_cycles"]) / item["sim_cycles"])
        assert abs(item["error"]) < 0.10
        assert abs(item["energy_error"]) < 0.01
        assert item["verified"]


def test_text_report(attn_main, mmee):
    status, out, err = attn_main("explore", mmee, *SMALL, "--top", "2", "--validate", "1")
    assert status == 0, err
    assert "1,152 candidates" in out
    assert "best 2 by latency" in out and "Pareto front" in out and "validated against the interpreter" in out


def test_several_kernels_and_objectives(attn_main, repo_root):
    flash = str(repo_root / "examples" / "flash.attn")
    status, out, err = attn_main("explore", flash, "-D", "N=256", "--minimize", "energy", "--json")
    assert status == 0, err
    r = json.loads(out)
    assert r["minimize"] == "energy"
    assert r["best"]["energy_pj"] == min(p["energy_pj"] for p in r["pareto"])


def test_workers_give_the_same_answer(attn_main, mmee):
    one = json.loads(attn_main("explore", mmee, *SMALL, "--json")[1])
    two = json.loads(attn_main("explore", mmee, *SMALL, "--json", "--workers", "2")[1])
    for key in ("candidates", "feasible", "evaluated", "best", "top", "pareto"):
        assert one[key] == two[key], key


def test_no_feasible_candidate_is_exit_1(attn_main, tmp_path):
    status, out, err = attn_main("explore", _big(tmp_path))
    assert status == 1
    assert "error[E1402]: capacity of sram removed all 2 candidates; the smallest needs 4.00 MiB" in err
    status, out, err = attn_main("explore", _big(tmp_path, n=1024), "--json")
    assert status == 0, err


def test_where_removing_everything_is_exit_1(attn_main, tmp_path):
    status, out, err = attn_main("explore", _big(tmp_path, "where T > 64", n=1024), "--json")
    assert status == 1
    assert json.loads(out)[0]["message"] == "where T > 64 removed all 2 candidates"
    assert "big.attn:8:9: error[E1402]" in err


def test_empty_space_is_exit_1(attn_main, tmp_path):
    path = _big(tmp_path, n=1024).replace("big.attn", "empty.attn")
    with open(path, "w") as f:
        f.write(BIG.replace("WHERE", "").replace("param T in {16, 32} = 16", "param T in 64 .. 16 = 16"))
    status, out, err = attn_main("explore", path)
    assert status == 1
    assert "error[E1403]" in err and "empty" in err


@pytest.mark.parametrize("args,message", [
    (["--top", "0"], "--top"),
    (["--workers", "0"], "--workers"),
    (["--validate", "-1"], "--validate"),
    (["--minimize", "area"], "invalid choice"),
    (["-D", "Q=3"], "-D Q"),
    (["-D", "nonsense"], "-D expects NAME=VALUE"),
    (["-k", "nope"], "no kernel 'nope'"),
])
def test_bad_flags_are_exit_2(attn_main, mmee, args, message):
    status, out, err = attn_main("explore", mmee, *args)
    assert status == 2
    assert message in err


def test_missing_file_is_exit_2(attn_main, tmp_path):
    status, out, err = attn_main("explore", str(tmp_path / "nope.attn"))
    assert status == 2 and "no such file" in err


def test_plot_without_matplotlib_is_exit_2(attn_main, mmee, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status, out, err = attn_main("explore", mmee, *SMALL, "--plot", str(tmp_path / "p.png"))
    assert status == 2
    assert "pip install attnlang[plot]" in err
    assert not (tmp_path / "p.png").exists()


def test_plot_writes_a_png(attn_main, mmee, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "pareto.png"
    status, out, err = attn_main("explore", mmee, *SMALL, "--plot", str(path))
    assert status == 0, err
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"explore: wrote the energy-latency plot to {path}" in err


def test_one_candidate_is_singular(attn_main, tmp_path):
    path = tmp_path / "one.attn"
    path.write_text("use hw.edge\nkernel one(Q: f16[64, 64]) -> (O: f16[64, 64]) on edge {\n"
                    "  q = load Q -> sram\n  store q -> O\n}\n")
    status, out, err = attn_main("explore", str(path))
    assert status == 0, err
    assert "  1 candidate; 1 feasible" in out


def test_progress_goes_to_stderr(capsys):
    from attnlang.cli.explore import _Progress

    p = _Progress()
    p(10, 100, 0.5)
    assert capsys.readouterr().err == ""
    p(50, 100, 1.5)
    p(100, 100, 2.5)
    p.done()
    err = capsys.readouterr().err
    assert "explore:  50%" in err and "50/100 [" in err
    assert "explore: 100%" in err and "candidates/s]" in err


def test_processes_and_channels_are_costed_by_simulation(attn_main, repo_root):
    """The ring kernel has processes and channels: explore simulates each candidate (exact), says so, and
    its best is what `attn run` gives for that candidate."""
    from attnlang.api import run

    ring = str(repo_root / "examples" / "ring_attention.attn")
    for scheme in ("full", "symmetric", "causal"):
        status, out, err = attn_main("explore", ring, "-D", "n=16", "-D", f"scheme={scheme}", "--json")
        assert status == 0, err
        r = json.loads(out)
        assert (r["candidates"], r["evaluated"], r["simulated"], r["feasible"]) == (1, 1, 1, 1)
        assert any("simulated" in n for n in r["notes"])
        assert r["best"]["cycles"] == run(ring, defines={"n": 16, "scheme": scheme}).cycles
    status, out, err = attn_main("explore", ring, "-D", "n=16", "-D", "scheme=causal")
    assert "1 evaluated by simulation" in out


def test_a_param_that_changes_the_spec_is_not_ranked(attn_main, repo_root):
    """The ring schemes compute different functions (causal masks, keys = queries): not alternatives."""
    ring = str(repo_root / "examples" / "ring_attention.attn")
    status, out, err = attn_main("explore", ring, "-D", "n=16")
    assert status == 2
    assert err.strip() == (
        "attn: error[E1404]: param scheme changes what kernel 'ring_attention' computes: the spec of O depends "
        "on it (through keys_are_queries, lift), so its candidates are not alternatives to rank; fix it with "
        "-D scheme=VALUE (full, symmetric, causal) and explore each")


def test_a_candidate_whose_simulation_deadlocks_is_pruned(attn_main, repo_root, tmp_path):
    """The naive stream graph deadlocks when its bypass channel is shallower than a row (N)."""
    text = (repo_root / "examples" / "stream_sdpa_naive.attn").read_text()
    assert "dim N = 128, d = 16" in text and "param depth = N + 2" in text
    path = tmp_path / "naive.attn"
    path.write_text(text.replace("dim N = 128, d = 16", "dim N = 16, d = 16")
                    .replace("param depth = N + 2", "param depth in {8, N + 2} = N + 2"))
    status, out, err = attn_main("explore", str(path), "--json")
    assert status == 0, err + out
    r = json.loads(out)
    assert (r["candidates"], r["feasible"], r["simulated"]) == (2, 1, 2)
    assert r["best"]["defines"]["depth"] == 18
    assert len(r["pruned"]) == 1 and r["pruned"][0]["removed"] == 1
    assert r["pruned"][0]["constraint"].startswith("the simulation stops with error E1032")


def test_derived_params_follow_the_candidate(attn_main, repo_root, tmp_path):
    """A param worked out from a varying one (Bc = 2 * Br here) takes each candidate's value: in the
    model's costs (equal to the interpreter's where the model is exact, as on flash) and in the defines."""
    text = (repo_root / "examples" / "flash.attn").read_text()
    assert "  param Bc in {16, 32, 64, 128} = 64\n" in text
    path = tmp_path / "derived.attn"
    path.write_text(text.replace("  param Bc in {16, 32, 64, 128} = 64\n", "  param Bc = 2 * Br\n"))
    status, out, err = attn_main("explore", str(path), "-D", "N=256", "--json", "--top", "4", "--validate", "4")
    assert status == 0, err + out
    r = json.loads(out)
    assert r["candidates"] == 4 and len(r["top"]) == r["feasible"] >= 3      # Br = 128, Bc = 256 may not fit
    assert all(c["defines"]["Bc"] == 2 * c["defines"]["Br"] for c in r["top"])
    assert all(abs(v["error"]) < 0.01 and v["verified"] for v in r["validated"]), r["validated"]


@pytest.mark.parametrize("example,old,new,code", [
    # a structural error at the defaults: the checker's diagnostic, before any search
    ("mmee", "param P  in {1, 2, 3, 4} = 2", "param P  in {1, 2, 3, f164} = 2", "E0956"),
    ("flash", "q   = load Q[i : i+Br, :] -> sram", "q   = load Q[i : i+Br, :] -> sarm", "E0324"),
    # errors that depend on the candidate: the model's own, at the statement
    ("mas_attention", "v = load V[j : j+Bc, :] -> sram", "v = load V[j : j+inf, :] -> sram", "E1401"),
])
def test_bad_programs_get_a_diagnostic_not_a_traceback(attn_main, repo_root, tmp_path, example, old, new, code):
    """Mutations of the examples that once reached the model and crashed it (found by fuzzing explore)."""
    text = (repo_root / "examples" / f"{example}.attn").read_text()
    assert old in text
    path = tmp_path / "bad.attn"
    path.write_text(text.replace(old, new, 1))
    status, out, err = attn_main("explore", str(path), "-D", "N=128", "--json")
    assert status == 1, (status, out, err)
    assert code in {d["code"] for d in json.loads(out)}, out
