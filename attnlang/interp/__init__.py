"""The reference engine: runs a kernel and reports its cost (docs/semantics.md)."""

from __future__ import annotations

import math
import time

import numpy as np

from .. import cost
from ..diagnostics import AttnError, error, warning
from ..hardware import Hardware
from ..program import BoundKernel
from ..syntax import ast
from .machine import Limits, Machine
from .report import Result
from .spec import VerifyPlan, check_output, mismatch_diagnostic


def execute(bound: BoundKernel, inputs: dict[str, np.ndarray], trace: bool = False,
            max_cycles: float | None = None, timeout: float | None = None, verify: VerifyPlan | None = None,
            max_steps: float | None = None) -> Result:
    """Run a bound kernel (check.bind_kernel) on its machine; verify outputs against the specs as verify
    says (default: every element). max_steps: the most loop iterations and process instances (None: no
    limit)."""
    kernel, env, hw = bound.kernel, bound.env, bound.hardware
    from .engine import Engine  # here, not above: the JIT uses this package's summary without the engine
    from .streams import Scheduler, declare_channels, undrained

    limits = Limits(max_cycles, time.monotonic() + timeout if timeout else None,
                    math.inf if max_steps is None else max_steps)
    machine = Machine(hw, trace=trace, limits=limits)
    eng = Engine(hw, machine, env, inputs, kernel)
    eng.declare_outputs()
    # Inputs and outputs are resident in the root memory for the whole run.
    root = eng.root
    resident = sum(cost.tensor_bytes(a.size, t.dtype) for t, a in
                   [(t, inputs[t.name]) for t in kernel.inputs] + [(t, eng.outputs[t.name]) for t in kernel.outputs])
    machine.c.occupancy[root] += resident
    machine.c.peak[root] = max(machine.c.peak[root], machine.c.occupancy[root])
    eng.channels = declare_channels(kernel, env)
    eng.sched = Scheduler()
    eng.sched.spawn("main", eng.run_block(kernel.body))
    with np.errstate(all="ignore"):  # -inf, exp overflow and 0/0 are part of the numbers, not warnings
        eng.sched.run()
    result = summarize(kernel, hw, machine, eng.outputs, "interp")
    result.channels = {name: ch.stats() for name, ch in eng.channels.items()}
    result.warnings += undrained(eng.channels)
    for t in kernel.outputs:
        if t.name not in eng.stored:
            result.warnings.append(warning("W1001", f"output {t.name} is never stored; it stays zero", t.span))
    result.verify = verify_outputs(kernel, env, inputs, eng.outputs, eng.out_dtype, verify)
    result.verify_mode = str(verify or VerifyPlan())
    return result


def verify_outputs(kernel: ast.Kernel, env: dict, inputs: dict, outputs: dict, dtypes: dict,
                   plan: VerifyPlan | None = None) -> dict:
    """Each output with a spec -> its Verification; {} when plan is "off"."""
    plan = plan or VerifyPlan()
    out = {}
    for spec in kernel.specs:
        if spec.output not in outputs:
            raise AttnError(error(
                "E1022", f"spec for '{spec.output}', which is not an output", spec.span))
        if plan.mode == "off":
            continue
        out[spec.output] = check_output(spec.output, spec.expr, inputs, env, outputs[spec.output],
                                        dtypes[spec.output], plan, spec.span)
    return out


def summarize(kernel: ast.Kernel, hw: Hardware, m: Machine, outputs: dict, engine: str) -> Result:
    cycles = int(np.ceil(m.end))
    energy = dict(m.c.energy)
    if hw.leakage_pj_per_cycle:
        energy["leakage"] = cost.leakage_energy_pj(cycles, hw.leakage_pj_per_cycle)
    breakdown = {k: float(v) for k, v in energy.items() if v}
    units = {}
    for name, u in hw.units.items():
        busy = float(m.c.busy.get(name, 0.0))
        units[name] = {"busy_cycles": busy, "utilization": busy / (cycles * u.count) if cycles else 0.0}
    memories = {name: {"read_bytes": float(m.c.read_bytes[name]), "write_bytes": float(m.c.write_bytes[name]),
                       "peak_bytes": float(m.c.peak[name])} for name in hw.memories}
    return Result(
        kernel=kernel.name, hardware=hw.name, defines={}, cycles=cycles, seconds=cycles / hw.clock_hz,
        energy_pj=float(sum(breakdown.values())), energy_breakdown_pj=breakdown, units=units, memories=memories,
        channels={}, verify={}, engine=engine, wall_seconds=0.0, outputs=outputs, events=m.events,
        clock_hz=hw.clock_hz,
        counters={"macs": m.c.macs, "vector_ops": m.c.vector_ops, "spill_bytes": m.c.spill_bytes},
    )


__all__ = ["execute", "mismatch_diagnostic"]
