"""Value types for the checker: a symbolic shape, a dtype and the memory a value lives in.

A type whose shape is None is *poison*: it belongs to an expression whose
mistake has already been reported, and everything built from it is poison
too, so one mistake gives one diagnostic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .. import ops
from ..cost import DTYPE_BYTES
from ..diagnostics import Diagnostic, Span
from ..syntax import ast
from ..syntax.nodes import node
from .dims import Dim, same, value_of


@node
class Ty:
    shape: tuple[Dim, ...] | None  # None: poison
    dtype: str | None  # None: a plain number that adapts to the other operand
    memory: str | None  # None: unknown, or no memory (a static number, a spec value)
    static: bool = False  # a number known before the kernel runs (a dim, a param, 2.0)

    @property
    def poison(self) -> bool:
        return self.shape is None

    @property
    def tensor(self) -> bool:
        return not self.static and self.shape is not None

    def with_shape(self, shape: tuple[Dim, ...] | None) -> "Ty":
        return Ty(shape, self.dtype, self.memory, self.static)

    def __str__(self) -> str:
        if self.static:
            return "a number"
        if self.shape is None:
            return "?"
        return f"{self.dtype or 'f32'}[{', '.join(str(d) for d in self.shape)}]"


POISON = Ty(None, None, None)
STATIC = Ty((), None, None, True)

#: Rank of each dtype in promotion: anything with f32 gives f32, f16 with bf16 gives f32.


promote = ops.promote


def elem_bytes(dtype: str | None) -> int:
    return DTYPE_BYTES.get(dtype or "f32", 4)


def is_one(d: Dim, env: Mapping) -> bool:
    return d.as_int() == 1 or value_of(d, env) == 1


def broadcast(shapes: list[tuple[Dim, ...]], env: Mapping) -> tuple[tuple[Dim, ...] | None, tuple[Dim, Dim] | None]:
    """NumPy broadcasting of symbolic shapes: (result, None), or (None, the two dims that clash)."""
    rank = max(len(s) for s in shapes)
    out: list[Dim] = []
    for axis in range(rank):
        cur: Dim | None = None
        for s in shapes:
            k = len(s) - rank + axis
            if k < 0:
                continue
            d = s[k]
            if cur is None or is_one(cur, env):
                cur = d
            elif is_one(d, env):
                continue
            elif same(cur, d, env) is False:
                return None, (cur, d)
        out.append(cur if cur is not None else Dim.const(1))
    return tuple(out), None


def show_shape(shape: tuple[Dim, ...]) -> str:
    return f"[{', '.join(str(d) for d in shape)}]"


@node
class OpRec:
    """An operation that runs on a unit (op None: full/zeros/ones, which only allocate)."""

    node: object
    op: str | None
    span: Span
    explicit: ast.UnitRef | None
    process_unit: ast.UnitRef | None
    operands: tuple[tuple[object, Ty], ...]
    result: Ty
    quiet: bool


@node
class SliceRec:
    """A subscripted tensor or value, with the loops and dynamic conditions around it."""

    kind: str  # "load" | "store" | "index" | "assign"
    base: str  # the tensor or value subscripted ("" for an expression)
    shape: tuple[Dim, ...]
    items: tuple
    span: Span
    loops: tuple
    guards: tuple[tuple[ast.Expr, bool], ...]
    stmt: object
    quiet: bool


@dataclass
class Analysis:
    types: dict[int, Ty] = field(default_factory=dict)  # id(expression) -> type
    values: dict[int, Ty] = field(default_factory=dict)  # id(statement) -> the value it writes
    assigned: dict[tuple[str, Span], Ty] = field(default_factory=dict)
    first_env: dict[tuple[str, Span], dict] = field(default_factory=dict)
    ops: dict[int, OpRec] = field(default_factory=dict)
    slices: dict[int, SliceRec] = field(default_factory=dict)
    sent: dict[str, Ty] = field(default_factory=dict)  # channel -> the type sent on it
    memo: dict = field(default_factory=dict)  # what later passes derive from the analysis, cached with it
    diags: list[Diagnostic] = field(default_factory=list)
