"""The result of a run, whichever engine made it: its fields (docs/cli.md), the summary of a run's
counters, the text report, the trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from . import cost
from .diagnostics import Diagnostic, Span, json_text, warning

if TYPE_CHECKING:
    from .hardware import Hardware
    from .interp.machine import Event
    from .runtime import Counters
    from .syntax import ast


@dataclass
class Result:
    kernel: str
    hardware: str
    defines: dict
    cycles: int
    seconds: float
    energy_pj: float
    energy_breakdown_pj: dict
    units: dict
    memories: dict
    channels: dict
    verify: dict  # output -> Verification
    engine: str
    wall_seconds: float
    outputs: dict = field(default_factory=dict)  # output -> np.ndarray
    warnings: list[Diagnostic] = field(default_factory=list)
    events: list[Event] | None = None
    clock_hz: float = 1e9
    counters: dict = field(default_factory=dict)  # macs, vector_ops, spill_bytes
    fallback: str | None = None
    jit: dict | None = None  # compile_seconds, run_seconds, cached ("memory", "disk" or None)
    verify_mode: str = "auto"  # what was asked for: "auto", "full", "rows=K" or "off"

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verify.values())

    def to_json(self) -> dict:
        out = {
            "kernel": self.kernel, "hardware": self.hardware, "defines": self.defines,
            "cycles": int(self.cycles), "seconds": self.seconds, "energy_pj": self.energy_pj,
            "energy_breakdown_pj": self.energy_breakdown_pj, "units": self.units, "memories": self.memories,
            "channels": self.channels, "verify": {k: v.to_json() for k, v in self.verify.items()},
            "verify_mode": self.verify_mode,
            "engine": self.engine, "wall_seconds": self.wall_seconds, "counters": self.counters,
        }
        if self.fallback:
            out["fallback"] = self.fallback
        if self.jit:
            out["jit"] = self.jit
        return out


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "u"),
                           (1e-9, "n"), (1e-12, "p"), (1e-15, "f")):
        if abs(value) >= factor:
            return f"{value / factor:.3f} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _bytes(n: float) -> str:
    for factor, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= factor:
            return f"{n / factor:.2f} {unit}"
    return f"{n:.0f} B"


def text_report(r: Result) -> str:
    defs = " ".join(f"{k}={v}" for k, v in r.defines.items())
    lines = [f"kernel {r.kernel} on {r.hardware}   {defs}",
             f"cycles     {r.cycles:,}   ({_si(r.seconds, 's')} at {_si(r.clock_hz, 'Hz')})",
             f"energy     {_si(r.energy_pj * 1e-12, 'J')}"]
    total = r.energy_pj or 1.0
    for name, pj in sorted(r.energy_breakdown_pj.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {name:<10} {_si(pj * 1e-12, 'J'):>12}  {100 * pj / total:5.1f}%")
    lines.append(f"{'unit':<12} {'busy cycles':>14} {'utilization':>12}")
    for name, u in r.units.items():
        lines.append(f"  {name:<10} {u['busy_cycles']:>14,.0f} {100 * u['utilization']:>11.1f}%")
    lines.append(f"{'memory':<12} {'read':>12} {'written':>12} {'peak':>12}")
    for name, m in r.memories.items():
        lines.append(f"  {name:<10} {_bytes(m['read_bytes']):>12} {_bytes(m['write_bytes']):>12} "
                     f"{_bytes(m['peak_bytes']):>12}")
    if r.channels:
        lines.append(f"{'channel':<12} {'sent':>10} {'max occupancy':>14}")
        for name, c in r.channels.items():
            lines.append(f"  {name:<10} {c['sent']:>10,} {c['max_occupancy']:>14}")
    for name, v in r.verify.items():
        status = "ok" if v.ok else "MISMATCH"
        lines.append(f"verify     {name}: {status}   max abs error {v.max_abs_err:.3g}, "
                     f"relative {v.max_rel_err:.3g}   ({_checked(v)})")
        if v.rows is not None:
            lines += _wrap("rows", v.rows)
            if r.verify_mode == "auto":
                lines.append("           (--verify auto draws rows at this size; --verify full checks every row)")
    if r.verify_mode == "off":
        lines.append("verify     off (--verify off): the outputs were not checked against the spec")
    elif not r.verify:
        lines.append("verify     (the kernel has no spec)")
    if r.fallback:
        lines.append(f"engine     {r.engine} ({r.fallback})")
    elif r.jit:
        how = {"memory": "compiled code reused from this process", "disk": "compiled code loaded from the cache"}
        compiled = how.get(r.jit.get("cached"), f"compiled in {r.jit['compile_seconds']:.2f} s")
        lines.append(f"engine     jit ({compiled}; native run {r.jit['run_seconds'] * 1e3:.1f} ms)")
    return "\n".join(lines)


def _checked(v) -> str:
    if v.rows is None:
        return "every element"
    return f"{len(v.rows)} rows drawn at random, one in each stretch of rows, every element of each"


def _wrap(label: str, numbers, width: int = 100) -> list[str]:
    lines, line = [], f"  {label:<8}"
    for n in numbers:
        if len(line) + len(str(n)) + 1 > width:
            lines.append(line.rstrip())
            line = " " * 10
        line += f" {n}"
    return lines + [line.rstrip()]


def chrome_trace(r: Result) -> str:
    """Chrome trace-event JSON (loads in Perfetto): one track per unit instance and memory port."""
    events = r.events or []
    tracks = sorted({e.track for e in events})
    tid = {t: i + 1 for i, t in enumerate(tracks)}
    us = 1e6 / r.clock_hz
    out: list[dict] = [{"name": "process_name", "ph": "M", "pid": 1, "args": {"name": f"{r.kernel} on {r.hardware}"}}]
    for t in tracks:
        out.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": tid[t], "args": {"name": t}})
    for e in sorted(events, key=lambda e: (tid[e.track], e.start, e.end)):
        out.append({"name": e.name, "ph": "X", "pid": 1, "tid": tid[e.track], "ts": e.start * us,
                    "dur": max(e.end - e.start, 0) * us,
                    "args": {"start_cycle": e.start, "end_cycle": e.end, "busy_cycles": e.busy_cycles,
                             "ready_cycle": e.ready_cycle,
                             "bytes": e.nbytes, "energy_pj": e.energy_pj, "line": e.line}})
    return json_text({"traceEvents": out, "displayTimeUnit": "ns"})


def summarize(kernel: ast.Kernel, hw: Hardware, end: float, c: Counters, events: list | None, outputs: dict,
              engine: str) -> Result:
    """The Result of a run that ended at cycle end with counters c (the interpreter's or the JIT's)."""
    cycles = int(np.ceil(end))
    energy = dict(c.energy)
    if hw.leakage_pj_per_cycle:
        energy["leakage"] = cost.leakage_energy_pj(cycles, hw.leakage_pj_per_cycle)
    breakdown = {k: float(v) for k, v in energy.items() if v}
    units = {}
    for name, u in hw.units.items():
        busy = float(c.busy.get(name, 0.0))
        units[name] = {"busy_cycles": busy, "utilization": busy / (cycles * u.count) if cycles else 0.0}
    memories = {name: {"read_bytes": float(c.read_bytes[name]), "write_bytes": float(c.write_bytes[name]),
                       "peak_bytes": float(c.peak[name])} for name in hw.memories}
    return Result(
        kernel=kernel.name, hardware=hw.name, defines={}, cycles=cycles, seconds=cycles / hw.clock_hz,
        energy_pj=float(sum(breakdown.values())), energy_breakdown_pj=breakdown, units=units, memories=memories,
        channels={}, verify={}, engine=engine, wall_seconds=0.0, outputs=outputs, events=events,
        clock_hz=hw.clock_hz,
        counters={"macs": c.macs, "vector_ops": c.vector_ops, "spill_bytes": c.spill_bytes},
    )


def channel_stats(max_occupancy: int, sent: int, depth: int, blocked_send: float, blocked_recv: float) -> dict:
    """One channel's entry in a Result's channels (`attn run --json`)."""
    return {"max_occupancy": max_occupancy, "sent": sent, "depth": depth, "blocked_send_cycles": blocked_send,
            "blocked_recv_cycles": blocked_recv}


def undrained(name: str, held: int, span: Span) -> Diagnostic:
    """W1002: a channel that still holds elements when the run ends."""
    return warning("W1002", f"channel {name} still holds {held} elements at the end", span)


def never_stored(kernel: ast.Kernel, stored) -> list[Diagnostic]:
    """W1001 for each output of kernel that the run never stored to (stored(name) says whether it did)."""
    return [warning("W1001", f"output {t.name} is never stored; it stays zero", t.span)
            for t in kernel.outputs if not stored(t.name)]
