"""Pygments lexer for attnlang, registered as ``attn`` (``pygmentize -l attn``).

Every word list comes from :mod:`attnlang.syntax.vocab`, and the token shapes
(quantities, shapes, annotations) follow the terminals of grammar/attn.lark, so
the lexer cannot drift from the language. Modeled on pygments/lexers/gleam.py.
"""

from __future__ import annotations

from typing import ClassVar

from pygments import highlight
from pygments.formatters import Terminal256Formatter
from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

from attnlang.syntax import vocab

__all__ = ["AttnLexer", "highlight_ansi"]


def _alternation(names: tuple[str, ...]) -> str:
    # Longest first, so `cycles` is tried before `cycle` and `Mi` before `M`.
    return "|".join(sorted(names, key=len, reverse=True))


_NUMBER = r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_UNIT = rf"(?:{_alternation(vocab.PREFIXES)})?(?:{_alternation(vocab.MEASURE_UNITS)})"
#: Same shape as the grammar's QUANTITY terminal: 940 MHz, 50 GiB/s, 1.5 pJ/B.
_QUANTITY = rf"({_NUMBER})([ \t]*)({_UNIT}(?:/{_UNIT})?)(?![A-Za-z0-9_])"
#: Same shape as the grammar's SHAPE2 terminal: 32 x 32.
_SHAPE = r"(\d+)([ \t]*)(x)([ \t]*)(\d+)(?![A-Za-z0-9_])"


class AttnLexer(RegexLexer):
    """Lexer for attnlang programs (``.attn``): hardware blocks and kernels."""

    name = "attn"
    aliases: ClassVar[list[str]] = ["attn", "attnlang"]
    filenames: ClassVar[list[str]] = ["*.attn"]
    mimetypes: ClassVar[list[str]] = ["text/x-attn"]

    # `where` is both a keyword and a builtin: keywords are tried first.
    keywords = words(vocab.KEYWORDS, prefix=r"\b", suffix=r"\b")
    builtins = words(vocab.BUILTINS, prefix=r"\b", suffix=r"\b")
    constants = words(vocab.CONSTANTS, prefix=r"\b", suffix=r"\b")
    types = words(vocab.DTYPES + vocab.UNIT_KINDS, prefix=r"\b", suffix=r"\b")
    annotations = words(vocab.ANNOTATIONS, prefix="@", suffix=r"\b")

    tokens: ClassVar[dict] = {
        "root": [
            (r"\s+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r'"[^"\n]*"', String.Double),
            (annotations, Name.Decorator),
            # Numbers with units and array shapes before plain numbers.
            (_QUANTITY, bygroups(Number, Whitespace, Keyword.Type)),
            (_SHAPE, bygroups(Number.Integer, Whitespace, Operator, Whitespace, Number.Integer)),
            (r"\d+\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+", Number.Float),
            (r"\d+", Number.Integer),
            # Declarations name what they declare.
            (r"\b(kernel)(\s+)([A-Za-z_]\w*)", bygroups(Keyword, Whitespace, Name.Function)),
            (r"\b(hardware)(\s+)([A-Za-z_]\w*)", bygroups(Keyword, Whitespace, Name.Class)),
            (r"\b(use)(\s+)([A-Za-z_][\w.]*)", bygroups(Keyword, Whitespace, Name.Namespace)),
            (keywords, Keyword),
            (constants, Keyword.Constant),
            (types, Keyword.Type),
            (builtins, Name.Builtin),
            (r"->|\.\.", Operator),
            (r"(\.)([A-Za-z_]\w*)", bygroups(Punctuation, Name.Attribute)),
            (r"\*\*|//|[-+*/]=|[=!<>]=|[-+*/%@<>=]", Operator),
            (r"[{}()\[\],;:.]", Punctuation),
            (r"[A-Za-z_]\w*", Name),
        ],
    }


def highlight_ansi(source: str) -> str:
    """Return ``source`` coloured with 256-colour ANSI escapes, for terminals.

    No newline is added: a line in, a line out (the REPL colours as you type).
    """
    text = highlight(source, AttnLexer(stripnl=False), Terminal256Formatter())
    if not source.endswith("\n") and text.endswith("\n"):
        text = text[:-1]
    return text
