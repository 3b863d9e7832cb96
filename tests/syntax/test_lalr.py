"""The fast LALR road (syntax/lalr.py) gives exactly the AST Lark's parse + ToAst give, or steps aside."""

from __future__ import annotations

from pathlib import Path

import pytest
from lark.exceptions import UnexpectedCharacters

from attnlang.syntax import lalr
from attnlang.syntax.build import ToAst
from attnlang.syntax.parser import _chunks, grammar

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*ROOT.glob("examples/*.attn"), *ROOT.glob("attnlang/stdlib/**/*.attn")])


def _lark(chunk: str, file: str, offset: int):
    return ToAst(file, offset).transform(grammar().parse(chunk))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_same_ast_as_lark(path: Path):
    text = path.read_text(encoding="utf-8")
    for offset, chunk in _chunks(text):
        assert lalr.run(grammar(), chunk, ToAst(str(path), offset)) == _lark(chunk, str(path), offset)


def test_positions_of_parenthesized_and_inlined_rules():
    text = "kernel k(A: f16[N]) -> (B: f16[N]) {\n  x = (a + b) * -(c)\n  y = ((a))[0:1].T\n}\n"
    assert lalr.run(grammar(), text, ToAst("t.attn", 3)) == _lark(text, "t.attn", 3)


@pytest.mark.parametrize("text", [
    "kernel k() -> () {\n  x = \n}\n",  # a syntax error
    "kernel k() -> () {\n  x = 1e999999999999999999999999999999999999999999\n}",
    "kernel k() -> () on a on b {\n}\n",  # a SyntaxProblem raised by ToAst
    "kernel k() -> () {\n  x = " + "- " * 150 + "1\n}\n",  # deeper than MAX_DEPTH
])
def test_steps_aside_for_lark(text: str):
    try:
        lalr.run(grammar(), text, ToAst("t.attn"))
    except lalr.NotHere:
        return
    assert lalr.run(grammar(), text, ToAst("t.attn")) == _lark(text, "t.attn", 0)


def _lark_tokens(text: str) -> list:
    lexer = grammar().parser.lexer
    return list(lexer.lex(lexer.make_lexer_state(text), None))


def _fields(tokens) -> list:
    return [(t.type, t.value, t.start_pos, t.line, t.column, t.end_line, t.end_column, t.end_pos) for t in tokens]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_same_tokens_as_lark(path: Path):
    text = path.read_text(encoding="utf-8")
    assert _fields(lalr._tables(grammar()).lexer.tokens(text)) == _fields(_lark_tokens(text))


@pytest.mark.parametrize("text", [
    "",
    "# only a comment",
    "kernel k() -> () {\n  # a comment\n\n\t x = 1e-3 + 2.5 * y_2 // 3 ** 2\r\n  use \"a\\b.attn\"\n}",
    "memory m { capacity 512 KiB; bandwidth 1.5 GiB/s }\nunit u : matrix { size 32 x 32 }\n",
    "for i in 0 .. N by Br @pipeline(2) @parallel(pe) { if a <= b and not c { x += 1 } }",
    "kernels kernel_x in_ or_ and1 notx",  # names that begin with keywords
    "\f\n\n   \n",
])
def test_same_tokens_as_lark_on_snippets(text: str):
    assert _fields(lalr._tables(grammar()).lexer.tokens(text)) == _fields(_lark_tokens(text))


@pytest.mark.parametrize("text", ["x = 1 $ 2", "x = 'a'", "x = \"no end\n"])
def test_unexpected_characters_step_aside_for_lark(text: str):
    with pytest.raises(lalr.NotHere):
        lalr._tables(grammar()).lexer.tokens(text)
    with pytest.raises(UnexpectedCharacters):
        _lark_tokens(text)
