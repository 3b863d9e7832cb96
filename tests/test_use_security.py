"""`use "file"` reads only inside the main file's folder, the -I / ATTN_PATH folders and the standard
library, after following symlinks; only regular files, never more than the size limit; and a used file
that is not attnlang source is refused without its text reaching the output (issue 21, item 5).

Each test is one way a hostile program tried to read something it should not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import attnlang
from attnlang.diagnostics import AttnError

HW = """\
hardware h {
  clock 1 GHz
  memory m { bandwidth 8 B/cycle }
  unit v : vector { lanes 4; memory m }
}
"""
SECRET = "root:x:0:0:root:/root:/bin/bash\nsecret-token-1234\n"


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """tmp/proj (the program's folder, the working folder too) and tmp/outside (a folder beside it)."""
    proj, outside = tmp_path / "proj", tmp_path / "outside"
    proj.mkdir()
    outside.mkdir()
    (outside / "hw.attn").write_text(HW)
    (outside / "secret.attn").write_text(SECRET)
    monkeypatch.chdir(proj)
    monkeypatch.delenv("ATTN_PATH", raising=False)
    return proj, outside


def check_json(attn_main, *args: str) -> tuple[int, list[dict], str]:
    status, out, err = attn_main("check", "--json", *args)
    return status, json.loads(out), err


def codes(items: list[dict]) -> list[str]:
    return [i["code"] for i in items]


def test_a_symlink_to_a_file_outside_is_refused_without_reading_it(tree, attn_main):
    proj, outside = tree
    (proj / "lib.attn").symlink_to(outside / "secret.attn")
    (proj / "main.attn").write_text('use "lib.attn"\n')
    status, items, err = check_json(attn_main, "main.attn")
    assert status == 1 and codes(items) == ["E0103"]
    assert (items[0]["file"], items[0]["line"]) == ("main.attn", 1)
    assert "outside the program's folder" in items[0]["message"]
    _, _, text = attn_main("check", "main.attn")
    assert "root:x" not in json.dumps(items) + err + text and "secret-token" not in text


def test_a_symlink_to_etc_passwd_never_prints_it(tree, attn_main):
    proj, _ = tree
    if not os.path.exists("/etc/passwd"):
        pytest.skip("no /etc/passwd on this system")
    (proj / "lib.attn").symlink_to("/etc/passwd")
    (proj / "main.attn").write_text('use "lib.attn"\n')
    status, out, err = attn_main("check", "--json", "main.attn")
    assert status == 1 and codes(json.loads(out)) == ["E0103"]
    assert "root:" not in out + err


def test_dot_dot_out_of_the_program_folder_is_refused(tree, attn_main):
    proj, _ = tree
    (proj / "main.attn").write_text('use "../outside/hw.attn"\nkernel k() -> () on h {\n}\n')
    status, items, _ = check_json(attn_main, "main.attn")
    assert codes(items) == ["E0103", "E0105"]  # refused, so hardware h is not in scope


def test_dot_dot_that_stays_inside_is_fine(tree, attn_main):
    proj, _ = tree
    (proj / "sub").mkdir()
    (proj / "hw.attn").write_text(HW)
    (proj / "sub" / "k.attn").write_text('use "../hw.attn"\nkernel k() -> () on h {\n}\n')
    (proj / "main.attn").write_text('use "sub/k.attn"\n')
    assert attn_main("check", "main.attn")[0] == 0


def test_an_absolute_path_outside_is_refused_and_inside_is_read(tree, attn_main):
    proj, outside = tree
    (proj / "main.attn").write_text(f'use "{outside / "hw.attn"}"\n')
    status, items, _ = check_json(attn_main, "main.attn")
    assert status == 1 and codes(items) == ["E0103"]
    (proj / "hw.attn").write_text(HW)
    (proj / "main.attn").write_text(f'use "{proj / "hw.attn"}"\nkernel k() -> () on h {{\n}}\n')
    assert attn_main("check", "main.attn")[0] == 0


def test_a_symlinked_folder_that_leads_outside_is_refused(tree, attn_main):
    proj, outside = tree
    (proj / "vendor").symlink_to(outside, target_is_directory=True)
    (proj / "main.attn").write_text('use "vendor/hw.attn"\n')
    assert codes(check_json(attn_main, "main.attn")[1]) == ["E0103"]


def test_include_folder_by_flag_and_by_environment(tree, attn_main, monkeypatch):
    proj, outside = tree
    (proj / "main.attn").write_text('use "hw.attn"\nkernel k() -> () on h {\n}\n')
    status, items, _ = check_json(attn_main, "main.attn")
    assert status == 1 and codes(items) == ["E0101", "E0105"]
    assert attn_main("check", "-I", str(outside), "main.attn")[0] == 0
    monkeypatch.setenv("ATTN_PATH", os.pathsep.join(["", str(outside)]))
    assert attn_main("check", "main.attn")[0] == 0
    # An include folder allows what is inside it, not its neighbours.
    (outside.parent / "neighbour.attn").write_text(HW)
    (proj / "main.attn").write_text('use "../neighbour.attn"\n')
    assert codes(check_json(attn_main, "-I", str(outside), "main.attn")[1]) == ["E0103"]


def test_include_folder_through_the_python_api_and_run(tree, attn_main):
    proj, outside = tree
    (outside / "k.attn").write_text(HW + "kernel k(A: f32[4]) -> (B: f32[4]) on h spec B = A {\n"
                                    "  a = load A[0:4] -> m\n  store a -> B[0:4]\n}\n")
    (proj / "main.attn").write_text('use "k.attn"\n')
    with pytest.raises(AttnError) as exc:
        attnlang.run("main.attn")
    assert [d.code for d in exc.value.diagnostics] == ["E0101"]
    assert attnlang.run(attnlang.load_program("main.attn", include=[str(outside)])).verify["B"].ok
    assert attn_main("run", "-I", str(outside), "main.attn")[0] == 0


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_named_attn_does_not_hang(tree, tmp_path):
    proj, _ = tree
    os.mkfifo(proj / "lib.attn")
    (proj / "main.attn").write_text('use "lib.attn"\n')
    for target in ("main.attn", "lib.attn"):  # used, and named on the command line
        p = subprocess.run([sys.executable, "-m", "attnlang", "check", target], cwd=proj, capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == (1 if target == "main.attn" else 2), p.stderr
        assert ("E0112" if target == "main.attn" else "E0106") in p.stderr
        assert "not a regular file" in p.stderr


def test_a_symlink_to_dev_zero_is_not_read(tree, attn_main):
    proj, _ = tree
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this system")
    (proj / "zero.attn").symlink_to("/dev/zero")
    (proj / "main.attn").write_text('use "zero.attn"\n')
    assert codes(check_json(attn_main, "main.attn")[1]) == ["E0103"]
    # Allowed by an include folder, it is still a device, not a source file: refused, not read forever.
    status, items, _ = check_json(attn_main, "-I", "/dev", "main.attn")
    assert codes(items) == ["E0112"] and "not a regular file" in items[0]["message"]
    status, out, err = attn_main("check", "zero.attn")
    assert status == 2 and "E0106" in err


def test_a_used_file_that_is_not_attnlang_is_refused_without_its_text(tree, attn_main):
    proj, _ = tree
    (proj / "notes.attn").write_text(SECRET)
    (proj / "main.attn").write_text('use "notes.attn"\n')
    status, items, _ = check_json(attn_main, "main.attn")
    assert codes(items) == ["E0112"] and (items[0]["file"], items[0]["line"]) == ("main.attn", 1)
    _, _, err = attn_main("check", "main.attn")
    assert "root:x" not in json.dumps(items) + err and "secret-token" not in err
    assert "main.attn:1:1: error[E0112]" in err


def test_a_used_attnlang_file_with_a_mistake_still_shows_its_line(tree, attn_main):
    proj, _ = tree
    (proj / "lib.attn").write_text("# my hardware\nhardware h {\n  clock 1 GHz\n  memory m { bandwidth 8 B/cycle\n")
    (proj / "main.attn").write_text('use "lib.attn"\n')
    status, out, err = attn_main("check", "main.attn")
    assert status == 1 and "lib.attn:" in err and "E0002" in err


def test_a_binary_used_file_is_not_source(tree, attn_main):
    proj, _ = tree
    (proj / "blob.attn").write_bytes(b"\x7fELF\x00\x01secret")
    (proj / "main.attn").write_text('use "blob.attn"\n')
    status, items, _ = check_json(attn_main, "main.attn")
    assert codes(items) == ["E0112"] and "secret" not in json.dumps(items)


def test_a_used_file_over_the_limit_is_refused_by_the_bytes_read(tree, attn_main):
    from attnlang.files import MAX_SOURCE_BYTES

    proj, _ = tree
    (proj / "big.attn").write_text("# " + "x" * (MAX_SOURCE_BYTES + 10) + "\n")
    (proj / "main.attn").write_text('use "big.attn"\n')
    status, items, _ = check_json(attn_main, "main.attn")
    assert codes(items) == ["E0101"] and "too large" in items[0]["message"]


def test_a_cycle_through_a_symlinked_folder_ends(tree, attn_main):
    proj, _ = tree
    (proj / "d").symlink_to(proj, target_is_directory=True)
    (proj / "main.attn").write_text('use "d/main.attn"\n')
    status, items, _ = check_json(attn_main, "main.attn")
    assert codes(items) == ["E0102"]


def test_the_repl_reads_a_file_outside_the_working_folder_and_what_it_uses(tree, tmp_path):
    proj, outside = tree
    (outside / "k.attn").write_text('use "hw.attn"\nkernel k() -> () on h {\n}\n')
    p = subprocess.run([sys.executable, "-m", "attnlang", "repl", str(outside / "k.attn")], cwd=proj,
                       input="", capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "kernel k on h" in p.stdout, p.stdout + p.stderr


def test_documented(repo_root: Path):
    cli = (repo_root / "docs" / "cli.md").read_text(encoding="utf-8")
    assert "-I DIR" in cli and "ATTN_PATH" in cli
    diagnostics = (repo_root / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    assert "| E0103 | a `use`" in diagnostics and "| E0112 |" in diagnostics


def test_a_standard_library_name_too_long_for_a_file_is_not_found(tmp_path, attn_main):
    (tmp_path / "main.attn").write_text(f"use hw.{'a' * 60000}\n")
    status, out, err = attn_main("check", "--json", str(tmp_path / "main.attn"))
    assert status == 1 and codes(json.loads(out)) == ["E0101"] and "internal error" not in err
