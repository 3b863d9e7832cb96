"""The language server's answers, as plain functions: (document text, path, position) -> result.

Positions and ranges here are LSP's: 0-based lines, columns in UTF-16 code
units. lsp.py only turns these results into lsprotocol objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..diagnostics import Diagnostic, Span
from ..display import stdlib_hardware
from ..syntax import ast, vocab
from .analysis import (
    Analysis,
    Symbol,
    analyze,
    contains,
    item_at,
    kernel_symbols,
    real_path,
    resolve,
    scope_at,
    token_at,
    use_target,
    walk,
)
from .hover import describe

Range = tuple[int, int, int, int]  # start line, start character, end line, end character (LSP)


def utf16_column(line: str, column: int) -> int:
    """A 1-based character column to LSP's 0-based UTF-16 offset."""
    return len(line[:max(column - 1, 0)].encode("utf-16-le")) // 2


def from_utf16(line: str, character: int) -> int:
    """LSP's 0-based UTF-16 offset to a 1-based character column."""
    units = 0
    for i, ch in enumerate(line):
        if units >= character:
            return i + 1
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(line) + 1


def _line(text: str, n: int) -> str:
    lines = text.split("\n")
    return lines[n - 1] if 1 <= n <= len(lines) else ""


def to_range(text: str, span: Span) -> Range:
    """A span (1-based, end column one past the end) as an LSP range."""
    return (max(span.line - 1, 0), utf16_column(_line(text, span.line), span.column),
            max(span.end_line - 1, 0), utf16_column(_line(text, span.end_line), span.end_column))


def to_pos(text: str, line0: int, character: int) -> tuple[int, int]:
    return line0 + 1, from_utf16(_line(text, line0 + 1), character)


# ---------------------------------------------------------------- diagnostics


@dataclass(frozen=True)
class LspDiagnostic:
    range: Range
    severity: str  # error | warning | note
    code: str
    message: str


def diagnostics(text: str, path: str) -> list[LspDiagnostic]:
    """The checker's diagnostics for the document; a problem in a file it uses is shown on the `use`."""
    a = analyze(text, path)
    out = []
    for d in a.diagnostics:
        message = d.message + "".join(f"\nnote: {n}" for n in d.notes)
        if d.span.file == path:
            out.append(LspDiagnostic(to_range(text, d.span), d.severity, d.code, message))
        else:
            span = _use_span(a, d) or Span(path, 1, 1, 1, 1)
            out.append(LspDiagnostic(to_range(text, span), d.severity, d.code,
                                     f"{d.span.file}:{d.span.line}:{d.span.column}: {message}"))
    return out


def _use_span(a: Analysis, d: Diagnostic) -> Span | None:
    uses = a.module.uses if a.module else ()
    target = real_path(d.span.file)
    for u in uses:
        if use_target(a, u) == target:
            return u.span
    return uses[0].span if uses else None


# ---------------------------------------------------------------- hover and definition


@dataclass(frozen=True)
class Hover:
    markdown: str
    range: Range


def hover(text: str, path: str, line0: int, character: int, costs=None, wait_s: float = 0.5) -> Hover | None:
    """What the name under the cursor is (kind, type, shape, dtype, memory), and the cost of the
    statement there. costs: a costs.CostRunner, or None for no costs."""
    a = analyze(text, path)
    pos = to_pos(text, line0, character)
    tok = token_at(a, pos)
    item = item_at(a, pos)
    if isinstance(item, ast.Use):
        target = use_target(a, item)
        return Hover(f"`use {item.module}`: {target or 'not found'}", to_range(text, item.span))
    if tok is None:
        return None
    parts = describe(a, pos, tok, resolve(a, pos))
    if isinstance(item, ast.Kernel) and costs is not None:
        parts.append(_cost_part(a, item, pos, costs, wait_s))
    parts = [p for p in parts if p]
    if not parts:
        return None
    return Hover("\n\n".join(parts), to_range(text, tok.span))


def _cost_part(a: Analysis, k: ast.Kernel, pos, costs, wait_s: float) -> str:
    stmt = None
    for s in walk(k.body):
        if contains(s.span, pos, end_inclusive=True) and not isinstance(s, (ast.Param, ast.DimDecl)):
            stmt = s  # walk goes outside in: the last hit is the innermost
    if stmt is None:
        return ""
    lines = f"line {stmt.span.line}" if stmt.span.end_line == stmt.span.line else \
        f"lines {stmt.span.line}-{stmt.span.end_line}"
    got = costs.costs(a, k, wait_s)
    if isinstance(got, str):
        return f"**cost** of {lines}: not available ({got})"
    from ..display import energy

    busy, pj = got.lines(stmt.span.line, stmt.span.end_line)
    at = " ".join(f"{n}={v}" for n, v in got.defines.items())
    if not busy:
        return f"**cost** of {lines} at the defaults ({at}): no unit or transfer time"
    tracks = ", ".join(f"{t} {c:,.0f}" for t, c in sorted(busy.items(), key=lambda kv: -kv[1]))
    return (f"**cost** of {lines} at the defaults ({at}): busy cycles {tracks}; {energy(pj)} of unit and "
            f"transfer energy  \nwhole run: {got.cycles:,} cycles, {energy(got.energy_pj)}")


@dataclass(frozen=True)
class Location:
    path: str  # a file path, or the document's own path
    range: Range


def definition(text: str, path: str, line0: int, character: int) -> Location | None:
    """Where the name under the cursor is declared; on a `use`, the file it brings in."""
    a = analyze(text, path)
    pos = to_pos(text, line0, character)
    item = item_at(a, pos)
    if isinstance(item, ast.Use):
        target = use_target(a, item)
        return Location(target, (0, 0, 0, 0)) if target else None
    sym = resolve(a, pos)
    if sym is None:
        return None
    file = sym.span.file
    target = path if file == path else real_path(file)
    if target is None:
        return None
    source = a.source(file) or ""
    return Location(target, to_range(source, sym.span))


# ---------------------------------------------------------------- completion and symbols


@dataclass(frozen=True)
class Completion:
    label: str
    kind: str  # keyword function constant type variable field module class
    detail: str = ""


_KIND_OF = {"input": "variable", "output": "variable", "value": "variable", "index": "variable",
            "dim": "constant", "param": "constant", "channel": "field", "process": "event", "unit": "module",
            "memory": "struct", "hardware": "class", "kernel": "function"}


def completion(text: str, path: str, line0: int, character: int) -> list[Completion]:
    """Keywords, builtins and the names in scope at the cursor (annotations after '@',
    standard modules after `use`)."""
    a = analyze(text, path)
    pos = to_pos(text, line0, character)
    before = _line(text, pos[0])[:pos[1] - 1]
    if before.rstrip().endswith("@") or before.split(" ")[-1].startswith("@"):
        return [Completion(n, "function", "loop annotation") for n in vocab.ANNOTATIONS]
    if before.lstrip().startswith("use "):
        return [Completion(f"hw.{n}", "module", "standard hardware") for n in stdlib_hardware()]
    out: dict[str, Completion] = {}
    for sym in scope_at(a, pos):
        out.setdefault(sym.name, Completion(sym.name, _KIND_OF.get(sym.kind, "variable"), sym.kind))
    for words, kind, detail in ((vocab.BUILTINS, "function", "builtin"), (vocab.KEYWORDS, "keyword", "keyword"),
                                (vocab.CONSTANTS, "constant", "constant"), (vocab.DTYPES, "type", "element type")):
        for w in words:
            out.setdefault(w, Completion(w, kind, detail))
    return list(out.values())


@dataclass
class DocSymbol:
    name: str
    kind: str  # class function constant variable struct module field event
    detail: str
    range: Range
    selection: Range
    children: list["DocSymbol"] = field(default_factory=list)


def document_symbols(text: str, path: str) -> list[DocSymbol]:
    """Hardware (memories, units, channels) and kernels (dims, params, channels, processes)."""
    a = analyze(text, path)
    mod = a.module
    if mod is None:
        return []
    out: list[DocSymbol] = []

    def sym(s: Symbol, detail: str = "", span: Span | None = None) -> DocSymbol:
        node_span = span or getattr(s.node, "span", s.span)
        return DocSymbol(s.name, _KIND_OF.get(s.kind, "variable"), detail or s.kind, to_range(text, node_span),
                         to_range(text, s.span))

    for h in mod.hardware:
        top = sym(Symbol(h.name, "hardware", h.name_span, h), "hardware")
        top.children = [sym(Symbol(x.name, kind, x.name_span, x)) for kind, xs in
                        (("memory", h.memories), ("unit", h.units), ("channel", h.channels)) for x in xs]
        out.append(top)
    for k in mod.kernels:
        top = sym(Symbol(k.name, "kernel", k.name_span, k), f"kernel on {k.hardware}" if k.hardware else "kernel")
        for s in kernel_symbols(a, k):
            if s.kind in ("dim", "param", "channel", "process") and s.span.file == path:
                top.children.append(sym(s, span=s.span if s.kind == "dim" else None))
        out.append(top)
    return sorted(out, key=lambda d: d.range)


__all__ = ["Completion", "DocSymbol", "Hover", "Location", "LspDiagnostic", "completion", "definition",
           "diagnostics", "document_symbols", "hover"]
