"""Symbolic dimensions, evaluation over arrays, and the shapes a bound kernel carries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attnlang import bind_kernel
from attnlang.check.dims import Dim, Unknown, dim_of, same, show, veval
from attnlang.syntax.parser import parse_expression


def d(text: str) -> Dim:
    return dim_of(parse_expression(text))


@pytest.mark.parametrize("hi, lo, extent", [
    ("i+Br", "i", "Br"), ("i + 2*Br", "i + Br", "Br"), ("j+jj+Bv", "j+jj", "Bv"), ("N", "0", "N"),
    ("i+Br", "i+Br", "0"), ("2*(i+1)", "2*i", "2"), ("N // Br", "0", "(N//Br)"), ("Br - i", "Bc", "Br - i - Bc"),
])
def test_slice_extents_simplify_as_written(hi, lo, extent):
    assert str(d(hi) - d(lo)) == extent


def test_dims_compare_by_value_at_the_params():
    env = {"Br": 64, "Bc": 64, "d": 64}
    assert same(d("Br"), d("Bc"), env) is True
    assert same(d("Br"), d("Bc"), {**env, "Bc": 32}) is False
    assert same(d("Br"), d("i"), env) is None  # i has no value here: undecided, not different
    assert same(d("i + Br - i"), d("Br"), {}) is True


def test_show_keeps_the_parentheses_it_needs():
    for text in ("(a + b) * c", "a - (b - c)", "a / (b * c)", "-(a + b)", "q @ k.T / sqrt(d)", "x[:, None]",
                 "s[:, j : j+Bc]", "2 ** (n + 1)"):
        once = show(parse_expression(text))
        assert show(parse_expression(once)) == once
        assert veval(parse_expression(once), _NUMS) == pytest.approx(veval(parse_expression(text), _NUMS)) \
            if "[" not in text and "@" not in text else True


_NUMS = {"a": 3, "b": 5, "c": 7, "n": 2, "d": 64}


def test_veval_over_arrays_of_candidates():
    env = {"Br": np.array([16, 32, 64]), "N": 1024, "order": np.array(["q", "kv", "q"])}
    assert veval(parse_expression("N % Br == 0 and Br <= 32"), env).tolist() == [True, True, False]
    assert veval(parse_expression("order == q"), {**env, "q": "q"}).tolist() == [True, False, True]
    assert veval(parse_expression("min(Br, 20) * 2"), env).tolist() == [32, 40, 40]
    with pytest.raises(Unknown):
        veval(parse_expression("Bc + 1"), env)
    with pytest.raises(Unknown):
        veval(parse_expression("N / 0"), env)


def test_the_bound_kernel_carries_the_shape_of_every_value_of_flash():
    """The shapes a bound kernel carries, against the kernel's text read by hand (Br = 32, Bc = 128, d = 64)."""
    bound = bind_kernel(str(Path(__file__).resolve().parents[2] / "examples" / "flash.attn"), "flash",
                        {"Br": 32, "Bc": 128})
    types = {(name, span.line): v for (name, span), v in bound.shapes.items()}
    assert types[("q", 14)] == ((32, 64), "f16", "sram")
    assert types[("s", 21)] == ((32, 128), "f16", "sram")
    assert types[("p", 23)] == ((32, 128), "f32", "sram")
    assert types[("m_new", 22)] == ((32,), "f32", "sram")
