"""Binding a kernel: the value of every dim and param, and the hardware elaborated with them.

`bind` gives each dim and param its value (-D first, then what the inputs'
shapes say, then the declared defaults); `hardware_for` elaborates the
hardware the kernel runs on with those values. `check.bind_kernel` puts the
two together with the checker's verdict and types into a BoundKernel, the one
value every engine and face runs or describes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Mapping

from .diagnostics import DEFINE_ERROR, Diagnostic, Sources, Span, UsageError, did_you_mean, error
from .hardware import Hardware, elaborate
from .limits import integer_error, integer_problem
from .program import Program
from .static import Static, StaticError, static_eval
from .syntax import ast

if TYPE_CHECKING:
    from .check.shapes import ValueType
    from .check.types import Analysis


def parse_define(text: str) -> tuple[str, Static]:
    """`NAME=VALUE` from the command line; VALUE an int, a float or a symbol."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name.isidentifier() or not value:
        raise UsageError(f"-D expects NAME=VALUE, not '{text}'", DEFINE_ERROR)
    for conv in (int, float):
        try:
            number = conv(value)
        except ValueError:
            continue
        if not math.isfinite(number):  # inf, nan, and 1e400 (which is inf): no size or count is
            raise UsageError(f"-D {name}: '{value}' is not a finite number", DEFINE_ERROR)
        return name, number
    if not value.isidentifier():
        raise UsageError(f"-D {name}: '{value}' is not a number or a name", DEFINE_ERROR)
    return name, value


def signature_dims(kernel: ast.Kernel) -> list[str]:
    """The symbolic dimensions named in the kernel's tensor signature, in order."""
    out: list[str] = []
    for t in kernel.inputs + kernel.outputs:
        for d in t.dims:
            if isinstance(d, ast.Name) and d.id not in out:
                out.append(d.id)
    return out


def tensor_shape(t: ast.TensorDecl, env: Mapping, what: str) -> tuple[int, ...]:
    """The shape of a kernel's input or output (what: "input" or "output") under env: a dimension
    without a value is the static evaluator's diagnostic, a negative one a usage error (it comes from -D)."""
    from .diagnostics import AttnError
    from .static import static_int

    try:
        shape = tuple(static_int(d, env, "a dimension") for d in t.dims)
    except StaticError as exc:
        raise AttnError(exc.diagnostic) from None
    if any(n < 0 for n in shape):
        raise UsageError(f"{what} {t.name} would have a negative shape {list(shape)}", DEFINE_ERROR)
    return shape


def static_decls(kernel: ast.Kernel) -> list[ast.Param | ast.DimBinding]:
    """The dims and params declared at the kernel's top level, in order."""
    out: list = []
    for s in kernel.body:
        if isinstance(s, ast.DimDecl):
            out.extend(s.bindings)
        elif isinstance(s, ast.Param):
            out.append(s)
    return out


def bind(kernel: ast.Kernel, defines: Mapping[str, Static] | None = None,
         inferred: Mapping[str, int] | None = None) -> tuple[dict[str, Static], list[Diagnostic]]:
    """The value of every dim and param: -D first, then shapes inferred from
    inputs, then the declared defaults. Names with no value are left out."""
    defines = dict(defines or {})
    inferred = dict(inferred or {})
    env: dict[str, Static] = {}
    diags: list[Diagnostic] = []
    decls = static_decls(kernel)
    declared = {d.name for d in decls} | set(signature_dims(kernel))
    dims = {d.name for d in decls if isinstance(d, ast.DimBinding)} | set(signature_dims(kernel))
    for name, value in defines.items():
        problem = integer_problem(value)
        if problem:
            raise UsageError(f"-D {name}: the value is out of range: {problem}", DEFINE_ERROR)
        if name in dims and (isinstance(value, str) or not float(value).is_integer() or value < 1):
            # A dimension of 0 would make empty tensors, and a run of nothing "verifies"; below 0, no shape.
            raise UsageError(f"-D {name}: a dimension takes a whole number of at least 1, not '{value}'",
                             DEFINE_ERROR)
        param = next((d for d in decls if isinstance(d, ast.Param) and d.name == name), None)
        if param is not None and param.domain:
            symbolic = all(isinstance(v, ast.Name) for v in param.domain)
            if symbolic != isinstance(value, str):
                kind = "one of its symbols" if symbolic else "a number"
                raise UsageError(f"-D {name}={value}: param {name} takes {kind} "
                                 f"({', '.join(_show_value(v) for v in param.domain)})", DEFINE_ERROR)
    for name in defines:
        if name not in declared:
            raise UsageError(f"-D {name}: kernel '{kernel.name}' has no dimension or param '{name}' "
                             f"(it has: {', '.join(sorted(declared)) or 'none'})", DEFINE_ERROR)
    for name, value in inferred.items():
        if name in defines and defines[name] != value:
            raise UsageError(f"-D {name}={defines[name]} disagrees with the inputs, where {name} is {value}",
                              DEFINE_ERROR)
    env.update(inferred)
    env.update(defines)
    for d in decls:
        if d.name in env:
            continue
        default = d.value if isinstance(d, ast.DimBinding) else d.default
        if default is None:
            if isinstance(d, ast.Param) and d.domain:
                default = d.domain[0]
            else:
                continue
        try:
            # A symbolic param's default (`= q_outer`) names one of its symbols.
            value = static_eval(default, {**{s: s for s in symbols(kernel)}, **env})
        except StaticError as exc:
            diags.append(exc.diagnostic)
            continue
        bad = integer_error(value, f"the value of {d.name}", default.span)
        if bad:
            diags.append(bad)
            continue
        env[d.name] = value
    return env, diags


def _show_value(e: ast.Expr) -> str:
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Num):
        return str(e.value)
    return "..."


def symbols(kernel: ast.Kernel) -> set[str]:
    """Symbols a param domain offers (q_outer, kv_outer...): they stand for themselves."""
    out: set[str] = set()
    for d in static_decls(kernel):
        if isinstance(d, ast.Param) and d.domain:
            out |= {v.id for v in d.domain if isinstance(v, ast.Name)}
    return out


def hardware_for(prog: Program, kernel: ast.Kernel, env: Mapping[str, Static]) -> tuple[Hardware | None,
                                                                                        list[Diagnostic]]:
    """The elaborated hardware a kernel runs on, sized with the kernel's env."""
    if kernel.hardware is None:
        if len(prog.hardware) == 1:
            hw = next(iter(prog.hardware.values()))
        else:
            what = "no hardware is in scope" if not prog.hardware else "several are in scope"
            return None, [error("E0105", f"kernel '{kernel.name}' needs 'on HARDWARE' ({what})",
                                kernel.name_span)]
    else:
        hw = prog.hardware.get(kernel.hardware)
        if hw is None:
            known = ", ".join(prog.hardware) or "none; add 'use hw.edge'"
            hint = did_you_mean(kernel.hardware, prog.hardware)
            return None, [error("E0105", f"unknown hardware '{kernel.hardware}'{hint} (in scope: {known})",
                                kernel.hardware_span or kernel.name_span)]
    return elaborate(hw, env)


def unused_hardware_diagnostics(prog: Program, env: Mapping[str, Static] | None = None) -> list[Diagnostic]:
    """Elaborate the hardware blocks no kernel runs on, so their mistakes show too."""
    used = {k.hardware for k in prog.kernels.values()}
    if any(k.hardware is None for k in prog.kernels.values()) and len(prog.hardware) == 1:
        used |= set(prog.hardware)
    diags: list[Diagnostic] = []
    for name, hw in prog.hardware.items():
        if name in used:
            continue
        _, d = elaborate(hw, env or {})
        # Sizes that name a kernel's params are checked with the kernel that uses them.
        diags += [x for x in d if x.code != "E0301"]
    return diags


@dataclass
class BoundKernel:
    """A kernel checked and bound: what check.bind_kernel hands every engine and face.

    program (its sources, for diagnostics); kernel; env, the value of every dim and param (the symbols a
    param's domain offers standing for themselves); hardware, elaborated with env; types, the checker's
    analysis at env (the type of every expression, the value every statement writes, what each channel
    carries); shapes, (name, statement span) -> the shape, dtype and memory of the value that statement
    assigns, at the first iteration of the loops around it; the checker's warnings. Made once per run:
    the interpreter and the JIT run it as it is, the language server describes it.

    A partial binding (check.bind_kernel(partial=True), for a program being edited) also keeps its errors:
    hardware is then None where it has errors, and types and shapes hold what could be inferred.
    """

    program: Program
    kernel: ast.Kernel
    env: dict[str, Static]
    hardware: Hardware | None
    warnings: list[Diagnostic] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    #: how the checker types the kernel at env, (types, shapes): run on first use (an engine that does not
    #: read them, a run of a cached JIT kernel, does not pay for them)
    infer: Callable[[], tuple[Analysis | None, dict]] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def _inferred(self) -> tuple[Analysis | None, dict]:
        return self.infer() if self.infer is not None else (None, {})

    @property
    def types(self) -> Analysis | None:
        return self._inferred[0]

    @property
    def shapes(self) -> dict[tuple[str, Span], ValueType]:
        return self._inferred[1]

    @property
    def sources(self) -> Sources:
        return self.program.sources

    @property
    def missing_dims(self) -> list[str]:
        """The signature's dimensions with no value (a run needs -D, an input, or `dim NAME = ...`)."""
        return [d for d in signature_dims(self.kernel) if d not in self.env]


__all__ = ["BoundKernel", "bind", "hardware_for", "parse_define", "signature_dims", "static_decls", "symbols",
           "tensor_shape", "unused_hardware_diagnostics"]
