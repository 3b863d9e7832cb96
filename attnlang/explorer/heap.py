"""Keep freed memory in the process while a search runs (glibc's trim threshold).

The model's arrays over a combination's grid are tens of KiB each and live
for one operation or two. glibc hands the top of its heap back to the
operating system whenever more than 128 KiB of it is free, so the next array
faults its pages in again: on examples/mmee.attn that was about 90,000 page
faults and close to half of a search's time (docs/performance.md, "Explore").
`keep_heap()` raises the threshold for the length of a search and restores
the default afterwards; the heap then grows to the search's peak and stays
there until the search ends. Where the C library is not glibc it does nothing.
"""

from __future__ import annotations

import ctypes
from contextlib import contextmanager

#: mallopt's parameter number for the trim threshold, and glibc's default for it
_M_TRIM_THRESHOLD = -1
_DEFAULT_TRIM = 128 * 1024
_KEEP = 1 << 30

_state = {"depth": 0, "mallopt": None}


def _mallopt():
    got = _state["mallopt"]
    if got is None:
        got = False
        try:
            libc = ctypes.CDLL(None)
            if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt"):
                got = libc.mallopt
                got.argtypes = (ctypes.c_int, ctypes.c_int)
                got.restype = ctypes.c_int
        except OSError:
            got = False
        _state["mallopt"] = got
    return got


@contextmanager
def keep_heap():
    """Within this block, freed heap memory stays with the process (glibc only; nests)."""
    mallopt = _mallopt()
    if not mallopt:
        yield
        return
    if _state["depth"] == 0:
        mallopt(_M_TRIM_THRESHOLD, _KEEP)
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if _state["depth"] == 0:
            mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM)
