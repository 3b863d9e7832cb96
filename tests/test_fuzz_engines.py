"""A fast sample of the fuzz campaign (bench/fuzz_campaign.py runs the long one): mutants of the shipped
programs, token-level and semantic (bench/fuzzing.py), through the checker and the interpreter, and a few
through the JIT as well. No mutant may end in an internal error, and where both engines run a mutant they
must agree: the same cycles, energy and verification, the same outputs. HYPOTHESIS_PROFILE=ci
derandomizes the draws (tests/conftest.py)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import fuzzing  # noqa: E402

FAST = settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A mutant's `use "file"` resolves in an empty folder; compiled code goes to a private cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20000))  # as `attn` sets it
    yield
    sys.setrecursionlimit(old)


def describe(name: str, applied: list[str], text: str, o: fuzzing.Outcome) -> str:
    return f"{name} {applied}: check {o.check}, {o.engines}\n{o.detail[-3000:]}\n--- mutant ---\n{text[:3000]}"


@FAST
@given(seed=st.integers(0, 2**32 - 1))
def test_mutants_through_the_checker_and_the_interpreter_end_in_no_internal_error(seed):
    name, applied, text = fuzzing.mutant(random.Random(seed))
    o = fuzzing.outcome(text, engines=("interp",), timeout=10)
    assert not o.internal, describe(name, applied, text, o)


@settings(max_examples=4, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1),
       mutator=st.sampled_from([fuzzing.extreme_number, fuzzing.dtype, fuzzing.non_divisor, fuzzing.annotation]),
       name=st.sampled_from(["flash.attn", "naive.attn", "mha.attn"]))
def test_semantic_mutants_agree_between_the_interpreter_and_the_jit(seed, mutator, name):
    rng = random.Random(seed)
    text = mutator(fuzzing.EXAMPLES[name], rng)
    o = fuzzing.outcome(text, timeout=60)
    assert not o.internal, describe(name, [mutator.__name__], text, o)
    assert o.agree is not False, describe(name, [mutator.__name__], text, o)


@pytest.mark.parametrize("mutator", fuzzing.MUTATORS, ids=lambda f: f.__name__)
def test_every_mutator_changes_every_shipped_program(mutator):
    for name, text in sorted(fuzzing.EXAMPLES.items()):
        changed = [mutator(text, random.Random(seed)) != text for seed in range(5)]
        assert any(changed), (mutator.__name__, name)


REGRESSIONS = sorted((ROOT / "tests" / "fuzz_regressions").glob("*.attn"))


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: p.stem)
def test_mutants_the_campaign_found_end_in_no_internal_error(path):
    """Mutants that once ended in an internal error or printed a NumPy warning (bench/fuzz_campaign.py
    --save-failures wrote them; the campaign counts a RuntimeWarning as an internal error)."""
    o = fuzzing.outcome(path.read_text(encoding="utf-8"), engines=("interp",), timeout=20)
    assert not o.internal, o.detail
