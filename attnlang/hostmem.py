"""The host-memory guard: what a run will hold in this machine's memory, counted before anything is made.

A run keeps every number of the program in NumPy arrays (float32; float64
for f64): the inputs (drawn as float64 first), the outputs, every value the
kernel body makes while it lives (the occupancy walk of the checker counted
on the host, check/occupancy.py with host=True: one memory, the bytes an
engine keeps per element, one copy per value whatever @pipeline models),
the channels and their queues, one engine state per process instance, and
afterwards the verification's working set (the spec evaluated a block of
rows at a time, spec/evaluate.py). `check_host_memory` adds these up per
phase of the run (drawing the inputs, running, verifying) and raises E1013,
naming the largest item, when the largest phase needs more than the
machine's physical memory: a program such as `s = q @ q.T` at N = 60000 in
a memory without a capacity, or `channel c[1000000000]`, is refused at
once instead of ending in a MemoryError or the system's out-of-memory
killer. Both engines hold the same numbers, so one guard serves both.
"""

from __future__ import annotations

import math
import os
from typing import Mapping

import numpy as np

from .diagnostics import AttnError, Span, error
from .syntax import ast
from .syntax.nodes import node

#: Host bytes a channel takes besides its elements (its Python object, queue and bookkeeping).
CHANNEL_BYTES = 1024
#: Host bytes one element waiting in a channel takes besides its numbers (the array object, its timestamp).
ELEMENT_BYTES = 160
#: Host bytes one process instance takes (its engine state: names, loops, units), besides its values.
PROCESS_BYTES = 16 * 1024


@node
class Item:
    """Something a run holds: what it is, its bytes, where the program makes it, and a note."""

    label: str
    nbytes: float
    span: Span
    note: str = ""


def host_memory_bytes() -> int | None:
    """This machine's physical memory, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def held_bytes(elements: int, dtype: str, drawn: bool) -> int:
    """Host memory a run takes for a tensor: its numbers as float32 (float64 for f64), and float64 while
    they are drawn at random (drawn)."""
    return elements * (8 if dtype == "f64" else 4) + (elements * 8 if drawn else 0)


def fmt_bytes(nbytes: float) -> str:
    from .check.capacity import fmt_bytes as fmt

    return "more than 10**18 B" if not math.isfinite(nbytes) or nbytes >= 1e18 else fmt(nbytes)


def io_items(k: ast.Kernel, env: Mapping, drawn: bool = True) -> list[Item]:
    """The kernel's inputs (drawn as float64 when `drawn`) and outputs, as the run holds them."""
    from .binding import tensor_shape

    items = []
    for t in list(k.inputs) + list(k.outputs):
        what = "input" if t in k.inputs else "output"
        shape = tensor_shape(t, env, what)
        nbytes = held_bytes(int(np.prod(shape, dtype=object)), t.dtype, drawn and what == "input")
        items.append(Item(t.name, nbytes, t.span, f"{t.dtype}[{', '.join(map(str, shape))}]"))
    return items


def run_items(k: ast.Kernel, env: Mapping, hw, explain: bool = False) -> tuple[float, list[Item]]:
    """(the bytes the run holds at its peak: the kernel body's values, inputs and outputs included, and
    the channels and processes, which live for the whole run; the items: the channels and processes,
    and with explain the values alive at the peak)."""
    from .check import scope
    from .check.capacity import _analysis
    from .check.occupancy import HOST, Occupancy, label_text

    full = scope.full_env(k, env)
    occ = Occupancy(k, full, hw, _analysis(k, full, hw), 1, explain=explain, host=True)
    occ.run()
    items = channel_items(k, env, occ) + process_items(k, env)
    peak = float(occ.peak[HOST][0]) + sum(i.nbytes for i in items)
    snap = occ.snaps.get(HOST)
    if snap is not None:
        for label, ty, nbytes, _copies in snap.live:
            items.append(Item(label_text(label), nbytes, snap.span or k.name_span, _type(ty, occ)))
    return peak, items


def _type(ty, occ) -> str:
    """A value's type, with its dims' values when they have names (f32[N, N], that is f32[60000, 60000])."""
    if ty is None:
        return ""
    try:
        values = [d.eval(occ.scalars if occ.scalars is not None else occ.env) for d in ty.shape]
        concrete = f"{ty.dtype}[{', '.join(str(int(v)) for v in values)}]"
    except Exception:  # noqa: BLE001 - a dim the walk cannot evaluate: the type as written
        return str(ty)
    return str(ty) if concrete == str(ty) else f"{ty}, that is {concrete}"


def channel_items(k: ast.Kernel, env: Mapping, occ) -> list[Item]:
    """Each kernel channel (an array: all of it): its objects, and its queue full of the largest value
    a process sends on it."""
    from .check.occupancy import host_elem_bytes

    sent: dict[str, float] = {}
    for s in ast.walk_statements(k.body):
        if isinstance(s, ast.Send):
            ty = occ.a.types.get(id(s.expr))
            nbytes = float(host_elem_bytes(None))
            if ty is not None and ty.tensor:
                try:
                    nbytes = float(occ.size(ty))
                except Exception:  # noqa: BLE001 - a size the walk could not work out counts one number
                    pass
            sent[s.channel.name] = max(sent.get(s.channel.name, 0.0), nbytes)
    items = []
    for s in k.body:
        if isinstance(s, ast.ChannelDecl):
            count = _static(s.count, env, 1)
            depth = _static(next((p.values[0] for p in s.props if p.name == "depth" and p.values), None), env, 1)
            each = CHANNEL_BYTES + depth * (ELEMENT_BYTES + sent.get(s.name, 4.0))
            label = f"channel {s.name}" + (f"[{count:.0f}]" if s.count is not None else "")
            items.append(Item(label, count * each, s.span, f"depth {depth:.0f}"))
    return items


def process_items(k: ast.Kernel, env: Mapping) -> list[Item]:
    """Each process array's engine states (one per instance)."""
    items = []
    for s in ast.walk_statements(k.body):
        if isinstance(s, ast.Process) and s.var is not None:
            count = max(0.0, _static(s.hi, env, 0) - _static(s.lo, env, 0))
            items.append(Item(f"process {s.name}[{count:.0f}]", count * PROCESS_BYTES, s.span,
                              "one engine state per instance"))
    return items


def spec_items(k: ast.Kernel, env: Mapping, plan) -> list[Item]:
    """The verification's working set for each output with a spec, under plan (none when "off")."""
    from .spec.evaluate import working_bytes

    if plan is None or plan.mode == "off":
        return []
    shapes = {}
    for t in list(k.inputs) + list(k.outputs):
        from .binding import tensor_shape

        shapes[t.name] = tensor_shape(t, env, "input" if t in k.inputs else "output")
    items = []
    for spec in k.specs:
        if spec.output in shapes:
            nbytes = working_bytes(spec.expr, shapes, env, plan)
            if nbytes is not None:
                items.append(Item(f"the verification of {spec.output}", nbytes, spec.span,
                                  "the spec in float64, a block of rows at a time"))
    return items


def _static(e, env: Mapping, default: float) -> float:
    from .static import StaticError, static_eval

    if e is None:
        return float(default)
    try:
        v = static_eval(e, env)
    except (StaticError, TypeError, ValueError, OverflowError):
        return float(default)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else float(default)


def check_host_memory(k: ast.Kernel, env: Mapping, hw=None, plan=None, limit: int | None = None) -> None:
    """E1013 when a run of k at env would hold more than this machine's physical memory (limit).

    Three phases, each counted whole: drawing the inputs (they and the outputs), running (the kernel
    body's values at their peak, inputs and outputs among them, with the channels and processes), and
    verifying (the inputs and outputs, and the spec's working set); hw None skips the run's values,
    plan None the verification. The message names the phase and its largest item."""
    limit = host_memory_bytes() if limit is None else limit
    if limit is None:
        return
    io = io_items(k, env)
    phases = [("the inputs and outputs need", sum(i.nbytes for i in io), io)]  # (message, bytes, items)
    kept = io_items(k, env, drawn=False)
    if hw is not None and sum(i.nbytes for i in io) <= limit:
        peak, items = run_items(k, env, hw)
        if peak > limit:  # again, noting what the run holds at its peak
            peak, items = run_items(k, env, hw, explain=True)
        phases.append(("the run needs", peak, items or kept))  # at the statement of its peak
    specs = spec_items(k, env, plan)
    if specs:
        phases.append(("verifying the outputs needs", sum(i.nbytes for i in kept + specs), kept + specs))
    what, total, items = max(phases, key=lambda p: p[1])
    if total <= limit:
        return
    largest = max(items, key=lambda i: i.nbytes)
    raise AttnError(error(
        "E1013", f"{what} {fmt_bytes(total)} of host memory, more than this machine's {fmt_bytes(limit)}",
        largest.span,
        f"the largest is {largest.label}{': ' + largest.note if largest.note else ''}, {fmt_bytes(largest.nbytes)}",
        "a run holds every tensor's numbers; `attn explore` costs the kernel without them"))
