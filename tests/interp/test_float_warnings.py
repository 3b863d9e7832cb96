"""Overflow and NaN in a run's numbers are handled where they arise, and no NumPy RuntimeWarning reaches the
user's stderr: each case here once printed one (the fuzz campaign saw them)."""

from __future__ import annotations

import math

import pytest

import attnlang

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

KERNEL = """\
use hw.edge
kernel k(Q: f32[N, d], K: f32[N, d], V: f32[N, d]) -> (O: f32[N, d])
  on edge
  spec O = SPEC
{
  dim N = 16, d = 8
  for i in 0 .. N by 16 {
    q = load Q[i : i+16, :] -> sram
    store STORED -> O[i : i+16, :]
  }
}
"""


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_an_output_and_its_spec_at_the_same_infinity_agree(engine):
    """inf - inf in the comparison was an invalid-value warning; the same infinity is no error."""
    src = KERNEL.replace("SPEC", "Q * 1e300 * 1e300").replace("STORED", "q * 1e30 * 1e30")
    r = attnlang.run(src, engine=engine)
    v = r.verify["O"]
    assert v.ok and v.max_abs_err == 0.0


def test_a_spec_whose_product_overflows_is_a_mismatch_not_a_warning():
    """A matrix product of the spec past float64 (inf, then NaN) printed an overflow warning; the
    comparison says where the output differs."""
    src = KERNEL.replace("SPEC", "(Q @ K.T * 1e308) @ V").replace("STORED", "q")
    v = attnlang.run(src).verify["O"]
    assert not v.ok and math.isnan(v.want) and v.max_abs_err == math.inf


def test_a_step_that_is_not_a_whole_number_is_an_error_without_a_warning():
    """A param of 1e-308 used as a loop step overflowed (hi - lo) / step in the iteration space."""
    src = KERNEL.replace("SPEC", "Q").replace("STORED", "q").replace("by 16", "by Br").replace(
        "dim N = 16, d = 8", "dim N = 16, d = 8\n  param Br = 1e-308")
    codes = {d.code for d in attnlang.check_program(src) if d.severity == "error"}
    assert "E0606" in codes
