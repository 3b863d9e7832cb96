"""Random mutations of valid programs never crash `attnlang.api.run`: every
failure is a diagnostic (AttnError) or a usage error, never a Python exception."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnlang.api import run
from attnlang.diagnostics import AttnError, UsageError

ROOT = Path(__file__).resolve().parents[1]
# Small, quick examples (the streaming ones take seconds per run).
EXAMPLES = {p.name: p.read_text() for p in sorted((ROOT / "examples").glob("*.attn"))
            if not p.name.startswith("stream") and p.name != "mmee.attn"}
SMALL = {"N": 128, "d": 16}

_TOKEN = re.compile(r"\d+|[A-Za-z_]\w*|->|\.\.|[-+*/@\[\]():,{}=<>]")
REPLACEMENTS = ["0", "1", "3", "16", "17", "64", "N", "d", "i", "j", "q", "k", "s", "acc", "sram", "dram", "pe",
                "vec", "+", "-", "*", "/", "@", ":", ",", "(", ")", "[", "]", "None", "-inf", ".T", "exp",
                "rowmax", "zeros([4])", "discard", "store", "load", "i+1"]


def _defines(src: str) -> dict:
    dims = set(re.findall(r"\b(N|d|B|H)\b", src))
    out = {k: v for k, v in SMALL.items() if k in dims}
    if "B" in dims and "H" in dims:
        out.update({"B": 1, "H": 2})
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(EXAMPLES)), data=st.data())
def test_mutated_programs_fail_only_with_diagnostics(name, data):
    src = EXAMPLES[name]
    tokens = list(_TOKEN.finditer(src))
    m = tokens[data.draw(st.integers(0, len(tokens) - 1), label="token")]
    new = data.draw(st.sampled_from(REPLACEMENTS), label="replacement")
    mutated = src[:m.start()] + new + src[m.end():]
    try:
        run(mutated, defines=_defines(mutated), timeout=20)
    except (AttnError, UsageError):
        pass


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_run_clean_at_small_sizes(name):
    src = EXAMPLES[name]
    r = run(src, defines=_defines(src))
    assert r.ok
