"""A kernel's `where` constraints and its params' domains, at the chosen values.

`satisfied_many` evaluates the constraints over arrays of candidates (explore
prunes with it, through capacity.feasible_many).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..diagnostics import Diagnostic, error, warning
from ..hardware import Hardware
from ..program import Program
from ..static import Static, free_names
from ..syntax import ast
from . import scope
from .dims import Unknown, try_value, veval


def constraints(kernel: ast.Kernel) -> list[ast.Expr]:
    """The kernel's top-level `where` conditions."""
    return [c for s in kernel.body if isinstance(s, ast.Where) for c in s.conds]


def check_where(prog: Program, kernel: ast.Kernel, env: Mapping[str, Static], hw: Hardware) -> list[Diagnostic]:
    """`where` constraints that fail or cannot be decided, and params outside their domain (E09xx)."""
    env = scope.full_env(kernel, env)
    f = scope.facts(kernel)
    order = [d.name for d in _static_order(kernel)]
    diags: list[Diagnostic] = []
    for cond in constraints(kernel):
        text = scope.text_of(prog, cond)
        names = [n for n in order if n in free_names(cond)]
        missing = [n for n in names if n not in env]
        if missing:
            diags.append(warning("E0952", f"cannot decide 'where {text}': {missing[0]} has no value here (give it "
                                          f"with -D {missing[0]}=VALUE)", cond.span))
            continue
        v = try_value(cond, env)
        if v is None:
            continue  # names.py reports what is wrong in it
        if not isinstance(v, (bool, np.bool_)):
            diags.append(error("E0953", f"a where constraint is a condition, such as Br <= Bc; '{text}' is "
                                        f"{v!r}", cond.span))
        elif not v:
            at = ", ".join(f"{n} = {env[n]}" for n in names)
            diags.append(error("E0951", f"where {text} fails{f' at {at}' if at else ''}", cond.span))
    for name in scope.signature_dims(kernel):
        if name not in env:
            span = next(d.span for t in kernel.inputs + kernel.outputs for d in t.dims
                        if isinstance(d, ast.Name) and d.id == name)
            diags.append(warning("E0955", f"dimension {name} has no value here, so the checks that need it are "
                                          f"skipped: give it with -D {name}=VALUE or 'dim {name} = ...'", span))
    for name, p in f.params.items():
        mixed = mixed_domain(p)
        if mixed is not None:
            diags.append(mixed)
        elif name in env:
            d = _outside(p, env[name], env)
            if d is not None:
                diags.append(d)
    return diags


def mixed_domain(p: ast.Param) -> Diagnostic | None:
    """A domain of symbols and numbers at once (E0956): a param takes one kind of value."""
    if not p.domain or len({isinstance(e, ast.Name) for e in p.domain}) == 1:
        return None
    return error("E0956", f"param {p.name} takes either symbols or numbers, not both: its domain mixes "
                          f"{next(e.id for e in p.domain if isinstance(e, ast.Name))!r} with numbers", p.name_span)


def _static_order(kernel: ast.Kernel):
    from ..binding import signature_dims, static_decls

    decls = static_decls(kernel)
    names = {d.name for d in decls}
    return decls + [ast.DimBinding(n, ast.Num(0, True, kernel.span), kernel.span)
                    for n in signature_dims(kernel) if n not in names]


def _outside(p: ast.Param, value, env: Mapping) -> Diagnostic | None:
    if p.domain is not None:
        allowed = []
        for e in p.domain:
            v = e.id if isinstance(e, ast.Name) else try_value(e, env)
            if v is None:
                return None
            allowed.append(v)
        if value in allowed:
            return None
        shown = ", ".join(str(v) for v in allowed)
        return warning("E0954", f"{p.name} = {value} is outside its domain {{{shown}}}", p.name_span)
    if p.domain_range is not None:
        lo, hi, step = (try_value(e, env) if e is not None else 1 for e in p.domain_range)
        if None in (lo, hi, step) or isinstance(value, str):
            return None
        if lo <= value <= hi and (not step or (value - lo) % step == 0):
            return None
        by = f" by {step}" if step != 1 else ""
        return warning("E0954", f"{p.name} = {value} is outside its domain {lo} .. {hi}{by}", p.name_span)
    return None


def satisfied_many(kernel: ast.Kernel, env: Mapping, n: int) -> np.ndarray:
    """Which candidates satisfy every `where` constraint (env values are scalars or arrays of n)."""
    ok = np.ones(n, dtype=bool)
    for cond in constraints(kernel):
        try:
            ok &= np.broadcast_to(np.asarray(veval(cond, env), dtype=bool), (n,))
        except (Unknown, TypeError, ValueError):
            continue  # undecidable: check_where warns; explore does not prune on it
    return ok
