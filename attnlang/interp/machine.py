"""The modeled machine while a kernel runs: resources, buffers, counters.

Time is list scheduling: an operation bound to a resource starts at
max(operands ready, resource free, destination buffer free) and ends after
its cost. Memory occupancy is tracked in program order.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass

from .. import cost
from ..cost import Timing
from ..diagnostics import Span
from ..hardware import Hardware, Memory, Unit
from ..ports import Timeline, place
from ..runtime import Counters, cycles_error, overflow_error, spill_short_error, timeout_error


class Buffer:
    """The storage of one value in one memory."""

    __slots__ = ("memory", "nbytes", "ready", "last_read", "refs", "evicted", "last_use", "pinned", "live")

    def __init__(self, memory: str, nbytes: float, ready: float):
        self.memory = memory
        self.nbytes = nbytes
        self.ready = ready
        self.last_read = ready
        self.refs = 0
        self.evicted = False
        self.last_use = 0
        self.pinned = False
        self.live = False


@dataclass
class Event:
    name: str
    track: str
    start: float
    end: float
    nbytes: float = 0.0
    energy_pj: float = 0.0
    line: int = 0
    busy: float | None = None  # a unit's busy cycles (issuing); None: end - start
    ready: float | None = None  # when a unit operation's result is ready; None: at end

    @property
    def busy_cycles(self) -> float:
        return self.end - self.start if self.busy is None else self.busy

    @property
    def ready_cycle(self) -> float:
        return self.end if self.ready is None else self.ready


@dataclass
class Limits:
    max_cycles: float | None = None
    deadline: float | None = None  # time.monotonic() value
    max_steps: float = math.inf  # loop iterations, of every loop in every process together


class Machine:
    def __init__(self, hw: Hardware, trace: bool = False, limits: Limits | None = None):
        self.hw = hw
        self.free: dict[tuple, float] = defaultdict(float)
        self.c = Counters()
        self.end = 0.0
        self.events: list[Event] | None = [] if trace else None
        self.limits = limits or Limits()
        self.steps = 0  # loop iterations so far (Limits.max_steps)
        self.clock = 0  # LRU counter
        # The live buffers of each memory that spills, oldest first: where _spill picks its victims.
        self.live: dict[str, list[Buffer]] = {name: [] for name, m in hw.memories.items() if m.policy == "spill"}
        self.ports: dict[str, Timeline] = {name: Timeline() for name in hw.memories}
        self._read_pj: dict[tuple, float] = {}
        self._write_pj: dict[tuple, float] = {}
        for name in hw.memories:
            self.c.peak[name] = 0.0
            self.c.read_bytes[name] = 0.0
            self.c.write_bytes[name] = 0.0

    # ---------------------------------------------------------- time
    def _finish(self, end: float, span: Span) -> None:
        if end > self.end:
            self.end = end
        lim = self.limits
        if lim.max_cycles is not None and self.end > lim.max_cycles:
            raise cycles_error(lim.max_cycles, span)

    def check_wall(self, span: Span) -> None:
        if self.limits.deadline is not None and time.monotonic() > self.limits.deadline:
            raise timeout_error(span)

    def unit_op(self, unit: Unit, instance: int, timing: Timing, ready: float, energy_pj: float,
                label: str, span: Span) -> tuple[float, float, float]:
        """One operation on a unit instance once `ready`: (start, when the unit may issue again, when its
        result is ready), by its cost.Timing."""
        key = ("unit", unit.name, instance)
        start = max(ready, self.free[key])
        issued = start + timing.issue
        end = start + timing.ready
        self.free[key] = issued
        c = self.c
        c.busy[unit.name] += timing.busy
        c.energy[unit.name] += energy_pj
        last = end if end > issued else issued
        if last > self.end or self.limits.max_cycles is not None:
            self._finish(last, span)
        if self.events is not None:
            track = f"{unit.name}[{instance}]" if unit.count > 1 else unit.name
            self.events.append(Event(label, track, start, issued, 0.0, energy_pj, span.line, timing.busy, end))
        return start, issued, end

    def transfer(self, src: str, dst: str, nbytes: float, ready: float, label: str, span: Span) -> tuple[float, float]:
        """A DMA transfer: occupies the ports of every memory on the path.

        The DMA engine takes transfers in the order they are ready, not only in
        program order: a transfer whose data is ready early goes into the
        earliest gap on every port of its path that is long enough.
        """
        if src == dst or nbytes <= 0:
            return ready, ready
        mems, bw, latency = self.hw.transfer_route(src, dst)
        cycles = cost.transfer_cycles(nbytes, bw, latency)
        start = place([self.ports[m.name] for m in mems], ready, cycles)
        end = start + cycles
        s, d = self.hw.memories[src], self.hw.memories[dst]
        self.c.read_bytes[src] += nbytes
        self.c.write_bytes[dst] += nbytes
        read_pj = cost.memory_energy_pj(nbytes, 0, s.read_pj_per_byte, 0)
        write_pj = cost.memory_energy_pj(0, nbytes, 0, d.write_pj_per_byte)
        self.c.energy[src] += read_pj
        self.c.energy[dst] += write_pj
        self._finish(end, span)
        if self.events is not None:
            e = read_pj + write_pj
            for m in mems:
                self.events.append(Event(label, f"port {m.name}", start, end, nbytes, e / len(mems), span.line))
        return start, end

    # A run reads and writes the same few sizes over and over: the energy of each (memory, bytes)
    # is worked out once by cost.memory_energy_pj and kept.
    def unit_reads(self, memory: str, nbytes: float) -> None:
        """A unit reading operands from a memory (no port: units have their own)."""
        self.c.read_bytes[memory] += nbytes
        pj = self._read_pj.get((memory, nbytes))
        if pj is None:
            m = self.hw.memories[memory]
            pj = self._read_pj[memory, nbytes] = cost.memory_energy_pj(nbytes, 0, m.read_pj_per_byte, 0)
        self.c.energy[memory] += pj

    def unit_writes(self, memory: str, nbytes: float) -> None:
        self.c.write_bytes[memory] += nbytes
        pj = self._write_pj.get((memory, nbytes))
        if pj is None:
            m = self.hw.memories[memory]
            pj = self._write_pj[memory, nbytes] = cost.memory_energy_pj(0, nbytes, 0, m.write_pj_per_byte)
        self.c.energy[memory] += pj

    # ---------------------------------------------------------- occupancy
    def allocate(self, buf: Buffer, charge: float, span: Span) -> None:
        """Reserve buf's bytes (times charge for pipeline copies) in its memory."""
        buf.nbytes *= charge
        name = buf.memory
        mem = self.hw.memories[name]
        occupancy = self.c.occupancy
        need = occupancy[name] + buf.nbytes
        if mem.capacity_bytes is not None and need > mem.capacity_bytes:
            if mem.policy == "spill":
                self._spill(mem, need - mem.capacity_bytes, span)
                need = occupancy[name] + buf.nbytes
            else:
                raise overflow_error(mem.name, need, mem.capacity_bytes, span)
        occupancy[name] = need
        if need > self.c.peak[name]:
            self.c.peak[name] = need
        buf.live = True
        if mem.policy == "spill":
            self.live[name].append(buf)
        self.clock += 1  # the LRU clock: a spill evicts the buffers used longest ago
        buf.last_use = self.clock

    def release(self, buf: Buffer) -> None:
        """Free buf without writing it back (death of a value, or `discard`)."""
        if not buf.live:
            return
        buf.live = False
        if not buf.evicted:
            self.c.occupancy[buf.memory] -= buf.nbytes
        live = self.live.get(buf.memory)
        if live is not None:
            live.remove(buf)

    def _spill(self, mem: Memory, excess: float, span: Span) -> None:
        victims = sorted((b for b in self.live[mem.name] if not b.evicted and not b.pinned),
                         key=lambda b: b.last_use)
        for b in victims:
            if excess <= 0:
                break
            parent = mem.parent or mem.name
            _, end = self.transfer(mem.name, parent, b.nbytes, b.last_read, "spill", span)
            b.evicted = True
            b.ready = end
            self.c.occupancy[mem.name] -= b.nbytes
            self.c.spill_bytes += b.nbytes
            excess -= b.nbytes
        if excess > 0:
            raise spill_short_error(mem.name, excess, span)

    def reload(self, buf: Buffer, span: Span) -> None:
        """Bring an evicted buffer back from the parent before it is read."""
        mem = self.hw.memories[buf.memory]
        parent = mem.parent or mem.name
        _, end = self.transfer(parent, mem.name, buf.nbytes, buf.ready, "reload", span)
        buf.evicted = False
        need = self.c.occupancy[mem.name] + buf.nbytes
        if mem.capacity_bytes is not None and need > mem.capacity_bytes:
            buf.pinned = True
            self._spill(mem, need - mem.capacity_bytes, span)
        self.c.occupancy[mem.name] += buf.nbytes
        self.c.peak[mem.name] = max(self.c.peak[mem.name], self.c.occupancy[mem.name])
        buf.ready = max(buf.ready, end)
