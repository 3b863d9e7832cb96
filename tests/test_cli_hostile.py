"""Whatever a user types: any -D value and any list of files gets coded diagnostics and the exit
status of docs/cli.md (1 the program is wrong, 2 the command line or a file is wrong), never an
internal error; and `--json` prints JSON on stdout every time, one shape for every command."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnlang.cli import main

ROOT = Path(__file__).resolve().parents[1]
FLASH = str(ROOT / "examples" / "flash.attn")
CODED = re.compile(r"^(attn|\S+:\d+:\d+): error\[E\d{4}\]: ", re.M)


def attn(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in args])
    return status, out.getvalue(), err.getvalue()


def assert_user_error(status: int, err: str) -> None:
    assert "internal error" not in err and "Traceback" not in err, err
    assert status in (0, 1, 2), (status, err)
    if status:
        assert CODED.search(err), err


HUGE = "99999999999999999999999"


@pytest.mark.parametrize("command", ["check", "run", "explore"])
def test_a_huge_define_is_a_coded_error_not_an_internal_one(command):
    status, out, err = attn(command, FLASH, "-D", f"N={HUGE}")
    # out of the range every engine can count exactly (2**53): a command-line error
    assert status == 2, err
    assert "internal error" not in err
    assert "error[E0107]" in err and "out of range" in err


def test_a_large_define_that_does_not_divide_names_the_partial_tile():
    big = 2**53 - 1  # the largest the engines count exactly
    status, _, err = attn("check", FLASH, "-D", f"N={big}")
    assert f"error[E0602]: Br = 64 does not divide N = {big}" in err
    assert f"the last tile, i = {big // 64 * 64}" in err


@pytest.mark.parametrize("value", ["0", "-4", "1.5", "x"])
def test_a_dimension_below_one_or_not_whole_is_refused(value):
    for command in ("check", "run"):
        status, _, err = attn(command, FLASH, "-D", f"d={value}")
        assert status == 2, (command, value, err)
        assert err.startswith("attn: error[E0107]: -D d: a dimension takes a whole number of at least 1"), err


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400"])
def test_a_define_that_is_not_finite_is_refused(value):
    for name in ("d", "Br"):
        status, _, err = attn("check", FLASH, "-D", f"{name}={value}")
        assert status == 2, err
        assert err.strip() == f"attn: error[E0107]: -D {name}: '{value}' is not a finite number"


defines = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from([HUGE, "-" + HUGE, "0", "-0", "1e400", "-1e400", "nan", "inf", "64.0", "64.5", "0x40",
                     "1_024", "١٢٨", "²", "é", "N", "", " ", "=", "a=b"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["N", "d", "Br", "nosuch", "N N", "", "é"]), value=defines)
def test_any_define_on_check_is_coded(name, value):
    status, _, err = attn("check", FLASH, "-D", f"{name}={value}")
    assert_user_error(status, err)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["N", "d", "Bc"]), value=defines)
def test_any_define_on_run_is_coded(name, value):
    # --max-cycles bounds a run that a value makes legal: it then stops with E1003 (exit 1).
    status, out, err = attn("run", FLASH, "-D", f"{name}={value}", "--max-cycles", "2000", "--json")
    assert_user_error(status, err)
    json.loads(out)  # JSON on stdout, whatever happened


GOOD = FLASH
WRONG = "kernel k() -> () {\n  x = $\n}\n"  # a syntax error: exit 1


def _files(tmp: Path) -> dict[str, str]:
    (tmp / "wrong.attn").write_text(WRONG)
    (tmp / "binary.attn").write_bytes(b"\0\1\2")
    (tmp / "latin1.attn").write_bytes(b"# caf\xe9\n")
    (tmp / "empty.attn").write_text("")
    (tmp / "adir").mkdir(exist_ok=True)
    return {"good": GOOD, "wrong": str(tmp / "wrong.attn"), "binary": str(tmp / "binary.attn"),
            "latin1": str(tmp / "latin1.attn"), "empty": str(tmp / "empty.attn"), "dir": str(tmp / "adir"),
            "missing": str(tmp / "nosuchfile.attn")}


UNREADABLE = {"binary", "latin1", "dir", "missing"}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(["good", "wrong", "binary", "latin1", "empty", "dir", "missing"]),
                      min_size=1, max_size=5))
def test_check_reports_every_file_of_a_mixed_list(tmp_path, kinds):
    files = _files(tmp_path)
    status, _, err = attn("check", *(files[k] for k in kinds))
    assert_user_error(status, err)
    want = 2 if UNREADABLE & set(kinds) else 1 if "wrong" in kinds else 0
    assert status == want, err
    json_status, out, _ = attn("check", "--json", *(files[k] for k in kinds))
    assert json_status == status
    diags = json.loads(out)
    for kind in set(kinds) & UNREADABLE:  # each unreadable file has its own E0106, wherever it is in the list
        assert any(d["code"] == "E0106" and d["file"] == files[kind] and d["line"] == 0 for d in diags), diags
        assert f"attn: error[E0106]: {files[kind]}: " in err
    if "wrong" in kinds:
        assert any(d["code"] == "E0001" and d["file"] == files["wrong"] for d in diags), diags


def test_check_of_a_directory_a_missing_file_and_a_good_one(tmp_path):
    files = _files(tmp_path)
    status, out, err = attn("check", files["dir"], files["missing"], files["wrong"], GOOD)
    assert status == 2
    assert err.splitlines()[:2] == [f"attn: error[E0106]: {files['dir']}: is a directory, not a .attn file",
                                    f"attn: error[E0106]: {files['missing']}: no such file"]
    assert f"{files['wrong']}:2:7: error[E0001]" in err


def test_a_syntax_error_is_shown_even_with_a_define(tmp_path):
    files = _files(tmp_path)
    for command in ("check", "run"):
        status, _, err = attn(command, files["wrong"], "-D", "N=64")
        assert status == 1, err
        assert f"{files['wrong']}:2:7: error[E0001]" in err
        assert "no kernel declares" not in err


@pytest.mark.parametrize("args", [
    ["check", "--json", "nosuchfile.attn"],
    ["run", "--json", FLASH, "-D", "N=x.y"],
    ["run", "--json", FLASH, "--bogus"],
    ["explore", "--json", FLASH, "-D", "nosuch=3"],
    ["schedule", "--json", FLASH, "-k", "nosuch"],
    ["run", "--json", FLASH, "-k", "nosuch"],
])
def test_json_usage_errors_are_a_list_of_diagnostics(args):
    status, out, err = attn(*args)
    assert status == 2, err
    (d,) = json.loads(out)
    assert set(d) == {"file", "line", "column", "end_line", "end_column", "severity", "code", "message", "notes"}
    assert d["code"] in {"E0106", "E0107", "E0108", "E0109"} and d["line"] == 0
    if args[0] != "check":  # check --json prints its diagnostics on stdout only; the others on both
        assert f"attn: error[{d['code']}]: {d['message']}" in err


def test_json_program_errors_have_one_shape_for_check_run_and_explore(tmp_path):
    files = _files(tmp_path)
    shapes = {}
    for command in ("check", "run", "explore"):
        status, out, err = attn(command, "--json", files["wrong"])
        assert status == 1, err
        shapes[command] = [(d["file"], d["line"], d["column"], d["code"]) for d in json.loads(out)]
    assert shapes["check"] == shapes["run"] == shapes["explore"] == [(files["wrong"], 2, 7, "E0001")]


@pytest.mark.parametrize("raised, status, code", [
    (lambda: RuntimeError("a bug"), 3, "E0110"),
    (MemoryError, 1, "E1018"),
    (KeyboardInterrupt, 130, "E0111"),
])
@pytest.mark.parametrize("command", ["check", "run", "explore"])
def test_json_when_a_command_stops_from_outside_the_program(monkeypatch, raised, status, code, command):
    """A bug in attnlang (exit 3), the machine's memory running out (1) and Ctrl-C (130) still print
    the one list shape on stdout under --json, with a code; without --json stdout stays empty."""
    import attnlang.api
    import attnlang.program

    def stop(*args, **kwargs):
        raise raised()

    for module in (attnlang.program, attnlang.api):  # the first thing every command does with its file
        monkeypatch.setattr(module, "load", stop)
    monkeypatch.delenv("ATTN_DEBUG", raising=False)
    got, out, err = attn(command, "--json", FLASH)
    assert got == status, err
    (d,) = json.loads(out)
    assert d["code"] == code and d["severity"] == "error" and d["line"] == 0
    assert set(d) == {"file", "line", "column", "end_line", "end_column", "severity", "code", "message", "notes"}
    if status == 3:
        assert "RuntimeError: a bug" in d["message"] and "internal error" in err and "Traceback" not in err
    if status == 1:
        assert f"attn: error[{code}]: out of host memory" in err
    got, out, _ = attn(command, FLASH)
    assert got == status and out == ""


@pytest.mark.parametrize("example, name", [
    ("flash_causal", "B"), ("flash_causal", "d"), ("flash", "Br"), ("flash", "d"), ("mmee", "N"),
    ("stream_sdpa", "d"),
])
@pytest.mark.parametrize("value", [2**40, 2**52, 2**53])
def test_explore_with_huge_values_is_coded(example, name, value):
    """Values the command line accepts (up to 2**53) that make a count past the model's 64 bits are E1401,
    and a space they empty is E1402 in the right number (never an internal error)."""
    status, out, err = attn("explore", str(ROOT / "examples" / f"{example}.attn"), "-D", f"{name}={value}",
                            "--json")
    assert_user_error(status, err)
    if status:
        diags = json.loads(out)
        assert {d["code"] for d in diags} <= {"E1401", "E1402", "E0602", "E0601", "E0107"}, diags
        assert not any("all 1 candidates" in d["message"] for d in diags), diags
        for d in diags:
            if d["code"] == "E1401":
                assert "too large for the model" in d["message"] and f"{name} = {value}" in d["notes"][0], d
