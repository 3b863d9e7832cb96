"""The JIT engine: `attn run --engine jit` (docs/jit.md).

A kernel is lowered to LLVM IR (attnlang/jit/lower.py; processes and
channels: streams.py) — loops, tile arithmetic and the interpreter's
accounting — optimized at O2 and run natively. Cycles, energy, every counter
and channel statistic are identical to the interpreter's; outputs agree
within floating-point tolerance. What the lowering cannot compile (spilling
memories, event traces, some process constructs, ...) runs in the
interpreter and the report says why.
"""

from __future__ import annotations

import ctypes
import math
import time
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from ..diagnostics import AttnError, Span, error
from ..hardware import Hardware
from ..runtime import Counters, cycles_error, kib, overflow_error, steps_error, timeout_error
from ..syntax import ast
from . import cache
from .values import (
    CLEANUP,
    DEADLOCK,
    ENTRY,
    INEXACT,
    MAX_CYCLES,
    MAX_STEPS,
    NO_MEMORY,
    OVERFLOW,
    RAISE,
    SPILL,
    TIMEOUT,
    Unsupported,
)

if TYPE_CHECKING:
    from ..binding import BoundKernel

#: Bump when the lowering changes what it emits: old cache entries stop matching.
VERSION = "8"

_PROTO = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_double,
                          ctypes.c_double)
_CLEAN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def compile_kernel(bound: BoundKernel, input_shapes: dict, deadline: float | None = None) -> dict:
    """The compiled kernel for a bound kernel (check.bind_kernel) and its inputs' shapes: {"addr", "cleanup",
    "meta", "compile_seconds", "cached"}, or {"fallback": reason} when the lowering cannot compile it.
    deadline (time.monotonic()): past it, E1004, LLVM's optimizer included (native.compile_ir runs it in a
    child process it can end)."""
    t0 = time.perf_counter()
    kernel, env = bound.kernel, bound.env
    texts = "\0".join(f"{name}\0{text}" for name, text in sorted(bound.sources.items()))
    defines = repr(sorted((k, repr(v)) for k, v in env.items()))
    shapes = repr(sorted(input_shapes.items()))
    name = cache.key(VERSION, texts, kernel.name, defines, shapes)
    hit = cache.load(name, ENTRY)  # without LLVM (attnlang/jit/cache.py)
    if hit is not None:
        engine, addr, meta, cached = hit
        return {"engine": engine, "addr": addr, "cleanup": engine.get_function_address(CLEANUP), "meta": meta,
                "compile_seconds": time.perf_counter() - t0, "cached": cached}
    from . import native  # llvmlite's binding and its library: only when the kernel is not cached that way

    key = native.cache_key(VERSION, texts, kernel.name, defines, shapes, str(native.has_symbol("attn_sgemm")))
    in_memory = key in native._MEMORY
    hit = native.load_cached(key, ENTRY)
    cached = ("memory" if in_memory else "disk") if hit is not None else None
    if hit is not None:
        engine, addr, meta = hit
        if "fallback" in meta:
            return {"fallback": meta["fallback"]}
    else:
        from .budget import Expired
        from .lower import lower_kernel  # llvmlite.ir and the lowering: only when nothing is cached

        try:
            ir_text, meta = lower_kernel(bound, input_shapes, blas=native.has_symbol("attn_sgemm"),
                                         wall_deadline=deadline)
            engine, addr, meta, obj = native.compile_ir(key, ir_text, ENTRY, meta, deadline=deadline)
        except Unsupported as exc:
            native._MEMORY[key] = (None, 0, {"fallback": exc.describe()})
            return {"fallback": exc.describe()}
        except native.CompileFailed as exc:  # LLVM itself failed, in its child process: not kept
            return {"fallback": str(exc)}
        except (Expired, native.Expired):
            raise timeout_error(kernel.name_span, "compiling the kernel") from None
        if not cache.keep(name, (engine, addr, meta), ENTRY, obj=obj):
            native.write_cache(key, obj, meta)  # where a kernel does not load without LLVM: LLVM's entries
    if cached is not None:
        cache.keep(name, (engine, addr, meta), ENTRY, llvm_key=key)
    cleanup = engine.get_function_address(CLEANUP)
    return {"engine": engine, "addr": addr, "cleanup": cleanup, "meta": meta,
            "compile_seconds": time.perf_counter() - t0, "cached": cached}


def execute(bound, inputs: dict, trace: bool = False, max_cycles: float | None = None,
            timeout: float | None = None, verify=None, max_steps: float | None = None):
    """Run a bound kernel (check.bind_kernel) natively; fall back to the interpreter (saying why) where it
    cannot."""
    from ..interp import execute as interp_execute

    kernel, env, hw = bound.kernel, bound.env, bound.hardware

    reason = None
    if trace:
        reason = "--trace runs in the interpreter (the JIT keeps no event log)"
    else:
        shapes = {t.name: tuple(np.shape(inputs[t.name])) for t in kernel.inputs}
        c = compile_kernel(bound, shapes, time.monotonic() + timeout if timeout else None)
        if "fallback" in c:
            reason = c["fallback"]
        else:
            result = _run(c, kernel, env, hw, inputs, max_cycles, timeout, verify, max_steps)
            if isinstance(result, str):
                reason = result
            else:
                return result
    result = interp_execute(bound, inputs, trace=trace, max_cycles=max_cycles, timeout=timeout, verify=verify,
                            max_steps=max_steps)
    result.fallback = f"the JIT ran this in the interpreter: {reason}"
    return result


#: Why a compiled kernel stopped for the interpreter to run it instead (return code -> the reason).
_RERUN = {SPILL: "a memory with 'policy spill' overflows here and the JIT does not model spilling",
          INEXACT: "a '/' of loop indices is not whole here, and the JIT keeps loop indices as integers"}


def _run(c: dict, kernel: ast.Kernel, env: dict, hw: Hardware, inputs: dict, max_cycles, timeout, verify,
         max_steps=None):
    from .. import cost
    from ..report import channel_stats, never_stored, summarize, undrained
    from ..spec import verify_outputs

    meta = c["meta"]
    lay = meta["layout"]
    np_, nf, ni = lay["sizes"]
    P = np.zeros(max(np_, 1), dtype=np.uintp)
    F = np.zeros(max(nf, 1), dtype=np.float64)
    I = np.zeros(max(ni, 1), dtype=np.int64)  # noqa: E741
    keep = []

    def bind(slot, arr):
        keep.append(arr)
        P[slot] = arr.ctypes.data

    for t in kernel.inputs:
        arr = np.ascontiguousarray(inputs[t.name], dtype=np.float64 if t.dtype == "f64" else np.float32)
        bind(lay["p"][f"in.{t.name}"], arr)
    outputs, out_dtype = {}, {}
    for t in kernel.outputs:
        shape = tuple(int(s) for s in _out_shape(t, env))
        outputs[t.name] = np.zeros(shape, dtype=np.float64 if t.dtype == "f64" else np.float32)
        out_dtype[t.name] = t.dtype
        bind(lay["p"][f"out.{t.name}"], outputs[t.name])
    for slot, n, elem in meta["storage"] + meta["scratch"]:
        bind(slot, np.zeros(n, dtype=np.float64 if elem == "f64" else np.float32))
    I[lay["i"]["max_steps"]] = 2**62 if max_steps is None or max_steps >= 2**62 else int(max_steps)
    root = hw.root_memory().name
    mem_id = {name: i for i, name in enumerate(hw.memories)}
    resident = sum(cost.tensor_bytes(a.size, t.dtype) for t, a in
                   [(t, inputs[t.name]) for t in kernel.inputs] + [(t, outputs[t.name]) for t in kernel.outputs])
    F[lay["f"]["occ"] + mem_id[root]] += resident
    F[lay["f"]["peak"] + mem_id[root]] = max(F[lay["f"]["peak"] + mem_id[root]], F[lay["f"]["occ"] + mem_id[root]])
    run = _PROTO(c["addr"])
    clean = _CLEAN(c["cleanup"])
    deadline = time.monotonic() + timeout if timeout else 0.0
    t0 = time.perf_counter()
    try:
        code = run(P.ctypes.data, F.ctypes.data, I.ctypes.data,
                   float(max_cycles) if max_cycles is not None else math.inf, deadline)
    finally:
        clean(P.ctypes.data, F.ctypes.data, I.ctypes.data)
    run_seconds = time.perf_counter() - t0
    if code in _RERUN:  # what the compiled code leaves to the interpreter, at the line where it stopped
        site = meta["sites"][int(I[lay["i"]["err.site"]])]
        return f"line {site['span'][1]}: {_RERUN[code]}"
    if code == DEADLOCK:
        return "every process is blocked (the interpreter reports the deadlock)"
    if code:
        _raise(code, meta, lay, F, I)

    counters = Counters()
    counters.macs = float(F[lay["f"]["macs"]])
    counters.vector_ops = float(F[lay["f"]["vops"]])
    f, i = lay["f"], lay["i"]
    for u in hw.units:
        if f"busy.{u}" in f:
            counters.busy[u] = float(F[f[f"busy.{u}"]])
    touched = sorted((int(I[i[f"seq.{comp}"]]), comp) for comp in meta["components"]
                     if f"seq.{comp}" in i and I[i[f"seq.{comp}"]] > 0)
    counters.energy = defaultdict(float)
    for _, comp in touched:
        counters.energy[comp] = float(F[f[f"energy.{comp}"]])
    for name in hw.memories:
        counters.read_bytes[name] = float(F[f[f"rb.{name}"]]) if f"rb.{name}" in f else 0.0
        counters.write_bytes[name] = float(F[f[f"wb.{name}"]]) if f"wb.{name}" in f else 0.0
        counters.peak[name] = float(F[f["peak"] + mem_id[name]])
    result = summarize(kernel, hw, float(F[f["end"]]), counters, None, outputs, "jit")
    result.channels = {}
    for ch in meta["channels"]:
        sent, received = int(I[ch["sent"]]), int(I[ch["received"]])
        result.channels[ch["name"]] = channel_stats(int(I[ch["max"]]), sent, ch["depth"], float(F[ch["blocked_send"]]),
                                                    float(F[ch["blocked_recv"]]))
        if sent > received:
            result.warnings.append(undrained(ch["name"], sent - received, Span(*ch["span"])))
    result.warnings += never_stored(kernel, lambda name: I[i[f"stored.{name}"]])
    result.verify = verify_outputs(kernel, env, inputs, outputs, out_dtype, verify)
    result.verify_mode = str(verify) if verify else "full"
    result.jit = {"compile_seconds": c["compile_seconds"], "run_seconds": run_seconds, "cached": c["cached"]}
    return result


def _out_shape(t, env):
    from ..static import static_int

    return [static_int(d, env, "a dimension") for d in t.dims]


def _raise(code: int, meta: dict, lay: dict, F, I) -> None:  # noqa: E741
    site = meta["sites"][int(I[lay["i"]["err.site"]])]
    span = Span(*site["span"])
    a, b = float(F[lay["f"]["err.a"]]), float(F[lay["f"]["err.b"]])
    message = site["message"].replace("{a:kib}", kib(a)).replace("{b:kib}", kib(b))
    message = message.replace("{a:d}", str(int(a))).replace("{b:d}", str(int(b))).replace("{a}", f"{a:g}")
    if code == NO_MEMORY:
        raise MemoryError(message)
    if code == MAX_STEPS:
        raise steps_error(int(a), span)
    if code == OVERFLOW:
        raise overflow_error(site["memory"], a, b, span)
    if code == MAX_CYCLES:
        raise cycles_error(a, span)
    if code == TIMEOUT:
        raise timeout_error(span)
    if code != RAISE:
        message = f"the compiled kernel stopped with code {code}"
    raise AttnError(error(site["code"], message, span))


__all__ = ["execute", "compile_kernel"]
