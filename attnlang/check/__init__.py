"""The checker: every rule that can be decided before a kernel runs.

`check` runs the front end's own checks (syntax, `use`, hardware) and then
each family of rules over each kernel. Rules collect Diagnostics; none raises.
"""

from __future__ import annotations

from typing import Callable, Mapping

from ..binding import (
    BoundKernel,
    bind,
    hardware_for,
    signature_dims,
    static_decls,
    symbols,
    unused_hardware_diagnostics,
)
from ..diagnostics import DEFINE_ERROR, AttnError, Diagnostic, UsageError, error, has_errors
from ..hardware import Hardware
from ..program import Program
from ..static import Static
from ..syntax import ast
from . import scope
from .bounds import check_bounds
from .capacity import check_capacity
from .channels import check_channels
from .namewalk import check_names
from .races import check_races
from .ranges import check_loop_bounds, out_of_range
from .shapes import analyze, check_shapes, value_types
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
        if hw is not None:
            diags += _rules(prog, kernel, env, hw)
    return _dedupe(diags)


def bind_kernel(prog: Program, kernel: str | ast.Kernel | None = None, defines: Mapping[str, Static] | None = None,
                inferred: Mapping[str, int] | None = None, rules: bool = True, partial: bool = False) -> BoundKernel:
    """The kernel checked and bound, ready to run: every dim and param from defines, then from inferred
    (dims read off the inputs' shapes), then the defaults; the hardware elaborated with them; the
    checker's types and shapes at those values. AttnError with every error (of the program, and of this
    kernel by every rule unless rules=False); UsageError when defines cannot apply.

    partial=True (a program being edited: the language server) raises no AttnError: the binding keeps
    its errors, with hardware None where the hardware has errors and the types that could be inferred."""
    k = kernel if isinstance(kernel, ast.Kernel) else prog.kernel(kernel)
    env, d = bind(k, defines, inferred)
    diags = list(prog.diagnostics) + unused_hardware_diagnostics(prog, {**(inferred or {}), **(defines or {})}) \
        if rules else []
    diags += d
    hw, d = hardware_for(prog, k, env)
    diags += d
    if hw is not None and rules:
        diags += _rules(prog, k, env, hw)
    diags = _dedupe(diags)
    errors = [d for d in diags if d.severity == "error"]
    if not partial and (hw is None or errors):
        raise AttnError(diags)
    full = scope.full_env(k, env)

    def infer():
        # The types at these values, unless a loop bound is out of range (E0302: nothing computes with it)
        ranges = diags if rules and hw is not None else check_loop_bounds(prog, k, env, hw)
        if out_of_range(ranges):
            return None, {}
        types = analyze(k, full, hw)
        return types, value_types(types, full)

    for s in symbols(k):
        env.setdefault(s, s)
    return BoundKernel(prog, k, env, hw, [d for d in diags if d.severity != "error"], errors, infer)


def _rules(prog: Program, kernel: ast.Kernel, env: Mapping[str, Static], hw: Hardware) -> list[Diagnostic]:
    """Every rule over one kernel, the loop bounds first (out of range: the other rules cannot run)."""
    diags = check_loop_bounds(prog, kernel, env, hw)
    if out_of_range(diags):
        return diags
    for rule in RULES:
        diags += rule(prog, kernel, env, hw)
    return diags


#: The checker's codes for what holds whatever the params: syntax, files and names, hardware, static
#: values, names and types, shapes, units, channels' wiring and types, param domains. A program with one of these
#: cannot be explored; the others (bounds and tile sizes, races, capacity, channel depths, `where`) can fail at the
#: defaults and hold elsewhere in the space.
STRUCTURAL = ("E00", "E01", "E02", "E03", "E04", "E05", "E0901", "E0902", "E0903", "E0904", "E0905", "E0908",
              "E0909", "E0956")


def structural_errors(prog: Program, kernels: list[str] | None, defines: Mapping[str, Static] | None) -> list:
    """The checker's errors at the params' defaults that no other candidate can escape (what stops a
    search before it starts)."""
    diags = check(prog, defines, kernels or None)
    return [d for d in diags if d.severity == "error" and d.code.startswith(STRUCTURAL)]


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


__all__ = ["RULES", "STRUCTURAL", "Rule", "bind_kernel", "check", "error", "structural_errors"]
