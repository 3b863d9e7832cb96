"""llvmlite plumbing: the host target, the O2 pipeline, external symbols and the code caches.

The new pass manager (PassBuilder at O2 with loop and SLP vectorization) on a
target machine for the host CPU's name and features. `llvm.initialize()` is
deprecated in llvmlite 0.50 and not called.

Compiled code is cached per key (a hash of the source, the defines, the
llvmlite version and the CPU): in memory for this process, and as an object
file plus a JSON description under the user's cache directory, so a second
run loads the object instead of optimizing and compiling again. The disk
entries go through usercache: a folder that others can write is not used, and
an entry is loaded only if its HMAC shows this user's attnlang wrote it under
this key; one that does not verify, is not JSON, or whose object file does not
match the SHA-256 recorded beside it is ignored and rebuilt.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import select
import signal
import sys
import time
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm

_TM = None
_SYMBOLS: dict[str, int] = {}
#: Compiled kernels of this process: key -> (engine, address of the entry, meta).
_MEMORY: dict[str, tuple] = {}


def target_machine():
    """The host target machine for optimizing and emitting objects (never handed to an engine)."""
    global _TM
    if _TM is None:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        _TM = _new_target_machine()
        _register_symbols()
    return _TM


def _new_target_machine():
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
                                        opt=3, reloc="static", codemodel="jitdefault")


def _engine(obj: bytes):
    """An execution engine holding one object file. MCJIT takes ownership of its target machine (it is
    freed with the engine), so every engine gets its own."""
    target_machine()
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), _new_target_machine())
    engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
    engine.finalize_object()
    return engine


def cpu_id() -> str:
    return f"{llvm.get_host_cpu_name()}:{llvm.get_host_cpu_features().flatten()}"


def _register_symbols() -> None:
    """The library functions the compiled code calls (cache.symbols: libc, libm, BLAS where NumPy ships
    one), given to LLVM's linker."""
    from .cache import symbols

    for name, addr in symbols().items():
        _SYMBOLS[name] = addr
        llvm.add_symbol(name, addr)


def has_symbol(name: str) -> bool:
    target_machine()
    return name in _SYMBOLS


def optimize(module: llvm.ModuleRef) -> None:
    # O2, not O3: measured on flash (docs/performance.md, "JIT"), O3 compiled a third slower and ran
    # no faster (117 ms against 105-110 ms at N = 4096; 15 against 13 ms at N = 1024, Br = Bc = 16).
    pto = llvm.create_pipeline_tuning_options(speed_level=2)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = True
    pb = llvm.create_pass_builder(target_machine(), pto)
    mpm = pb.getModulePassManager()
    mpm.run(module, pb)


def cache_dir() -> Path:
    """Where compiled objects are kept (usercache decides whether the folder may be used)."""
    from .. import usercache

    return usercache.base_dir() / CACHE_NAME


#: The usercache folder of compiled objects.
CACHE_NAME = "jit"


def cache_key(*parts: str) -> str:
    h = hashlib.sha256()
    for p in (*parts, llvmlite.__version__, cpu_id()):
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:32]


def load_cached(key: str, entry: str):
    """(engine, address, meta) from memory or disk, or None. On disk, an entry is loaded only when
    usercache verifies it as this user's, written under this key (a copy under another key is not),
    and its object matches the digest its description records."""
    from .. import usercache

    if key in _MEMORY:
        return _MEMORY[key]
    meta_bytes = usercache.read(CACHE_NAME, f"{key}.json")
    obj = usercache.read(CACHE_NAME, f"{key}.o") if meta_bytes is not None else None
    if obj is None:
        return None
    try:
        meta = json.loads(meta_bytes)
        if not isinstance(meta, dict) or meta.get("key") != key:
            return None
        # The two files are written one after the other: they must be of one compile.
        if meta.get("object_sha256") != hashlib.sha256(obj).hexdigest():
            return None
        engine = _engine(obj)
        addr = engine.get_function_address(entry)
        if not addr:
            return None
    except (ValueError, RuntimeError, UnicodeDecodeError):
        return None
    _MEMORY[key] = (engine, addr, meta)
    return _MEMORY[key]


class Expired(Exception):
    """The deadline passed while LLVM optimized and compiled (its child process was ended)."""


class CompileFailed(Exception):
    """LLVM's child process ended without an object (a crash, a signal, an error in LLVM)."""


def compile_ir(key: str, ir_text: str, entry: str, meta: dict, deadline: float | None = None):
    """Optimize and compile IR text: (engine, address of entry, meta, the object), kept in memory (and
    on disk by write_cache where the caller wants LLVM's own entries: cache.py keeps the object in
    its own entry where kernels load without LLVM). With a deadline
    (time.monotonic()), LLVM runs in a child process, ended there (Expired): native code never sees
    Python's signals, so in this process nothing could stop an optimizer that takes minutes."""
    target_machine()
    if deadline is not None and hasattr(os, "fork"):
        obj = _object_in_child(ir_text, deadline)
    else:
        obj = _object(ir_text)
    engine = _engine(obj)
    addr = engine.get_function_address(entry)
    meta = dict(meta, key=key, object_sha256=hashlib.sha256(obj).hexdigest())
    _MEMORY[key] = (engine, addr, meta)
    return engine, addr, meta, obj


def _object(ir_text: str) -> bytes:
    module = llvm.parse_assembly(ir_text)
    module.verify()
    optimize(module)
    return target_machine().emit_object(module)


#: How long past its deadline a compiling child ends itself, should this process not end it (stopped).
CHILD_GRACE_S = 1.0


def _object_in_child(ir_text: str, deadline: float) -> bytes:
    """_object in a forked child that sends the object back through a pipe: at the deadline this process
    kills it (SIGKILL) and raises Expired. The child also dies with this process (PR_SET_PDEATHSIG,
    on Linux) and by its own alarm a little past the deadline, so none outlives what waits for it."""
    parent = os.getpid()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            os.close(r)
            _die_with(parent)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), 1e-3) + CHILD_GRACE_S)
            try:
                data = b"o" + _object(ir_text)
            except BaseException as exc:  # noqa: BLE001 (reported to the parent, which decides)
                data = b"e" + f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")
            view = memoryview(data)
            while view:
                view = view[os.write(w, view):]
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                raise Expired()
            chunk = os.read(r, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    data = b"".join(chunks)
    if data[:1] == b"o":
        return data[1:]
    if data[:1] == b"e":
        raise CompileFailed(f"LLVM could not compile the kernel ({data[1:].decode('utf-8', 'replace')})")
    raise CompileFailed("LLVM's compiling process ended without an object (a crash, or a memory limit)")


def _die_with(parent: int) -> None:
    """In a child: be killed when the parent dies (Linux), and end now if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(0)


def write_cache(key: str, obj: bytes, meta: dict) -> None:
    """LLVM's entries for a compiled kernel on disk: its object and description (meta, from compile_ir),
    which load_cached reads."""
    from .. import usercache

    # The object first: a description names an object that is already there. A read-only or unsafe
    # folder writes nothing, and the in-memory cache still works.
    if usercache.write(CACHE_NAME, f"{key}.o", obj):
        usercache.write(CACHE_NAME, f"{key}.json", json.dumps(meta).encode())


def forget_memory_cache() -> None:
    _MEMORY.clear()
