"""Per-line costs for hovers: one traced run of a kernel at its defaults per document version.

The run is the reference engine's (attnlang.api.run with trace=True); every
trace event carries the line of the statement that issued it, so summing the
events of a line gives that line's busy cycles per unit and memory port and
its energy. Runs happen on one worker thread with a wall-time limit, so a
hover never waits long: until the run is done it says so.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from ..binding import BoundKernel
from ..diagnostics import AttnError, UsageError, has_errors
from ..syntax import ast

#: How long a run at the defaults may take before its costs are called not available.
RUN_LIMIT_S = 3.0


@dataclass
class KernelCosts:
    """One run's costs, per source line of the kernel."""

    kernel: str
    defines: dict
    cycles: int
    energy_pj: float
    busy: dict[int, dict[str, float]] = field(default_factory=dict)  # line -> track -> busy cycles
    energy: dict[int, float] = field(default_factory=dict)  # line -> pJ (units and transfers)

    def lines(self, first: int, last: int) -> tuple[dict[str, float], float]:
        busy: dict[str, float] = defaultdict(float)
        pj = 0.0
        for line in range(first, last + 1):
            for track, cycles in self.busy.get(line, {}).items():
                busy[track] += cycles
            pj += self.energy.get(line, 0.0)
        return dict(busy), pj


def run_costs(bound: BoundKernel, limit_s: float = RUN_LIMIT_S) -> KernelCosts | str:
    """Run a kernel bound at its defaults (analysis.kernel_bound) with a trace; the costs by line, or why
    there are none."""
    from ..api import run

    kernel = bound.kernel
    missing = bound.missing_dims
    if missing:
        return f"dimension {missing[0]} has no default; add `dim {missing[0]} = ...` to the kernel"
    if bound.errors:
        return "the kernel's dims, params or hardware have errors"
    try:
        result = run(bound, trace=True, timeout=limit_s)
    except AttnError as exc:
        d = exc.diagnostics[0]
        if d.code == "E1004":
            return f"a run at the defaults takes more than {limit_s:g} s"
        return f"the run at the defaults stops at line {d.span.line}: error[{d.code}] {d.message}"
    except UsageError as exc:
        return str(exc)
    except Exception as exc:  # a bug in attnlang: the hover says so instead of failing
        return f"internal error in the run: {type(exc).__name__}: {exc}; please report it"
    costs = KernelCosts(kernel.name, result.defines, result.cycles, result.energy_pj)
    for e in result.events or []:
        track = e.track.split("[")[0]
        per_line = costs.busy.setdefault(e.line, {})
        per_line[track] = per_line.get(track, 0.0) + e.busy_cycles
        costs.energy[e.line] = costs.energy.get(e.line, 0.0) + e.energy_pj
    return costs


def _blocking(a, kernel: ast.Kernel) -> list:
    """The diagnostics that stop this kernel from running: not those inside other kernels, nor
    syntax errors outside it (an item that did not parse is not there; what needed it says so)."""
    others = [k.span for k in (a.module.kernels if a.module else ()) if k is not kernel]
    own = kernel.span

    def elsewhere(d) -> bool:
        if d.code.startswith("E000") and not (d.span.file == own.file and own.line <= d.span.line <= own.end_line):
            return True
        return any(s.file == d.span.file and s.line <= d.span.line <= s.end_line for s in others)

    return [d for d in a.diagnostics if not elsewhere(d)]


class CostRunner:
    """Runs for hovers, one at a time in the background, remembered per document version."""

    def __init__(self, limit_s: float = RUN_LIMIT_S):
        self.limit_s = limit_s
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="attn-costs")
        self._runs: dict[tuple, Future] = {}

    def costs(self, a, kernel: ast.Kernel, wait_s: float) -> KernelCosts | str:
        """The kernel's costs for this document version, waiting at most wait_s for the run."""
        from .analysis import kernel_bound

        if has_errors(_blocking(a, kernel)):
            return "the program has errors"
        key = (a.path, a.text, kernel.name)
        fut = self._runs.get(key)
        if fut is None:
            for old in [k for k in self._runs if k[0] == a.path and k[2] == kernel.name]:
                self._runs.pop(old).cancel()  # an older version's run is not wanted any more
            if len(self._runs) >= 16:
                self._runs.pop(next(iter(self._runs)))
            fut = self._pool.submit(run_costs, kernel_bound(a, kernel), self.limit_s)
            self._runs[key] = fut
        try:
            return fut.result(timeout=wait_s)
        except FutureTimeout:
            return "being computed (a run at the defaults); hover again in a moment"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
