"""The README's examples of output and errors are what `attn` prints: each `console` block's
`$ attn ...` commands are run from the checkout's root and their output compared line by line."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def console_examples() -> list[tuple[str, str]]:
    """(command, expected output) for every `$ attn ...` line of the README's console blocks."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for chunk in re.split(r"^(?=\$ )", block, flags=re.M):
            if chunk.startswith("$ "):
                command, _, output = chunk.partition("\n")
                out.append((command[2:], output))
    return out


EXAMPLES = console_examples()


def test_the_readme_has_console_examples():
    assert len(EXAMPLES) >= 2
    assert any("mistakes/bad.attn" in command for command, _ in EXAMPLES)


@pytest.mark.parametrize("command, expected", EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_a_readme_example_prints_what_the_readme_shows(command, expected):
    argv = shlex.split(command)
    assert argv[0] == "attn"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "attnlang", *argv[1:]], cwd=ROOT, env=env, timeout=120,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout.rstrip("\n") == expected.rstrip("\n")
