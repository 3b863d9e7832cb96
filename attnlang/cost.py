"""Every cost formula, in one place.

Used by the interpreter (one operation at a time, Python numbers), the
analytical model (NumPy arrays with one entry per candidate) and the JIT (the
same formulas, emitted as IR by attnlang/jit). Each function therefore takes
scalars or arrays and uses only arithmetic that works on both. The formulas
and their assumptions are written out in docs/cost-model.md.
"""

from __future__ import annotations

import numpy as np

#: Bytes per element of each dtype.
DTYPE_BYTES: dict[str, int] = {"f64": 8, "f32": 4, "f16": 2, "bf16": 2, "i32": 4, "i8": 1}


def ceil_div(a, b):
    """ceil(a / b) for non-negative integers or integer arrays."""
    return -(-a // b)


def matmul_cycles(m, k, n, rows, cols, batch=1):
    """Cycles for a (batch of) m x k @ k x n on an output-stationary rows x cols array.

    Each pass computes a rows x cols block of the output and streams k
    partial products through the array; consecutive passes overlap their
    fill and drain, so the array fills and drains once per operation:
    passes * k + (rows - 1) + (cols - 1).
    """
    passes = batch * ceil_div(m, rows) * ceil_div(n, cols)
    return passes * k + (rows - 1) + (cols - 1)


def ideal_matmul_cycles(macs, rows, cols):
    """The compute-bound lower bound: every PE busy every cycle (FLAT's ideal latency)."""
    return macs / (rows * cols)


def vector_cycles(elements, lanes, op_cycles):
    """Cycles for one vector op over `elements` on `lanes` lanes: lane groups times the op's cycles."""
    return ceil_div(elements, lanes) * op_cycles


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


def _ceil(x: float) -> int:
    i = int(x)
    return i if i == x else i + 1
