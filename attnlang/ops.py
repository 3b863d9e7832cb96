"""Which unit op each expression operation is, and which unit runs it.

The one home of the operation-to-unit binding: the checker reports what it
cannot bind, the interpreter, the analytical model and the JIT all cost what
it binds.
"""

from __future__ import annotations

from .diagnostics import did_you_mean
from .hardware import Hardware, Unit
from .syntax.nodes import node

#: Binary operators that run elementwise on a vector unit, by unit op name.
BINARY_OPS: dict[str, str] = {"+": "add", "-": "sub", "*": "mul", "/": "div", "%": "mod", "//": "div",
                              "**": "pow", "==": "cmp", "!=": "cmp", "<": "cmp", "<=": "cmp", ">": "cmp",
                              ">=": "cmp"}
#: Elementwise builtins, by unit op name.
ELEMENTWISE_FUNCS: dict[str, str] = {
    "exp": "exp", "log": "log", "sqrt": "sqrt", "abs": "abs", "max": "max", "min": "min",
    "where": "select", "causal": "mask",
}
#: Row reductions (over the last axis) and full reductions, by unit op name.
REDUCTIONS: dict[str, str] = {"rowmax": "max", "rowmin": "min", "rowsum": "add", "sum": "add", "mean": "add"}
#: softmax runs as these vector ops per element, unless a unit has `op softmax`.
SOFTMAX_STEPS: tuple[str, ...] = ("max", "sub", "exp", "add", "div")
#: Builtins that only allocate or relabel data: no unit runs them.
FREE_FUNCS: frozenset[str] = frozenset({"full", "zeros", "ones", "transpose"})
#: Operations that run on a matrix unit.
MATRIX_FUNCS: frozenset[str] = frozenset({"dot"})


#: How wide each dtype is for promotion: an operation's result takes the wider operand's dtype.
_DTYPE_RANK = {"i8": 0, "i32": 1, "bf16": 2, "f16": 2, "f32": 3, "f64": 4}


def promote(a: str | None, b: str | None) -> str | None:
    """The dtype of an operation on a and b (docs/semantics.md): None is a plain number, which
    adapts to the other operand; f16 with bf16 gives f32; otherwise the wider of the two."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    if {a, b} == {"f16", "bf16"}:
        return "f32"
    return a if _DTYPE_RANK.get(a, 3) > _DTYPE_RANK.get(b, 3) else b


@node
class Binding:
    unit: Unit
    op: str  # the unit op charged ("matmul" for a matrix unit)


def unit_op_of(kind: str, name: str, nargs: int = 2) -> str | None:
    """The unit op for an operator or builtin: `kind` is "binary", "unary" or "call"."""
    if kind == "binary":
        return "matmul" if name == "@" else BINARY_OPS.get(name)
    if kind == "unary":
        return "neg" if name == "-" else None
    if name in MATRIX_FUNCS:
        return "matmul"
    if name in ("max", "min") and nargs == 1:
        return REDUCTIONS.get("rowmax" if name == "max" else "rowmin")
    if name in ELEMENTWISE_FUNCS:
        return ELEMENTWISE_FUNCS[name]
    if name in REDUCTIONS:
        return REDUCTIONS[name]
    if name == "softmax":
        return "softmax"
    return None


def ops_needed(op: str, unit: Unit) -> tuple[str, ...]:
    """The unit ops an operation needs on that unit (softmax expands unless the unit has it)."""
    if op == "softmax" and not unit.has_op("softmax"):
        return SOFTMAX_STEPS
    return (op,)


def vector_cost(op: str, unit: Unit, elements):
    """(cost.Timing, energy in pJ) of a vector operation over `elements` on `unit`: each unit op it needs, in
    order, by the formulas of attnlang/cost.py. Scalars for the interpreter and the JIT, arrays for the
    analytical model."""
    from . import cost

    steps = [unit.ops[step] for step in ops_needed(op, unit)]
    energy = 0.0
    for c in steps:
        energy = energy + cost.vector_energy_pj(elements, c.energy_pj)
    return cost.vector_timing(elements, unit.lanes, [(c.interval, c.latency) for c in steps]), energy


def matmul_cost(unit: Unit, m, k, n, batch=1):
    """(cost.Timing, MACs, energy in pJ) of a (batch of) m x k @ k x n on a matrix unit, by its dataflow."""
    from . import cost

    macs = batch * m * k * n
    cycles = cost.matmul_cycles(m, k, n, unit.rows, unit.cols, batch, unit.dataflow, unit.fill)
    return cost.fixed_timing(cycles), macs, cost.mac_energy_pj(macs, unit.mac_pj)


def bind(op: str, hw: Hardware, unit_name: str | None = None) -> Binding | str:
    """The unit that runs op: the named one, else the first matrix unit for
    matmul and the first vector unit for the rest. A str is the reason it cannot."""
    if unit_name is not None:
        unit = hw.units.get(unit_name)
        if unit is None:
            return f"hardware '{hw.name}' has no unit '{unit_name}'{did_you_mean(unit_name, hw.units)}"
        missing = [o for o in ops_needed(op, unit) if not unit.has_op(o)]
        if missing:
            return f"unit {unit.name} has no op {missing[0]}"
        return Binding(unit, op)
    kind = "matrix" if op == "matmul" else "vector"
    candidates = [u for u in hw.units.values() if u.kind == kind]
    if not candidates:
        return f"hardware '{hw.name}' has no {kind} unit to run {op}"
    for unit in candidates:
        if all(unit.has_op(o) for o in ops_needed(op, unit)):
            return Binding(unit, op)
    missing = next(o for o in ops_needed(op, candidates[0]) if not candidates[0].has_op(o))
    return f"unit {candidates[0].name} has no op {missing}"


def fma_parts(e) -> tuple | None:
    """`a * b + c` or `c + a * b` as (a, b, c): one fused op on a unit that has `op fma`."""
    from .syntax import ast

    if not isinstance(e, ast.Binary) or e.op != "+":
        return None
    if isinstance(e.left, ast.Binary) and e.left.op == "*":
        return e.left.left, e.left.right, e.right
    if isinstance(e.right, ast.Binary) and e.right.op == "*":
        return e.right.left, e.right.right, e.left
    return None


@node
class AllocArgs:
    """The arguments of full(shape, value[, dtype]), zeros(shape[, dtype]), ones(shape[, dtype])."""

    shape: tuple  # the dimension expressions
    value: object  # full's fill expression; None for zeros and ones
    dtype: str


def alloc_args(e) -> AllocArgs | str:
    """Split an allocating call into shape, fill value and dtype; a str is what is wrong with it."""
    from .syntax import ast
    from .syntax.vocab import DTYPES

    args = list(e.args)
    dtype = "f32"
    if args and isinstance(args[-1], ast.Name) and args[-1].id in DTYPES:
        dtype = args.pop().id
    want = 2 if e.func == "full" else 1
    if len(args) != want:
        return f"{e.func}() takes a shape{', a value' if want == 2 else ''} and an optional dtype"
    shape = args[0].items if isinstance(args[0], ast.ListLit) else (args[0],)
    return AllocArgs(tuple(shape), args[1] if want == 2 else None, dtype)
