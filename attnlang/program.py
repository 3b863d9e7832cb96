"""Loading a program: reading files and resolving `use`.

`load` is the entry point for every face of the tool (CLI, REPL, LSP, API):
it reads the named file and the files it uses, parses them, and returns a
Program with every diagnostic found so far.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from .diagnostics import (
    KERNEL_ERROR,
    Diagnostic,
    Sources,
    Span,
    UsageError,
    did_you_mean,
    error,
    has_errors,
)
from .files import NotSource, Roots, UseRefused, looks_like_source, read_source, resolve_use
from .syntax import ast
from .syntax.cache import cached_parse, package_root


@dataclass
class Program:
    """Every module reached from the root file, with its hardware and kernels."""

    root: str
    modules: dict[str, ast.Module] = field(default_factory=dict)
    hardware: dict[str, ast.Hardware] = field(default_factory=dict)
    kernels: dict[str, ast.Kernel] = field(default_factory=dict)  # the root file's kernels
    library_kernels: dict[str, ast.Kernel] = field(default_factory=dict)
    sources: Sources = field(default_factory=Sources)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    parse_cache: bool = False  # files read from disk keep their parse in the disk cache (syntax/cache.py)
    include: tuple[str, ...] = ()  # the -I folders `use "file"` may read from (files.py; ATTN_PATH adds more)

    def kernel(self, name: str | None) -> ast.Kernel:
        """The kernel to run: the named one, or the only one. UsageError otherwise."""
        pool = self.kernels or self.library_kernels
        if name is None:
            if len(pool) == 1:
                return next(iter(pool.values()))
            if not pool:
                raise UsageError(f"{self.root}: there is no kernel to run", KERNEL_ERROR, self.root)
            raise UsageError(f"{self.root} has several kernels ({', '.join(pool)}); pick one with -k",
                             KERNEL_ERROR, self.root)
        if name in self.kernels:
            return self.kernels[name]
        if name in self.library_kernels:
            return self.library_kernels[name]
        raise UsageError(f"{self.root} has no kernel '{name}' (it has: {', '.join(pool) or 'none'})",
                         KERNEL_ERROR, self.root)


def load(path: str, include: Sequence[str] = ()) -> Program:
    """Load a program from a file (UsageError if the file cannot be read). Its parse, and that of the
    files it uses, is kept in the disk cache (syntax/cache.py) for the next command. include: folders
    besides the file's own that `use "file"` may read from (-I; files.py)."""
    return load_source(read_source(path), path, cache=True, include=include)


def load_source(text: str, file: str = "<input>", cache: bool = False, include: Sequence[str] = ()) -> Program:
    """Load a program from source text; `use` paths resolve relative to file, inside file's folder and
    the include folders (files.py). cache: keep the parse of text and of the files it uses on disk (the
    standard library's always is)."""
    prog = Program(root=file, parse_cache=cache, include=tuple(include))
    _Loader(prog, Roots.of(file, include)).module(text, file, None, stack=[], is_root=True)
    return prog


def stdlib_modules() -> list[str]:
    """Every standard library module, as `use` names it (hw.edge, ...)."""
    root = package_root().joinpath("stdlib")
    out, stack = [], [(root, "")]
    while stack:
        node, prefix = stack.pop()
        for child in node.iterdir():
            if child.is_dir():
                stack.append((child, f"{prefix}{child.name}."))
            elif child.name.endswith(".attn"):
                out.append(prefix + child.name.removesuffix(".attn"))
    return sorted(out)


def _stdlib_text(module: str) -> tuple[str, str] | None:
    parts = module.split(".")
    node = package_root().joinpath("stdlib")
    for part in parts[:-1]:
        node = node.joinpath(part)
    node = node.joinpath(parts[-1] + ".attn")
    try:
        if not node.is_file():
            return None
    except OSError:  # a name too long for a file name: no such module (found by the fuzz campaign)
        return None
    return node.read_text(encoding="utf-8"), f"<stdlib>/{'/'.join(parts)}.attn"


#: The standard library's modules, parsed once per process: (name, text) -> (module, syntax diagnostics).
#: The AST is immutable, so every program that uses a module shares its nodes.
_STDLIB_PARSED: dict[tuple[str, str], tuple[ast.Module, tuple[Diagnostic, ...]]] = {}


def _parse_module(text: str, file: str, on_disk: bool) -> tuple[ast.Module, list[Diagnostic]]:
    if not file.startswith("<stdlib>/"):
        if on_disk:
            return cached_parse(text, file)
        from .syntax.parser import parse

        return parse(text, file)
    key = (file, text)
    if key not in _STDLIB_PARSED:
        module, diags = cached_parse(text, file)
        _STDLIB_PARSED[key] = (module, tuple(diags))
    module, diags = _STDLIB_PARSED[key]
    return module, list(diags)


class _Loader:
    """Reads a file and, depth first, the files it uses. A file is known by its real path (its symlinks
    resolved), so two names of one file are read once and a cycle through a symlink is still a cycle."""

    def __init__(self, prog: Program, roots: Roots):
        self.prog, self.roots = prog, roots
        self.names: dict[str, str] = {}  # real path -> the name the file was first read under

    def module(self, text: str, file: str, use: ast.Use | None, stack: list[tuple[str, str]],
               is_root: bool) -> None:
        prog = self.prog
        module, diags = _parse_module(text, file, prog.parse_cache)
        if use is not None and has_errors(diags) and not looks_like_source(text):
            # Not attnlang at all (a symlink to a password file, say): say so at the `use`, showing none of it.
            prog.diagnostics.append(error("E0112", f"cannot use '{use.module}': {file} is not attnlang source "
                                                   "(it does not begin with 'use', 'hardware' or 'kernel')",
                                          use.span))
            prog.modules[file] = ast.Module(file=file, uses=(), hardware=(), kernels=())
            return
        prog.sources.add(file, text)
        prog.modules[file] = module
        prog.diagnostics += diags
        for u in module.uses:
            self.use(u, file, stack)
        self.declare(module, is_root)

    def use(self, use: ast.Use, file: str, stack: list[tuple[str, str]]) -> None:
        prog = self.prog
        if use.is_path:
            if not use.module.endswith(".attn"):
                prog.diagnostics.append(error("E0101", f"'use' takes a .attn file, not '{use.module}'", use.span))
                return
            try:
                name, real = resolve_use(use.module, file, self.roots)
            except UseRefused as exc:
                prog.diagnostics.append(error(exc.code, exc.message, use.span))
                return
            read = lambda: read_source(real)  # noqa: E731  (the checked path, not the name)
        else:
            found = _stdlib_text(use.module)
            if found is None:
                prog.diagnostics.append(_no_stdlib_module(use))
                return
            text, name = found
            real, read = name, lambda: text  # noqa: E731
        chain = [n for n, _ in stack] + [file]
        reals = [r for _, r in stack] + [self._real(file)]
        if real in reals:
            prog.diagnostics.append(_cycle(use, chain, chain[reals.index(real)], name))
            return
        if real in self.names:
            return
        self.names[real] = name
        try:
            sub = read()
        except NotSource as exc:
            prog.diagnostics.append(error("E0112", f"cannot use '{use.module}': {exc}", use.span))
            return
        except UsageError as exc:
            prog.diagnostics.append(error("E0101", f"cannot use '{use.module}': {exc}", use.span))
            return
        self.module(sub, name, use, stack + [(file, reals[-1])], is_root=False)

    def _real(self, file: str) -> str:
        return file if file.startswith("<") else os.path.realpath(file)

    def declare(self, module: ast.Module, is_root: bool) -> None:
        prog = self.prog
        for hw in module.hardware:
            if hw.name in prog.hardware and prog.hardware[hw.name] is not hw:
                first = prog.hardware[hw.name].name_span
                prog.diagnostics.append(error("E0104", f"hardware '{hw.name}' is defined twice (first at "
                                                       f"{first.file}:{first.line})", hw.name_span))
                continue
            prog.hardware[hw.name] = hw
        table = prog.kernels if is_root else prog.library_kernels
        for k in module.kernels:
            k = with_hardware_params(k, prog.hardware)
            if k.name in table:
                first = table[k.name].name_span
                prog.diagnostics.append(error("E0104", f"kernel '{k.name}' is defined twice (first at "
                                                       f"{first.file}:{first.line})", k.name_span))
                continue
            table[k.name] = k


def with_hardware_params(k: ast.Kernel, hardware: Mapping[str, ast.Hardware]) -> ast.Kernel:
    """The kernel with the params (and `where` constraints) of the hardware it runs on declared first in its
    body: a hardware param (an array size, a capacity to explore) is a param of every kernel on that
    hardware, which -D sets and explore searches like a tile size."""
    hw = hardware.get(k.hardware) if k.hardware else (next(iter(hardware.values())) if len(hardware) == 1
                                                      else None)
    if hw is None or not hw.params:
        return k
    return dataclasses.replace(k, body=tuple(hw.params) + tuple(k.body))


def _no_stdlib_module(use: ast.Use) -> Diagnostic:
    # Among the modules of its package, by the last name: a shared "hw." is no likeness.
    package, _, last = use.module.rpartition(".")
    hint = did_you_mean(last, [m.rpartition(".")[2] for m in stdlib_modules() if m.rpartition(".")[0] == package])
    hint = hint.replace("mean '", f"mean '{package}.") if hint and package else hint
    return error("E0101", f"no standard library module '{use.module}'" + (
        hint or " (write a path in quotes to use a file)"), use.span)


def _cycle(use: ast.Use, chain: list[str], first: str, target: str) -> Diagnostic:
    names = chain[chain.index(first):] + [target]
    return error("E0102", f"'use' makes a cycle: {' -> '.join(names)}", use.span)


__all__ = ["Program", "Span", "load", "load_source", "read_source", "stdlib_modules", "with_hardware_params"]
