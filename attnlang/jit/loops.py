"""The lowering's loops: the compile-time mirror of attnlang/interp/engine.py's `for`.

A loop as an IR loop (its @pipeline copies, @parallel lanes, per-iteration accounting); a loop whose
slices change size with its index split into a part compiled once and a part lowered per index.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..limits import MAX_PIPELINE
from ..static import free_names
from ..syntax import ast
from . import budget
from .budget import Growth
from .evaluate import _extent
from .irkit import I64, i64
from .values import (
    Unsupported,
)


class PeelFirst(Exception):  # noqa: N818 - a signal to lower again, not an error
    """A loop's first iteration changed a name's layout: lower the kernel again with that loop peeled."""

    def __init__(self, span) -> None:
        super().__init__(span)
        self.span = span


class LoopLowering:
    """Lowering's `for` statements (mixed into Lowering)."""

    def s_For(self, s: ast.For) -> None:
        fn, b = self.fn, self.b
        lo = self.int_value(s.lo, "a loop bound")
        hi = self.int_value(s.hi, "a loop bound")
        step = self._static_int(s.step, "a loop step") if s.step is not None else 1
        if step <= 0:
            raise Unsupported(f"the loop step must be positive, not {step}", s.step.span)
        pipeline, parallel = 1, None
        for a in s.annotations:
            if a.name == "pipeline":
                pipeline = self._static_int(a.args[0], "a pipeline depth") if a.args else 2
                if not 1 <= pipeline <= MAX_PIPELINE:
                    raise Unsupported(f"@pipeline({pipeline})", a.span)
            elif a.name == "parallel":
                parallel = a
        if pipeline > 1 and self.maybe:
            raise Unsupported("a @pipeline loop after a name was bound on some paths only (the interpreter "
                              "charges its copies by whether it is bound)", s.span)
        split = None
        if isinstance(lo, int) and isinstance(hi, int) and not s.annotations and self._varying_extent(s.body, s.var):
            if len(range(lo, hi, step)) > budget.MAX_UNROLLED:
                raise Unsupported(f"a loop whose slices change size with its index, over more than "
                                  f"{budget.MAX_UNROLLED} iterations (the JIT lowers such a loop once per index)",
                                  s.span)
            split = self._split_at(s)
            if split is None:
                return self._unrolled(s, range(lo, hi, step))
            self.did_split = True
        if self.proc is not None:
            if parallel is not None:
                raise Unsupported("@parallel inside a process", parallel.span)
            if not isinstance(hi, int):
                raise Unsupported("a loop bound inside a process that depends on an outer loop index", s.hi.span)
        # A loop whose first iteration leaves a name in another layout than it found it (an accumulator
        # made f16 that the first product makes f32) has its first iteration lowered on its own (peeled),
        # then the loop from the second: lower_kernel lowers again with the loop in self.peel.
        peelable = split is None and parallel is None and self.proc is None and isinstance(lo, int) \
            and isinstance(hi, int) and lo < hi
        if peelable and s.span in self.peel:
            self._first_iteration(s, lo, pipeline)
            lo += step
            if lo >= hi:
                return
        peel = peelable and s.span not in self.peel
        outer = self.loops[-1] if self.loops else CLoop(1, None, (), 1)
        lo_v, hi_v = (i64(lo) if isinstance(lo, int) else lo), (i64(hi) if isinstance(hi, int) else hi)
        width = None
        if parallel is not None:
            unit = self.hw.units.get(parallel.args[0].id) if parallel.args and isinstance(
                parallel.args[0], ast.Name) else None
            if unit is None:
                raise Unsupported("@parallel without a unit array of the hardware", parallel.span)
            span_ = b.sub(hi_v, lo_v)
            trips = b.sdiv(b.add(span_, i64(step - 1)), i64(step))
            trips = b.select(b.icmp_signed("<", trips, i64(0)), i64(0), trips)
            width = b.select(b.icmp_signed("<", trips, i64(unit.count)), trips, i64(unit.count))
            width = b.select(b.icmp_signed("<", width, i64(1)), i64(1), width)
        saved_outer = self.outer_names
        saved_rt = self.rt.get(s.var)
        saved_env = self.env.pop(s.var, None)
        var = self.state_var(I64)
        self.rt[s.var] = var
        before = dict(self.names)
        count = self.state_var(I64)
        b.store(i64(0), count)
        wall = self.sites_of_step(s.span)
        with fn.loop(lo_v, hi_v, step, idx=self.state_var(I64) if self.proc is not None else None) as v:
            b.store(v, var)
            n = b.load(count)
            b.store(b.add(n, i64(1)), count)
            if parallel is not None:
                loop = CLoop(pipeline, n, outer.slot + (b.urem(n, width),),
                             b.mul(outer.copies if not isinstance(outer.copies, int) else i64(outer.copies), width))
            else:
                loop = CLoop(pipeline, outer.lane, outer.slot, outer.copies)
            self.loops.append(loop)
            self.outer_names = set(before)
            self.check_wall(wall)
            start = self.start_iteration()
            if split is None:
                self.block(s.body)
            else:
                self.split_loops[s.var] = range(lo, hi, step)
                self.block(s.body[:split])
                self.split_loops.pop(s.var)
                if split < len(s.body):
                    self._per_index(s, s.body[split:], range(lo, hi, step))
            self.loops.pop()
            self.end_iteration(before, start, s.span, peel=peel)
        self.outer_names = saved_outer
        if saved_rt is None:
            self.rt.pop(s.var, None)
        else:
            self.rt[s.var] = saved_rt
        if saved_env is not None:
            self.env[s.var] = saved_env

    def start_iteration(self) -> dict:
        """Enter a loop body: the names bound on some paths only, each with whether it is bound now
        (its slot at the iteration's start: -1 where not), and the depth it became so at."""
        start = {}
        for name, depth in self.maybe.items():
            held = self.state_var(I64)
            self.b.store(self.b.load(self.name_buf[name]), held)
            start[name] = (held, depth)
        self.iterations += 1
        return start

    def _first_iteration(self, s: ast.For, lo: int, pipeline: int) -> None:
        """A loop's first iteration lowered on its own, the index static, in the loop's context (its
        @pipeline depth, the names bound outside it): the names may leave it in other layouts."""
        outer = self.loops[-1] if self.loops else CLoop(1, None, (), 1)
        saved_outer, saved_rt, saved_env = self.outer_names, self.rt.pop(s.var, None), self.env.get(s.var)
        self.env[s.var] = lo
        before = dict(self.names)
        self.loops.append(CLoop(pipeline, outer.lane, outer.slot, outer.copies))
        self.outer_names = set(before)
        self.check_wall(self.sites_of_step(s.span))
        start = self.start_iteration()
        self.block(s.body)
        self.loops.pop()
        self.end_iteration(before, start, s.span, carried=True)
        self.outer_names = saved_outer
        self._restore_index(s.var, saved_rt, saved_env)

    def _restore_index(self, var: str, saved_rt, saved_env) -> None:
        """A loop index made static for a copy of the body is the run-time one (or the outer value) again."""
        if saved_rt is not None:
            self.rt[var] = saved_rt
        if saved_env is None:
            self.env.pop(var, None)
        else:
            self.env[var] = saved_env

    def end_iteration(self, before: dict, start: dict, span, peel: bool = False, carried: bool = False) -> None:
        """Engine.exec_for at the end of an iteration: the names it bound die with it. A name bound on
        some paths only when the iteration started dies only where it was not bound then (its slot held
        -1), and is bound on some paths only again; those it bound on some paths hold -1 on the others,
        which drop ignores. A name left in another layout than the iteration found it: PeelFirst where
        peel (the loop may have its first iteration lowered on its own), allowed where carried (that
        first iteration), else Unsupported."""
        fn, b = self.fn, self.b
        self.iterations -= 1
        dead = [x for x in self.names if x not in before] + [x for x in self.maybe if x not in self.names]
        for name in dict.fromkeys(dead):
            if name in before:
                continue
            slot = self.name_buf[name]
            if name in start:
                held, depth = start[name]
                with b.if_then(b.icmp_signed("<", b.load(held), i64(0))):
                    b.call(self.runtime.drop, [fn.P, fn.F, fn.I, b.load(slot)])
                    b.store(i64(-1), slot)
                self.names.pop(name, None)
                self.maybe[name] = depth
                continue
            b.call(self.runtime.drop, [fn.P, fn.F, fn.I, b.load(slot)])
            b.store(i64(-1), slot)
            self.names.pop(name, None)
            self.maybe.pop(name, None)
        if self.names != before and not carried:
            if peel and not self.guessed:
                raise PeelFirst(span)
            self.layout_differs(Unsupported("a name holds a value of another shape, dtype or memory after an "
                                            "iteration than before it (the JIT needs one layout per loop)", span))
            self.names = dict(before)

    def layout_differs(self, exc: Unsupported) -> None:
        """Two paths leave the names in different layouts: the JIT cannot compile that, unless a receive
        took a guessed shape (streams.py), when the difference may be the guess's. Then the lowering goes
        on, to reach the sends that give the channels' shapes, and is thrown away (lower_kernel lowers
        again with them)."""
        if not self.guessed:
            raise exc
        self.failed = self.failed or exc

    def _varying_extent(self, body, var: str) -> bool:
        """Whether a slice in body has a size that changes with the loop index var (q[r : B])."""
        rt = set(self.rt) | {var}
        env = {k: v for k, v in self.env.items() if k != var}
        return any(var in (free_names(x.lo) if x.lo is not None else set()) |
                   (free_names(x.hi) if x.hi is not None else set())
                   and _extent(x.lo, x.hi, 0, rt, env) is None
                   for x in _slices(body))

    def _split_at(self, s: ast.For) -> int | None:
        """Where the body of a loop whose slices change size with its index splits: the statements before
        the first one holding such a slice are compiled once, as a loop's body; the rest is lowered once per
        index (_per_index), under a switch on it. The code then grows with the iterations by the rest only
        (a store into a slice that grows with the index, at the end of a body with an inner loop, does not
        copy the inner loop per index). None to lower the whole body once per index: in a process (its
        turns resume in the middle of a body), where the rest binds or discards a name the first part binds
        (its layout would differ between the indices where the first part's name is read), where a name
        is bound on some paths only, or where the first statement holds the slice."""
        if not self.split or self.proc is not None or self.maybe:
            return None
        k = next((i for i, st in enumerate(s.body) if self._varying_extent([st], s.var)
                  and not self._simple_store(st, s.var)), len(s.body))
        if k == 0:
            return None
        if _bound_names(s.body[:k]) & (_bound_names(s.body[k:]) | _discarded_names(s.body[k:])):
            return None
        return k

    def _simple_store(self, st, var: str) -> bool:
        """A store whose value has no slice that changes size with var: its value is computed once, with
        var unknown, and only the copy into the target is lowered per index (s_Store)."""
        return isinstance(st, ast.Store) and not self._varying_extent([st.expr], var)

    def _per_index(self, s: ast.For, rest, values: range) -> None:
        """The rest of a split loop body (_split_at), lowered once per index with the index static. What
        a copy binds dies at its end, as the iteration's names do (the interpreter drops them at once)."""
        names = dict(self.names)

        def one() -> None:
            start = self.start_iteration()
            self.block(rest)
            self.end_iteration(names, start, s.span)

        self._each_index(s.var, values, one, s.span)

    def _each_index(self, var: str, values: range, lower_one, span) -> None:
        """lower_one() once per value of the loop index var, with var static, each copy in a case of a
        switch on the index: the copy for the index the loop is at runs."""
        b = self.b
        saved_rt = self.rt.pop(var)
        done = self.fn.block("per_index.end")
        switch = b.switch(b.load(saved_rt), done)
        size = Growth(self, len(values), span)
        for i in values:
            case = self.fn.block("per_index")
            switch.add_case(i64(i), case)
            b.position_at_end(case)
            self.env[var] = i
            lower_one()
            b.branch(done)
            size.one_more()
        b.position_at_end(done)
        self.env.pop(var, None)
        self.rt[var] = saved_rt

    def _unrolled(self, s: ast.For, values: range) -> None:
        """A loop whose slices change size with its index, lowered once per index with the index static:
        the same statements, in the same order, as the loop's iterations, each with its own shapes."""
        saved_rt = self.rt.pop(s.var, None)
        saved_env = self.env.get(s.var)
        before = dict(self.names)
        wall = self.sites_of_step(s.span)
        size = Growth(self, len(values), s.span)
        for i in values:
            self.env[s.var] = i
            self.check_wall(wall)
            start = self.start_iteration()
            self.block(s.body)
            self.end_iteration(before, start, s.span)
            size.one_more()
        self._restore_index(s.var, saved_rt, saved_env)


@dataclass
class CLoop:
    pipeline: int
    lane: object  # i64 IR or None
    slot: tuple  # i64 IR values (n % width) per enclosing @parallel loop
    copies: object  # int or i64 IR


def _bound_names(body) -> set:
    return {s.target.name for s in ast.walk_statements(body) if isinstance(s, (ast.Assign, ast.Load, ast.Recv))}


def _discarded_names(body) -> set:
    return {n.id for s in ast.walk_statements(body) if isinstance(s, ast.Discard) for n in s.names}


def _slices(node):
    """Every slice in statements or expressions, nested ones included."""
    if isinstance(node, (list, tuple)):
        for x in node:
            yield from _slices(x)
        return
    if not dataclasses.is_dataclass(node):
        return
    if isinstance(node, ast.Slice):
        yield node
    for f in dataclasses.fields(node):
        if f.name != "span":
            yield from _slices(getattr(node, f.name))
