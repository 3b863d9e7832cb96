"""Mutated programs never crash the front end or the checker: every mistake
comes back as diagnostics, never as an exception.

Each test mutates one of the shipped programs (examples and stdlib) the way
an editor buffer looks while someone types: cut off anywhere, lines deleted,
swapped or duplicated, tokens and garbage inserted.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnlang.check import check
from attnlang.diagnostics import Diagnostic, render_all, to_json
from attnlang.program import load_source
from attnlang.syntax.parser import grammar

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
            for p in sorted([*ROOT.glob("examples/*.attn"), *ROOT.glob("attnlang/stdlib/**/*.attn")])}

# A file name in a folder that does not exist: a `use "x.attn"` that a
# mutation produces resolves there and reports E0101 instead of reading
# whatever lies in the working directory.
FILE = str(Path(tempfile.gettempdir()) / "attnlang-fuzz-no-such-folder" / "fuzz.attn")

#: Every literal token of the grammar, plus typical fragments and garbage.
TOKENS = sorted({t.pattern.value for t in grammar().terminals if t.pattern.type == "str"}) + [
    "x", "Br", "N", "sram", "pe", "vec", "f16", "f32", "0", "1", "64", "-1", "1.5", "1e3", "3.", ".5",
    "512 KiB", "940 MHz", "50 GiB/s", "1 KiHz", "32 x 32", "0 x 4", "@pipeline", "@parallel(core)", "@unroll",
    "@", "+=", "==", "<=", '"x.attn"', '"', "#", "$", "\\", "`", "\t", "\n", "\x00", "\x7f", "é", "∞", "\u200b",
    "9" * 400, "(" * 250, ")" * 50, "[" * 30, "{" * 10, "}" * 10, "-inf", "None", "softmax(", "q @ k.T",
    "use hw.edge", "use hw.nothere", "hardware", "kernel k() -> () {", "param P in {1, 2} = 3",
    "dim N = 0", "dim N = -4", "for i in 0 .. N by 0 {", "2 ** 99999", "1 / 0", "unit u[0] : vector {",
]

FUZZ = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_TERMINAL_NAMES = {t.name for t in grammar().terminals} | {"$END"}


def front_end_survives(text: str) -> list[Diagnostic]:
    """Load and check text; every problem must come back as a diagnostic."""
    prog = load_source(text, FILE)
    diags = check(prog)
    assert all(isinstance(d, Diagnostic) for d in diags)
    lines = text.count("\n") + 1
    for d in diags:
        assert d.span.line >= 1 and d.span.column >= 1, d
        if d.span.file == FILE:
            assert d.span.line <= lines, (d, lines)
        if d.code in ("E0001", "E0002"):
            bare = re.sub(r"'[^']*'", "''", d.message)
            leaked = set(re.findall(r"\$?[A-Za-z_][A-Za-z0-9_]*", bare)) & _TERMINAL_NAMES
            assert not leaked, d.message
    render_all(diags, prog.sources)
    to_json(diags)
    return diags


names = st.sampled_from(sorted(PROGRAMS))


@FUZZ
@given(data=st.data(), name=names)
def test_truncated_anywhere(data, name):
    text = PROGRAMS[name]
    cut = data.draw(st.integers(0, len(text)), label="cut")
    front_end_survives(text[:cut])


@FUZZ
@given(data=st.data(), name=names)
def test_lines_deleted(data, name):
    lines = PROGRAMS[name].splitlines(keepends=True)
    drop = data.draw(st.sets(st.integers(0, len(lines) - 1), min_size=1, max_size=4), label="drop")
    front_end_survives("".join(line for i, line in enumerate(lines) if i not in drop))


@FUZZ
@given(data=st.data(), name=names)
def test_tokens_inserted(data, name):
    text = PROGRAMS[name]
    for _ in range(data.draw(st.integers(1, 3), label="count")):
        at = data.draw(st.integers(0, len(text)), label="at")
        tok = data.draw(st.sampled_from(TOKENS) | st.text(max_size=4), label="token")
        sep = data.draw(st.sampled_from(["", " "]), label="sep")
        text = text[:at] + sep + tok + sep + text[at:]
    front_end_survives(text)


@FUZZ
@given(data=st.data(), name=names)
def test_lines_swapped(data, name):
    lines = PROGRAMS[name].splitlines(keepends=True)
    i = data.draw(st.integers(0, len(lines) - 1), label="i")
    j = data.draw(st.integers(0, len(lines) - 1), label="j")
    lines[i], lines[j] = lines[j], lines[i]
    front_end_survives("".join(lines))


@FUZZ
@given(data=st.data(), name=names)
def test_lines_duplicated(data, name):
    lines = PROGRAMS[name].splitlines(keepends=True)
    i = data.draw(st.integers(0, len(lines) - 1), label="line")
    at = data.draw(st.integers(0, len(lines)), label="at")
    lines.insert(at, lines[i])
    front_end_survives("".join(lines))


@FUZZ
@given(data=st.data(), name=names)
def test_characters_replaced(data, name):
    text = PROGRAMS[name]
    for _ in range(data.draw(st.integers(1, 4), label="count")):
        at = data.draw(st.integers(0, len(text) - 1), label="at")
        ch = data.draw(st.characters(codec="utf-8") | st.sampled_from("{}()[],:;=+-*/@.0"), label="char")
        text = text[:at] + ch + text[at + 1:]
    front_end_survives(text)


def test_the_unmutated_programs_are_clean():
    for name, text in PROGRAMS.items():
        assert [d for d in front_end_survives(text) if d.severity == "error"] == [], name
