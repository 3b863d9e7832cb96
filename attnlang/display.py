"""How the REPL and the language server show things: hardware, values, costs.

Plain text only (no colours); the REPL prints these lines and the language
server puts them in hovers. The numbers come from the elaborated hardware
(attnlang/hardware.py) and the machine's counters; nothing is computed here
but unit conversions for display.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from .hardware import Hardware, Memory, Unit


def si(value: float, unit: str, digits: int = 3) -> str:
    """940000000, "Hz" -> "940 MHz" (three significant digits by default)."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "u"),
                           (1e-9, "n"), (1e-12, "p")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


def energy(pj: float) -> str:
    """Picojoules in the largest prefix that keeps the number readable: 1.23 nJ."""
    return si(pj * 1e-12, "J")


def size(nbytes: float) -> str:
    """Bytes in binary prefixes, as hardware blocks write them: 512 KiB."""
    for factor, unit in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if nbytes >= factor:
            return f"{nbytes / factor:.4g} {unit}"
    return f"{nbytes:.4g} B"


def stdlib_hardware() -> list[str]:
    """The hardware modules of the standard library (edge, cloud...), by short name."""
    folder = resources.files("attnlang").joinpath("stdlib").joinpath("hw")
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".attn"))


def memory_line(m: Memory, clock_hz: float) -> str:
    parts = [f"capacity {size(m.capacity_bytes)}" if m.capacity_bytes is not None else "unbounded"]
    bw = m.bandwidth_bytes_per_cycle
    parts.append(f"bandwidth {bw:.4g} B/cycle ({size(bw * clock_hz)}/s)")
    parts.append(f"read {m.read_pj_per_byte:g} pJ/B, write {m.write_pj_per_byte:g} pJ/B")
    if m.latency_cycles:
        parts.append(f"latency {m.latency_cycles:g} cycles")
    if m.parent:
        parts.append(f"parent {m.parent}")
    if m.capacity_bytes is not None:
        parts.append(f"policy {m.policy}")
    return f"memory {m.name}: " + "; ".join(parts)


def unit_line(u: Unit) -> str:
    name = f"{u.name}[{u.count}]" if u.is_array else u.name
    where = f"; memory {u.memory}" if u.memory else ""
    if u.kind == "matrix":
        return (f"unit {name}: matrix {u.rows} x {u.cols}, dataflow {u.dataflow}, fill {u.fill}; "
                f"{u.mac_pj:g} pJ per MAC{where}")
    groups: dict[tuple[float, float, float], list[str]] = {}
    for op, c in u.ops.items():
        groups.setdefault((c.interval, c.latency, c.energy_pj), []).append(op)
    ops = "; ".join(f"{', '.join(names)} {_op_timing(iv, lat)} {pj:g} pJ"
                    for (iv, lat, pj), names in groups.items())
    return f"unit {name}: vector, {u.lanes} lanes{where}; ops: {ops or 'none'}"


def _op_timing(interval: float, latency: float) -> str:
    if interval == latency:
        return f"{interval:g} cycle{'s' if interval != 1 else ''}"
    return f"interval {interval:g}, latency {latency:g}"


def hardware_lines(hw: Hardware) -> list[str]:
    """The hardware as `:hw` prints it: clock, memories with capacity and bandwidth, units."""
    lines = [f"hardware {hw.name}: clock {si(hw.clock_hz, 'Hz')}"
             + (f", leakage {hw.leakage_pj_per_cycle:g} pJ/cycle" if hw.leakage_pj_per_cycle else "")]
    lines += ["  " + memory_line(m, hw.clock_hz) for m in hw.memories.values()]
    lines += ["  " + unit_line(u) for u in hw.units.values()]
    for c in hw.channels.values():
        lines.append(f"  channel {c.name}: {c.src} -> {c.dst}; depth {c.depth}; latency {c.latency_cycles:g} cycles")
    for link in hw.links:
        lines.append(f"  link {link.src}[{link.src_index}] -> {link.dst}[{link.dst_index}]; "
                     f"latency {link.latency_cycles:g} cycles")
    return lines


def value_lines(name: str | None, data: np.ndarray, dtype: str, memory: str | None) -> list[str]:
    """A tensor value: its type and place, min/max/mean, and a few elements."""
    head = f"{dtype}[{', '.join(str(s) for s in data.shape)}]" + (f" in {memory}" if memory else "")
    if name:
        head = f"{name}: {head}"
    finite = data[np.isfinite(data)] if data.size else data
    if finite.size:
        head += (f"   min {float(finite.min()):.4g}  max {float(finite.max()):.4g}"
                 f"  mean {float(finite.mean()):.4g}")
    if finite.size != data.size:
        head += f"   ({data.size - finite.size} not finite)"
    body = np.array2string(np.asarray(data, dtype=np.float64), precision=4, threshold=16, edgeitems=2,
                           max_line_width=100, suppress_small=True)
    return [head] + ["  " + line for line in body.splitlines()]
