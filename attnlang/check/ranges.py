"""Loop bounds and steps, process ranges: whole numbers, in range, steps positive (E0302, E0603, E0606);
causal() offsets in range.

Runs before the other rule families: a bound out of range (E0302) would
overflow the arrays of iterations they build, so a kernel with one gets no
further checks until it is fixed.
"""

from __future__ import annotations

from typing import Mapping

from ..diagnostics import Diagnostic, error
from ..hardware import Hardware
from ..limits import integer_error
from ..program import Program
from ..static import Static
from ..syntax import ast
from . import scope
from .dims import try_value


def check_loop_bounds(prog: Program, kernel: ast.Kernel, env: Mapping[str, Static],
                      hw: Hardware | None = None) -> list[Diagnostic]:
    """Every loop bound and step known before the kernel runs: in range, whole, and steps positive."""
    env = scope.full_env(kernel, env)
    diags = []
    for s, _, quiet in scope.walk_live(kernel.body, env):
        # (a loop in a branch the params rule out still must not hold a number out of range)
        if isinstance(s, ast.For):
            parts = ((s.lo, "a loop bound"), (s.hi, "a loop bound"), (s.step, "the loop step"))
        elif isinstance(s, ast.Process) and s.var is not None:
            parts = ((s.lo, "a process range bound"), (s.hi, "a process range bound"))
        else:
            continue
        for e, what in parts:
            v = try_value(e, env) if e is not None else None
            if v is None:
                continue
            text = scope.text_of(prog, e)
            bad = integer_error(v, what, e.span)
            if bad:
                diags.append(bad)
            elif quiet:
                continue
            elif isinstance(v, (bool, str)) or not float(v).is_integer():
                diags.append(error("E0606", f"{what} must be a whole number, not {_named(text, v)}", e.span))
            elif isinstance(s, ast.For) and e is s.step and v <= 0:
                diags.append(error("E0603", f"the loop step {_named(text, v)} is not positive", e.span))
    return diags + _offsets(kernel, env)


def _offsets(kernel: ast.Kernel, env: Mapping) -> list[Diagnostic]:
    """The offsets of causal() known before the kernel runs, in the body and the specs, in range."""
    exprs = [sp.expr for sp in kernel.specs]
    exprs += [getattr(s, "expr", None) for s in ast.walk_statements(kernel.body)]
    diags = []
    for top in exprs:
        for x in ast.subexprs(top):
            if isinstance(x, ast.Call) and x.func == "causal":
                offsets = ("the row offset of causal()", "the column offset of causal()")
                for arg, what in zip(x.args[1:], offsets, strict=False):
                    bad = integer_error(try_value(arg, env), what, arg.span)
                    if bad:
                        diags.append(bad)
    return diags


def out_of_range(diags: list[Diagnostic]) -> bool:
    """Whether diags hold a value out of range (E0302): the rules that compute with values must not run."""
    return any(d.code == "E0302" for d in diags)


def _named(text: str, value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value) if text == str(value) else f"{text} = {value}"
