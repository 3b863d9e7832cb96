"""What every rule needs to know about a kernel: its declared names, loops and bindings.

`Facts` gathers a kernel's tensors, dims, params, symbols and channels once;
the helpers below read loops, annotations and `if` conditions the same way in
every rule, and bind operations to units (through attnlang/ops.py) the same
way in the shape inference, the unit rule and the capacity rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

from .. import ops
from ..binding import signature_dims, static_decls, symbols  # noqa: F401 (signature_dims re-exported)
from ..diagnostics import did_you_mean
from ..hardware import Hardware, Unit
from ..syntax import ast
from ..syntax.vocab import BUILTINS, DTYPES
from .dims import Unknown, veval

#: Names with a fixed meaning in expressions.
CONSTANTS = frozenset({"inf", "None", "True", "False"})

Loop = ast.For | ast.Process  # a construct that binds an index


@dataclass
class Facts:
    """A kernel's declared names, by kind."""

    kernel: ast.Kernel
    inputs: dict[str, ast.TensorDecl] = field(default_factory=dict)
    outputs: dict[str, ast.TensorDecl] = field(default_factory=dict)
    dims: set[str] = field(default_factory=set)
    params: dict[str, ast.Param] = field(default_factory=dict)
    symbols: set[str] = field(default_factory=set)
    channels: dict[str, ast.ChannelDecl] = field(default_factory=dict)

    @property
    def tensors(self) -> dict[str, ast.TensorDecl]:
        return {**self.inputs, **self.outputs}

    def statics(self) -> set[str]:
        """Names whose value is known before the kernel runs (loop indices apart)."""
        return self.dims | set(self.params) | self.symbols | CONSTANTS


def facts(kernel: ast.Kernel) -> Facts:
    f = Facts(kernel)
    for t in kernel.inputs:
        f.inputs.setdefault(t.name, t)
    for t in kernel.outputs:
        f.outputs.setdefault(t.name, t)
    f.dims = set(signature_dims(kernel))
    for d in static_decls(kernel):
        if isinstance(d, ast.Param):
            f.params.setdefault(d.name, d)
        else:
            f.dims.add(d.name)
    f.symbols = symbols(kernel)
    for s in kernel.body:
        if isinstance(s, ast.ChannelDecl):
            f.channels.setdefault(s.name, s)
    return f


def full_env(kernel: ast.Kernel, env: Mapping) -> dict:
    """env with the symbolic param values (q_outer...) standing for themselves, and symbolic params
    without a value given their default (binding.bind cannot evaluate a symbol yet)."""
    syms = symbols(kernel)
    out = {s: s for s in syms}
    out.update(env)
    for d in static_decls(kernel):
        if isinstance(d, ast.Param) and d.name not in out:
            default = d.default if d.default is not None else (d.domain[0] if d.domain else None)
            if isinstance(default, ast.Name) and default.id in syms:
                out[d.name] = default.id
    return out


def text_of(prog, node) -> str:
    """The source text of a node when it is on one line (as the user wrote it), else its printed form."""
    from .dims import show

    span = getattr(node, "span", None)
    if prog is not None and span is not None and span.line == span.end_line:
        line = prog.sources.line(span.file, span.line)
        if line is not None and span.end_column - 1 <= len(line):
            text = line[span.column - 1:span.end_column - 1]
            if text.strip():
                return text
    return show(node)


def suggest(name: str, candidates: Iterable[str]) -> str:
    """'; did you mean 'x'?' when a close name exists, else '' (diagnostics.did_you_mean)."""
    return did_you_mean(name, candidates)


# ---------------------------------------------------------------- loops and conditions


def loop_parts(loop: Loop) -> tuple[str, ast.Expr, ast.Expr, ast.Expr | None]:
    """(index, lo, hi, step) of a for loop or a process range; step None means 1."""
    if isinstance(loop, ast.For):
        return loop.var, loop.lo, loop.hi, loop.step
    return loop.var, loop.lo, loop.hi, None


def annotations(loop: ast.For, name: str) -> list[ast.Annotation]:
    return [a for a in loop.annotations if a.name == name]


def pipeline_depth(loop: ast.For, env: Mapping):
    """The @pipeline copies of a loop (1 without it), a scalar or an array; None if unknown."""
    anns = annotations(loop, "pipeline")
    if not anns:
        return 1
    if not anns[0].args:
        return 2
    try:
        return veval(anns[0].args[0], env)
    except Unknown:
        return None


def condition(cond: ast.Expr, env: Mapping) -> bool | None:
    """An `if` condition decided from dims and params alone; None when it depends on more.

    `and` and `or` are decided by either side alone where that side settles them (a param that is
    false rules out `param == x and i == 0` whatever the loop index)."""
    if isinstance(cond, ast.Binary) and cond.op in ("and", "or"):
        left, right = condition(cond.left, env), condition(cond.right, env)
        settles = cond.op == "or"  # the value of one side that decides the whole
        if left is settles or right is settles:
            return settles
        return None if left is None or right is None else (not settles)
    try:
        v = veval(cond, env)
    except Unknown:
        return None
    if hasattr(v, "shape") and getattr(v, "shape", ()) != ():
        return None
    return bool(v)


walk = ast.walk_statements


def walk_live(body: Iterable[ast.Stmt], env: Mapping, loops: tuple = (),
              quiet: bool = False) -> Iterator[tuple[ast.Stmt, tuple, bool]]:
    """(statement, enclosing loops, quiet) in source order; quiet inside a branch the params rule out."""
    for s in body:
        yield s, loops, quiet
        if isinstance(s, (ast.For, ast.Process)):
            yield from walk_live(s.body, env, loops + (s,), quiet)
        elif isinstance(s, ast.If):
            choice = condition(s.cond, env)
            yield from walk_live(s.then, env, loops, quiet or choice is False)
            yield from walk_live(s.orelse, env, loops, quiet or choice is True)


def exprs_of(s: ast.Stmt) -> list:
    """The expressions a statement holds directly (not those of nested statements)."""
    if isinstance(s, ast.Assign):
        return [s.expr, *(s.target.index or ())]
    if isinstance(s, ast.Load):
        return [*(s.index or ()), *(s.target.index or ())]
    if isinstance(s, ast.Store):
        return [s.expr, *(s.index or ())]
    if isinstance(s, ast.Send):
        return [s.expr]
    if isinstance(s, ast.Recv):
        return [*(s.target.index or ())]
    return []


subexprs = ast.subexprs


# ---------------------------------------------------------------- binding


def op_kind(op: str) -> str:
    return "matrix" if op == "matmul" else "vector"


def binding_for(op: str, hw: Hardware, explicit: str | None, process_unit: str | None) -> ops.Binding | str:
    """The unit an operation runs on: `on UNIT` first; inside `process P on U`, U when U is the
    kind of unit the op needs; else the hardware's default (attnlang/ops.py)."""
    if explicit is not None:
        return ops.bind(op, hw, explicit)
    unit = hw.units.get(process_unit) if process_unit else None
    if unit is not None and unit.kind == op_kind(op):
        return ops.bind(op, hw, unit.name)
    return ops.bind(op, hw)


def root_memory(hw: Hardware) -> str:
    return hw.root_memory().name


def unit_memory(unit: Unit | None, hw: Hardware) -> str:
    """Where a unit's results live (the root memory when it names none, as the interpreter does)."""
    return (unit.memory if unit is not None else None) or root_memory(hw)


def alloc_memory(hw: Hardware, explicit: str | None, process_unit: str | None) -> str:
    """Where full/zeros/ones live: the memory of the vector unit that would use them."""
    for name in (explicit, process_unit):
        unit = hw.units.get(name) if name else None
        if unit is not None:
            return unit_memory(unit, hw)
    return unit_memory(hw.default_unit("vector"), hw)


def is_function(name: str) -> bool:
    return name in BUILTINS


def is_dtype(name: str) -> bool:
    return name in DTYPES
