"""The REPL's running machine: statements and expressions on the reference engine.

A Workspace is one Engine on one Machine for the chosen hardware, set up the
way attnlang.interp.execute sets up a kernel run, that lives as long as the
session: values, buffers, occupancy and every resource's clock carry over
from one input to the next. Each input's cost is the difference of the
machine's counters before and after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import cost
from ..diagnostics import NO_SPAN, AttnError, error
from ..dtypes import round_to
from ..hardware import Hardware
from ..interp.engine import Engine
from ..interp.machine import Machine
from ..interp.values import TV
from ..static import StaticError, static_eval
from ..syntax import ast

#: The synthetic kernel the session's statements belong to (it has no body of its own).
SESSION_KERNEL = "session"

_NOT_AT_PROMPT = ast.STREAM_STATEMENTS


@dataclass
class Cost:
    """What one input cost: its own operations, and how much later the whole session now ends."""

    latency_cycles: float  # from the first start to the last end of this input's operations
    added_cycles: float  # how much the session's end time moved
    end_cycles: float  # the session's end time now
    energy_pj: float
    energy_by_part: dict[str, float]
    operations: int


@dataclass
class Outcome:
    """The result of one input: values it bound (name -> TV), the value of an expression, its cost."""

    bound: list[tuple[str, TV]]
    value: TV | None
    static: object
    cost: Cost
    statics: list[tuple[str, object]] = field(default_factory=list)  # dims and params the input set


_walk = ast.walk_statements


class Workspace:
    """An Engine and a Machine for one hardware, kept across the inputs of a session."""

    def __init__(self, hw: Hardware, statics: dict):
        self.hw = hw
        self.machine = Machine(hw, trace=True)
        kernel = ast.Kernel(SESSION_KERNEL, (), (), hw.name, None, (), (), NO_SPAN, NO_SPAN)
        self.engine = Engine(hw, self.machine, dict(statics), {}, kernel)

    # ---------------------------------------------------------- tensors
    def declare_tensor(self, name: str, data: np.ndarray, dtype: str) -> None:
        """A session tensor in the root memory: loads read it, stores write it."""
        eng = self.engine
        data = round_to(np.asarray(data, dtype=np.float64 if dtype == "f64" else np.float32), dtype)
        old = eng.tensors.get(name)
        root = eng.root
        if old is not None:
            self.machine.c.occupancy[root] -= cost.tensor_bytes(old[0].size, old[1])
        eng.tensors[name] = (data, dtype)
        eng.outputs[name] = data  # the same array: a store into it is seen by later loads
        eng.out_dtype[name] = dtype
        self.machine.c.occupancy[root] += cost.tensor_bytes(data.size, dtype)
        self.machine.c.peak[root] = max(self.machine.c.peak[root], self.machine.c.occupancy[root])

    def set_static(self, name: str, value) -> None:
        self.engine.env[name] = value

    @property
    def values(self) -> dict[str, TV]:
        return self.engine.names

    # ---------------------------------------------------------- running
    def run_statements(self, stmts: tuple) -> Outcome:
        """Run statements as a kernel body would; the values they bind stay."""
        for s in _walk(stmts):
            if isinstance(s, _NOT_AT_PROMPT):
                raise AttnError(error("E1040", "channels and processes only run inside a kernel: declare one "
                                               "and run it with :run", s.span))
        before = self._counters()
        eng = self.engine
        old = dict(eng.names)  # holding the old values keeps their identities apart from the new
        statics = []
        for s in stmts:
            if isinstance(s, (ast.DimDecl, ast.Param)):
                statics += self._bind_static(s)
                continue
            for _ in eng.run_block((s,)):
                raise AttnError(error("E1040", "this statement waits on a channel, which the prompt has none of",
                                      s.span))
        # Every name the input gave a new value (a loop's updates included), in the order they were bound.
        bound = [(name, tv) for name, tv in eng.names.items() if old.get(name) is not tv]
        return Outcome(bound, None, None, self._cost(before), statics)

    def run_expression(self, expr: ast.Expr) -> Outcome:
        """Evaluate an expression on the machine; its temporaries are freed at the end."""
        before = self._counters()
        eng = self.engine
        try:
            value = eng.eval(expr)
            if isinstance(value, TV):
                value = TV(np.array(value.data), value.dtype, value.buf)
        finally:
            eng._end_statement()
        if isinstance(value, TV):
            return Outcome([], value, None, self._cost(before))
        return Outcome([], None, value, self._cost(before))

    def _bind_static(self, s) -> list[tuple[str, object]]:
        eng = self.engine
        pairs = [(b.name, b.value) for b in s.bindings] if isinstance(s, ast.DimDecl) else \
            [(s.name, s.default if s.default is not None else (s.domain[0] if s.domain else None))]
        for name, expr in pairs:
            if expr is None:
                raise AttnError(error("E1041", f"param {name} needs a value at the prompt ('= VALUE')", s.span))
            try:
                eng.env[name] = static_eval(expr, eng.env)
            except StaticError as exc:
                raise AttnError(exc.diagnostic) from None
        return [(name, eng.env[name]) for name, _ in pairs]

    # ---------------------------------------------------------- costs
    def _counters(self) -> tuple[float, dict[str, float], int]:
        m = self.machine
        if m.events is not None:
            m.events.clear()  # only this input's events are kept
        return m.end, dict(m.c.energy), 0

    def _cost(self, before: tuple[float, dict[str, float], int]) -> Cost:
        m = self.machine
        end0, energy0, _ = before
        parts = {k: float(v - energy0.get(k, 0.0)) for k, v in m.c.energy.items()}
        parts = {k: v for k, v in parts.items() if abs(v) > 1e-12}
        events = m.events or []
        latency = (max(e.ready_cycle for e in events) - min(e.start for e in events)) if events else 0.0
        return Cost(latency, m.end - end0, m.end, float(sum(parts.values())), parts, len(events))


def cost_line(c: Cost) -> str:
    """`cost  160 cycles (the session now ends at 320, +160)   1.23 nJ: pe 0.8 nJ, sram 0.43 nJ`."""
    from ..display import energy

    parts = ", ".join(f"{k} {energy(v)}" for k, v in sorted(c.energy_by_part.items(), key=lambda kv: -kv[1]))
    head = (f"cost   {c.latency_cycles:,.0f} cycle{'' if c.latency_cycles == 1 else 's'} "
            f"(the session now ends at cycle {c.end_cycles:,.0f}, "
            f"+{c.added_cycles:,.0f})")
    return f"{head}   energy {energy(c.energy_pj)}" + (f": {parts}" if parts else "")
