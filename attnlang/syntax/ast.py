"""The abstract syntax tree: small frozen dataclasses (`nodes.node`), each with its span.

Lark trees never leave the front end; everything after the parser sees only
these nodes.
"""

from __future__ import annotations

from typing import Union

from ..diagnostics import Span
from .nodes import node
from .units import Quantity

# ---------------------------------------------------------------- expressions


@node
class Num:
    value: float
    is_int: bool
    span: Span


@node
class QuantityLit:
    quantity: Quantity
    span: Span


@node
class Name:
    id: str
    span: Span


@node
class Unary:
    op: str  # "-" | "+" | "not"
    operand: "Expr"
    span: Span


@node
class Binary:
    op: str  # + - * / % // @ ** and or == != < <= > >=
    left: "Expr"
    right: "Expr"
    span: Span


@node
class Call:
    func: str
    args: tuple["Expr", ...]
    span: Span
    func_span: Span


@node
class Slice:
    lo: "Expr | None"
    hi: "Expr | None"
    span: Span


@node
class Index:
    base: "Expr"
    items: tuple["Expr | Slice", ...]
    span: Span


@node
class Attr:
    base: "Expr"
    name: str  # only "T" has a meaning today
    span: Span


@node
class ListLit:
    items: tuple["Expr", ...]
    span: Span


@node
class UnitRef:
    name: str
    index: "Expr | None"
    span: Span


@node
class OnUnit:
    """`expr on UNIT`: every operation of expr runs on that unit."""

    expr: "Expr"
    unit: UnitRef
    span: Span


Expr = Union[Num, QuantityLit, Name, Unary, Binary, Call, Index, Attr, ListLit, OnUnit]

# ---------------------------------------------------------------- hardware


@node
class Shape2:
    rows: int
    cols: int
    span: Span


Value = Union[Expr, Shape2]


@node
class Prop:
    name: str
    values: tuple[Value, ...]
    span: Span
    name_span: Span


@node
class MemoryDecl:
    name: str
    props: tuple[Prop, ...]
    span: Span
    name_span: Span


@node
class OpDecl:
    ops: tuple[str, ...]
    props: tuple[Prop, ...]
    span: Span


@node
class UnitDecl:
    name: str
    count: "Expr | None"
    kind: str
    props: tuple[Prop, ...]
    ops: tuple[OpDecl, ...]
    span: Span
    name_span: Span
    kind_span: Span


@node
class HwChannel:
    name: str
    count: "Expr | None"
    src: UnitRef
    dst: UnitRef
    props: tuple[Prop, ...]
    span: Span
    name_span: Span


@node
class LinkDecl:
    src: UnitRef
    dst: UnitRef
    var: str | None
    lo: "Expr | None"
    hi: "Expr | None"
    props: tuple[Prop, ...]
    span: Span


@node
class Hardware:
    name: str
    props: tuple[Prop, ...]
    memories: tuple[MemoryDecl, ...]
    units: tuple[UnitDecl, ...]
    channels: tuple[HwChannel, ...]
    links: tuple[LinkDecl, ...]
    span: Span
    name_span: Span
    #: params and `where` constraints declared in the block, in order: each is a param or constraint of every
    #: kernel that runs on this hardware
    params: tuple["Param | Where", ...] = ()


# ---------------------------------------------------------------- kernels


@node
class TensorDecl:
    name: str
    dtype: str
    dims: tuple[Expr, ...]
    span: Span
    dtype_span: Span


@node
class Spec:
    output: str
    expr: Expr
    span: Span


@node
class Target:
    name: str
    index: tuple["Expr | Slice", ...] | None
    span: Span


@node
class Assign:
    target: Target
    op: str  # "=" or "+=", "-=", "*=", "/="
    expr: Expr
    span: Span

    @property
    def value(self) -> Expr:
        """The value assigned: `x += e` assigns `x + e`."""
        if self.op == "=":
            return self.expr
        return Binary(self.op[0], Name(self.target.name, self.target.span), self.expr, self.span)


@node
class Load:
    target: Target
    tensor: str
    index: tuple["Expr | Slice", ...] | None
    memory: str
    span: Span
    tensor_span: Span
    memory_span: Span


@node
class Store:
    expr: Expr
    tensor: str
    index: tuple["Expr | Slice", ...] | None
    span: Span
    tensor_span: Span


@node
class Send:
    channel: UnitRef
    expr: Expr
    span: Span


@node
class Recv:
    target: Target
    channel: UnitRef
    span: Span


@node
class Discard:
    names: tuple[Name, ...]
    span: Span


@node
class Annotation:
    name: str
    args: tuple[Expr, ...]
    span: Span


@node
class For:
    var: str
    lo: Expr
    hi: Expr
    step: Expr | None
    annotations: tuple[Annotation, ...]
    body: tuple["Stmt", ...]
    span: Span
    var_span: Span


@node
class If:
    cond: Expr
    then: tuple["Stmt", ...]
    orelse: tuple["Stmt", ...]
    span: Span


@node
class Process:
    name: str
    var: str | None
    lo: Expr | None
    hi: Expr | None
    unit: UnitRef
    body: tuple["Stmt", ...]
    span: Span
    name_span: Span


@node
class Param:
    name: str
    domain: tuple[Expr, ...] | None  # an explicit set of values
    domain_range: tuple[Expr, Expr, Expr | None] | None  # lo .. hi (inclusive) by step
    default: Expr | None
    span: Span
    name_span: Span


@node
class DimBinding:
    name: str
    value: Expr
    span: Span


@node
class DimDecl:
    bindings: tuple[DimBinding, ...]
    span: Span


@node
class Where:
    conds: tuple[Expr, ...]
    span: Span


@node
class ChannelDecl:
    name: str
    count: Expr | None
    dtype: str
    props: tuple[Prop, ...]
    span: Span
    name_span: Span


Stmt = Union[Assign, Load, Store, Send, Recv, Discard, For, If, Process, Param, DimDecl, Where, ChannelDecl]


@node
class Kernel:
    name: str
    inputs: tuple[TensorDecl, ...]
    outputs: tuple[TensorDecl, ...]
    hardware: str | None
    hardware_span: Span | None
    specs: tuple[Spec, ...]
    body: tuple[Stmt, ...]
    span: Span
    name_span: Span


@node
class Use:
    module: str  # dotted stdlib name, or a path when is_path
    is_path: bool
    span: Span


@node
class Module:
    file: str
    uses: tuple[Use, ...]
    hardware: tuple[Hardware, ...]
    kernels: tuple[Kernel, ...]


def walk_statements(body):
    """Every statement of a body, nested ones (loops, processes, both arms of an if) included, in source order."""
    for s in body:
        yield s
        if isinstance(s, (For, Process)):
            yield from walk_statements(s.body)
        elif isinstance(s, If):
            yield from walk_statements(s.then)
            yield from walk_statements(s.orelse)


#: The statements of processes and channels: only the interpreter runs them.
STREAM_STATEMENTS = (Process, Send, Recv, ChannelDecl)


def first_stream_statement(body):
    """The first process or channel statement of a body (nested ones included), or None."""
    return next((s for s in walk_statements(body) if isinstance(s, STREAM_STATEMENTS)), None)


def subexprs(e):
    """e and every expression below it (slices and unit indices included), parents first."""
    stack = [e]
    while stack:
        x = stack.pop()
        if x is None:
            continue
        yield x
        if isinstance(x, Unary):
            stack.append(x.operand)
        elif isinstance(x, Binary):
            stack += [x.right, x.left]
        elif isinstance(x, Call):
            stack += reversed(x.args)
        elif isinstance(x, Index):
            stack += [*reversed(x.items), x.base]
        elif isinstance(x, Slice):
            stack += [x.hi, x.lo]
        elif isinstance(x, Attr):
            stack.append(x.base)
        elif isinstance(x, ListLit):
            stack += reversed(x.items)
        elif isinstance(x, OnUnit):
            stack += [x.unit.index, x.expr]
