"""What the language server knows about one document: its program, diagnostics and names.

Plain functions over (document text, file path), with no LSP library in
sight, so tests and the benchmark call them directly. Positions here are our
own: 1-based lines and columns counted in characters (code points), the way
spans are; features.py converts to and from LSP's 0-based UTF-16 ones.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import unquote, urlparse

from lark.exceptions import LarkError

from ..binding import BoundKernel, signature_dims
from ..diagnostics import Diagnostic, Span
from ..program import Program, load_source
from ..syntax import ast
from ..syntax.parser import grammar
from .incremental import check_document

Pos = tuple[int, int]  # (line, column), 1-based, columns in characters


@dataclass
class Analysis:
    """One version of a document, loaded and checked."""

    path: str
    text: str
    prog: Program
    diagnostics: list[Diagnostic]

    @property
    def module(self) -> ast.Module | None:
        return self.prog.modules.get(self.path)

    def source(self, file: str) -> str | None:
        return self.text if file == self.path else self.prog.sources._text.get(file)

    def span_text(self, span: Span) -> str:
        """The source text a span covers (as written, for hovers)."""
        text = self.source(span.file)
        if text is None:
            return ""
        lines = text.split("\n")
        if span.line == span.end_line:
            return lines[span.line - 1][span.column - 1:span.end_column - 1] if span.line <= len(lines) else ""
        part = [lines[span.line - 1][span.column - 1:]] + lines[span.line:span.end_line - 1]
        part.append(lines[span.end_line - 1][:span.end_column - 1] if span.end_line <= len(lines) else "")
        return " ".join(p.strip() for p in part)


_CACHE: dict[tuple[str, str], Analysis] = {}
_CACHE_LOCK = threading.Lock()


def analyze(text: str, path: str) -> Analysis:
    """Load and check a document (the last few versions are kept: hover, completion and
    diagnostics of one version share one analysis)."""
    key = (path, text)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    prog = load_source(text, path)
    a = Analysis(path, text, prog, check_document(prog, path, text))
    with _CACHE_LOCK:  # documents are checked in threads of their own (checks.py)
        while len(_CACHE) >= 8:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = a
    return a


# ---------------------------------------------------------------- files and URIs


def uri_to_path(uri: str) -> str:
    """A file: URI to a path; any other URI stays as it is (its `use` paths resolve from the cwd)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return uri
    path = unquote(parsed.path)
    if re.match(r"^/[A-Za-z]:", path):  # file:///C:/... on Windows
        path = path[1:]
    return str(Path(path))


def real_path(file: str) -> str | None:
    """The file a span's file name stands for: stdlib modules resolve to the installed package file."""
    if file.startswith("<stdlib>/"):
        node = resources.files("attnlang").joinpath("stdlib")
        for part in file[len("<stdlib>/"):].split("/"):
            node = node.joinpath(part)
        return str(node)
    if file.startswith("<"):
        return None
    return file


def use_target(a: Analysis, use: ast.Use) -> str | None:
    """The file a `use` brings in: an installed stdlib file, or a path next to the document."""
    if use.is_path:
        base = Path.cwd() if a.path.startswith("<") else Path(a.path).parent  # as program.py resolves it
        return os.path.normpath(str(base / use.module))
    return real_path("<stdlib>/" + use.module.replace(".", "/") + ".attn")


# ---------------------------------------------------------------- positions


def contains(span: Span, pos: Pos, end_inclusive: bool = False) -> bool:
    end = (span.end_line, span.end_column)
    return (span.line, span.column) <= pos and (pos <= end if end_inclusive else pos < end)


def name_span(span: Span, name: str) -> Span:
    """The span of a name at the start of a larger span (a tensor declaration, a target)."""
    return Span(span.file, span.line, span.column, span.line, span.column + len(name))


@dataclass(frozen=True)
class Token:
    type: str
    text: str
    span: Span


def token_at(a: Analysis, pos: Pos) -> Token | None:
    """The token under the cursor (or just before it), from the grammar's own lexer."""
    lines = a.text.split("\n")
    if not 1 <= pos[0] <= len(lines):
        return None
    found: list[Token] = []
    try:
        for tok in grammar().lex(lines[pos[0] - 1]):
            if tok.column <= pos[1] <= tok.end_column:
                found.append(Token(tok.type, str(tok), Span(a.path, pos[0], tok.column, pos[0], tok.end_column)))
    except LarkError:
        pass  # the line has a character the language does not know: what lexed so far still counts
    under = [t for t in found if t.span.column <= pos[1] < t.span.end_column]
    for group in (under, found):  # the token under the cursor, else the one that ends at it; names first
        names = [t for t in group if t.type == "NAME"]
        if names:
            return names[0]
    return (under or found or [None])[0]


# ---------------------------------------------------------------- symbols


@dataclass(frozen=True)
class Symbol:
    """A declared name: what it is, where it is declared, and the node that declares it."""

    name: str
    kind: str  # input output dim param value index channel process unit memory link hardware kernel
    span: Span  # the name where it is declared
    node: object
    owner: object = None  # the kernel or hardware it belongs to


walk = ast.walk_statements


def item_at(a: Analysis, pos: Pos) -> ast.Kernel | ast.Hardware | ast.Use | None:
    mod = a.module
    if mod is None:
        return None
    for item in (*mod.kernels, *mod.hardware, *mod.uses):
        if contains(item.span, pos, end_inclusive=True):
            return item
    return None


def kernel_hardware(a: Analysis, kernel: ast.Kernel) -> ast.Hardware | None:
    if kernel.hardware is not None:
        return a.prog.hardware.get(kernel.hardware)
    return next(iter(a.prog.hardware.values())) if len(a.prog.hardware) == 1 else None


def hardware_symbols(hw: ast.Hardware) -> list[Symbol]:
    out = [Symbol(m.name, "memory", m.name_span, m, hw) for m in hw.memories]
    out += [Symbol(u.name, "unit", u.name_span, u, hw) for u in hw.units]
    out += [Symbol(c.name, "channel", c.name_span, c, hw) for c in hw.channels]
    return out


def _process_var_span(a: Analysis, p: ast.Process) -> Span:
    line = (a.source(p.span.file) or "").split("\n")[p.name_span.line - 1:p.name_span.line] or [""]
    m = re.compile(r"\[\s*(" + re.escape(p.var or "") + r")\b").search(line[0], p.name_span.end_column - 1)
    if m is None:
        return p.name_span
    return Span(p.span.file, p.name_span.line, m.start(1) + 1, p.name_span.line, m.end(1) + 1)


def kernel_symbols(a: Analysis, k: ast.Kernel, pos: Pos | None = None) -> list[Symbol]:
    """The kernel's names in lookup order: loop indices around pos first, then values, tensors,
    dims, params, channels and processes."""
    out: list[Symbol] = []
    stmts = list(walk(k.body))
    loops = [s for s in stmts if isinstance(s, (ast.For, ast.Process)) and s.var is not None
             and (pos is None or contains(s.span, pos, end_inclusive=True))]
    for s in reversed(loops):  # innermost first
        span = s.var_span if isinstance(s, ast.For) else _process_var_span(a, s)
        out.append(Symbol(s.var, "index", span, s, k))
    for s in stmts:
        if isinstance(s, (ast.Assign, ast.Load, ast.Recv)):
            out.append(Symbol(s.target.name, "value", name_span(s.target.span, s.target.name), s, k))
    out += [Symbol(t.name, "input", name_span(t.span, t.name), t, k) for t in k.inputs]
    out += [Symbol(t.name, "output", name_span(t.span, t.name), t, k) for t in k.outputs]
    for s in stmts:
        if isinstance(s, ast.DimDecl):
            out += [Symbol(b.name, "dim", name_span(b.span, b.name), b, k) for b in s.bindings]
        elif isinstance(s, ast.Param):
            out.append(Symbol(s.name, "param", s.name_span, s, k))
        elif isinstance(s, ast.ChannelDecl):
            out.append(Symbol(s.name, "channel", s.name_span, s, k))
        elif isinstance(s, ast.Process):
            out.append(Symbol(s.name, "process", s.name_span, s, k))
    declared = {d.name for d in out if d.kind == "dim"}
    for t in k.inputs + k.outputs:
        for d in t.dims:
            if isinstance(d, ast.Name) and d.id in signature_dims(k) and d.id not in declared:
                declared.add(d.id)
                out.append(Symbol(d.id, "dim", d.span, d, k))
    return out


def global_symbols(a: Analysis) -> list[Symbol]:
    out = [Symbol(k.name, "kernel", k.name_span, k) for k in (*a.prog.kernels.values(),
                                                              *a.prog.library_kernels.values())]
    out += [Symbol(h.name, "hardware", h.name_span, h) for h in a.prog.hardware.values()]
    return out


def scope_at(a: Analysis, pos: Pos) -> list[Symbol]:
    """Every name visible at pos, nearest first (a name may appear twice: the first one wins)."""
    item = item_at(a, pos)
    out: list[Symbol] = []
    if isinstance(item, ast.Kernel):
        out += kernel_symbols(a, item, pos)
        hw = kernel_hardware(a, item)
        if hw is not None:
            out += hardware_symbols(hw)
    elif isinstance(item, ast.Hardware):
        out += hardware_symbols(item)
    return out + global_symbols(a)


def resolve(a: Analysis, pos: Pos) -> Symbol | None:
    """The declaration of the name under the cursor."""
    tok = token_at(a, pos)
    if tok is None or tok.type != "NAME":
        return None
    return next((s for s in scope_at(a, pos) if s.name == tok.text), None)


def kernel_bound(a: Analysis, k: ast.Kernel) -> BoundKernel:
    """The kernel bound at its defaults as far as it binds, for hovers (check.bind_kernel, partial): env,
    the elaborated hardware (None where it has errors), the checker's shapes of its values."""
    from ..check import bind_kernel

    loaded = a.prog.kernels.get(k.name)  # with its hardware's params declared (program.with_hardware_params)
    if loaded is not None and loaded.name_span == k.name_span:
        k = loaded
    return bind_kernel(a.prog, k, rules=False, partial=True)
