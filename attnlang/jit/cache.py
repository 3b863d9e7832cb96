"""Compiled kernels kept between runs, loaded without LLVM.

A kernel compiled once is kept in memory for the rest of the process and,
on disk, as one entry of the user's `jit` cache (attnlang/usercache.py: a
folder of the user's own that no one else can write, every entry sealed with
the user's HMAC key, written atomically) holding the object file and its
description. The entry's name is a hash of everything the object depends on
— the sources, the kernel, the defines, the input shapes, the JIT's version,
llvmlite's version, whether BLAS is linked, and the CPU as the `cpuid`
instruction describes it (the registers LLVM reads to pick the host's CPU and
features) — worked out without importing llvmlite, and the object is loaded
by attnlang/jit/objload.py: a cached run of an unchanged kernel neither
imports llvmlite nor loads its library. An entry is loaded only when it
verifies as this user's, written under this name, and its object matches the
SHA-256 its description records; anything else is ignored and rewritten.

Where that cannot apply (a CPU other than x86-64 or a system other than
Linux, or an object the loader does not handle), attnlang/jit/native.py's own
cache of LLVM-loaded objects is used, as before.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import struct
import sys
from functools import lru_cache

from .. import usercache
from . import objload

#: The usercache folder (shared with native.py's entries, which end in .o and .json).
CACHE_NAME = "jit"
#: Bump when the entry's layout changes.
FORMAT = "1"

#: Kernels loaded or compiled in this process: key -> (engine or image, entry address, meta).
_MEMORY: dict[str, tuple] = {}

# cpuid(leaf, subleaf, uint32_t out[4]) and xgetbv(register) -> uint64, System V x86-64
_CPUID_CODE = bytes.fromhex("53" "4989d0" "89f8" "89f1" "0fa2" "418900" "41895804" "41894808" "4189500c" "5b" "c3")
_XGETBV_CODE = bytes.fromhex("89f9" "0f01d0" "48c1e220" "4809d0" "c3")
#: The cpuid leaves (and subleaves) LLVM's host detection reads (vendor, family and model, feature bits,
#: extended state), and the largest extended leaf.
_LEAVES = ((0, 0), (1, 0), (7, 0), (7, 1), (0xD, 1), (0x14, 0), (0x19, 0), (0x24, 0), (0x80000000, 0),
           (0x80000001, 0), (0x80000008, 0))


@lru_cache(maxsize=1)
def host() -> bytes | None:
    """This CPU as LLVM's host detection sees it: the cpuid registers it reads (less the core's own APIC
    ID) and the state the OS enables (xgetbv), or None where the loader does not apply."""
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        return None
    image = objload.code(_CPUID_CODE.ljust(32, b"\xcc") + _XGETBV_CODE)
    if image is None:
        return None
    cpuid = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32))(image.base)
    xgetbv = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint32)(image.base + 32)
    regs = (ctypes.c_uint32 * 4)()
    out, osxsave = [], 0
    for leaf, sub in _LEAVES:
        cpuid(leaf, sub, regs)
        eax, ebx, ecx, edx = regs
        if leaf == 1:
            ebx &= 0x00FFFFFF  # bits 24-31: the initial APIC ID of the core this ran on
            osxsave = ecx >> 27 & 1
        out += [leaf, sub, eax, ebx, ecx, edx]
    out.append(xgetbv(0) if osxsave else 0)
    return struct.pack(f"<{len(out)}Q", *out)


_SYMBOLS: dict[str, int] = {}
_LIBC = ("realloc", "free", "memmove", "memcpy", "memset", "clock_gettime")
_LIBM = ("exp", "log", "pow", "fmod", "expf", "logf", "powf", "fmodf", "floor", "floorf")
#: the compiled code's name for a BLAS function, and the bundled OpenBLAS's
_BLAS = (("attn_sgemm", "scipy_cblas_sgemm64_"), ("attn_dgemm", "scipy_cblas_dgemm64_"))


def symbols() -> dict[str, int]:
    """The library functions compiled code may call: name -> address in this process. libc and libm from
    the process's own symbols (Python links both), BLAS where NumPy's wheel bundles one."""
    if _SYMBOLS:
        return _SYMBOLS
    # ctypes.util.find_library runs a program (ldconfig, a compiler) per library: only where needed
    libc = libm = ctypes.CDLL(None)
    if not all(hasattr(libc, name) for name in ("realloc", "clock_gettime", "expf", "fmodf", "floorf")):
        from ctypes.util import find_library

        libc = ctypes.CDLL(find_library("c") or None)
        libm = ctypes.CDLL(find_library("m") or None)
    from ..blas import bundled_openblas

    blas = bundled_openblas()
    wanted = [(libc, name, name) for name in _LIBC] + [(libm, name, name) for name in _LIBM]
    wanted += [(blas, mine, theirs) for mine, theirs in _BLAS] if blas is not None else []
    for lib, mine, theirs in wanted:
        try:
            _SYMBOLS[mine] = ctypes.cast(getattr(lib, theirs), ctypes.c_void_p).value
        except AttributeError:
            continue
    return _SYMBOLS


def key(*parts: str) -> str | None:
    """The entry's name for a kernel (parts: the JIT's version, sources, kernel, defines, shapes), or None
    where objects are not loaded without LLVM here."""
    cpu = host()
    if cpu is None:
        return None
    import llvmlite  # the package's version only; its binding (and library) is not imported

    h = hashlib.sha256()
    for p in (FORMAT, *parts, llvmlite.__version__, str("attn_sgemm" in symbols())):
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    h.update(cpu)
    return h.hexdigest()[:32]


def load(name: str | None, entry: str):
    """(engine or image, address of `entry`, meta, "memory" or "disk") for the entry `name`, or None."""
    if name is None:
        return None
    if name in _MEMORY:
        return (*_MEMORY[name], "memory")
    data = usercache.read(CACHE_NAME, f"{name}.kernel")
    if data is None or b"\0" not in data:
        return None
    head, obj = data.split(b"\0", 1)
    try:
        meta = json.loads(head)
    except (ValueError, UnicodeDecodeError):
        return None
    # the description and the object were written together, under this name
    if not isinstance(meta, dict) or meta.get("entry") != name \
            or meta.get("object_sha256") != hashlib.sha256(obj).hexdigest():
        return None
    image = objload.load(obj, symbols())
    addr = image.get_function_address(entry) if image is not None else 0
    if not addr:
        return None
    _MEMORY[name] = (image, addr, meta)
    return (*_MEMORY[name], "disk")


def keep(name: str | None, compiled: tuple, entry: str, obj: bytes | None = None, llvm_key: str | None = None) -> bool:
    """Keep a kernel that LLVM compiled or loaded, (engine, address, meta), under `name`: in memory, and on
    disk with its object (obj, or the one native.py wrote under llvm_key, read back through usercache;
    either way matching the SHA-256 in meta: the object this engine runs). True when the entry was written
    and its object loads here without LLVM (else the caller keeps LLVM's own entries)."""
    if name is None:
        return False
    if name in _MEMORY:
        return True
    _MEMORY[name] = compiled
    meta = compiled[2]
    if obj is None and llvm_key is not None:
        obj = usercache.read(CACHE_NAME, f"{llvm_key}.o")
    if obj is None or "fallback" in meta or meta.get("object_sha256") != hashlib.sha256(obj).hexdigest():
        return False
    image = objload.load(obj, symbols())
    if image is None or not image.get_function_address(entry):
        return False  # relocations objload does not handle: LLVM loads this one
    head = json.dumps(dict(meta, entry=name)).encode()
    return usercache.write(CACHE_NAME, f"{name}.kernel", head + b"\0" + obj)


def forget_memory_cache() -> None:
    """Forget what this process compiled or loaded (the next run loads from disk or compiles); a loaded
    kernel's memory is unmapped once nothing holds it."""
    _MEMORY.clear()
    native = sys.modules.get(f"{__package__}.native")
    if native is not None:
        native.forget_memory_cache()


__all__ = ["forget_memory_cache", "host", "keep", "key", "load", "symbols"]
