"""The Pygments lexer: lossless on every program, right on each kind of token."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

import pytest
from pygments.token import (
    Comment,
    Error,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
)

ROOT = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("attnlang") is None:  # not installed yet: use the checkout
    sys.path.insert(0, str(ROOT))
vocab = importlib.import_module("attnlang.syntax.vocab")
AttnLexer = importlib.import_module("attnlang.highlight").AttnLexer
highlight_ansi = importlib.import_module("attnlang.highlight").highlight_ansi

GRAMMAR = ROOT / "attnlang" / "grammar" / "attn.lark"
PROGRAMS = sorted([*ROOT.glob("examples/*.attn"), *ROOT.glob("attnlang/stdlib/**/*.attn")])


def lex(source: str) -> list[tuple[object, str]]:
    """Tokens of ``source``, with nothing stripped or added."""
    lexer = AttnLexer(stripnl=False, ensurenl=False)
    return list(lexer.get_tokens(source))


def significant(source: str) -> list[tuple[object, str]]:
    return [(tok, value) for tok, value in lex(source) if value.strip()]


def test_there_are_programs_to_lex():
    assert PROGRAMS, "no .attn files found under examples/ or attnlang/stdlib/"


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: str(p.relative_to(ROOT)))
def test_program_lexes_without_error_and_losslessly(path: Path):
    source = path.read_text(encoding="utf-8")
    tokens = lex(source)
    errors = [value for tok, value in tokens if tok in Error]
    assert not errors, f"Error tokens in {path.name}: {errors}"
    assert "".join(value for _, value in tokens) == source


def test_keywords_are_keywords():
    for word in vocab.KEYWORDS:
        assert significant(f"x {word} y")[1] == (Keyword, word)


def test_kernel_and_hardware_names_are_declared():
    assert significant("kernel flash(")[:2] == [
        (Keyword, "kernel"),
        (Name.Function, "flash"),
    ]
    assert significant("hardware edge {")[:2] == [
        (Keyword, "hardware"),
        (Name.Class, "edge"),
    ]
    assert significant("use hw.edge") == [(Keyword, "use"), (Name.Namespace, "hw.edge")]
    assert significant('use "my/hw.attn"') == [
        (Keyword, "use"),
        (String.Double, '"my/hw.attn"'),
    ]


@pytest.mark.parametrize(
    ("source", "number", "unit"),
    [
        ("940 MHz", "940", "MHz"),
        ("512 KiB", "512", "KiB"),
        ("50 GiB/s", "50", "GiB/s"),
        ("1.5 pJ/B", "1.5", "pJ/B"),
        ("256 B/cycle", "256", "B/cycle"),
        ("1 cycle", "1", "cycle"),
        ("4 cycles", "4", "cycles"),
        ("2e3 bits", "2e3", "bits"),
    ],
)
def test_quantity_is_a_number_and_a_unit(source: str, number: str, unit: str):
    (num_tok, num), (unit_tok, unit_text) = significant(source)
    assert num_tok in Number and num == number
    assert unit_tok is Keyword.Type and unit_text == unit


def test_unit_needs_a_word_boundary():
    # `2 Bc` is the number 2 and the name Bc, not 2 bytes followed by `c`.
    assert significant("2 Bc") == [(Number.Integer, "2"), (Name, "Bc")]


def test_shape_and_numbers():
    assert significant("32 x 32") == [
        (Number.Integer, "32"),
        (Operator, "x"),
        (Number.Integer, "32"),
    ]
    assert significant("0.3")[0] == (Number.Float, "0.3")
    assert significant("1e-3")[0] == (Number.Float, "1e-3")
    assert significant("0 .. N") == [
        (Number.Integer, "0"),
        (Operator, ".."),
        (Name, "N"),
    ]


def test_annotations_are_decorators():
    for word in vocab.ANNOTATIONS:
        assert significant(f"@{word}")[0] == (Name.Decorator, f"@{word}")
    assert significant("@pipeline(2)") == [
        (Name.Decorator, "@pipeline"),
        (Punctuation, "("),
        (Number.Integer, "2"),
        (Punctuation, ")"),
    ]
    assert significant("@parallel(core)")[2] == (Name, "core")
    # A bare `@` is matrix multiplication.
    assert significant("q @ k")[1] == (Operator, "@")


def test_builtins_constants_and_types():
    for word in vocab.BUILTINS:
        tok = significant(f"{word}(x)")[0]
        # `where` is reserved as a keyword too; the keyword wins.
        assert tok == ((Keyword if word in vocab.KEYWORDS else Name.Builtin), word)
    for word in vocab.CONSTANTS:
        assert significant(word) == [(Keyword.Constant, word)]
    for word in vocab.DTYPES + vocab.UNIT_KINDS:
        assert significant(word) == [(Keyword.Type, word)]
    # A builtin's name inside a longer name is just a name.
    assert significant("max_x") == [(Name, "max_x")]


def test_comments_and_attributes():
    tokens = significant("s = q @ k.T  # matmul on pe")
    assert tokens[-1] == (Comment.Single, "# matmul on pe")
    assert (Name.Attribute, "T") in tokens


def test_highlight_ansi_colours_without_adding_a_newline():
    text = highlight_ansi("clock 940 MHz")
    assert "\x1b[" in text
    assert not text.endswith("\n")
    assert re.sub(r"\x1b\[[0-9;]*m", "", text) == "clock 940 MHz"
    assert highlight_ansi("x = 1\n").endswith("\n")


def _grammar_words() -> set[str]:
    lines = GRAMMAR.read_text(encoding="utf-8").splitlines()
    code = "\n".join(line for line in lines if not line.lstrip().startswith("//"))
    return set(re.findall(r'"([a-z]+)"', code))


def test_vocab_keywords_match_the_grammar():
    grammar_words = _grammar_words()
    assert set(vocab.KEYWORDS) - grammar_words == set(), "in vocab.KEYWORDS, not in attn.lark"
    assert grammar_words - set(vocab.KEYWORDS) == set(), "in attn.lark, not in vocab.KEYWORDS"
    assert len(set(vocab.KEYWORDS)) == len(vocab.KEYWORDS), "duplicate keyword"


def test_vocab_annotations_match_the_grammar():
    match = re.search(r"ANNOTATION[.\d]*:\s*/@\(([a-z|]+)\)", GRAMMAR.read_text(encoding="utf-8"))
    assert match, "ANNOTATION terminal not found in attn.lark"
    assert set(match.group(1).split("|")) == set(vocab.ANNOTATIONS)


def test_vocab_units_match_the_grammar():
    match = re.search(r"^QUANTITY[.\d]*:\s*/(.*)/$", GRAMMAR.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, "QUANTITY terminal not found in attn.lark"
    groups = {frozenset(g.split("|")) for g in re.findall(r"\(([A-Za-z|]+)\)", match.group(1))}
    assert groups == {frozenset(vocab.PREFIXES), frozenset(vocab.MEASURE_UNITS)}


def _entry_point_installed() -> bool:
    points = importlib.metadata.entry_points(group="pygments.lexers")
    return any(point.name == "attn" for point in points)


@pytest.mark.skipif(
    not _entry_point_installed(),
    reason="attnlang is not installed with its pygments.lexers entry point "
    "(add it to pyproject.toml and run `pip install -e .`)",
)
def test_pygments_finds_the_lexer_by_name():
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename

    assert isinstance(get_lexer_by_name("attn"), AttnLexer)
    assert isinstance(get_lexer_by_name("attnlang"), AttnLexer)
    assert isinstance(get_lexer_for_filename("flash.attn"), AttnLexer)
