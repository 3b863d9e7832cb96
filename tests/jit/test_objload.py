"""The loader of cached kernels that needs no LLVM (attnlang/jit/objload.py, cache.py; issue 19).

A kernel loaded by it runs exactly as the one LLVM loaded (same outputs, cycles, energy); its code is
never writable and executable at once; an object it does not fully understand, or one whose symbols do
not resolve, gives None (LLVM loads it instead), never a crash."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from attnlang import usercache
from attnlang.api import run
from attnlang.jit import cache, objload

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.skipif(cache.host() is None, reason="kernels are loaded without LLVM on x86-64 Linux")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(the first run, compiled by LLVM; the object file of its .kernel entry)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    cache.forget_memory_cache()
    first = run(str(EXAMPLES / "flash.attn"), defines={"N": 128, "Br": 32, "Bc": 32}, engine="jit")
    (entry,) = (usercache.folder("jit")).glob("*.kernel")
    data = usercache.read("jit", entry.name)
    yield first, data.split(b"\0", 1)[1], mp
    mp.undo()


def test_a_kernel_loaded_without_llvm_runs_as_llvm_loaded_it(compiled):
    first, _, _ = compiled
    assert first.jit["cached"] is None
    cache.forget_memory_cache()
    again = run(str(EXAMPLES / "flash.attn"), defines={"N": 128, "Br": 32, "Bc": 32}, engine="jit")
    assert again.jit["cached"] == "disk" and isinstance(cache._MEMORY and next(iter(cache._MEMORY.values()))[0],
                                                        objload.Image)
    assert (again.cycles, again.energy_pj) == (first.cycles, first.energy_pj)
    assert all(np.array_equal(again.outputs[k], first.outputs[k]) for k in first.outputs)


def _maps_of(base: int) -> list[str]:
    out = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
        if lo <= base < hi or base <= lo < base + (1 << 20):
            out.append(line.split()[1])
    return out


def test_the_code_is_never_writable_and_executable(compiled):
    _, obj, _ = compiled
    image = objload.load(obj, cache.symbols())
    assert image is not None and image.get_function_address("attn_main") and image.get_function_address("attn_cleanup")
    perms = _maps_of(image.base)
    assert perms and perms[0].startswith("r-x")
    assert not any("w" in p and "x" in p for p in perms)
    assert image.get_function_address("no_such_function") == 0
    image.close()


def _with(obj: bytes, offset: int, fmt: str, value) -> bytes:
    out = bytearray(obj)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def test_what_the_loader_does_not_understand_gives_none(compiled):
    _, obj, _ = compiled
    symbols = cache.symbols()
    e_shoff = struct.unpack_from("<Q", obj, 40)[0]
    bad = [b"", obj[:63], b"\x7fELF" + obj[4:5] + b"\x02" + obj[6:],  # empty, truncated, big-endian
           _with(obj, 18, "<H", 183),  # e_machine: AArch64
           _with(obj, 16, "<H", 3),  # a shared object, not a relocatable one
           _with(obj, 40, "<Q", len(obj)),  # section headers past the end
           obj[:e_shoff + 64]]  # the section headers cut short
    for data in bad:
        assert objload.load(data, symbols) is None
    assert objload.load(obj, {k: v for k, v in symbols.items() if k != "memset"}) is None  # unresolved
    rng = np.random.default_rng(0)
    for _ in range(40):  # section headers damaged: None or an image, never an exception or a crash
        data = bytearray(obj)
        data[int(rng.integers(e_shoff, len(obj)))] ^= 1 << int(rng.integers(0, 8))
        image = objload.load(bytes(data), symbols)
        if image is not None:
            image.close()


def test_the_host_description_is_stable_and_the_key_follows_every_part():
    assert cache.host() == cache.host() and len(cache.host()) > 64
    parts = ("v", "src", "k", "defines", "shapes")
    base = cache.key(*parts)
    assert base == cache.key(*parts)
    for i in range(len(parts)):
        assert cache.key(*parts[:i], parts[i] + "x", *parts[i + 1:]) != base
