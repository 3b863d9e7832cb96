"""Every cost formula, in one place.

Used by the interpreter (one operation at a time, Python numbers), the
analytical model (NumPy arrays with one entry per candidate) and the JIT (the
same formulas, emitted as IR by attnlang/jit). Each function therefore takes
scalars or arrays and uses only arithmetic that works on both. The formulas
and their assumptions are written out in docs/cost-model.md.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: Bytes per element of each dtype.
DTYPE_BYTES: dict[str, int] = {"f64": 8, "f32": 4, "f16": 2, "bf16": 2, "i32": 4, "i8": 1}


def ceil_div(a, b):
    """ceil(a / b) for non-negative integers or integer arrays."""
    return -(-a // b)


#: The dataflows a matrix unit may declare: output, weight or input stationary.
DATAFLOWS: tuple[str, ...] = ("os", "ws", "is")
#: How a matrix unit pays its fill and drain: on each fold (a fold waits for the previous one to drain),
#: once per operation (a fold's fill overlaps the previous fold's drain), or not at all (the array is
#: modeled as compute-bound, a fold costs its streaming cycles only: Timeloop's and FLAT's assumption).
FILLS: tuple[str, ...] = ("each", "once", "none")


def matmul_folds(m, k, n, rows, cols, dataflow="os"):
    """(folds, cycles a fold streams) of an m x k @ k x n on a rows x cols systolic array.

    What stays in the array picks the two dimensions that are folded onto it
    and the one that streams through it:

    - os (output stationary): the m x n output is folded onto the array, k streams;
    - ws (weight stationary): the k x n weights are folded onto the array, m streams;
    - is (input stationary): the k x m inputs are folded onto the array, n streams.
    """
    if dataflow == "ws":
        return ceil_div(k, rows) * ceil_div(n, cols), m
    if dataflow == "is":
        return ceil_div(k, rows) * ceil_div(m, cols), n
    return ceil_div(m, rows) * ceil_div(n, cols), k


def matmul_cycles(m, k, n, rows, cols, batch=1, dataflow="os", fill="each"):
    """Cycles for a (batch of) m x k @ k x n on a rows x cols systolic array.

    A fold streams its operand through the array and pays the array's skew:
    rows + cols - 2 cycles for output stationary, plus `rows` more to preload
    the stationary operand for weight and input stationary. With fill "each"
    (the default) every fold pays that fill and drain,

        folds x (stream + fill),

    which is SCALE-Sim's stall-free count plus one (SCALE-Sim numbers cycles
    from 0). With fill "once" consecutive folds overlap one's drain with the
    next one's fill, and the operation pays it once: folds x stream + fill.
    With fill "none" a fold costs its streaming cycles only: folds x stream.
    """
    folds, stream = matmul_folds(m, k, n, rows, cols, dataflow)
    folds = batch * folds
    skew = rows + cols - 2 if dataflow == "os" else 2 * rows + cols - 2
    if fill == "once":
        return folds * stream + skew
    if fill == "none":
        return folds * stream
    return folds * (stream + skew)


def ideal_matmul_cycles(macs, rows, cols):
    """The compute-bound lower bound: every PE busy every cycle (FLAT's ideal latency)."""
    return macs / (rows * cols)


class Timing(NamedTuple):
    """When one operation occupies its unit and when its result is ready, in cycles after it starts."""

    busy: object  # cycles the unit spends issuing it (its utilization)
    issue: object  # until the unit may start its next operation
    ready: object  # until its result may be read


def fixed_timing(cycles) -> Timing:
    """An operation that holds its unit until its result is ready (a matrix unit's matmul)."""
    return Timing(cycles, cycles, cycles)


def vector_timing(elements, lanes, steps) -> Timing:
    """The timing of a vector operation over `elements` on `lanes` lanes that runs the unit ops `steps`, a
    sequence of (interval, latency) in order.

    Each unit op issues one group of `lanes` elements every `interval` cycles,
    ceil(elements / lanes) groups in all, and a group's result is ready
    `latency` cycles after it issues. The steps of one operation chain group
    by group: a step starts when the unit has issued the previous step and
    the previous step's first group is ready. The result is ready `latency`
    after the last step's last issue. An op with interval = latency = c is
    not pipelined: c cycles per group, result ready when the unit is free.
    """
    groups = ceil_div(elements, lanes)
    busy = start = 0
    prev = None
    for interval, latency in steps:
        if prev is not None:
            p_start, p_interval, p_latency = prev
            start = _max(p_start + groups * p_interval, p_start + p_latency)
        busy = busy + groups * interval
        prev = (start, interval, latency)
    if prev is None:
        return Timing(0, 0, 0)
    start, interval, latency = prev
    issue = start + groups * interval
    ready = _max(issue, start + (groups - 1) * interval + latency)
    if _is_array(groups):
        ready = np.where(groups > 0, ready, issue)
    elif groups == 0:
        ready = issue
    return Timing(busy, issue, ready)


def transfer_cycles(nbytes, bytes_per_cycle, latency_cycles):
    """Cycles for a DMA transfer: the bytes at the narrowest bandwidth on the path, plus latencies.

    Fractional bandwidths (50 GiB/s at 940 MHz is 57.1 B/cycle) round up to
    whole cycles.
    """
    return np.ceil(nbytes / bytes_per_cycle) + latency_cycles if _is_array(nbytes, bytes_per_cycle) \
        else _ceil(nbytes / bytes_per_cycle) + latency_cycles


def mac_energy_pj(macs, mac_pj):
    return macs * mac_pj


def vector_energy_pj(elements, op_energy_pj):
    return elements * op_energy_pj


def memory_energy_pj(read_bytes, write_bytes, read_pj_per_byte, write_pj_per_byte):
    return read_bytes * read_pj_per_byte + write_bytes * write_pj_per_byte


def leakage_energy_pj(cycles, leakage_pj_per_cycle):
    return cycles * leakage_pj_per_cycle


def tensor_bytes(elements, dtype: str):
    return elements * DTYPE_BYTES[dtype]


def _is_array(*xs) -> bool:
    return any(isinstance(x, np.ndarray) for x in xs)


def _max(a, b):
    return np.maximum(a, b) if _is_array(a, b) else max(a, b)


def _ceil(x: float) -> int:
    i = int(x)
    return i if i == x else i + 1
