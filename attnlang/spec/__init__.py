"""Specs: evaluate a kernel's mathematical definition with NumPy (no hardware,
float64) and compare the dataflow's outputs against it, whichever engine ran it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..blas import threads_for_free_cores
from ..diagnostics import AttnError, Diagnostic, UsageError, error
from ..syntax import ast
from ..syntax.nodes import node
from .evaluate import SpecEval, auto_mode

#: What `attn run` and `api.run` check when not told (docs/cli.md, "Verification"): "auto", which
#: evaluate.auto_mode resolves per output.
DEFAULT_VERIFY = "auto"

#: (relative, absolute) tolerance per output dtype; the absolute part is scaled
#: by the largest magnitude in the reference.
TOLERANCE: dict[str, tuple[float, float]] = {
    "f64": (1e-9, 1e-9), "f32": (1e-4, 1e-5), "f16": (2e-2, 1e-2), "bf16": (8e-2, 4e-2),
    "i32": (0.0, 0.5), "i8": (0.0, 0.5),
}


@node
class Verification:
    output: str
    max_abs_err: float
    max_rel_err: float
    ok: bool
    worst_index: tuple
    got: float
    want: float
    mode: str = "full"  # "full": every element; "rows": the elements of `rows` only
    rows: tuple | None = None

    def to_json(self) -> dict:
        out = {"max_abs_err": self.max_abs_err, "max_rel_err": self.max_rel_err, "ok": self.ok}
        if self.rows is not None:
            out["rows"] = list(self.rows)
        return out


def evaluate_spec(expr: ast.Expr, tensors: dict[str, np.ndarray], env: dict) -> np.ndarray:
    """The spec's whole value in float64 (worked out a block of rows at a time)."""
    return np.asarray(SpecEval(tensors, env).rows(expr, slice(None)), dtype=np.float64)


@node
class VerifyPlan:
    """How much of each output to check: "full" (every element, in blocks of rows), "rows" (`rows`
    rows drawn with `seed`, every element of each), "auto" (one of those by size) or "off"."""
    mode: str = "full"
    rows: int = 0
    seed: int = 0

    def __str__(self) -> str:
        return f"rows={self.rows}" if self.mode == "rows" else self.mode


def parse_verify(text: str | VerifyPlan | None, seed: int = 0) -> VerifyPlan:
    """`auto`, `full`, `off` or `rows=K` (K >= 1) from --verify; UsageError otherwise."""
    if isinstance(text, VerifyPlan):
        return text
    text = DEFAULT_VERIFY if text is None else str(text).strip()
    if text in ("auto", "full", "off"):
        return VerifyPlan(text, 0, seed)
    name, sep, count = text.partition("=")
    if name == "rows" and sep and count.isdigit() and int(count) >= 1:
        return VerifyPlan("rows", int(count), seed)
    raise UsageError(f"--verify expects auto, full, off or rows=K with K >= 1, not '{text}'")


def check_output(name: str, expr: ast.Expr, tensors: dict, env: dict, got: np.ndarray, dtype: str,
                 plan: VerifyPlan, span, block_rows: int | None = None) -> Verification:
    """Compare one output with its spec under plan (not "off"), never holding an N x N value.

    "full" evaluates the spec a block of rows at a time (float64, O(block * N + N * d) numbers) and
    compares every element; "rows" evaluates and compares only the drawn rows (all of them when the
    output has fewer rows than asked for, or fewer than two axes). The matrix products run on no more
    BLAS threads than the machine has cores free (attnlang/blas.py).
    """
    with threads_for_free_cores():
        return _check_output(name, expr, tensors, env, got, dtype, plan, span, block_rows)


def _check_output(name, expr, tensors, env, got, dtype, plan, span, block_rows) -> Verification:
    ev = SpecEval(tensors, env, block_rows)
    shape = ev.shape(expr)
    if shape != got.shape:
        raise AttnError(error("E1022", f"the spec of {name} has shape {list(shape)} but the output has "
                                       f"{list(got.shape)}", span))
    n_rows = shape[-2] if len(shape) >= 2 else 0
    if plan.mode == "auto":
        mode, rows = auto_mode(n_rows, ev.row_elements(expr))
        plan = VerifyPlan(mode, rows, plan.seed) if mode == "rows" else VerifyPlan("full")
    if plan.mode == "rows" and plan.rows < n_rows:
        picked = draw_rows(n_rows, plan.rows, plan.seed)
        step = ev.block_rows(expr)
        want = np.concatenate([np.asarray(ev.rows(expr, picked[i:i + step]), dtype=np.float64)
                               for i in range(0, len(picked), step)], axis=-2)
        v = verify(name, got[..., picked, :], want, dtype)
        worst = v.worst_index
        if worst:
            worst = worst[:-2] + (int(picked[worst[-2]]), worst[-1])
        return replace(v, worst_index=worst, mode="rows", rows=tuple(int(i) for i in picked))
    if n_rows > 1:
        step = ev.block_rows(expr)
        want = np.concatenate([np.asarray(ev.rows(expr, slice(i, i + step)), dtype=np.float64)
                               for i in range(0, n_rows, step)], axis=-2)
    else:
        want = np.asarray(ev.rows(expr, slice(None)), dtype=np.float64)
    return verify(name, got, want, dtype)


def draw_rows(n_rows: int, k: int, seed: int) -> np.ndarray:
    """k of n_rows rows, sorted: one drawn uniformly from each of k equal stretches, so any
    2 * n_rows / k consecutive rows (a tile, an edge) hold at least one of them."""
    rng = np.random.default_rng([seed, 1])
    edges = (np.arange(k + 1) * n_rows) // k
    return edges[:-1] + (rng.random(k) * (edges[1:] - edges[:-1])).astype(np.int64)


def verify(name: str, got: np.ndarray, want: np.ndarray, dtype: str) -> Verification:
    """Compare an output with its spec at the tolerance of the output's dtype."""
    rtol, atol = TOLERANCE.get(dtype, TOLERANCE["f32"])
    got = np.asarray(got, dtype=np.float64)
    want = np.broadcast_to(np.asarray(want, dtype=np.float64), got.shape)
    finite = np.isfinite(want)
    scale = float(np.max(np.abs(want[finite]))) if finite.any() else 1.0
    scale = max(scale, 1e-30)
    both_same_inf = (got == want)
    with np.errstate(invalid="ignore"):  # inf - inf: the same infinity is no error, NaN anywhere is inf (below)
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


def verify_outputs(kernel: ast.Kernel, env: dict, inputs: dict, outputs: dict, dtypes: dict,
                   plan: VerifyPlan | None = None) -> dict:
    """Each output with a spec -> its Verification; {} when plan is "off"."""
    plan = plan or VerifyPlan()
    out = {}
    for spec in kernel.specs:
        if spec.output not in outputs:
            raise AttnError(error(
                "E1022", f"spec for '{spec.output}', which is not an output", spec.span))
        if plan.mode == "off":
            continue
        out[spec.output] = check_output(spec.output, spec.expr, inputs, env, outputs[spec.output],
                                        dtypes[spec.output], plan, spec.span)
    return out
