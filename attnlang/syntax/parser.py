"""Source text to AST: the Lark parser, the tree-to-AST pass, syntax errors in words."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from ..diagnostics import Diagnostic, Span, error
from . import ast, lalr
from .build import SyntaxProblem, ToAst

#: Deeper nesting of brackets than this is refused (it is never meant).
MAX_NESTING = 200

_ITEM_START = re.compile(r"^(use|hardware|kernel)\b", re.M)


def grammar() -> Lark:
    """The one parser, built from the grammar file that ships in the package.

    Building the LALR tables takes a noticeable fraction of a second, so the
    built parser is cached under the user's cache directory, keyed by the
    grammar's hash and Lark's version; an unwritable cache is simply skipped.
    """
    return _parser("start")


def expression_grammar() -> Lark:
    """The same grammar entered at one expression (`expr` or `expr on UNIT`).

    A separate parser, not a second start symbol of grammar(): extra start
    symbols add end-of-input to the lookahead of every expression state, and
    file-level messages would then list "the end of the file" as expected."""
    return _parser("stmt_expr")


@lru_cache(maxsize=2)
def _parser(start: str) -> Lark:
    import hashlib
    import io

    import lark

    from .. import usercache

    text = resources.files("attnlang").joinpath("grammar/attn.lark").read_text(encoding="utf-8")
    # The basic lexer reserves keywords everywhere (the contextual one would
    # take `load = 1` as a name where no keyword fits).
    options = dict(parser="lalr", lexer="basic", propagate_positions=True, maybe_placeholders=False, start=start)
    # Lark's tables are a pickle: read only through usercache, which loads nothing this user's attnlang
    # did not write (not Lark's own cache=, which unpickles whatever file has the grammar's hash line).
    digest = hashlib.sha256((text + repr(sorted(options.items())) + lark.__version__).encode()).hexdigest()[:32]
    entry = f"{digest}.lark"
    saved = usercache.read("grammar", entry)
    if saved is not None:
        try:
            return Lark.load(io.BytesIO(saved))
        except Exception:  # noqa: BLE001 - our own bytes from an older Lark: build afresh below
            pass
    parser = Lark(text, **options)
    buf = io.BytesIO()
    parser.save(buf)
    usercache.write("grammar", entry, buf.getvalue())
    return parser


def parse(text: str, file: str = "<input>") -> tuple[ast.Module, list[Diagnostic]]:
    """Parse a whole file. Returns the module (with every item that parsed) and
    the syntax diagnostics; each top-level item is parsed on its own so one
    mistake does not hide the next."""
    diags: list[Diagnostic] = []
    items: list = []
    for line_offset, chunk in _chunks(text):
        deep = _too_deep(chunk, file, line_offset)
        if deep is not None:
            diags.append(deep)
            continue
        try:
            items.extend(lalr.run(grammar(), chunk, ToAst(file, line_offset)))
            continue
        except lalr.NotHere:
            pass  # a syntax error or a problem in the text: Lark's own road says what it is
        try:
            tree = grammar().parse(chunk)
            items.extend(ToAst(file, line_offset).transform(tree))
        except UnexpectedInput as exc:
            diags.append(_describe(exc, chunk, file, line_offset))
        except VisitError as exc:
            if isinstance(exc.orig_exc, SyntaxProblem):
                diags.append(exc.orig_exc.diagnostic)
            elif isinstance(exc.orig_exc, RecursionError):
                diags.append(_too_long_error(file, line_offset + 1))
            else:
                raise
        except RecursionError:
            diags.append(_too_long_error(file, line_offset + 1))
    module = ast.Module(
        file=file,
        uses=tuple(i for i in items if isinstance(i, ast.Use)),
        hardware=tuple(i for i in items if isinstance(i, ast.Hardware)),
        kernels=tuple(i for i in items if isinstance(i, ast.Kernel)),
    )
    return module, diags


def parse_expression(text: str, file: str = "<input>") -> ast.Expr:
    """Parse one expression, optionally `expr on UNIT` (the REPL uses this);
    raises SyntaxProblem. Spans are positions in text itself."""
    deep = _too_deep(text, file, 0)
    if deep is not None:
        raise SyntaxProblem(deep)
    try:
        return ToAst(file).transform(expression_grammar().parse(text))
    except UnexpectedInput as exc:
        raise SyntaxProblem(_describe(exc, text, file, 0)) from None
    except VisitError as exc:
        if isinstance(exc.orig_exc, SyntaxProblem):
            raise exc.orig_exc from None
        if isinstance(exc.orig_exc, RecursionError):
            raise SyntaxProblem(_too_long_error(file, 1)) from None
        raise
    except RecursionError:
        raise SyntaxProblem(_too_long_error(file, 1)) from None


def _chunks(text: str) -> list[tuple[int, str]]:
    """Split at lines that start a top-level item; (line offset, text) each."""
    starts = [m.start() for m in _ITEM_START.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    out = []
    line = 0
    for a, b in zip(starts, starts[1:] + [len(text)], strict=True):
        chunk = text[a:b]
        out.append((line, chunk))
        line += chunk.count("\n")
    return out


_OPEN = {"(": ")", "[": "]", "{": "}"}


def _strip_comments(chunk: str) -> str:
    return re.sub(r'#[^\n]*|"[^"\n]*"', lambda m: " " * len(m.group()), chunk)


def _too_deep(chunk: str, file: str, line_offset: int) -> Diagnostic | None:
    depth = 0
    line, column = 1, 0
    for ch in _strip_comments(chunk):
        column += 1
        if ch == "\n":
            line, column = line + 1, 0
        elif ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                line += line_offset
                return error("E0003", f"brackets nested more than {MAX_NESTING} deep",
                             Span(file, line, column, line, column + 1))
        elif ch in ")]}":
            depth = max(0, depth - 1)
    return None


def _too_long_error(file: str, line: int) -> Diagnostic:
    """The tree is too deep to walk: a very long chain of operators, not brackets."""
    return error("E0003", "expression nested too deeply (split it into several statements)",
                 Span(file, line, 1, line, 2))


# ---------------------------------------------------------------- messages

# Words for the terminals of the grammar, for "expected ..." messages.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "QUANTITY": "a quantity with a unit (such as 512 KiB)",
    "STRING": 'a file name in quotes',
    "SHAPE2": "an array shape (such as 32 x 32)",
    "ANNOTATION": "an annotation (@parallel, @pipeline, @unroll)",
    "COMP_OP": "a comparison",
    "AUG_OP": "an update ('+=', '-=', '*=', '/=')",
    "ARROW": "'->'",
    "COLON": "':'",
    "$END": "the end of the file",
}
# Operators that continue an expression; several at once are named in one word.
_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "PERCENT", "AT", "COMP_OP", "AND", "OR"}
_EXPR_START = {"NAME", "NUMBER", "QUANTITY", "LPAR", "LSQB", "MINUS", "PLUS", "NOT", "WHERE"}
_STMT_START = {"NAME", "STORE", "SEND", "DISCARD", "FOR", "IF", "PROCESS", "PARAM", "DIM", "WHERE", "CHANNEL"}
_BLOCK_WORDS = {
    "hardware": "hardware block", "kernel": "kernel", "memory": "memory block",
    "unit": "unit block", "op": "op block", "for": "for loop", "if": "if block",
    "else": "else block", "process": "process block", "channel": "channel block",
    "link": "link block",
}


def _terminal_word(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    for term in grammar().terminals:
        if term.name == name and term.pattern.type == "str":
            return f"'{term.pattern.value}'"
    return name.lower()


def _expected_words(expected: set[str]) -> list[str]:
    words: list[str] = []
    rest = set(expected)
    if _STMT_START - {"WHERE"} <= rest:
        words.append("a statement")
        rest -= _STMT_START
    if {"NAME", "NUMBER", "LPAR"} <= rest:
        words.append("an expression")
        rest -= _EXPR_START | {"LOAD", "RECV"}  # `x = load ...` / `x = recv ...`: said by "an expression"
    operators = {t for t in rest if t in _OPERATORS or _terminal_word(t) in ("'//'", "'**'")}
    if len(operators) >= 3:
        words.append("an operator")
        rest -= operators
    words += sorted(_terminal_word(t) for t in rest)
    return words


def _join(words: list[str]) -> str:
    if len(words) > 8:
        return ", ".join(words[:8]) + ", …"
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _open_block(chunk: str, offset: int) -> tuple[str, int, int] | None:
    """The innermost '{' still open before offset: (what it opens, line, column)."""
    clean = _strip_comments(chunk[:offset])
    stack: list[int] = []
    for i, ch in enumerate(clean):
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            stack.pop()
    if not stack:
        return None
    pos = stack[-1]
    head = clean[:pos]
    start = max(head.rfind("}"), head.rfind("{"), head.rfind(";")) + 1
    words = re.findall(r"[A-Za-z_]+", head[start:])
    what = next((_BLOCK_WORDS[w] for w in words if w in _BLOCK_WORDS), "block")
    line = clean.count("\n", 0, pos) + 1
    column = pos - (clean.rfind("\n", 0, pos) + 1) + 1
    return what, line, column


#: The last token before an error is looked for in this many characters, and shown cut to half of them.
_TOKEN_WINDOW = 64


def _previous_token(chunk: str, offset: int) -> str | None:
    before = _strip_comments(chunk[:offset]).rstrip()
    # In a window at the end: a search of the whole text for a token at its end is quadratic in a long
    # name or number (every start in it is tried, and each runs to its end).
    tail = before[-_TOKEN_WINDOW:]
    m = re.search(r"(->|\.\.|[=<>!]=|[A-Za-z_0-9.]+|\S)$", tail)
    if not m:
        return None
    token = m.group(1)
    if len(token) > _TOKEN_WINDOW // 2 or (m.start(1) == 0 and len(before) > len(tail)):
        token = "…" + token[-(_TOKEN_WINDOW // 2 - 1):]
    return token


def _describe(exc: UnexpectedInput, chunk: str, file: str, line_offset: int) -> Diagnostic:
    line = (exc.line if exc.line and exc.line > 0 else chunk.count("\n") + 1) + line_offset
    column = exc.column if exc.column and exc.column > 0 else 1
    offset = exc.pos_in_stream if exc.pos_in_stream is not None else len(chunk)
    if isinstance(exc, UnexpectedCharacters):
        ch = chunk[offset] if offset < len(chunk) else "?"
        what = f"character {ch!r}" if ch.isprintable() else f"character U+{ord(ch):04X}"
        return error("E0001", f"unexpected {what}", Span(file, line, column, line, column + 1))
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        expected = set(getattr(exc, "expected", ()) or ())
        opened = _open_block(chunk, len(chunk))
        last = chunk.rstrip()
        line = last.count("\n") + 1 + line_offset
        column = len(last) - (last.rfind("\n") + 1) + 1
        span = Span(file, line, column, line, column + 1)
        if opened and ("RBRACE" in expected or not expected):
            what, oline, ocol = opened
            return error("E0002", f"unexpected end of file: expected '}}' to close the {what} opened at "
                                  f"{oline + line_offset}:{ocol}", span)
        return error("E0002", f"unexpected end of file: expected {_join(_expected_words(expected))}", span)
    assert isinstance(exc, UnexpectedToken)
    tok: Token = exc.token
    expected = set(exc.expected)
    value = str(tok.value)
    value = value if len(value) <= _TOKEN_WINDOW // 2 else value[:_TOKEN_WINDOW // 2 - 1] + "…"
    found = f"'{value}'" if tok.type != "$END" else "the end of the file"
    prev = _previous_token(chunk, tok.start_pos if tok.start_pos is not None else offset)
    words = _expected_words(expected)
    where = f" after '{prev}'" if prev else ""
    msg = f"expected {_join(words)}{where}, found {found}"
    if not words:
        msg = f"unexpected {found}{where}"
    if words == ["an expression"]:
        msg = f"expected an expression{where}, found {found}"
    opened = _open_block(chunk, tok.start_pos or 0)
    if "RBRACE" in expected and opened:
        what, oline, ocol = opened
        others = [w for w in words if w != "'}'"]
        if len(others) > 7:  # keep the close, which says the most
            others = others[:6] + ["…"]
        close = f"'}}' to close the {what} opened at {oline + line_offset}:{ocol}"
        msg = f"expected {_join(others + [close])}, found {found}"
    end_col = (tok.end_column or column + 1) if (tok.end_line in (None, tok.line)) else column + 1
    return error("E0001", msg, Span(file, line, column, line, max(end_col, column + 1)))
