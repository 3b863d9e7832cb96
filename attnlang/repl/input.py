"""What a line typed at the REPL is, and whether it is complete.

Everything goes through the one parser (attnlang/syntax/parser.py): a
declaration (`use`, `hardware`, `kernel`) is parsed as a file, statements are
parsed as the body of a kernel wrapped around them, and a bare expression with
`parse_expression`. An unexpected end of input (an unclosed `{`, `(` or `[`)
means the input goes on, as in Hy's REPL.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lark.exceptions import LarkError

from ..diagnostics import Diagnostic, Span, shift_lines
from ..syntax import ast
from ..syntax.build import SyntaxProblem
from ..syntax.parser import grammar, parse, parse_expression

#: The file name of text typed at the prompt, in diagnostics.
PROMPT_FILE = "<repl>"

_DECLARATIONS = {"USE", "HARDWARE", "KERNEL"}
_STATEMENTS = {"FOR", "IF", "STORE", "SEND", "DISCARD", "PROCESS", "PARAM", "DIM", "CHANNEL"}
_OPEN, _CLOSE = {"LPAR", "LSQB", "LBRACE"}, {"RPAR", "RSQB", "RBRACE"}
# The statements are parsed as the body of this kernel; its header is line 1.
_WRAP_HEAD = "kernel __repl__() -> () {\n"


@dataclass(frozen=True)
class Parsed:
    """One complete input: its kind and what it parsed to (or its syntax errors)."""

    kind: str  # "empty" | "command" | "declaration" | "statements" | "expression"
    text: str
    statements: tuple[ast.Stmt, ...] = ()
    expression: ast.Expr | None = None
    module: ast.Module | None = None
    diagnostics: tuple[Diagnostic, ...] = ()


def _tokens(text: str) -> list:
    """The grammar's tokens of text, as far as they lex (comments and blanks dropped)."""
    out = []
    try:
        for tok in grammar().lex(text):
            out.append(tok)
    except LarkError:
        pass  # an unexpected character: the parser reports it
    return out


def bracket_depth(text: str) -> int:
    """How many brackets of any kind are still open at the end of text."""
    depth = 0
    for tok in _tokens(text):
        if tok.type in _OPEN:
            depth += 1
        elif tok.type in _CLOSE:
            depth -= 1
    return depth


def classify(text: str) -> str:
    """The kind of an input, from its first tokens (see Parsed.kind)."""
    stripped = text.strip()
    if stripped.startswith(":"):
        return "command"
    toks = _tokens(text)
    if not toks:
        return "empty" if not stripped else "expression"
    if toks[0].type in _DECLARATIONS:
        return "declaration"
    if toks[0].type in _STATEMENTS:
        return "statements"
    depth = 0
    for tok in toks:
        if tok.type in _OPEN:
            depth += 1
        elif tok.type in _CLOSE:
            depth -= 1
        elif depth == 0 and tok.type in ("EQUAL", "AUG_OP"):
            return "statements"
    return "expression"


def parse_input(text: str) -> Parsed:
    """Parse one input typed at the prompt; spans are positions in text itself."""
    kind = classify(text)
    if kind in ("empty", "command"):
        return Parsed(kind, text)
    if kind == "declaration":
        module, diags = parse(text, PROMPT_FILE)
        return Parsed(kind, text, module=module, diagnostics=tuple(diags))
    if kind == "expression":
        try:
            return Parsed(kind, text, expression=parse_expression(text, PROMPT_FILE))
        except SyntaxProblem as exc:
            return Parsed(kind, text, diagnostics=(exc.diagnostic,))
    module, diags = parse(_WRAP_HEAD + text + "\n}", PROMPT_FILE)
    diags = [_at_end(shift_lines(d, -1), text) for d in diags]
    body = module.kernels[0].body if module.kernels and not diags else ()
    return Parsed(kind, text, statements=shift_lines(body, -1), diagnostics=tuple(diags))


def _open_brackets(text: str) -> list:
    """The brackets still open at the end of text, outermost first (tokens)."""
    stack = []
    for tok in _tokens(text):
        if tok.type in _OPEN:
            stack.append(tok)
        elif tok.type in _CLOSE and stack:
            stack.pop()
    return stack


def _at_end(d: Diagnostic, text: str) -> Diagnostic:
    """A syntax error the wrapper's closing brace caused, said about the end of the input instead."""
    closing = text.count("\n") + 2
    if d.code != "E0002" and d.span.line < closing:
        return d
    lines = text.split("\n")
    end = Span(PROMPT_FILE, len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 2)
    still_open = _open_brackets(text)
    if still_open:
        tok = still_open[-1]
        close = {"LPAR": ")", "LSQB": "]", "LBRACE": "}"}[tok.type]
        message = f"unexpected end of input: expected '{close}' to close the '{tok.value}' at {tok.line}:{tok.column}"
        return dataclasses.replace(d, code="E0002", message=message, span=end)
    return dataclasses.replace(d, message=d.message.replace("found '}'", "found the end of the input"), span=end)


def needs_more(text: str) -> bool:
    """True when text stops early: the parser met the end of the input where more was due
    (an unclosed block, bracket or declaration), as Hy's REPL decides it."""
    kind = classify(text)
    if kind in ("empty", "command"):
        return False
    if bracket_depth(text) > 0:  # an unclosed { ( or [ continues, as :help says, even after a mistake in it:
        return True  # the mistake is reported once the input is whole
    parsed = parse_input(text)
    # Statements are parsed inside a wrapper whose closing brace is the line after the input.
    return any(d.code == "E0002" for d in parsed.diagnostics)
