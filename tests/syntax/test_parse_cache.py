"""The disk cache of parsed files (syntax/cache.py) and what a cached `attn run` leaves unimported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from attnlang.syntax import cache
from attnlang.syntax.parser import parse

ROOT = Path(__file__).resolve().parents[2]
FLASH = (ROOT / "examples" / "flash.attn").read_text()


def entries(folder: Path) -> list[Path]:
    return sorted((folder / "attnlang" / "parsed").glob("*.pickle"))


def test_a_cached_parse_is_the_parse(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = cache.cached_parse(FLASH, "flash.attn")
    assert len(entries(tmp_path)) == 1
    again = cache.cached_parse(FLASH, "flash.attn")
    assert again == first == parse(FLASH, "flash.attn")
    broken = FLASH.replace("kernel flash", "kernel flash(", 1)
    module, diags = cache.cached_parse(broken, "flash.attn")  # another text: parsed afresh, errors kept
    assert (module, diags) == parse(broken, "flash.attn") and diags
    assert cache.cached_parse(FLASH, "other.attn")[0].file == "other.attn"  # the name is part of the key
    assert len(entries(tmp_path)) == 3


def test_a_corrupt_entry_is_parsed_afresh(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache.cached_parse(FLASH, "flash.attn")
    (path,) = entries(tmp_path)
    path.write_bytes(b"not a pickle")
    assert cache.cached_parse(FLASH, "flash.attn") == parse(FLASH, "flash.attn")
    assert cache.cached_parse(FLASH, "flash.attn") == parse(FLASH, "flash.attn")


def test_an_unwritable_cache_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file where the folder would go
    assert cache.cached_parse(FLASH, "flash.attn") == parse(FLASH, "flash.attn")


def test_a_cached_jit_run_imports_neither_lark_nor_the_lowering(tmp_path):
    code = ("import sys, attnlang.api as a\n"
            "r = a.run('examples/flash.attn', defines={'N': 128}, engine='jit')\n"
            "assert r.ok and r.fallback is None\n"
            "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('lark')}),"
            " 'attnlang.jit.lower' in sys.modules)\n")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)
    warm = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True,
                          text=True)
    assert warm.stdout.split() == ["[]", "False"]


def test_a_command_imports_only_what_it_runs(tmp_path):
    """`attn check` and a cached `attn run --engine jit` leave the other commands' modules (explore's
    model, schedule, the studies) and the interpreter's engine unimported: they are start-up time
    (docs/performance.md, "`attn run` as a process")."""
    others = ("attnlang.model", "attnlang.studies", "attnlang.interp.engine",
              "attnlang.interp.streams", "attnlang.repl", "attnlang.lsp", "lark")
    code = ("import sys, contextlib, io\n"
            "from attnlang.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(sys.argv[1:]) == 0\n"
            f"print(sorted(m for m in sys.modules if m.startswith({others!r})))\n")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    run = ["run", "examples/flash.attn", "-D", "N=128", "--engine", "jit"]
    subprocess.run([sys.executable, "-c", code, *run], cwd=ROOT, env=env, check=True, capture_output=True)
    for args in (run, ["check", "examples/flash.attn"]):
        warm = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, check=True,
                              capture_output=True, text=True)
        assert warm.stdout.strip() == "[]", (args, warm.stdout)
