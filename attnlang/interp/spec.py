"""Specs: evaluate a kernel's mathematical definition with NumPy (no hardware,
float64) and compare the dataflow's outputs against it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..diagnostics import AttnError, Diagnostic, error
from ..limits import integer_problem
from ..syntax import ast

#: (relative, absolute) tolerance per output dtype; the absolute part is scaled
#: by the largest magnitude in the reference.
TOLERANCE: dict[str, tuple[float, float]] = {
    "f64": (1e-9, 1e-9), "f32": (1e-4, 1e-5), "f16": (2e-2, 1e-2), "bf16": (8e-2, 4e-2),
    "i32": (0.0, 0.5), "i8": (0.0, 0.5),
}


@dataclass(frozen=True)
class Verification:
    output: str
    max_abs_err: float
    max_rel_err: float
    ok: bool
    worst_index: tuple
    got: float
    want: float

    def to_json(self) -> dict:
        return {"max_abs_err": self.max_abs_err, "max_rel_err": self.max_rel_err, "ok": self.ok}


def evaluate_spec(expr: ast.Expr, tensors: dict[str, np.ndarray], env: dict) -> np.ndarray:
    """The spec's value in float64."""
    return np.asarray(_ev(expr, tensors, env), dtype=np.float64)


def _fail(message: str, e) -> AttnError:
    return AttnError(error("E1020", message, e.span))


def _ev(e, t, env):
    if isinstance(e, ast.Num):
        return float(e.value)
    if isinstance(e, ast.QuantityLit):
        return e.quantity.value
    if isinstance(e, ast.Name):
        if e.id in t:
            return t[e.id].astype(np.float64)
        if e.id in env and not isinstance(env[e.id], str):
            return float(env[e.id])
        if e.id == "inf":
            return math.inf
        raise _fail(f"the spec names '{e.id}', which is not an input, a dimension or a param", e)
    if isinstance(e, ast.Unary):
        if e.op == "-":
            return -_ev(e.operand, t, env)
        raise _fail(f"'{e.op}' is not allowed in a spec", e)
    if isinstance(e, ast.Binary):
        a, b = _ev(e.left, t, env), _ev(e.right, t, env)
        fns = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "@": np.matmul, "**": np.power,
               "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
               "!=": np.not_equal}
        if e.op not in fns:
            raise _fail(f"'{e.op}' is not allowed in a spec", e)
        try:
            with np.errstate(all="ignore"):
                return np.asarray(fns[e.op](a, b), dtype=np.float64)  # a comparison is 0 or 1, as in a kernel
        except ValueError:
            raise _fail(f"the spec's shapes do not fit for '{e.op}': {np.shape(a)} and {np.shape(b)}", e) from None
    if isinstance(e, ast.Attr) and e.name == "T":
        x = np.asarray(_ev(e.base, t, env))
        return np.swapaxes(x, -1, -2) if x.ndim >= 2 else x
    if isinstance(e, ast.Index):
        raise _fail("indexing is not allowed in a spec; write it with whole tensors", e)
    if isinstance(e, ast.Call):
        return _call(e, t, env)
    raise _fail("this is not allowed in a spec", e)


def _call(e: ast.Call, t, env):
    f = e.func
    if f == "causal":
        x = np.asarray(_ev(e.args[0], t, env))
        i = _offset(e.args[1], t, env) if len(e.args) > 1 else 0
        j = _offset(e.args[2], t, env) if len(e.args) > 2 else 0
        rows = np.arange(x.shape[-2])[:, None]
        cols = np.arange(x.shape[-1])[None, :]
        return np.where(j + cols > i + rows, -np.inf, x)
    args = [_ev(a, t, env) for a in e.args]
    with np.errstate(all="ignore"):
        if f == "softmax":
            x = np.asarray(args[0])
            if x.size == 0:  # no rows (N = 0) normalize to nothing; rows of nothing have no softmax
                if x.ndim == 0 or np.prod(x.shape[:-1]) > 0:
                    raise _fail(f"softmax() in the spec is taken over empty rows (shape {list(x.shape)})", e)
                return x
            ex = np.exp(x - np.max(x, axis=-1, keepdims=True))
            return ex / np.sum(ex, axis=-1, keepdims=True)
        simple = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs}
        if f in simple:
            return simple[f](args[0])
        if f in ("max", "min"):
            if len(args) == 2:
                return (np.maximum if f == "max" else np.minimum)(args[0], args[1])
            _need_elements(f, args[0], e)
            return (np.max if f == "max" else np.min)(args[0])
        rows = {"rowmax": np.max, "rowmin": np.min, "rowsum": np.sum}
        if f in rows:
            if f != "rowsum":
                _need_elements(f, args[0], e)
            return rows[f](args[0], axis=-1)
        if f in ("sum", "mean"):
            return (np.sum if f == "sum" else np.mean)(args[0])
        if f == "where":
            return np.where(np.asarray(args[0]).astype(bool), args[1], args[2])
        if f in ("dot",):
            return np.matmul(args[0], args[1])
        if f == "transpose":
            return np.swapaxes(args[0], -1, -2)
    raise _fail(f"{f}() is not allowed in a spec", e)


def _offset(e, t, env) -> int:
    """A causal() offset: a whole number in range (NumPy's int64 would wrap a larger one)."""
    v = _ev(e, t, env)
    if np.ndim(v) != 0:
        raise _fail("a causal() offset in the spec must be a number, not a tensor", e)
    v = float(v)
    problem = integer_problem(v)
    if problem:
        raise _fail(f"a causal() offset in the spec is out of range: {problem}", e)
    if not v.is_integer():
        raise _fail(f"a causal() offset in the spec must be a whole number, not {v}", e)
    return int(v)


def _need_elements(f: str, x, e) -> None:
    """max and min have no value over nothing: say so instead of failing inside NumPy."""
    if np.size(x) == 0:
        raise _fail(f"{f}() in the spec is taken over an empty tensor (shape {list(np.shape(x))})", e)


def verify(name: str, got: np.ndarray, want: np.ndarray, dtype: str) -> Verification:
    """Compare an output with its spec at the tolerance of the output's dtype."""
    rtol, atol = TOLERANCE.get(dtype, TOLERANCE["f32"])
    got = np.asarray(got, dtype=np.float64)
    want = np.broadcast_to(np.asarray(want, dtype=np.float64), got.shape)
    finite = np.isfinite(want)
    scale = float(np.max(np.abs(want[finite]))) if finite.any() else 1.0
    scale = max(scale, 1e-30)
    both_same_inf = (got == want)
    diff = np.where(both_same_inf, 0.0, np.abs(got - want))
    diff = np.where(np.isnan(diff), np.inf, diff)
    if got.size == 0:
        return Verification(name, 0.0, 0.0, True, (), 0.0, 0.0)
    worst = np.unravel_index(int(np.argmax(diff)), got.shape)
    max_abs = float(diff[worst])
    bound = atol * max(scale, 1.0) + rtol * np.abs(np.where(finite, want, 0.0))
    ok = bool(np.all(diff <= bound))
    return Verification(name, max_abs, max_abs / scale, ok, tuple(int(i) for i in worst),
                        float(got[worst]), float(want[worst]))


def mismatch_diagnostic(v: Verification, spec: ast.Spec) -> Diagnostic:
    idx = ", ".join(str(i) for i in v.worst_index)
    return error("E1021", f"output {v.output} does not match its spec: at {v.output}[{idx}] the kernel gives "
                          f"{v.got:.6g} but the spec gives {v.want:.6g} (max abs error {v.max_abs_err:.3g}, "
                          f"relative {v.max_rel_err:.3g})", spec.span)
