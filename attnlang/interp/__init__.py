"""The reference engine: runs a kernel and reports its cost (docs/semantics.md)."""

from __future__ import annotations

import math
import time

import numpy as np

from .. import cost
from ..binding import BoundKernel
from ..report import Result, never_stored, summarize
from ..spec import VerifyPlan, mismatch_diagnostic, verify_outputs
from .machine import Limits, Machine


def execute(bound: BoundKernel, inputs: dict[str, np.ndarray], trace: bool = False,
            max_cycles: float | None = None, timeout: float | None = None, verify: VerifyPlan | None = None,
            max_steps: float | None = None) -> Result:
    """Run a bound kernel (check.bind_kernel) on its machine; verify outputs against the specs as verify
    says (default: every element). max_steps: the most loop iterations and process instances (None: no
    limit)."""
    kernel, env, hw = bound.kernel, bound.env, bound.hardware
    from ..channels import declare_channels
    from .engine import Engine  # here, not above: the JIT uses this package's summary without the engine
    from .streams import Scheduler, undrained

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
    result = summarize(kernel, hw, machine.end, machine.c, machine.events, eng.outputs, "interp")
    result.channels = {name: ch.stats() for name, ch in eng.channels.items()}
    result.warnings += undrained(eng.channels)
    result.warnings += never_stored(kernel, lambda name: name in eng.stored)
    result.verify = verify_outputs(kernel, env, inputs, eng.outputs, eng.out_dtype, verify)
    result.verify_mode = str(verify or VerifyPlan())
    return result


__all__ = ["execute", "mismatch_diagnostic"]
