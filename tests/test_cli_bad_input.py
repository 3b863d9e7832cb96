"""`attn check` on whatever a user may hand it: each gets a clear message and
the exit status of docs/cli.md (0 fine, 1 the program is wrong, 2 the command
line or the file is wrong), and never a Python traceback."""

from __future__ import annotations

import json
import time

import pytest


def run(run_attn, *args, cwd=None, timeout=60):
    proc = run_attn(*args, cwd=cwd, timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture
def flash(repo_root):
    return repo_root / "examples" / "flash.attn"


def test_missing_file(run_attn, tmp_path):
    proc = run(run_attn, "check", tmp_path / "nothere.attn")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"attn: error[E0106]: {tmp_path / 'nothere.attn'}: no such file"


def test_a_directory(run_attn, tmp_path):
    proc = run(run_attn, "check", tmp_path)
    assert proc.returncode == 2
    assert "is a directory" in proc.stderr


def test_binary_garbage(run_attn, tmp_path):
    path = tmp_path / "garbage.attn"
    path.write_bytes(bytes(range(256)) * 8 + b"\0\0kernel")
    proc = run(run_attn, "check", path)
    assert proc.returncode == 2
    assert "binary file" in proc.stderr


def test_empty_file_is_a_valid_program(run_attn, tmp_path):
    path = tmp_path / "empty.attn"
    path.write_text("")
    proc = run(run_attn, "check", path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_a_10_MB_file_is_refused_quickly(run_attn, tmp_path):
    path = tmp_path / "huge.attn"
    path.write_text("kernel k() -> () {}\n" * 525_000)  # 10 MiB
    start = time.perf_counter()
    proc = run(run_attn, "check", path)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 2
    assert "too large" in proc.stderr and "MiB" in proc.stderr
    assert elapsed < 10, f"refusing a large file took {elapsed:.1f} s"


def test_500_deep_parentheses(run_attn, tmp_path):
    path = tmp_path / "deep.attn"
    path.write_text("kernel k() -> () {\n  x = " + "(" * 500 + "1" + ")" * 500 + "\n}\n")
    proc = run(run_attn, "check", path)
    assert proc.returncode == 1
    assert f"{path}:2:" in proc.stderr and "error[E0003]" in proc.stderr


def test_a_very_long_operator_chain(run_attn, tmp_path):
    path = tmp_path / "chain.attn"
    path.write_text("kernel k() -> () {\n  x = " + "- " * 30_000 + "1\n}\n")
    proc = run(run_attn, "check", path)
    assert proc.returncode == 1
    assert "error[E0003]" in proc.stderr


def test_non_utf8_file(run_attn, tmp_path):
    path = tmp_path / "latin1.attn"
    path.write_bytes("# caf\u00e9\nuse hw.edge\n".encode("latin-1"))
    proc = run(run_attn, "check", path)
    assert proc.returncode == 2
    assert "not UTF-8" in proc.stderr


def test_a_byte_order_mark_is_ignored(run_attn, tmp_path):
    path = tmp_path / "bom.attn"
    path.write_bytes(b"\xef\xbb\xbfuse hw.edge\n")
    proc = run(run_attn, "check", path)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_bad_flag_in_a_real_process(run_attn, flash):
    proc = run(run_attn, "check", "--bogus", flash)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr and "unrecognized arguments: --bogus" in proc.stderr


@pytest.mark.parametrize("args", [["check"], [], ["frobnicate"], ["check", "-k"], ["check", "--json=yes", "x"]])
def test_bad_command_lines(attn_main, args):
    status, out, err = attn_main(*args)
    assert status == 2
    assert "usage:" in err and "error[E0109]:" in err


@pytest.mark.parametrize("define", ["foo", "=3", "N=", "1N=3", "N=1.5.5", "N=a-b"])
def test_malformed_define(attn_main, flash, define):
    status, out, err = attn_main("check", "-D", define, flash)
    assert status == 2
    assert err.startswith("attn: error[E0107]: -D")


def test_define_of_an_unknown_name(run_attn, flash):
    proc = run(run_attn, "check", "-D", "nosuch=3", flash)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "attn: error[E0107]: -D nosuch: no kernel declares a dimension or param 'nosuch'"


def test_define_of_a_known_name(attn_main, flash):
    status, out, err = attn_main("check", "-D", "Br=32", "-D", "N=2048", flash)
    assert (status, err) == (0, "")


def test_json_is_a_list_even_when_clean(attn_main, flash):
    status, out, err = attn_main("check", "--json", flash)
    assert status == 0
    assert json.loads(out) == []


def test_json_lists_every_problem_with_the_design_fields(attn_main, tmp_path):
    path = tmp_path / "bad.attn"
    path.write_text("kernel a() -> () {\n  x =\n}\nkernel b() -> () {\n  y = $\n}\n")
    status, out, err = attn_main("check", "--json", path)
    assert status == 1
    items = json.loads(out)
    assert isinstance(items, list) and len(items) == 2
    for item in items:
        assert {"file", "line", "column", "end_line", "end_column", "severity", "code", "message"} <= set(item)
        assert item["file"] == str(path)
    assert [(i["line"], i["code"]) for i in items] == [(3, "E0001"), (5, "E0001")]


def test_several_files_one_bad(attn_main, tmp_path, flash):
    bad = tmp_path / "bad.attn"
    bad.write_text("kernel k() -> () {\n")
    status, out, err = attn_main("check", flash, bad)
    assert status == 1
    assert err.startswith(f"{bad}:1:19: error[E0002]: unexpected end of file: expected '}}' to close the kernel")


def test_every_example_and_stdlib_file_checks_clean(attn_main, attn_file):
    status, out, err = attn_main("check", attn_file)
    assert (status, out, err) == (0, "", "")


def test_all_shipped_programs_at_once_in_a_real_process(run_attn, repo_root, attn_files):
    proc = run(run_attn, "check", "--json", *attn_files, cwd=repo_root)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
