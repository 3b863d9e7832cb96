"""Names and scopes: what each name is, whether it has a value where it is read.

A walk in program order that tracks, per value, whether it is assigned on
every path, only on some, or discarded. Values first assigned in a loop body
or a process die at its end (docs/semantics.md); an `if` does not end a
value's life (the interpreter keeps it), but a value assigned on only one
side of an `if` that the params do not decide is assigned "on some paths".
A branch the params rule out is walked quietly: only names unknown anywhere
in the kernel are reported there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ..diagnostics import Diagnostic, Span, error, warning
from ..hardware import Hardware
from ..syntax import ast
from ..syntax.vocab import BUILTINS, DTYPES
from . import scope

_QUIET_CODES = {"E0310", "E0313", "E0324", "E0327"}


@dataclass(frozen=True)
class Val:
    span: Span  # where it was (last) assigned
    maybe: bool = False  # assigned on some paths only
    discarded: Span | None = None
    discard_maybe: bool = False


def _before(a: Span, b: Span) -> bool:
    return (a.line, a.column) < (b.line, b.column)


_UNDECIDED = ("the conditions that choose these paths are not decided before the run (they depend on a loop "
              "index or on a value); the run itself stops with an error if the read really happens",)


def _at(span: Span) -> str:
    return f"{span.line}:{span.column}"


class Names:
    def __init__(self, kernel: ast.Kernel, env: Mapping, hw: Hardware):
        self.k, self.hw = kernel, hw
        self.f = scope.facts(kernel)
        self.env = scope.full_env(kernel, env)
        self.diags: list[Diagnostic] = []
        self.vals: dict[str, Val] = {}
        self.loop_vars: list[str] = []
        self.quiet = 0
        self.depth = 0
        self.in_spec = False
        self.loops_walked: dict[tuple, dict[str, Val]] = {}  # (loop, state on entry) -> state after (namewalk)
        self.first_assigned: dict[str, Span] = {}
        self.channels = set(self.f.channels) | set(hw.channels)
        for s in scope.walk(kernel.body):
            target = getattr(s, "target", None)
            if target is not None:
                self.first_assigned.setdefault(target.name, s.span)
        self.all_loop_vars = {s.var for s in scope.walk(kernel.body)
                              if isinstance(s, (ast.For, ast.Process)) and s.var}

    def report(self, code: str, message: str, span: Span, *notes: str, warn: bool = False) -> None:
        if self.quiet and code not in _QUIET_CODES:
            return
        self.diags.append((warning if warn else error)(code, message, span, *notes))

    # ---------------------------------------------------------- what a name is
    def kind(self, name: str) -> str | None:
        if name in self.loop_vars:
            return "loop index"
        if name in self.f.params:
            return "param"
        if name in self.f.dims:
            return "dimension"
        if name in self.f.symbols or name in scope.CONSTANTS:
            return "constant"
        if name in self.f.inputs:
            return "input"
        if name in self.f.outputs:
            return "output"
        if name in self.vals:
            return "value"
        return None

    def visible(self) -> set[str]:
        return (set(self.vals) | set(self.loop_vars) | self.f.statics() | set(self.f.tensors)) - scope.CONSTANTS

    def unknown(self, e: ast.Name, extra: set[str] = frozenset()) -> None:
        if self.quiet and (e.id in self.first_assigned or e.id in self.all_loop_vars):
            return
        if e.id in DTYPES:
            self.report("E0310", f"'{e.id}' is an element type; it only appears as the last argument of "
                                 "zeros(), ones() or full()", e.span)
            return
        what = "function" if e.id in BUILTINS else "name"
        hint = "" if what == "function" else scope.suggest(e.id, self.visible() | extra)
        message = f"'{e.id}' is a function; call it" if what == "function" else f"unknown name '{e.id}'{hint}"
        self.report("E0310", message, e.span)

    # ---------------------------------------------------------- reads
    def name(self, e: ast.Name, static: str | None) -> None:
        kind = self.kind(e.id)
        if static is not None:
            if kind in ("value", "input", "output"):
                what = "a tensor value" if kind == "value" else f"the {kind} tensor"
                self.report("E0326", f"{static} must be known before the kernel runs, but '{e.id}' is {what}",
                            e.span)
            elif kind is None:
                self.missing(e)
            return
        if kind == "output" and self.in_spec:
            self.report("E0328", f"a spec is written in terms of the inputs; '{e.id}' is an output", e.span)
        elif kind == "value":
            self.read_value(e)
        elif kind is None:
            self.missing(e)

    def read_value(self, e: ast.Name) -> None:
        v = self.vals[e.id]
        if v.discarded is not None:
            when = " on an earlier iteration" if not _before(v.discarded, e.span) else ""
            some = " on some paths" if v.discard_maybe else ""
            # Which paths run can hang on conditions the checker does not decide (a loop
            # index): then it says so as a warning instead of guessing.
            self.report("E0314", f"'{e.id}' is read after it is discarded{some} (at {_at(v.discarded)}{when})",
                        e.span, *_UNDECIDED if v.discard_maybe else (), warn=v.discard_maybe)
        elif v.maybe:
            self.report("E0311", f"'{e.id}' may be read before it is written: it is assigned only on some paths "
                                 f"(at {_at(v.span)})", e.span, *_UNDECIDED, warn=True)

    def missing(self, e: ast.Name) -> None:
        first = self.first_assigned.get(e.id)
        if first is None or self.quiet:
            self.unknown(e)
        elif (e.span.line, e.span.column) < (first.end_line, first.end_column):
            self.report("E0311", f"'{e.id}' is read before it is written (first assigned at {_at(first)})", e.span)
        else:
            self.report("E0312", f"'{e.id}' has no value here: it was first assigned inside a loop or process "
                                 f"body (at {_at(first)}) and died at the end of it", e.span)

    def read(self, e, static: str | None = None) -> None:
        """Check every name e reads; `static` says which static position e is in, if it is in one."""
        if e is None or isinstance(e, (ast.Num, ast.QuantityLit)):
            return
        if isinstance(e, ast.Name):
            self.name(e, static)
        elif isinstance(e, ast.Unary):
            self.read(e.operand, static)
        elif isinstance(e, ast.Binary):
            self.read(e.left, static)
            self.read(e.right, static)
        elif isinstance(e, ast.Call):
            self.call(e, static)
        elif isinstance(e, ast.Index):
            self.read(e.base, static)
            self.subscripts(e.items)
        elif isinstance(e, ast.Attr):
            self.read(e.base, static)
        elif isinstance(e, ast.ListLit):
            for i in e.items:
                self.read(i, static)
        elif isinstance(e, ast.OnUnit):
            self.read(e.expr, static)
            self.read(e.unit.index, "a unit index")

    def call(self, e: ast.Call, static: str | None) -> None:
        if e.func not in BUILTINS:
            self.report("E0327", f"unknown function '{e.func}'{scope.suggest(e.func, BUILTINS)}", e.func_span)
        args = list(e.args)
        if e.func in ("full", "zeros", "ones"):
            if args and isinstance(args[-1], ast.Name) and args[-1].id in DTYPES:
                args.pop()
            if args:
                shape = args[0].items if isinstance(args[0], ast.ListLit) else (args[0],)
                for item in shape:
                    self.read(item, "a shape")
            for a in args[1:]:
                self.read(a, "the fill value")
            return
        if e.func == "causal":
            self.read(args[0] if args else None, static)
            for a in args[1:]:
                self.read(a, "an offset of causal()")
            return
        for a in args:
            self.read(a, static)

    def subscripts(self, items) -> None:
        for it in items or ():
            if isinstance(it, ast.Slice):
                self.read(it.lo, "a slice bound")
                self.read(it.hi, "a slice bound")
            elif not (isinstance(it, ast.Name) and it.id == "None"):
                self.read(it, "an index")

    # ---------------------------------------------------------- writes
    def write(self, target: ast.Target, span: Span, partial: bool) -> None:
        name = target.name
        kind = self.kind(name)
        if kind == "input":
            self.report("E0316", f"cannot assign to input {name}: inputs are read-only (load a tile of it into a "
                                 "new name)", target.span)
        elif kind == "output":
            self.report("E0317", f"cannot assign to output {name}: write it with 'store ... -> {name}[...]'",
                        target.span)
        elif kind in ("loop index", "param", "dimension", "constant"):
            self.report("E0320", f"cannot assign to {kind} '{name}'", target.span)
        elif partial:
            self.name(ast.Name(name, target.span), None)
            self.subscripts(target.index)
        else:
            self.subscripts(target.index)
            self.vals[name] = Val(span)

    def channel(self, ref: ast.UnitRef) -> None:
        if ref.name not in self.channels:
            self.report("E0310", f"unknown channel '{ref.name}'{scope.suggest(ref.name, self.channels)}", ref.span)
        self.read(ref.index, "a channel index")


__all__ = ["Names", "Val"]
