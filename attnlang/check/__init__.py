"""The checker: every rule that can be decided before a kernel runs.

`check` runs the front end's own checks (syntax, `use`, hardware) and then
each family of rules over each kernel. Rules collect Diagnostics; none raises.
"""

from __future__ import annotations

from typing import Callable, Mapping

from ..diagnostics import DEFINE_ERROR, Diagnostic, UsageError, error, has_errors
from ..hardware import Hardware
from ..program import Program, bind, hardware_for, signature_dims, static_decls, unused_hardware_diagnostics
from ..static import Static
from ..syntax import ast
from .bounds import check_bounds
from .capacity import check_capacity
from .channels import check_channels
from .namewalk import check_names
from .races import check_races
from .ranges import check_loop_bounds, out_of_range
from .shapes import check_shapes
from .units import check_units
from .where import check_where

#: A rule family: (program, kernel, env, hardware) -> diagnostics.
Rule = Callable[[Program, ast.Kernel, Mapping[str, Static], Hardware], list[Diagnostic]]

#: The rule families, run in order on every kernel. Each lives in its own module.
RULES: list[Rule] = [
    check_names,  # names.py, namewalk.py: unknown names, reads before writes, writes to inputs (E031x-E032x)
    check_shapes,  # shapes.py: symbolic shapes, broadcasting, dtypes (E04xx)
    check_units,  # units.py: ops a unit cannot run, operands in another memory (E05xx)
    check_bounds,  # bounds.py: slices out of bounds, tiles that do not divide (E06xx)
    check_races,  # races.py: @parallel races, @pipeline dependences (E07xx)
    check_capacity,  # capacity.py: peak bytes per memory against capacity (E08xx)
    check_channels,  # channels.py: senders, receivers, dtypes, bypass depths (E090x)
    check_where,  # where.py: where constraints, param domains, dims with no value (E095x)
]


def check(prog: Program, defines: Mapping[str, Static] | None = None,
          kernels: list[str] | None = None) -> list[Diagnostic]:
    """Every diagnostic for the program, at the params' defaults unless defines say otherwise."""
    diags = list(prog.diagnostics)
    diags += unused_hardware_diagnostics(prog, defines)
    names = kernels if kernels else list(prog.kernels)
    # With errors from loading (syntax, `use`), a kernel may be missing for that reason: report those
    # errors, not the -D that names something in it.
    if defines and not kernels and not has_errors(prog.diagnostics):
        known = set().union(*(_declared(prog.kernel(n)) for n in names)) if names else set()
        for name in defines:
            if name not in known:
                raise UsageError(f"-D {name}: no kernel declares a dimension or param '{name}'", DEFINE_ERROR)
    for name in names:
        kernel = prog.kernel(name)
        scope = _declared(kernel)
        env, d = bind(kernel, {k: v for k, v in (defines or {}).items() if kernels or k in scope})
        diags += d
        hw, d = hardware_for(prog, kernel, env)
        diags += d
        if hw is None:
            continue
        d = check_loop_bounds(prog, kernel, env, hw)
        diags += d
        if out_of_range(d):
            continue
        for rule in RULES:
            diags += rule(prog, kernel, env, hw)
    return _dedupe(diags)


def _declared(kernel: ast.Kernel) -> set[str]:
    """Names -D may set for this kernel; with no -k, -D applies where it is declared."""
    return {d.name for d in static_decls(kernel)} | set(signature_dims(kernel))


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen, out = set(), []
    for d in diags:
        key = (d.span, d.code, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


__all__ = ["RULES", "Rule", "check", "error"]
