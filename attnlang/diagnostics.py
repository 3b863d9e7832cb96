"""Diagnostics: source spans, the one Diagnostic type, and their rendering.

Checks collect Diagnostics as values; only the command line turns them into
exit codes. Every code is documented in docs/diagnostics.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Iterable


def json_text(obj, indent: int | None = None) -> str:
    """Strict JSON for every `--json`: a non-finite number is the string "inf", "-inf" or "nan"
    (Python's json would print Infinity and NaN, which JSON does not have)."""
    return json.dumps(_finite(obj), indent=indent, allow_nan=False)


def _finite(x):
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if hasattr(x, "item") and callable(x.item) and getattr(x, "ndim", 1) == 0:  # a NumPy scalar
        return _finite(x.item())
    return x


@dataclass(frozen=True)
class Span:
    """A region of a source file: 1-based lines and columns, end column one past the end."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def merge(self, other: "Span") -> "Span":
        """The smallest span covering both."""
        start = min((self.line, self.column), (other.line, other.column))
        end = max((self.end_line, self.end_column), (other.end_line, other.end_column))
        return Span(self.file, start[0], start[1], end[0], end[1])

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


#: A span for things that come from no source text (the command line, defaults).
NO_SPAN = Span("<command line>", 1, 1, 1, 1)


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a program."""

    severity: str  # "error" | "warning" | "note"
    code: str
    message: str
    span: Span
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict:
        """The JSON form `attn check --json` prints (docs/diagnostics.md)."""
        return {
            "file": self.span.file,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "notes": list(self.notes),
        }


def error(code: str, message: str, span: Span, *notes: str) -> Diagnostic:
    return Diagnostic("error", code, message, span, tuple(notes))


def warning(code: str, message: str, span: Span, *notes: str) -> Diagnostic:
    return Diagnostic("warning", code, message, span, tuple(notes))


class AttnError(Exception):
    """A user error: the program (or its inputs) is wrong. Carries diagnostics."""

    def __init__(self, diagnostics: Diagnostic | Iterable[Diagnostic]):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        super().__init__("; ".join(d.message for d in self.diagnostics))


#: The codes of command-line errors (exit status 2); docs/diagnostics.md lists them.
FILE_ERROR = "E0106"  # a named file cannot be read as a program
DEFINE_ERROR = "E0107"  # a -D that is malformed or that no kernel can take
KERNEL_ERROR = "E0108"  # -k names no kernel, or the file has none or several to pick from
USAGE_ERROR = "E0109"  # any other flag or argument (argparse's own, --input, --save, ...)


class UsageError(Exception):
    """The command line or a named file is wrong (exit status 2).

    It has a code like every diagnostic; `file` is the file it is about, when it is about one.
    """

    def __init__(self, message: str, code: str = USAGE_ERROR, file: str | None = None):
        super().__init__(message)
        self.code = code
        self.file = file

    def diagnostic(self) -> Diagnostic:
        """The error as a Diagnostic: its span names the file (or the command line), at line 0 column 0,
        the place of something that is not in any source text."""
        where = self.file if self.file is not None else NO_SPAN.file
        return error(self.code, str(self), Span(where, 0, 0, 0, 0))

    def render(self) -> str:
        """`attn: error[CODE]: message`, the command-line form (there is no source line to show)."""
        return f"attn: error[{self.code}]: {self}"


class Sources:
    """The text of every file read, so diagnostics can show their source line."""

    def __init__(self) -> None:
        self._text: dict[str, str] = {}

    def add(self, name: str, text: str) -> None:
        self._text[name] = text

    def text(self, name: str) -> str | None:
        """The whole text of a file, or None if it was never read."""
        return self._text.get(name)

    def items(self):
        """(file name, text) for every file read."""
        return self._text.items()

    def merge(self, other: "Sources") -> "Sources":
        """Add every file of another Sources; returns self."""
        self._text.update(other._text)
        return self

    def line(self, name: str, number: int) -> str | None:
        text = self._text.get(name)
        if text is None:
            return None
        # Lines end at "\n" only, as the parser counts them (splitlines would also
        # split at form feeds and U+2028, and show the wrong line).
        lines = text.split("\n")
        if 1 <= number <= len(lines):
            return lines[number - 1].removesuffix("\r")
        return None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """"; did you mean 'x'?" when a close name exists, else "": the one suggestion for every kind of name
    (functions, hardware and its modules, memories, units) in the checker, the runtime, the REPL and the
    language server."""
    import difflib  # only an unknown name needs it

    hits = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean '{hits[0]}'?" if hits else ""


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)


def sort_key(d: Diagnostic) -> tuple:
    return (d.span.file, d.span.line, d.span.column, d.code)


def render(d: Diagnostic, sources: Sources | None = None) -> str:
    """`file:line:col: error[CODE]: message`, the source line and a caret."""
    if d.span.line == 0:  # not in any source text: a file or the command line (UsageError.diagnostic)
        return f"attn: {d.severity}[{d.code}]: {d.message}"
    out = [f"{d.span}: {d.severity}[{d.code}]: {d.message}"]
    text = sources.line(d.span.file, d.span.line) if sources else None
    if text is not None and len(text) <= 400:
        text = text.expandtabs(1)
        col = max(1, min(d.span.column, len(text) + 1))
        width = 1
        if d.span.end_line == d.span.line:
            width = max(1, min(d.span.end_column, len(text) + 1) - col)
        gutter = f"{d.span.line:>5} | "
        out.append(gutter + text)
        out.append(" " * (len(gutter) - 2) + "| " + " " * (col - 1) + "^" + "~" * (width - 1))
    for note in d.notes:
        out.append(f"  = note: {note}")
    return "\n".join(out)


def render_all(diagnostics: Iterable[Diagnostic], sources: Sources | None = None) -> str:
    return "\n".join(render(d, sources) for d in sorted(diagnostics, key=sort_key))


def to_json(diagnostics: Iterable[Diagnostic]) -> str:
    return json_text([d.to_json() for d in sorted(diagnostics, key=sort_key)], indent=2)


__all__ = [
    "AttnError", "DEFINE_ERROR", "Diagnostic", "FILE_ERROR", "KERNEL_ERROR", "NO_SPAN", "USAGE_ERROR", "did_you_mean",
    "Sources", "Span", "UsageError",
    "error", "has_errors", "render", "render_all", "to_json", "warning",
]


def shift_lines(obj, delta: int):
    """obj (an AST node, a Diagnostic, a tuple of them) with every span moved delta lines."""
    if isinstance(obj, Span):
        return Span(obj.file, obj.line + delta, obj.column, obj.end_line + delta, obj.end_column)
    if isinstance(obj, tuple):
        return tuple(shift_lines(x, delta) for x in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            moved = shift_lines(value, delta)
            if moved is not value:
                changes[f.name] = moved
        return dataclasses.replace(obj, **changes) if changes else obj
    return obj
