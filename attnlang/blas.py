"""The BLAS that NumPy's wheels bundle: found once, for the JIT's matmul tiles and for the spec check.

The spec check's float64 matrix products (attnlang/spec) run on NumPy's BLAS, which by default starts
a thread per core. On a machine whose cores are taken by other work, those threads wait for each other
instead of working: at N = 32768 a full check took about 200 s with two threads and 25 s with one on a
busy 2-core box, while on an idle one two threads are at most twice as fast as one
(docs/performance.md). `threads_for_free_cores` therefore runs a stretch of work with no more BLAS
threads than there are cores left free by the load average, and puts the count back after; a user's
OPENBLAS_NUM_THREADS stays the upper bound.
"""

from __future__ import annotations

import ctypes
import glob
import math
import os
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

#: (get, set) thread-count functions of the bundled OpenBLAS, by the names its builds have used.
_THREAD_FUNCTIONS = (("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
                     ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
                     ("openblas_get_num_threads", "openblas_set_num_threads"))


@lru_cache(maxsize=1)
def bundled_openblas() -> ctypes.CDLL | None:
    """The OpenBLAS that NumPy's wheels bundle (64-bit integer CBLAS interface), if there is one."""
    import numpy

    root = Path(numpy.__file__).resolve().parent
    patterns = [str(root.parent / "numpy.libs" / "libscipy_openblas64_*.so*"),
                str(root / ".dylibs" / "libscipy_openblas64_*.dylib")]
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            try:
                return ctypes.CDLL(path)
            except OSError:
                continue
    return None


def _thread_functions():
    lib = bundled_openblas()
    for get, put in _THREAD_FUNCTIONS:
        if lib is not None and hasattr(lib, get) and hasattr(lib, put):
            getter, setter = getattr(lib, get), getattr(lib, put)
            getter.restype, getter.argtypes = ctypes.c_int, []
            setter.restype, setter.argtypes = None, [ctypes.c_int]
            return getter, setter
    return None


def threads() -> int | None:
    """The bundled BLAS's thread count now (None without one)."""
    fns = _thread_functions()
    return None if fns is None else int(fns[0]())


def free_cores() -> int | None:
    """Cores the load average leaves free, this process's own running thread counted as free (None where
    the system does not say)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    others = max(0.0, load - 1.0)  # the 1-minute load counts this process too
    return max(1, math.floor((os.cpu_count() or 1) - others + 0.5))


@contextmanager
def threads_for_free_cores() -> Iterator[None]:
    """Run the block with the BLAS's threads cut to the cores left free (never more than it had)."""
    fns = _thread_functions()
    free = free_cores()
    if fns is None or free is None:
        yield
        return
    get, put = fns
    before = int(get())
    if free >= before:
        yield
        return
    put(free)
    try:
        yield
    finally:
        put(before)
