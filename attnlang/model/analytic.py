"""The analytical model: a kernel's cost for a whole set of candidates at once.

`estimate(prog, kernel, params)` takes every param (and dimension) as a
NumPy array — one entry per candidate, or open-grid arrays whose broadcast is
the Cartesian product of their domains — and returns an `Estimate` whose
fields are arrays of that broadcast shape: cycles, energy, bytes read and
written and peak occupancy per memory, busy cycles per unit. It walks the
kernel once (attnlang/model/walk.py), with the interpreter's rules and the
formulas of attnlang/cost.py evaluated over the arrays; loops are costed in
closed form (attnlang/model/loops.py). Energy, traffic and peak occupancy are
exact; cycles are within a few percent of the interpreter on the examples
(docs/explore.md).

Params that choose `if` branches (and that bound loops whose iterations
differ) take one value per walk: `estimate` groups the candidates by them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .. import cost
from ..binding import bind, hardware_for, signature_dims, static_decls, symbols
from ..diagnostics import AttnError, has_errors
from ..hardware import Hardware
from ..limits import MAX_INT, show
from ..program import Program
from ..static import free_names
from ..syntax import ast
from .statics import aeval, elements, model_error, scalar, split_params
from .walk import Walker


@dataclass
class Estimate:
    """The model's costs, one entry per candidate (arrays of the candidates' broadcast shape)."""

    kernel: str
    hardware: str
    clock_hz: float
    cycles: np.ndarray
    energy_pj: np.ndarray
    energy_breakdown_pj: dict[str, np.ndarray]
    read_bytes: dict[str, np.ndarray]
    write_bytes: dict[str, np.ndarray]
    peak_bytes: dict[str, np.ndarray]
    busy_cycles: dict[str, np.ndarray]
    #: candidates the model cannot cost as written (a tile that does not divide its loop...): reason -> mask
    invalid: dict[str, np.ndarray] = field(default_factory=dict)
    #: multiply-accumulates on the matrix units (matmuls' batch x m x k x n), as the interpreter's counter
    macs: np.ndarray | None = None

    @property
    def seconds(self) -> np.ndarray:
        return self.cycles / self.clock_hz

    def memories(self, index=()) -> dict:
        """`attn run --json`'s memories object for one candidate."""
        return {m: {"read_bytes": float(self.read_bytes[m][index]), "write_bytes": float(self.write_bytes[m][index]),
                    "peak_bytes": float(self.peak_bytes[m][index])} for m in self.read_bytes}


def kernel_env(prog: Program, kernel: ast.Kernel, params: Mapping) -> dict:
    """Every dim and param: arrays and numbers from params, the declared defaults for the rest."""
    fixed = {k: v for k, v in params.items() if not isinstance(v, np.ndarray)}
    env, diags = bind(kernel, fixed)
    if has_errors(diags):
        raise AttnError(diags)
    env.update({k: v for k, v in params.items() if isinstance(v, np.ndarray)})
    for name in signature_dims(kernel):
        if name not in env:
            raise model_error(f"dimension {name} of kernel '{kernel.name}' has no value: give it", kernel.name_span)
    for s in symbols(kernel):
        env.setdefault(s, s)
    derive(derived_params(kernel, set(params)), env)
    return env


_CONSTANTS = {"inf", "True", "False"}


def derived_params(kernel: ast.Kernel, given: set[str]) -> list[ast.Param]:
    """The params worked out from others (`param B = n // m`: no domain, a default that names something),
    in declaration order, except those given a value."""
    return [d for d in static_decls(kernel) if isinstance(d, ast.Param) and d.domain is None
            and d.domain_range is None and d.default is not None and free_names(d.default) - _CONSTANTS
            and d.name not in given]


def derive(params: list[ast.Param], env: dict) -> None:
    """Work the derived params out again from env, which may hold arrays over candidates: `bind` gave them
    their values at the other params' defaults. One that names something env lacks is taken out of env."""
    for d in params:
        if free_names(d.default) - _CONSTANTS <= env.keys() - {d.name}:
            env[d.name] = aeval(d.default, env)
        else:
            env.pop(d.name, None)


def param_names(kernel: ast.Kernel) -> set[str]:
    return {d.name for d in static_decls(kernel) if isinstance(d, ast.Param)}


def estimate(prog: Program, kernel: ast.Kernel | str, params: Mapping | None = None,
             hw: Hardware | None = None) -> Estimate:
    """The model's costs of kernel for every candidate in params (name -> array or number)."""
    if isinstance(kernel, str):
        kernel = prog.kernel(kernel)
    params = dict(params or {})
    env = kernel_env(prog, kernel, params)
    if hw is None:
        hw = hardware_for_env(prog, kernel, env)
    split = sorted(split_params(kernel, param_names(kernel)))
    arrays = [n for n in split if isinstance(env.get(n), np.ndarray) and scalar(env[n]) is None]
    for n in split:
        if isinstance(env.get(n), np.ndarray) and n not in arrays:
            env[n] = scalar(env[n])
    if not arrays:
        return _walk(hw, kernel, env)
    return _grouped(hw, kernel, env, arrays)


def hardware_for_env(prog: Program, kernel: ast.Kernel, env: Mapping) -> Hardware:
    """The kernel's hardware; its sizes may name dims but not params that vary."""
    plain = {k: v for k, v in env.items() if not isinstance(v, np.ndarray)}
    hw, diags = hardware_for(prog, kernel, plain)
    if hw is None:
        raise AttnError(diags)
    return hw


def _grouped(hw: Hardware, kernel: ast.Kernel, env: dict, names: list[str]) -> Estimate:
    """Walk once per combination of the split params' values; scatter into the full shape."""
    shape = np.broadcast_shapes(*[np.shape(v) for v in env.values() if isinstance(v, np.ndarray)])
    full = {k: np.broadcast_to(v, shape).reshape(-1) for k, v in env.items() if isinstance(v, np.ndarray)}
    keys = np.stack([_codes(full[n]) for n in names], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    parts = []
    for g in range(len(uniq)):
        idx = np.nonzero(inverse == g)[0]
        sub = dict(env)
        for k, v in full.items():
            sub[k] = v[idx]
        for n in names:
            sub[n] = full[n][idx[0]].item()
        parts.append((idx, _walk(hw, kernel, sub)))
    return _scatter(parts, shape, kernel, hw)


def _codes(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "USO":
        _, inv = np.unique(a, return_inverse=True)
        return inv.reshape(-1)
    return a


def _scatter(parts, shape, kernel, hw) -> Estimate:
    n = int(np.prod(shape))

    def gather(get) -> np.ndarray:
        out = np.zeros(n)
        for idx, est in parts:
            out[idx] = np.broadcast_to(get(est), idx.shape) if np.ndim(get(est)) else get(est)
        return out.reshape(shape)

    def table(attr):
        keys = {k for _, e in parts for k in getattr(e, attr)}
        return {k: gather(lambda e, k=k: _sized(getattr(e, attr).get(k, 0.0), e.cycles)) for k in keys}

    invalid = {}
    for reason in {r for _, e in parts for r in e.invalid}:
        mask = np.zeros(n, dtype=bool)
        for idx, est in parts:
            if reason in est.invalid:
                mask[idx] = np.broadcast_to(est.invalid[reason], est.cycles.shape).reshape(-1)
        invalid[reason] = mask.reshape(shape)
    return Estimate(kernel.name, hw.name, hw.clock_hz, gather(lambda e: e.cycles), gather(lambda e: e.energy_pj),
                    table("energy_breakdown_pj"), table("read_bytes"), table("write_bytes"), table("peak_bytes"),
                    table("busy_cycles"), invalid, gather(lambda e: _sized(e.macs, e.cycles)))


def _sized(v, like):
    return np.broadcast_to(v, np.shape(like))


def _shown(v) -> str:
    """A value of env as a note shows it: a number (whole ones exactly up to 2**53), or the range an array
    of candidates spans."""
    if isinstance(v, np.ndarray) and v.size:
        lo, hi = _shown(np.min(v)), _shown(np.max(v))
        return lo if lo == hi else f"{lo} to {hi}"
    v = v.item() if isinstance(v, np.generic) else v
    if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() and abs(v) <= MAX_INT:
        return str(int(v))
    return show(v)


def run_walker(w, kernel: ast.Kernel, env: dict) -> None:
    """Walk the kernel's body with w (walk.Walker, or stage 1's), its inputs and outputs resident in the root
    memory from the start."""
    root = w.root
    resident = 0
    for shape, dtype in list(w.inputs.values()) + list(w.outputs.values()):
        resident = resident + cost.tensor_bytes(elements(shape), dtype)
    w.f.occ[root] = resident
    w.f.peak[root] = resident
    with np.errstate(all="ignore"):
        try:
            w.run(kernel.body)
        except OverflowError:  # a Python integer past int64 met a NumPy array of candidates
            raise model_error("the dims and params make a count (bytes or cycles) too large for the model: "
                              "it counts in 64 bits, up to 2**63", kernel.name_span,
                              "the values: " + ", ".join(f"{k} = {_shown(v)}" for k, v in sorted(env.items())
                                                         if not isinstance(v, str))) from None


def _walk(hw: Hardware, kernel: ast.Kernel, env: dict) -> Estimate:
    """One walk of the kernel; every split param is one value in env."""
    w = Walker(hw, kernel, env)
    run_walker(w, kernel, env)
    f = w.f
    shape = np.broadcast_shapes(*[np.shape(v) for v in env.values() if isinstance(v, np.ndarray)] or [()])
    cycles = np.broadcast_to(np.ceil(f.end), shape).astype(np.float64)
    energy = {k: np.broadcast_to(v, shape) for k, v in f.energy.items()}
    if hw.leakage_pj_per_cycle:
        energy["leakage"] = cost.leakage_energy_pj(cycles, hw.leakage_pj_per_cycle)
    total = np.zeros(shape)
    for v in energy.values():
        total = total + v
    mems = list(hw.memories)

    def per(d):
        return {m: np.broadcast_to(np.asarray(d.get(m, 0.0), dtype=np.float64), shape) for m in mems}

    invalid = {}
    for reason, _node, mask in w.invalid:
        m = np.broadcast_to(np.asarray(mask, dtype=bool), shape)
        invalid[reason] = invalid[reason] | m if reason in invalid else m
    return Estimate(kernel.name, hw.name, hw.clock_hz, cycles, total, energy, per(f.rbytes), per(f.wbytes),
                    per(f.peak), {u: np.broadcast_to(np.asarray(f.busy.get(u, 0.0), dtype=np.float64), shape)
                                  for u in hw.units}, invalid,
                    np.broadcast_to(np.asarray(f.macs, dtype=np.float64), shape))


__all__ = ["Estimate", "aeval", "estimate", "kernel_env"]
