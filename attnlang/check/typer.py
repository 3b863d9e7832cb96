"""Type inference over a kernel: symbolic shapes, dtypes and memories of every value.

One walk in program order, like the interpreter's, but over types: loops run
their body once (twice when a value carried around the loop changes type),
`if` takes the branch the params choose and keeps the other quiet, a value
first assigned in a loop body or a process dies at its end. The walk records
what the other rules need: the type of every expression, every operation with
the unit it needs, every slice with its enclosing loops.
"""

from __future__ import annotations

from typing import Mapping

from ..diagnostics import Span, error, warning
from ..hardware import Hardware
from ..syntax import ast
from ..syntax.vocab import DTYPES
from . import scope
from .dims import dim_of, show, try_int
from .exprs import ExprTyper
from .types import POISON, Analysis, Ty


class Typer(ExprTyper):
    """Walks a kernel's statements; expressions are typed by ExprTyper."""

    def __init__(self, kernel: ast.Kernel, env: Mapping, hw: Hardware | None, chan_types: Mapping | None = None):
        self.k = kernel
        self.f = scope.facts(kernel)
        self.env = scope.full_env(kernel, env)
        self.hw = hw
        self.root = scope.root_memory(hw) if hw is not None else None
        self.a = Analysis()
        self.vals: dict[str, Ty] = {}
        self.loops: list = []
        self.guards: list[tuple[ast.Expr, bool]] = []
        self.explicit: list[ast.UnitRef] = []
        self.process_unit: ast.UnitRef | None = None
        self.quiet = 0
        self.in_spec = False
        self.first = dict(self.env)  # env with loop indices at their first iteration
        self.chan_types = dict(chan_types or {})
        self.tensor_ty = {t.name: self._decl_type(t) for t in kernel.inputs + kernel.outputs}

    # ---------------------------------------------------------- helpers
    def report(self, code: str, message: str, span: Span, *notes: str) -> None:
        if not self.quiet:
            self.a.diags.append(error(code, message, span, *notes))

    def warn(self, code: str, message: str, span: Span, *notes: str) -> None:
        if not self.quiet:
            self.a.diags.append(warning(code, message, span, *notes))

    def _decl_type(self, t: ast.TensorDecl) -> Ty:
        if t.dtype not in DTYPES:
            self.report("E0413", f"unknown element type '{t.dtype}'{scope.suggest(t.dtype, DTYPES)} "
                                 f"(known: {', '.join(DTYPES)})", t.dtype_span)
            return POISON
        return Ty(tuple(dim_of(d) for d in t.dims), t.dtype, self.root)

    def is_static_name(self, name: str) -> bool:
        return name in self.f.statics() or name in self.first

    def bind(self, name: str, ty: Ty, stmt) -> None:
        if name in self.tensor_ty or self.is_static_name(name):
            return  # not a value: names.py reports the assignment
        self.vals[name] = ty
        self.a.values[id(stmt)] = ty
        key = (name, stmt.span)
        self.a.assigned[key] = ty
        self.a.first_env[key] = dict(self.first)

    # ---------------------------------------------------------- statements
    def run(self) -> Analysis:
        self.block(self.k.body)
        self.in_spec = True
        for spec in self.k.specs:
            self.spec(spec)
        return self.a

    def block(self, body) -> None:
        for s in body:
            self.STMTS.get(type(s), Typer.s_skip)(self, s)

    def s_skip(self, s) -> None:
        pass

    def s_assign(self, s: ast.Assign) -> None:
        ty = self.expr(s.expr)
        name = s.target.name
        if s.target.index is not None:
            base = self.vals.get(name, POISON)
            part = self.subscript(base, s.target.index, s.target.span, "assign", name, s)
            if s.op != "=":
                ty = self.arith(s.op[0], s, (s.target, part), (s.expr, ty))
            self.check_fits(ty, part, f"{name}[{', '.join(show(i) for i in s.target.index)}]", s.span, "E0410")
            return
        if s.op != "=":
            old = self.vals.get(name, POISON)
            ty = self.arith(s.op[0], s, (s.target, old), (s.expr, ty))
        if name in self.tensor_ty or self.is_static_name(name):
            return  # not a value: names.py reports the assignment
        if ty.static:
            self.report("E0417", f"'{name}' would be a plain number; tensors are made with full(), zeros() "
                                 "or ones()", s.span)
            ty = POISON
        self.bind(name, ty, s)

    def s_load(self, s: ast.Load) -> None:
        base = self.vals.get(s.tensor) or self.tensor_ty.get(s.tensor, POISON)
        if base.static:
            base = POISON  # names.py says what it is instead
        part = self.subscript(base, s.index, s.span, "load", s.tensor, s)
        if s.target.index is not None:
            self.report("E0418", "load writes a whole value: load into a new name, then assign the part "
                                 f"({s.target.name}[...] = that name)", s.target.span)
        memory = s.memory if self.hw is not None and s.memory in self.hw.memories else None
        ty = Ty(part.shape, part.dtype, memory) if part.tensor else POISON
        self.bind(s.target.name, ty, s)

    def s_store(self, s: ast.Store) -> None:
        ty = self.expr(s.expr)
        out = self.tensor_ty.get(s.tensor, POISON) if s.tensor in self.f.outputs else POISON
        part = self.subscript(out, s.index, s.span, "store", s.tensor, s)
        target = s.tensor + (f"[{', '.join(show(i) for i in s.index)}]" if s.index else "")
        self.check_fits(ty, part, target, s.span, "E0409")

    def s_send(self, s: ast.Send) -> None:
        ty = self.expr(s.expr)
        if ty.tensor:
            self.a.sent.setdefault(s.channel.name, ty)

    def s_recv(self, s: ast.Recv) -> None:
        decl = self.f.channels.get(s.channel.name)
        sent = self.chan_types.get(s.channel.name)
        if decl is None or decl.dtype not in DTYPES or s.channel.name not in self.chan_types:
            ty = POISON
        else:
            memory = scope.alloc_memory(self.hw, None, self.process_unit.name if self.process_unit else None) \
                if self.hw is not None else None
            ty = Ty(sent.shape if sent is not None else (), decl.dtype, memory)
        if s.target.index is not None:
            base = self.vals.get(s.target.name, POISON)
            part = self.subscript(base, s.target.index, s.target.span, "assign", s.target.name, s)
            self.check_fits(ty, part, s.target.name, s.span, "E0410")
            return
        self.bind(s.target.name, ty, s)

    def s_discard(self, s: ast.Discard) -> None:
        for n in s.names:
            self.vals.pop(n.id, None)

    def s_for(self, s: ast.For) -> None:
        before = dict(self.vals)
        self.enter_loop(s)
        self.block(s.body)
        if any(k in self.vals and self.vals[k] != v for k, v in before.items()):
            self.block(s.body)  # a value carried around the loop changed type: see the next iteration
        self.leave_loop(s, before)

    def s_process(self, s: ast.Process) -> None:
        before = dict(self.vals)
        saved = self.process_unit
        self.process_unit = s.unit
        self.enter_loop(s)
        self.block(s.body)
        self.leave_loop(s, before)
        self.process_unit = saved

    def enter_loop(self, s) -> None:
        self.loops.append(s)
        if s.var is not None:
            lo = try_int(s.lo, self.first)
            self.first.pop(s.var, None)
            if lo is not None:
                self.first[s.var] = lo
            else:
                self.first[s.var] = None  # an index, but with no known value

    def leave_loop(self, s, before: dict) -> None:
        self.loops.pop()
        if s.var is not None:
            self.first.pop(s.var, None)
            if s.var in self.env:
                self.first[s.var] = self.env[s.var]
        # Values first assigned in the body die at its end (docs/semantics.md, Occupancy).
        self.vals = {k: v for k, v in self.vals.items() if k in before}

    def s_if(self, s: ast.If) -> None:
        choice = scope.condition(s.cond, self.env)
        before = dict(self.vals)
        results = []
        for taken, body in ((True, s.then), (False, s.orelse)):
            self.vals = dict(before)
            dead = choice is not None and choice != taken
            self.quiet += dead
            if choice is None:
                self.guards.append((s.cond, taken))
            self.block(body)
            if choice is None:
                self.guards.pop()
            self.quiet -= dead
            results.append(self.vals)
        if choice is None:
            self.vals = {**results[1], **results[0]}
        else:
            self.vals = results[0] if choice else results[1]

    STMTS = {
        ast.Assign: s_assign, ast.Load: s_load, ast.Store: s_store, ast.Send: s_send, ast.Recv: s_recv,
        ast.Discard: s_discard, ast.For: s_for, ast.If: s_if, ast.Process: s_process,
    }

    # ---------------------------------------------------------- specs
    def spec(self, spec: ast.Spec) -> None:
        self.vals = {}
        self.first = dict(self.env)
        ty = self.expr(spec.expr)
        out = self.tensor_ty.get(spec.output)
        if spec.output not in self.f.outputs or out is None or not out.tensor or not ty.tensor:
            return
        if len(ty.shape) != len(out.shape) or any(self.differ(a, b) for a, b in zip(ty.shape, out.shape, strict=True)):
            self.report("E0411", f"the spec of {spec.output} gives {ty} but {spec.output} is {out}", spec.span)
