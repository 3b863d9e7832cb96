"""The numbers are right: every example computes attention, and f16/bf16 rounding is exact.

Each example runs through `attnlang.api.run` at several sizes and tilings
with explicit inputs, and its output is compared with an independent NumPy
scaled-dot-product attention in float64. The rounding helpers are compared
with hand references built from the definition of round-to-nearest-even.
"""

from __future__ import annotations

import bisect
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlang.api import run
from attnlang.dtypes import round_to

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUNS = settings(max_examples=25, deadline=None)


# ---------------------------------------------------------------- the reference


def sdpa(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool = False) -> np.ndarray:
    """softmax(Q K^T / sqrt(d)) V in float64, over any leading batch axes."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if causal:
        n = s.shape[-1]
        s = np.where(np.triu(np.ones((n, n), bool), 1), -np.inf, s)
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    return p @ v


def f16_inputs(seed: int, shape: tuple, scale: float) -> dict[str, np.ndarray]:
    """Q, K, V that f16 holds exactly, so the reference sees the kernel's inputs."""
    rng = np.random.default_rng(seed)
    return {name: (rng.standard_normal(shape) * scale).astype(np.float16).astype(np.float32) for name in "QKV"}


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    """The f16 tolerance: max abs err <= 2e-2 * max|ref| + 1e-2."""
    assert got.shape == want.shape
    assert np.all(np.isfinite(got))
    err = float(np.max(np.abs(got.astype(np.float64) - want)))
    bound = 2e-2 * float(np.max(np.abs(want))) + 1e-2
    assert err <= bound, f"max abs err {err:.3g} > {bound:.3g}"


def test_reference_is_attention():
    """The reference itself: uniform scores average V; causal row 0 copies V[0]."""
    q = np.zeros((4, 2))
    k = np.arange(8.0).reshape(4, 2)
    v = np.arange(12.0).reshape(4, 3)
    assert np.allclose(sdpa(q, k, v), np.tile(v.mean(axis=0), (4, 1)))
    out = sdpa(q, k, v, causal=True)
    assert np.allclose(out[0], v[0])
    assert np.allclose(out[3], v.mean(axis=0))


# ---------------------------------------------------------------- the examples

tiles = st.sampled_from([16, 32, 64])
heads_dim = st.sampled_from([16, 32, 64])
seeds = st.integers(0, 2**16)
scales = st.sampled_from([0.5, 1.0, 3.0])


def sizes(tile: int, cap: int = 256) -> st.SearchStrategy[int]:
    """N from the small multiples of a tile, at most cap."""
    return st.integers(1, max(1, cap // tile)).map(lambda m: m * tile)


@RUNS
@given(data=st.data(), br=tiles, bc=tiles, d=heads_dim, seed=seeds, scale=scales)
def test_flash(data, br, bc, d, seed, scale):
    n = data.draw(sizes(max(br, bc)), label="N")
    x = f16_inputs(seed, (n, d), scale)
    r = run(str(EXAMPLES / "flash.attn"), defines={"Br": br, "Bc": bc}, inputs=x)
    assert r.defines["N"] == n and r.defines["d"] == d
    assert_close(r.outputs["O"], sdpa(x["Q"], x["K"], x["V"]))
    assert r.verify["O"].ok


@RUNS
@given(data=st.data(), br=tiles, bc=st.sampled_from([16, 32, 64, 128]), d=heads_dim, seed=seeds, scale=scales)
def test_flat(data, br, bc, d, seed, scale):
    n = data.draw(sizes(max(br, bc)), label="N")
    x = f16_inputs(seed, (n, d), scale)
    r = run(str(EXAMPLES / "flat.attn"), defines={"Br": br, "Bc": bc}, inputs=x)
    assert_close(r.outputs["O"], sdpa(x["Q"], x["K"], x["V"]))


@RUNS
@given(data=st.data(), t=tiles, d=heads_dim, seed=seeds, scale=scales)
def test_naive(data, t, d, seed, scale):
    n = data.draw(sizes(t), label="N")
    x = f16_inputs(seed, (n, d), scale)
    r = run(str(EXAMPLES / "naive.attn"), defines={"T": t}, inputs=x)
    assert_close(r.outputs["O"], sdpa(x["Q"], x["K"], x["V"]))
    # Its intermediates are outputs too: S = QK^T/sqrt(d), P = softmax(S).
    s = x["Q"].astype(np.float64) @ x["K"].T.astype(np.float64) / np.sqrt(d)
    assert_close(r.outputs["S"], s)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    assert_close(r.outputs["P"], p / p.sum(axis=1, keepdims=True))


@RUNS
@given(data=st.data(), b=tiles, d=heads_dim, seed=seeds, scale=scales)
def test_flash_causal(data, b, d, seed, scale):
    n = data.draw(sizes(b), label="N")
    x = f16_inputs(seed, (n, d), scale)
    r = run(str(EXAMPLES / "flash_causal.attn"), defines={"B": b}, inputs=x)
    assert_close(r.outputs["O"], sdpa(x["Q"], x["K"], x["V"], causal=True))
    # Row 0 attends only to key 0: it is V[0], to f16 precision.
    assert np.allclose(r.outputs["O"][0], x["V"][0], rtol=1e-2, atol=1e-2)


@RUNS
@given(data=st.data(), batch=st.integers(1, 2), heads=st.integers(1, 5), br=tiles, bc=tiles,
       d=st.sampled_from([16, 32]), seed=seeds)
def test_mha(data, batch, heads, br, bc, d, seed):
    n = data.draw(sizes(max(br, bc), cap=128), label="N")
    x = f16_inputs(seed, (batch, heads, n, d), 1.0)
    r = run(str(EXAMPLES / "mha.attn"), defines={"Br": br, "Bc": bc}, inputs=x)
    assert r.defines["B"] == batch and r.defines["H"] == heads
    assert_close(r.outputs["O"], sdpa(x["Q"], x["K"], x["V"]))


def test_seeded_inputs_are_the_spec_inputs():
    """Without `inputs=`, the run draws f16 inputs from the seed and still computes attention."""
    a = run(str(EXAMPLES / "flash.attn"), defines={"N": 64, "d": 16, "Br": 16, "Bc": 32}, seed=3)
    b = run(str(EXAMPLES / "flash.attn"), defines={"N": 64, "d": 16, "Br": 16, "Bc": 32}, seed=3)
    assert np.array_equal(a.outputs["O"], b.outputs["O"])
    assert a.verify["O"].ok


# ---------------------------------------------------------------- rounding


def _f32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def _bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def _nearest_even(x: float, below: tuple[Fraction, int], above: tuple[Fraction, int]) -> int:
    """The bit pattern of the nearer of two neighbours of x; on a tie the one with an even last bit."""
    fx = Fraction(x)
    dlo, dhi = fx - below[0], above[0] - fx
    if dlo < dhi:
        return below[1]
    if dhi < dlo:
        return above[1]
    return below[1] if below[1] % 2 == 0 else above[1]


def bf16_reference(x: float) -> float:
    """bf16 by definition: the nearer of the two bf16 values around x, ties to even mantissa."""
    if np.isnan(x) or np.isinf(x):
        return x
    bits = _bits(x)
    sign = bits & 0x80000000
    mag = bits & 0x7FFFFFFF
    lo = mag >> 16  # bf16 pattern (without sign) truncated toward zero
    hi = lo + 1  # the next bf16 magnitude; 0x7F80 is infinity, which rounding treats as 2**128
    val = lambda p: Fraction(2) ** 128 if p == 0x7F80 else Fraction(_f32(p << 16))
    chosen = _nearest_even(abs(x), (val(lo), lo), (val(hi), hi))
    return _f32(sign | (chosen << 16))


# Every non-negative half by value, with its bit pattern; infinity (0x7C00) stands at 2**16, the
# next power of two, so that everything from 65504 + half an ulp (65520) up rounds to it.
_F16 = [(Fraction(float(v)), p) for p, v in enumerate(np.arange(0, 0x7C00, dtype=np.uint16).view(np.float16))]
_F16.append((Fraction(2**16), 0x7C00))


def f16_reference(x: float) -> float:
    """f16 by definition: the nearer of the two halves around x, ties to even; overflow to infinity."""
    if np.isnan(x) or np.isinf(x):
        return x
    fx = abs(Fraction(x))
    if fx >= _F16[-1][0]:
        return float(np.copysign(np.inf, x))
    i = bisect.bisect_left(_F16, (fx, -1))
    pattern = _F16[i][1] if _F16[i][0] == fx else _nearest_even(abs(x), _F16[i - 1], _F16[i])
    return float(np.copysign(float(np.uint16(pattern).view(np.float16)), x))


def _edge_values_bf16() -> list[float]:
    patterns = [
        0x3F808000,  # 1 + 2^-8 exactly halfway, last kept bit 0: stays 1.0
        0x3F818000,  # halfway with last kept bit 1: rounds up
        0x3F808001, 0x3F807FFF,  # just above / below a tie
        0x00000001, 0x00008000, 0x00018000, 0x007FFFFF,  # f32 subnormals, ties among them
        0x00800000, 0x7F7F7FFF, 0x7F7F8000, 0x7F7FFFFF,  # smallest normal; near and past bf16 max
        0x80000000, 0xBF818000, 0xFF7FFFFF,  # -0, negative tie, most negative float32
        0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFC12345,  # inf, -inf, NaNs
    ]
    return [_f32(p) for p in patterns]


def _edge_values_f16() -> list[float]:
    tiny = 2.0**-24  # the smallest f16 subnormal
    return [
        1 + 2**-11, 1 + 3 * 2**-11, 1 + 2**-11 + 2**-20,  # ties at 1 (to even: down, up) and just past
        0.5 * tiny, 1.5 * tiny, 2.5 * tiny, 0.49 * tiny, tiny * 1023.5,  # subnormal ties and underflow
        2.0**-14, 2.0**-14 - 0.5 * tiny,  # smallest normal and the tie just below it
        65504.0, 65519.99, 65520.0, 70000.0, -65520.0,  # max, below/at the overflow tie, past it
        0.0, -0.0, -(1 + 3 * 2**-11), 3.14159,
        float("inf"), float("-inf"), float("nan"),
    ]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit, except that any NaN equals any NaN."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    nan = np.isnan(a) & np.isnan(b)
    return bool(np.all(nan | (a.view(np.uint32) == b.view(np.uint32))))


def _random_f32(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    magnitudes = 10.0 ** rng.integers(-9, 6, 2000)  # f16 subnormals up to past the f16 maximum
    return np.concatenate([
        (rng.standard_normal(2000) * magnitudes).astype(np.float32),
        rng.integers(0, 2**32, 2000, dtype=np.uint64).astype(np.uint32).view(np.float32),  # any pattern
    ])


@pytest.mark.parametrize("seed", [0, 1])
def test_f16_rounding_matches_numpy_and_the_definition(seed):
    x = np.concatenate([_random_f32(seed), np.array(_edge_values_f16(), np.float32)])
    got = round_to(x, "f16")
    assert got.dtype == np.float32
    with np.errstate(over="ignore"):
        assert _same(got, x.astype(np.float16).astype(np.float32))
    assert _same(got, np.array([f16_reference(float(v)) for v in x], np.float32))


@pytest.mark.parametrize("seed", [0, 1])
def test_bf16_rounding_matches_the_definition(seed):
    x = np.concatenate([_random_f32(seed), np.array(_edge_values_bf16(), np.float32)])
    got = round_to(x, "bf16")
    assert got.dtype == np.float32
    want = np.array([bf16_reference(float(v)) for v in x], np.float32)
    assert _same(got, want)
    # every result is a bf16: the low 16 bits are zero (NaNs aside)
    finite = ~np.isnan(got)
    assert np.all(got[finite].view(np.uint32) & 0xFFFF == 0)


def test_rounding_edge_cases_by_hand():
    """A few cases written out, so a reader can see what 'exact' means."""
    half_ulp = 2.0**-8  # bf16 keeps 7 mantissa bits: the ulp at 1 is 2^-7
    assert round_to(np.float32(1 + half_ulp), "bf16") == 1.0  # tie, to even
    assert round_to(np.float32(1 + 3 * half_ulp), "bf16") == 1 + 2 * 2**-7  # tie, to even (up)
    assert round_to(np.float32(1 + 2**-11), "f16") == 1.0  # f16: ulp 2^-10 at 1
    assert round_to(np.float32(1 + 3 * 2**-11), "f16") == 1 + 2**-9
    assert round_to(np.float32(65520.0), "f16") == np.inf
    assert round_to(np.float32(3.4e38), "bf16") == np.inf  # past bf16 max + half an ulp
    assert np.signbit(round_to(np.float32(-0.0), "bf16"))
    assert np.isnan(round_to(np.float32("nan"), "bf16"))
    assert round_to(np.float32(2.0**-25), "f16") == 0.0  # half the smallest subnormal: tie to zero
    assert round_to(np.float32(3 * 2.0**-25), "f16") == 2.0**-23  # 1.5 subnormals: tie to 2
    assert round_to(np.float32(0.1), "f32") == np.float32(0.1)
