"""The wheel carries the grammar and the standard library: the parser loads
its grammar with importlib.resources, and `use hw.edge` reads the stdlib the
same way, so an installed attnlang without them would not parse a thing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Builds a wheel (a few seconds) but is not marked slow: "slow" is deselected by
# default (pyproject.toml), and a wheel without its data files must fail CI.


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    # Build from a copy: an in-tree build leaves build/ and egg-info behind.
    src = tmp_path_factory.mktemp("src")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "attnlang", src / "attnlang", ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        if "No module named 'setuptools'" in output:
            pytest.skip("cannot build a wheel without build isolation: setuptools is not installed")
        if "No module named 'wheel'" in output or "invalid command 'bdist_wheel'" in output:
            pytest.skip("cannot build a wheel without build isolation: the 'wheel' package is not installed")
        pytest.fail(f"pip wheel failed:\n{output}")
    (path,) = out.glob("attnlang-*.whl")
    return path


def test_wheel_contains_the_grammar_and_the_stdlib(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "attnlang/grammar/attn.lark" in names
    assert "attnlang/stdlib/hw/edge.attn" in names
    shipped = {p.relative_to(ROOT).as_posix() for p in ROOT.glob("attnlang/stdlib/**/*.attn")}
    assert shipped <= names, shipped - names


def test_wheel_has_the_attn_command(wheel):
    with zipfile.ZipFile(wheel) as z:
        entry_points = next(n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt"))
        text = z.read(entry_points).decode()
    assert "attn = attnlang.cli:entry" in text
