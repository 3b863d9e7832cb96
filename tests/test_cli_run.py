"""`attn run`: the command-line contract of docs/cli.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnlang.cli import main

ROOT = Path(__file__).resolve().parents[1]
FLASH = str(ROOT / "examples" / "flash.attn")
SMALL = ["-D", "N=64", "-D", "d=16", "-D", "Br=16", "-D", "Bc=32"]


def attn(capsys, *argv: str) -> tuple[int, str, str]:
    """Run `attn ARGV` in this process: (exit status, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    assert "internal error" not in err
    return code, out, err


def sdpa(q, k, v):
    s = q.astype(np.float64) @ k.astype(np.float64).T / np.sqrt(q.shape[1])
    p = np.exp(s - s.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)) @ v.astype(np.float64)


# ---------------------------------------------------------------- --json


def test_json_has_every_field_with_its_type(capsys):
    code, out, err = attn(capsys, "run", FLASH, *SMALL, "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["kernel"] == "flash" and r["hardware"] == "edge"
    assert r["defines"] == {"N": 64, "d": 16, "Br": 16, "Bc": 32}
    assert type(r["cycles"]) is int and r["cycles"] > 0
    assert type(r["seconds"]) is float and r["seconds"] == pytest.approx(r["cycles"] / 940e6)
    assert type(r["energy_pj"]) is float and r["energy_pj"] > 0
    assert set(r["energy_breakdown_pj"]) == {"dram", "sram", "pe", "vec"}
    assert all(type(v) is float for v in r["energy_breakdown_pj"].values())
    assert r["energy_pj"] == pytest.approx(sum(r["energy_breakdown_pj"].values()))
    assert set(r["units"]) == {"pe", "vec"}
    for u in r["units"].values():
        assert set(u) == {"busy_cycles", "utilization"}
        assert all(type(v) is float for v in u.values())
        assert 0 <= u["utilization"] <= 1
    assert set(r["memories"]) == {"dram", "sram"}
    for m in r["memories"].values():
        assert set(m) == {"read_bytes", "write_bytes", "peak_bytes"}
        assert all(type(v) is float for v in m.values())
    assert r["channels"] == {}
    assert r["verify"] == {"O": {"max_abs_err": r["verify"]["O"]["max_abs_err"],
                                 "max_rel_err": r["verify"]["O"]["max_rel_err"], "ok": True}}
    assert all(type(v) is float for k, v in r["verify"]["O"].items() if k != "ok")
    assert r["engine"] == "interp"
    assert type(r["wall_seconds"]) is float and r["wall_seconds"] > 0
    assert err == ""


def test_json_reports_channels_of_a_streaming_kernel(capsys):
    code, out, err = attn(capsys, "run", str(ROOT / "examples" / "stream_sdpa.attn"), "-D", "N=8", "--json")
    assert code == 0, err
    channels = json.loads(out)["channels"]
    assert channels
    for c in channels.values():
        assert type(c["max_occupancy"]) is int and type(c["sent"]) is int
        assert 0 < c["max_occupancy"] <= c["sent"]


def test_text_report_without_json(capsys):
    code, out, _ = attn(capsys, "run", FLASH, *SMALL)
    assert code == 0
    assert out.startswith("kernel flash on edge")
    assert re.search(r"^cycles\s+[\d,]+", out, re.M)
    assert re.search(r"^verify\s+O: ok", out, re.M)


# ---------------------------------------------------------------- -D, --seed


def test_defines_set_dimensions_and_params(capsys):
    _, out, _ = attn(capsys, "run", FLASH, "-D", "N=128", "-D", "d=32", "--json")
    r = json.loads(out)
    assert r["defines"] == {"N": 128, "d": 32, "Br": 64, "Bc": 64}  # params at their defaults
    _, out, _ = attn(capsys, "run", FLASH, "-D", "N=128", "-D", "d=32", "-D", "Br=16", "--json")
    small_tiles = json.loads(out)
    assert small_tiles["defines"]["Br"] == 16
    assert small_tiles["cycles"] != r["cycles"]
    # the row block is 16 rows: K and V stream from dram 128 / 16 = 8 times, not 2
    assert small_tiles["memories"]["dram"]["read_bytes"] > r["memories"]["dram"]["read_bytes"]


@pytest.mark.parametrize("bad,message", [
    ("FOO=3", "has no dimension or param 'FOO'"),
    ("N", "-D expects NAME=VALUE"),
    ("N=1.5.2", "is not a number or a name"),
])
def test_bad_defines_are_usage_errors(capsys, bad, message):
    code, _, err = attn(capsys, "run", FLASH, "-D", bad)
    assert code == 2
    assert message in err


def _saved_output(capsys, tmp_path, *args: str) -> np.ndarray:
    path = tmp_path / "o.npy"
    code, _, err = attn(capsys, "run", FLASH, *SMALL, "--save", f"O={path}", *args)
    assert code == 0, err
    return np.load(path)


def test_seed_changes_inputs_deterministically(capsys, tmp_path):
    a = _saved_output(capsys, tmp_path)  # --seed defaults to 0
    b = _saved_output(capsys, tmp_path, "--seed", "0")
    c = _saved_output(capsys, tmp_path, "--seed", "1")
    d = _saved_output(capsys, tmp_path, "--seed", "1")
    assert np.array_equal(a, b) and np.array_equal(c, d)
    assert not np.array_equal(a, c)


def test_inputs_not_given_are_standard_normal_from_the_seed(capsys, tmp_path):
    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal((64, 16)).astype(np.float16) for _ in range(3))
    got = _saved_output(capsys, tmp_path, "--seed", "7")
    np.testing.assert_allclose(got, sdpa(q, k, v), atol=2e-2 * np.abs(sdpa(q, k, v)).max() + 1e-2)


# ---------------------------------------------------------------- --input, --save


def _write_inputs(tmp_path, shape=(64, 16), dtype=np.float32, seed=0) -> list[str]:
    rng = np.random.default_rng(seed)
    args = []
    for name in "QKV":
        p = tmp_path / f"{name}.npy"
        np.save(p, rng.standard_normal(shape).astype(dtype))
        args += ["--input", f"{name}={p}"]
    return args


def test_input_and_save_round_trip(capsys, tmp_path):
    inputs = _write_inputs(tmp_path)
    out = tmp_path / "O.npy"
    code, stdout, err = attn(capsys, "run", FLASH, *inputs, "--save", f"O={out}", "--json")
    assert code == 0, err
    # the dimensions come from the inputs' shapes
    assert json.loads(stdout)["defines"]["N"] == 64 and json.loads(stdout)["defines"]["d"] == 16
    o = np.load(out)
    assert o.dtype == np.float16 and o.shape == (64, 16)  # saved in the output's dtype
    q, k, v = (np.load(tmp_path / f"{n}.npy").astype(np.float16) for n in "QKV")  # f16 inputs
    ref = sdpa(q, k, v)
    assert np.max(np.abs(o - ref)) <= 2e-2 * np.abs(ref).max() + 1e-2
    # feeding the same files again gives the same bits; only the named outputs are written
    again = tmp_path / "again.npy"
    assert attn(capsys, "run", FLASH, *inputs, "--save", f"O={again}")[0] == 0
    assert np.array_equal(np.load(again), o)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["K.npy", "O.npy", "Q.npy", "V.npy", "again.npy"]


def test_integer_and_f64_inputs_are_accepted(capsys, tmp_path):
    a = _write_inputs(tmp_path, dtype=np.float64)
    assert attn(capsys, "run", FLASH, *a)[0] == 0
    ints = tmp_path / "ints"
    ints.mkdir()
    b = _write_inputs(ints, dtype=np.int32)
    assert attn(capsys, "run", FLASH, *b)[0] == 0


def _one_input(tmp_path, array=None, raw: bytes | None = None, name="Q.npy") -> str:
    p = tmp_path / name
    if raw is not None:
        p.write_bytes(raw)
    else:
        np.save(p, array, allow_pickle=True)
    return str(p)


def _npz(tmp_path) -> str:
    path = tmp_path / "q.npz"
    np.savez(path, a=np.zeros((64, 16)), b=np.zeros((64, 16)))
    return str(path)


def _truncated(tmp_path) -> str:
    path = _one_input(tmp_path, np.zeros((64, 16), np.float32))
    Path(path).write_bytes(Path(path).read_bytes()[:300])
    return path


@pytest.mark.parametrize("make,message", [
    (lambda t: _one_input(t, np.zeros((64, 16, 2), np.float32)), "expected 2 axes"),
    (lambda t: _one_input(t, np.zeros((64, 16), np.complex64)), "expected numbers for f16, got dtype complex64"),
    (lambda t: _one_input(t, np.zeros((64, 16), bool)), "got dtype bool"),
    (lambda t: _one_input(t, np.array([{"a": 1}] * 4, dtype=object)), "is not a valid .npy file"),
    (lambda t: _one_input(t, np.full((64, 16), "x")), "got dtype <U1"),
    (lambda t: str(t / "missing.npy"), "no such file"),
    (lambda t: _truncated(t), "is not a valid .npy file (Failed to read all data"),
    (lambda t: _one_input(t, raw=b"not an array at all"), "is not a .npy file (it does not start with the .npy"),
    (lambda t: _one_input(t, raw=b""), "is not a .npy file"),
    (lambda t: _one_input(t, raw=b"\x93NUMPY\x01\x00garbage"), "is not a valid .npy file"),
    (lambda t: _one_input(t, raw=np.lib.format.MAGIC_PREFIX + b"\x01\x00\x10\x00{'descr': '<f4'}"),
     "is not a valid .npy file"),
    (lambda t: str(t), "is a directory"),
    (lambda t: _npz(t), "holds several arrays; give one .npy array"),
])
def test_bad_input_files_are_usage_errors(capsys, tmp_path, make, message):
    path = make(tmp_path)
    code, out, err = attn(capsys, "run", FLASH, "--input", f"Q={path}")
    assert code == 2
    assert err.startswith("attn: error[E0109]: --input Q")
    assert message in err
    assert out == ""


def test_input_shapes_that_disagree_are_usage_errors(capsys, tmp_path):
    q = _one_input(tmp_path, np.zeros((64, 16), np.float32), name="q.npy")
    k = _one_input(tmp_path, np.zeros((64, 8), np.float32), name="k.npy")
    code, _, err = attn(capsys, "run", FLASH, "--input", f"Q={q}", "--input", f"K={k}")
    assert code == 2 and "dimension d is 8 here but 16 elsewhere" in err
    code, _, err = attn(capsys, "run", FLASH, "--input", f"Q={q}", "-D", "N=128")
    assert code == 2 and "-D N=128 disagrees with the inputs, where N is 64" in err


@pytest.mark.parametrize("spec,message", [
    ("X={out}", "kernel 'flash' has no output 'X' (outputs: O)"),
    ("O", "--save expects NAME=FILE.npy"),
    ("O={missing_dir}", "does not exist"),
])
def test_bad_saves_are_usage_errors(capsys, tmp_path, spec, message):
    spec = spec.format(out=tmp_path / "x.npy", missing_dir=tmp_path / "no" / "o.npy")
    code, _, err = attn(capsys, "run", FLASH, *SMALL, "--save", spec)
    assert code == 2
    assert message in err
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left


def test_unknown_input_name_is_a_usage_error(capsys, tmp_path):
    q = _one_input(tmp_path, np.zeros((64, 16), np.float32))
    code, _, err = attn(capsys, "run", FLASH, "--input", f"X={q}")
    assert code == 2 and "kernel 'flash' has no input 'X' (inputs: Q, K, V)" in err


# ---------------------------------------------------------------- -k

TWO_KERNELS = """use hw.edge

kernel scaled(Q: f16[N, d], K: f16[N, d], V: f16[N, d]) -> (O: f16[N, d])
  on edge
  spec O = softmax(Q @ K.T / sqrt(d)) @ V
{
  dim N = 64, d = 16
  q = load Q -> sram
  k = load K -> sram
  v = load V -> sram
  store softmax(q @ k.T / sqrt(d)) @ v -> O
}

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


@pytest.fixture
def two_kernels(tmp_path) -> str:
    p = tmp_path / "two.attn"
    p.write_text(TWO_KERNELS)
    return str(p)


def test_k_is_required_with_several_kernels(capsys, two_kernels):
    code, out, err = attn(capsys, "run", two_kernels)
    assert code == 2
    assert "has several kernels (scaled, unscaled); pick one with -k" in err


def test_k_picks_the_kernel(capsys, two_kernels):
    code, out, err = attn(capsys, "run", two_kernels, "-k", "scaled", "--json")
    assert code == 0, err
    assert json.loads(out)["kernel"] == "scaled"
    code, _, err = attn(capsys, "run", two_kernels, "-k", "nope")
    assert code == 2 and "has no kernel 'nope' (it has: scaled, unscaled)" in err


def test_a_spec_mismatch_names_the_worst_element(capsys, two_kernels, tmp_path):
    out = tmp_path / "o.npy"
    code, stdout, err = attn(capsys, "run", two_kernels, "-k", "unscaled", "--save", f"O={out}", "--json")
    assert code == 1
    assert json.loads(stdout)["verify"]["O"]["ok"] is False
    m = re.search(r"error\[E1021\]: output O does not match its spec: at O\[(\d+), (\d+)\] the kernel gives "
                  r"(\S+) but the spec gives (\S+) \(max abs error (\S+), relative (\S+)\)", err)
    assert m, err
    i, j = int(m[1]), int(m[2])
    got, want = float(m[3]), float(m[4])
    # the message's numbers are the real ones: the saved output and the reference at that index
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((64, 16)).astype(np.float16) for _ in range(3))
    ref = sdpa(q, k, v)
    o = np.load(out).astype(np.float64)
    assert got == pytest.approx(o[i, j], rel=1e-5)
    assert want == pytest.approx(ref[i, j], rel=1e-4)
    assert abs(o[i, j] - ref[i, j]) == pytest.approx(np.max(np.abs(o - ref)), rel=1e-3)
    assert "spec O = softmax(Q @ K.T / sqrt(d)) @ V" in err  # the spec's source line


# ---------------------------------------------------------------- limits, errors


def test_max_cycles_stops_the_run(capsys):
    code, out, err = attn(capsys, "run", FLASH, *SMALL, "--max-cycles", "1000")
    assert code == 1
    assert "error[E1003]: the run passed --max-cycles 1000 here" in err
    assert out == ""
    # a limit the run stays under changes nothing
    code, out, _ = attn(capsys, "run", FLASH, *SMALL, "--max-cycles", "1e9", "--json")
    assert code == 0 and json.loads(out)["cycles"] < 1e9


def test_program_errors_in_json_mode_are_json_on_stdout(capsys):
    code, out, err = attn(capsys, "run", FLASH, *SMALL, "--max-cycles", "10", "--json")
    assert code == 1
    (d,) = json.loads(out)  # the list of diagnostics that check --json prints
    assert d["code"] == "E1003" and d["severity"] == "error"
    assert {"file", "line", "column", "end_line", "end_column", "message"} <= set(d)
    assert "error[E1003]" in err


@pytest.mark.parametrize("argv,message", [
    (["run", "missing.attn"], "missing.attn: no such file"),
    (["run", FLASH, "--seed", "x"], "invalid int value"),
    (["run", FLASH, "--engine", "gpu"], "invalid choice"),
    (["run"], "the following arguments are required: FILE"),
    (["run", FLASH, "--input", "Q"], "--input expects NAME=FILE.npy"),
])
def test_command_line_errors_exit_2(capsys, argv, message):
    code, _, err = attn(capsys, *argv)
    assert code == 2
    assert message in err


def test_a_tile_that_does_not_fit_is_a_program_error_with_its_location(capsys):
    code, _, err = attn(capsys, "run", FLASH, "-D", "N=96", "-D", "Br=64")
    assert code == 1
    # file:line:col: error[CODE]: message, then the source line and a caret
    assert re.search(r"flash\.attn:\d+:\d+: error\[E\d{4}\]: ", err)
    assert re.search(r"^\s+\d+ \| .*\n\s+\| +\^", err, re.M)


def test_the_installed_command_never_shows_a_traceback(tmp_path):
    """The real entry point, in a fresh process: a good run, a usage error, a program error."""
    cases = [([FLASH, *SMALL], 0), ([FLASH, "--input", f"Q={tmp_path / 'none.npy'}"], 2),
             ([FLASH, *SMALL, "--max-cycles", "5"], 1)]
    for args, status in cases:
        p = subprocess.run([sys.executable, "-m", "attnlang", "run", *args], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == status, p.stderr
        assert "Traceback" not in p.stderr


@pytest.mark.parametrize("example", ["flash", "flat", "naive", "flash_causal"])
def test_a_zero_dimension_is_refused_not_run(capsys, example):
    # A run of empty tensors would "verify" with max abs error 0 and prove nothing.
    code, out, err = attn(capsys, "run", str(ROOT / "examples" / f"{example}.attn"), "-D", "N=0", "--json")
    assert code == 2, err
    (d,) = json.loads(out)
    assert d["code"] == "E0107"
    assert err.strip() == "attn: error[E0107]: -D N: a dimension takes a whole number of at least 1, not '0'"


@pytest.mark.parametrize("body,spec,message", [
    ("store softmax(q) -> O", "", "error[E1011]: softmax() needs a tensor with non-empty rows, not [4, 0]"),
    ("store q -> O", "spec O = softmax(Q)", "error[E1020]: softmax() in the spec is taken over empty rows"),
    ("store q -> O", "spec O = Q + max(Q)", "error[E1020]: max() in the spec is taken over an empty tensor"),
])
def test_empty_reductions_are_program_errors(capsys, tmp_path, body, spec, message):
    p = tmp_path / "empty.attn"
    p.write_text(f"use hw.edge\nkernel k(Q: f16[N, d]) -> (O: f16[N, d])\n  on edge\n  {spec}\n{{\n"
                 f"  dim N = 4, d = 0\n  q = load Q -> sram\n  {body}\n}}\n")
    code, _, err = attn(capsys, "run", str(p))
    assert code == 1
    assert message in err


def test_tensors_larger_than_the_machine_are_a_program_error_before_anything_is_made(capsys, tmp_path):
    """-D N=640000 makes Q and O about 6 TiB as the run holds them: E1013 at the signature, at once,
    instead of a MemoryError (or the system's out-of-memory killer) while the inputs are drawn."""
    path = tmp_path / "copy.attn"
    path.write_text("use hw.cloud\n\nkernel copy(Q: f16[N, N]) -> (O: f16[N, N])\n  on cloud\n  spec O = Q\n{\n"
                    "  dim N = 128\n  for i in 0 .. N by 64 {\n    for j in 0 .. N by 64 {\n"
                    "      t = load Q[i : i+64, j : j+64] -> sram\n      store t -> O[i : i+64, j : j+64]\n"
                    "    }\n  }\n}\n")
    assert attn(capsys, "run", str(path))[0] == 0
    code, _, err = attn(capsys, "run", str(path), "-D", "N=640000")
    assert code == 1
    assert re.search(r"copy\.attn:3:13: error\[E1013\]: the inputs and outputs need [\d.]+ TiB of host memory",
                     err), err
    assert "the largest is Q: f16[640000, 640000]" in err


def test_host_memory_check_counts_inputs_drawn_as_float64_and_outputs_as_held():
    from attnlang.api import check_host_memory, load_program
    from attnlang.diagnostics import AttnError

    k = load_program(FLASH).kernel(None)
    env = {"N": 64, "d": 16}
    need = 3 * 64 * 16 * (4 + 8) + 64 * 16 * 4  # Q, K, V drawn as float64 and kept as float32; O as float32
    check_host_memory(k, env, limit=need)
    with pytest.raises(AttnError) as exc:
        check_host_memory(k, env, limit=need - 1)
    assert exc.value.diagnostics[0].code == "E1013"


def test_an_output_dimension_without_a_value_is_a_program_error_even_unchecked():
    """A dimension expression naming a loop index: the checker says E0310; a run without the checker stops with
    the static evaluator's diagnostic, not a Python error."""
    from attnlang.api import run
    from attnlang.diagnostics import AttnError

    src = (ROOT / "tests" / "check" / "programs" / "E0310_unknown_name_in_a_dimension.attn").read_text()
    for engine in ("interp", "jit"):
        with pytest.raises(AttnError) as exc:
            run(src, check=False, engine=engine)
        assert "'j' has no value here" in exc.value.diagnostics[0].message


@pytest.mark.parametrize("dim, error", [("-N", "UsageError"), ("2 ** 70", "AttnError")])
def test_output_dimensions_out_of_range_are_errors_not_crashes(dim, error):
    """A negative output dimension (unchecked: the checker would say so first) and one past int64 (which the
    checker's occupancy walk used to overflow on) end in the error a user can act on."""
    from attnlang.api import run
    from attnlang.diagnostics import AttnError, UsageError

    src = Path(FLASH).read_text().replace("-> (O: f16[N, d])", f"-> (O: f16[N, {dim}])")
    for check in (True, False):
        with pytest.raises((AttnError, UsageError)) as exc:
            run(src, defines={"N": 16}, check=check)
        if not check:
            assert type(exc.value).__name__ == error
