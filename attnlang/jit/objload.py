"""Load a compiled kernel's object file into this process without LLVM.

The JIT compiles a kernel to an ELF relocatable object for the host (x86-64,
LLVM's large code model: every reference to code, constants or a library
function is a 64-bit absolute address). Linking such an object is short
work: lay its allocated sections out in one anonymous mapping, resolve each
symbol (a section of the object, or a libc/libm/BLAS function of this
process), patch each relocation, then make the code and constants read and
execute only (writable sections, if any, on pages of their own, never
executable). That is what LLVM's MCJIT does with the same object; doing it
here spares a cached run importing llvmlite and loading its 100 MiB library.

`load` accepts only what it fully understands — a 64-bit little-endian
x86-64 relocatable object whose relocations are of the kinds listed in
`_RELOCATIONS` and whose symbols all resolve — and returns None for anything
else, so the caller falls back to LLVM. It is given bytes the caller has
already verified (attnlang/jit/cache.py: the user's sealed cache entry and
the object's SHA-256); it never reads a file itself.
"""

from __future__ import annotations

import ctypes
import mmap
import struct
import weakref

_SHF_WRITE, _SHF_ALLOC = 0x1, 0x2
_SHT_SYMTAB, _SHT_RELA, _SHT_NOBITS = 2, 4, 8
_SHN_UNDEF, _SHN_ABS = 0, 0xFFF1
_STT_FUNC = 2
_STB_LOCAL = 0
_PAGE = mmap.PAGESIZE

# x86-64 relocation kinds: S the symbol's address, A the addend, P the place patched, G a slot of this
# image's own table of addresses holding S (for GOT-relative kinds), L a jump to S from this image
_R_64, _R_PC32, _R_PLT32, _R_GOTPCREL, _R_PC64, _R_GOTPCRELX, _R_REX_GOTPCRELX = 1, 2, 4, 9, 24, 41, 42
_RELOCATIONS = {_R_64: "S + A", _R_PC32: "S + A - P", _R_PLT32: "L + A - P", _R_GOTPCREL: "G + A - P",
                _R_PC64: "S + A - P", _R_GOTPCRELX: "G + A - P", _R_REX_GOTPCRELX: "G + A - P"}
#: jmp *0(%rip) followed by the 8-byte address: a jump from this image to a function anywhere
_STUB = b"\xff\x25\x00\x00\x00\x00"
_STUB_BYTES = 16
#: no compiled kernel comes near this (flash's is 40 KiB)
_MAX_BYTES = 1 << 30


class Unloadable(Exception):
    """The object uses something this loader does not handle: the caller uses LLVM instead."""


class Image:
    """A loaded object: its code and data mapped into this process until `close`, or until the Image is
    garbage collected (never while a call into it runs: the caller holds the Image)."""

    def __init__(self, base: int, size: int, functions: dict[str, int]):
        self.base, self.size = base, size
        self._functions = functions
        # bound now: at the interpreter's exit nothing is unmapped, and no module global is needed
        self._unmap = weakref.finalize(self, _libc().munmap, ctypes.c_void_p(base), ctypes.c_size_t(size))
        self._unmap.atexit = False

    def get_function_address(self, name: str) -> int:
        """The address of a global function of the object, or 0 (as llvmlite's engines answer)."""
        return self._functions.get(name, 0)

    def close(self) -> None:
        """Unmap the image (nothing of it may run after)."""
        self._unmap()


_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                              ctypes.c_long]
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        _LIBC = libc
    return _LIBC


def _up(n: int, align: int) -> int:
    return (n + align - 1) // align * align


def load(obj: bytes, symbols: dict[str, int]) -> Image | None:
    """The object linked against `symbols` (name -> address) and mapped, or None where it cannot be."""
    try:
        layout = _Layout(memoryview(obj))
        image = _mapping(layout.size)
    except (Unloadable, struct.error, IndexError, ValueError, OSError):
        return None
    try:
        _fill(image, layout.link(image.base, symbols), layout.read_only)
    except (Unloadable, struct.error, IndexError, ValueError, OSError):
        image.close()
        return None
    image._functions = layout.functions
    return image


class _Layout:
    """An object file's sections as they will lie in memory: read-only ones (code, constants) first, then a
    jump and an address slot per library function, then the writable sections on pages of their own."""

    def __init__(self, obj: memoryview):
        if len(obj) < 64 or bytes(obj[:7]) != b"\x7fELF\x02\x01\x01":  # magic, 64-bit, little-endian, v1
            raise Unloadable("not a 64-bit little-endian ELF file")
        e_type, e_machine = struct.unpack_from("<HH", obj, 16)
        if e_type != 1 or e_machine != 62:
            raise Unloadable("not an x86-64 relocatable object")
        e_shoff, = struct.unpack_from("<Q", obj, 40)
        e_shentsize, e_shnum = struct.unpack_from("<HH", obj, 58)
        if e_shentsize != 64 or e_shnum == 0:
            raise Unloadable("unexpected section headers")
        self.obj = obj
        # name, type, flags, addr, offset, size, link, info, addralign, entsize
        self.sections = sections = [struct.unpack_from("<IIQQQQIIQQ", obj, e_shoff + 64 * i)
                                    for i in range(e_shnum)]
        if any(s[1] != _SHT_NOBITS and s[4] + s[5] > len(obj) for s in sections):
            raise Unloadable("a section runs past the end of the file")
        symtab = [i for i, s in enumerate(sections) if s[1] == _SHT_SYMTAB]
        if len(symtab) != 1:
            raise Unloadable("no single symbol table")
        self.symtab = symtab[0]
        sym_sec = sections[self.symtab]
        self.strtab = sections[sym_sec[6]]
        # name, info, other, section, value, size
        self.syms = [struct.unpack_from("<IBBHQQ", obj, sym_sec[4] + 24 * k) for k in range(sym_sec[5] // 24)]
        self.externals = [k for k, sym in enumerate(self.syms) if k and sym[3] == _SHN_UNDEF]
        self.place: dict[int, int] = {}
        end = self._place(0, writable=False)
        self.tables = _up(end, 16)
        self.read_only = _up(self.tables + len(self.externals) * (_STUB_BYTES + 8), _PAGE)
        self.size = _up(max(self._place(self.read_only, writable=True), 1), _PAGE)
        if self.size > _MAX_BYTES:
            raise Unloadable("larger than any kernel")
        self.functions: dict[str, int] = {}

    def _place(self, end: int, writable: bool) -> int:
        for i, s in enumerate(self.sections):
            if s[2] & _SHF_ALLOC and bool(s[2] & _SHF_WRITE) == writable and s[5]:
                end = _up(end, max(s[8], 1))
                self.place[i] = end
                end += s[5]
        return end

    def name(self, offset: int) -> str:
        start, stop = self.strtab[4] + offset, self.strtab[4] + self.strtab[5]
        return bytes(self.obj[start: stop]).split(b"\0", 1)[0].decode()

    def link(self, base: int, symbols: dict[str, int]) -> bytes:
        """The image's bytes for a mapping at `base`: sections copied, symbols resolved, relocations patched."""
        obj, sections, syms = self.obj, self.sections, self.syms
        image = bytearray(self.size)
        for i, off in self.place.items():
            s = sections[i]
            if s[1] != _SHT_NOBITS:
                image[off: off + s[5]] = obj[s[4]: s[4] + s[5]]
        address: dict[int, int] = {}
        stub: dict[int, int] = {}
        slot: dict[int, int] = {}
        for n, k in enumerate(self.externals):
            name = self.name(syms[k][0])
            if name not in symbols:
                raise Unloadable(f"unresolved symbol {name}")
            address[k] = symbols[name]
            stub[k] = self.tables + n * _STUB_BYTES
            slot[k] = self.tables + len(self.externals) * _STUB_BYTES + 8 * n
            image[stub[k]: stub[k] + _STUB_BYTES] = (_STUB + struct.pack("<Q", address[k])).ljust(_STUB_BYTES, b"\xcc")
            struct.pack_into("<Q", image, slot[k], address[k])
        for k, (st_name, info, _other, shndx, value, _size) in enumerate(syms):
            if k == 0 or shndx == _SHN_UNDEF:
                continue
            if shndx == _SHN_ABS:
                address[k] = value
            elif shndx in self.place:
                address[k] = base + self.place[shndx] + value
            else:
                continue  # of a section that is not loaded: a relocation against it is refused below
            if info & 0xF == _STT_FUNC and info >> 4 != _STB_LOCAL:
                self.functions[self.name(st_name)] = address[k]
        for s in sections:
            if s[1] != _SHT_RELA or s[7] not in self.place:
                continue
            if s[6] != self.symtab or s[9] != 24:
                raise Unloadable("relocations against another symbol table")
            target, limit = self.place[s[7]], sections[s[7]][5]
            for r in range(s[5] // 24):
                r_offset, r_info, addend = struct.unpack_from("<QQq", obj, s[4] + 24 * r)
                k, kind = r_info >> 32, r_info & 0xFFFFFFFF
                if kind not in _RELOCATIONS or k not in address:
                    raise Unloadable(f"relocation of kind {kind} against symbol {k}")
                if r_offset + (8 if kind in (_R_64, _R_PC64) else 4) > limit:
                    raise Unloadable("a relocation past its section")
                at = target + r_offset
                here = base + at
                if kind == _R_64:
                    struct.pack_into("<Q", image, at, (address[k] + addend) & 0xFFFFFFFFFFFFFFFF)
                    continue
                if kind == _R_PC64:
                    struct.pack_into("<q", image, at, address[k] + addend - here)
                    continue
                if kind in (_R_GOTPCREL, _R_GOTPCRELX, _R_REX_GOTPCRELX):
                    if k not in slot:
                        raise Unloadable("a GOT-relative reference to a symbol of the object")
                    value = base + slot[k] + addend - here
                elif k in stub:  # a call to a library function: through this image's jump
                    if kind != _R_PLT32:
                        raise Unloadable("a 32-bit PC-relative reference to data outside the object")
                    value = base + stub[k] + addend - here
                else:
                    value = address[k] + addend - here
                if not -2**31 <= value < 2**31:
                    raise Unloadable("a 32-bit PC-relative reference out of range")
                struct.pack_into("<i", image, at, value)
        return bytes(image)


def code(machine: bytes) -> Image | None:
    """Machine code of attnlang's own, mapped read and execute only (its first byte at `base`)."""
    try:
        image = _mapping(_up(len(machine), _PAGE))
    except OSError:
        return None
    try:
        _fill(image, machine, image.size)
    except OSError:
        image.close()
        return None
    return image


def _mapping(size: int) -> Image:
    """size bytes of fresh memory, read and write, as an Image (empty of functions)."""
    base = _libc().mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                        -1, 0)
    if base is None or base == ctypes.c_void_p(-1).value:
        raise OSError(ctypes.get_errno(), "mmap failed")
    return Image(base, size, {})


def _fill(image: Image, content: bytes, executable: int) -> None:
    """Copy content to the start of the image, then make its first `executable` bytes read and execute only."""
    ctypes.memmove(image.base, content, len(content))
    if executable and _libc().mprotect(ctypes.c_void_p(image.base), executable,
                                       mmap.PROT_READ | mmap.PROT_EXEC) != 0:
        raise OSError(ctypes.get_errno(), "mprotect failed")


__all__ = ["Image", "code", "load"]
