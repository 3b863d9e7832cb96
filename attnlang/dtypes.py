"""Dtypes: exact rounding to each, promotion, the NumPy type that holds each; one home for every engine."""

from __future__ import annotations

import numpy as np

from . import ops

FLOAT_DTYPES = ("f64", "f32", "f16", "bf16")
_NUMPY = {"f64": np.float64, "f32": np.float32, "f16": np.float16, "i32": np.int32, "i8": np.int8}


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """Round float32 data to dtype exactly and return it as float32 (f64 stays f64).

    f16 uses NumPy's IEEE half conversion (round to nearest even); bf16 keeps
    the top 16 bits of the float32 with round to nearest even; NaN stays NaN.
    """
    if dtype == "f64":
        return np.asarray(x, dtype=np.float64)
    x = np.asarray(x, dtype=np.float32)
    if dtype == "f32":
        return x
    if dtype == "f16":
        with np.errstate(over="ignore"):
            return x.astype(np.float16).astype(np.float32)
    if dtype == "bf16":
        bits = x.view(np.uint32).astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        out = rounded.astype(np.uint32).view(np.float32)
        return np.where(np.isnan(x), x, out)
    if dtype in ("i32", "i8"):
        return _to_integer(np.asarray(x, dtype=np.float64), dtype).astype(np.float32)
    raise ValueError(f"unknown dtype {dtype}")


#: The range of each integer dtype: a value is truncated toward zero and saturates at these, NaN is 0
#: (NumPy's own cast leaves out-of-range values undefined, and the JIT must give the same numbers).
INT_RANGE = {"i32": (-2**31, 2**31 - 1), "i8": (-128, 127)}


def _to_integer(x: np.ndarray, dtype: str) -> np.ndarray:
    lo, hi = INT_RANGE[dtype]
    return np.clip(np.nan_to_num(np.trunc(x), nan=0.0, posinf=hi, neginf=lo), lo, hi)




def promote(a: str | None, b: str | None) -> str:
    """The dtype of an operation on a and b (ops.promote); f32 when both are plain numbers."""
    return ops.promote(a, b) or "f32"


def compute_dtype(dtype: str):
    """The NumPy type arithmetic runs in for a result of this dtype."""
    return np.float64 if dtype == "f64" else np.float32


def numpy_dtype(dtype: str):
    """The NumPy type that holds a tensor of this dtype exactly (for --save and --input)."""
    if dtype == "bf16":
        return np.float32
    return _NUMPY[dtype]
