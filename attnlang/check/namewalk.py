"""The statement walk of the names rule (names.py holds what a name is and how it is read)."""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from ..diagnostics import Diagnostic, Span, warning
from ..hardware import Hardware
from ..program import Program
from ..static import Static
from ..syntax import ast
from . import scope
from .names import Names, Val, _at


class NameWalk(Names):
    def run(self) -> None:
        self.declarations()
        self.block(self.k.body)
        self.specs()
        self.outputs_stored()

    # ---------------------------------------------------------- declarations
    def declarations(self) -> None:
        seen: dict[str, tuple[str, Span]] = {}

        def declare(name: str, what: str, span: Span) -> None:
            if name in seen:
                kind, first = seen[name]
                self.report("E0323", f"'{name}' is declared twice (as {kind} at {_at(first)}, and as {what})", span)
            else:
                seen[name] = (what, span)

        for t in self.k.inputs:
            declare(t.name, "an input", t.span)
        for t in self.k.outputs:
            declare(t.name, "an output", t.span)
        for t in self.k.inputs + self.k.outputs:
            for d in t.dims:
                if not isinstance(d, ast.Name):  # a plain name declares a dimension; an expression reads them
                    self.read(d, "a tensor's dimension")
        for s in self.k.body:
            if isinstance(s, ast.Param):
                declare(s.name, "a param", s.name_span)
            elif isinstance(s, ast.DimDecl):
                for b in s.bindings:
                    declare(b.name, "a dimension", b.span)
            elif isinstance(s, ast.ChannelDecl):
                declare(s.name, "a channel", s.name_span)

    def top_level_only(self, s, what: str) -> None:
        if self.depth > 1:
            self.report("E0319", f"{what} belong at the top level of the kernel, not inside a block", s.span)

    # ---------------------------------------------------------- statements
    def block(self, body) -> None:
        self.depth += 1
        for s in body:
            self.STMTS.get(type(s), NameWalk.s_skip)(self, s)
        self.depth -= 1

    def s_skip(self, s) -> None:
        pass

    def s_param(self, s: ast.Param) -> None:
        self.top_level_only(s, "param declarations")
        if s.domain_range is not None:
            for e in s.domain_range:
                self.read(e, "a param domain")

    def s_dim(self, s: ast.DimDecl) -> None:
        self.top_level_only(s, "dim declarations")

    def s_where(self, s: ast.Where) -> None:
        self.top_level_only(s, "where constraints")
        for c in s.conds:
            self.read(c, "a where constraint")

    def s_channel(self, s: ast.ChannelDecl) -> None:
        self.top_level_only(s, "channel declarations")
        self.read(s.count, "a channel array size")
        for p in s.props:
            for v in p.values:
                if not isinstance(v, ast.Shape2):
                    self.read(v, f"channel property '{p.name}'")

    def s_assign(self, s: ast.Assign) -> None:
        self.read(s.expr)
        partial = s.target.index is not None or s.op != "="
        if s.op != "=" and s.target.index is None:
            self.name(ast.Name(s.target.name, s.target.span), None)
            self.write(s.target, s.span, partial=False)
            return
        self.write(s.target, s.span, partial)

    def s_load(self, s: ast.Load) -> None:
        self.subscripts(s.index)
        kind = self.kind(s.tensor)
        if kind == "value":
            self.read_value(ast.Name(s.tensor, s.tensor_span))
        elif kind is None:
            self.missing(ast.Name(s.tensor, s.tensor_span))
        elif kind not in ("input", "output"):
            self.report("E0318", f"load reads a tensor or a value; '{s.tensor}' is a {kind}", s.tensor_span)
        if s.memory not in self.hw.memories:
            self.report("E0324", f"hardware '{self.hw.name}' has no memory '{s.memory}'"
                                 f"{scope.suggest(s.memory, self.hw.memories)}", s.memory_span)
        self.write(s.target, s.span, s.target.index is not None)

    def s_store(self, s: ast.Store) -> None:
        self.read(s.expr)
        self.subscripts(s.index)
        kind = self.kind(s.tensor)
        if kind == "output":
            return
        if kind is None:
            hint = scope.suggest(s.tensor, self.f.outputs)
            self.report("E0310", f"unknown name '{s.tensor}'{hint}", s.tensor_span)
        elif kind == "value":
            self.report("E0317", f"store writes an output tensor; '{s.tensor}' is a value (assign to it instead)",
                        s.tensor_span)
        else:
            outs = ", ".join(self.f.outputs) or "none"
            self.report("E0317", f"store writes an output tensor; '{s.tensor}' is {_a(kind)} (outputs: {outs})",
                        s.tensor_span)

    def s_send(self, s: ast.Send) -> None:
        self.channel(s.channel)
        self.read(s.expr)

    def s_recv(self, s: ast.Recv) -> None:
        self.channel(s.channel)
        self.write(s.target, s.span, s.target.index is not None)

    def s_discard(self, s: ast.Discard) -> None:
        for n in s.names:
            kind = self.kind(n.id)
            if kind is None:
                hint = scope.suggest(n.id, self.vals)
                self.report("E0313", f"discard of unknown name '{n.id}'{hint}", n.span)
            elif kind != "value":
                self.report("E0313", f"only values can be discarded; '{n.id}' is {_a(kind)}", n.span)
            elif self.vals[n.id].discarded is not None and not self.vals[n.id].discard_maybe:
                first = self.vals[n.id].discarded
                again = "again on a later iteration" if first == n.span else f"twice (first at {_at(first)})"
                self.report("E0314", f"'{n.id}' is discarded {again}, with no new value in between", n.span)
            else:
                self.vals[n.id] = replace(self.vals[n.id], discarded=n.span, discard_maybe=False)

    def s_for(self, s: ast.For) -> None:
        for e in (s.lo, s.hi, s.step):
            self.read(e, "a loop bound")
        for a in s.annotations:
            if a.name != "parallel":  # @parallel(core) names a unit; units.py checks it
                for x in a.args:
                    self.read(x, f"the argument of @{a.name}")
        self.loop(s, s.var, s.var_span)

    def s_process(self, s: ast.Process) -> None:
        self.read(s.lo, "a process range")
        self.read(s.hi, "a process range")
        self.loop(s, s.var, s.name_span, s.unit.index)

    def loop(self, s, var: str | None, var_span: Span, unit_index=None) -> None:
        if var is not None:
            kind = self.kind(var)
            if kind is not None:
                self.report("E0321", f"loop index '{var}' hides the {kind} of the same name", var_span)
            self.loop_vars.append(var)
        self.read(unit_index, "a unit index")
        entry = dict(self.vals)
        # The walk of a loop depends only on the values it starts with (and the names in scope, and whether
        # its diagnostics are silenced): a loop met again in the same state ends in the same state and
        # says nothing new, so it is not walked again. Without this a loop inside a loop would be walked
        # 2 ** depth times (each loop walks its body twice, for the first and a later iteration).
        key = (id(s), tuple(sorted(entry.items())), tuple(self.loop_vars), self.quiet > 0, self.depth)
        done = self.loops_walked.get(key)
        if done is not None:
            self.vals = dict(done)
        else:
            self.block(s.body)
            # The next iteration sees what this one left in the values that outlive it.
            self.vals = {k: v for k, v in self.vals.items() if k in entry}
            self.block(s.body)
            self.vals = {k: v for k, v in self.vals.items() if k in entry}
            self.loops_walked[key] = dict(self.vals)
        if var is not None:
            self.loop_vars.pop()

    def s_if(self, s: ast.If) -> None:
        self.read(s.cond, "an if condition")
        choice = scope.condition(s.cond, self.env)
        entry = dict(self.vals)
        ends = []
        for taken, body in ((True, s.then), (False, s.orelse)):
            self.vals = dict(entry)
            dead = choice is not None and choice != taken
            self.quiet += dead
            self.block(body)
            self.quiet -= dead
            ends.append(self.vals)
        if choice is not None:
            self.vals = ends[0] if choice else ends[1]
            return
        self.vals = {}
        for name in set(ends[0]) | set(ends[1]):
            a, b = ends[0].get(name), ends[1].get(name)
            if a is None or b is None:
                v = a or b
                self.vals[name] = replace(v, maybe=True) if name not in entry else v
                continue
            d = a.discarded or b.discarded
            self.vals[name] = Val(a.span, a.maybe or b.maybe, d,
                                  d is not None and (a.discarded is None or b.discarded is None
                                                     or a.discard_maybe or b.discard_maybe))

    STMTS = {
        ast.Param: s_param, ast.DimDecl: s_dim, ast.Where: s_where, ast.ChannelDecl: s_channel,
        ast.Assign: s_assign, ast.Load: s_load, ast.Store: s_store, ast.Send: s_send, ast.Recv: s_recv,
        ast.Discard: s_discard, ast.For: s_for, ast.Process: s_process, ast.If: s_if,
    }

    # ---------------------------------------------------------- specs and outputs
    def specs(self) -> None:
        self.vals = {}
        for spec in self.k.specs:
            if spec.output not in self.f.outputs:
                self.report("E0322", f"spec for '{spec.output}', which is not an output of kernel '{self.k.name}'"
                                     f"{scope.suggest(spec.output, self.f.outputs)}", spec.span)
            self.in_spec = True
            self.read(spec.expr)
            self.in_spec = False

    def outputs_stored(self) -> None:
        stored = {s.tensor for s in scope.walk(self.k.body) if isinstance(s, ast.Store)}
        for t in self.k.outputs:
            if t.name not in stored:
                self.diags.append(warning("E0329", f"output {t.name} is never stored; it stays zero", t.span))


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"

def check_names(prog: Program, kernel: ast.Kernel, env: Mapping[str, Static], hw: Hardware) -> list[Diagnostic]:
    """Unknown names, reads before writes or after discards, writes to inputs, stores to non-outputs (E031x-E032x)."""
    w = NameWalk(kernel, env, hw)
    w.run()
    return w.diags


__all__ = ["NameWalk", "check_names"]
