"""Any program, however wrong, gets diagnostics from the checker and never a Python exception.

Mutants of the shipped programs (names swapped, numbers changed, operators
replaced, tokens dropped) are checked; the only exception allowed is a
UsageError for a -D the kernel does not declare (none is given here).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from attnlang.check import check
from attnlang.program import load_source

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p.read_text() for p in sorted(ROOT.glob("examples/*.attn"))] + \
    [p.read_text() for p in sorted((ROOT / "tests" / "check" / "programs").glob("*.attn"))]
TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|\.\.|->|[^\s]")
NAMES = ["i", "j", "Br", "Bc", "N", "d", "q", "k", "s", "sram", "dram", "vec", "pe", "None", "O", "Q", "K", "m",
         "acc", "p", "regs", "node", "h", "f16", "inf", "exp", "rowmax", "zeros"]
NUMBERS = ["0", "1", "2", "3", "7", "16", "64", "100", "1024", "100000"]
OPERATORS = ["+", "-", "*", "/", "@", "%", "//", "==", "<", "and"]


def mutate(src: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 3)):
        m = rng.choice(list(TOKEN.finditer(src)))
        t = m.group()
        if t.isdigit():
            new = rng.choice(NUMBERS)
        elif t.isidentifier():
            new = rng.choice(NAMES)
        elif t in "+-*/@%":
            new = rng.choice(OPERATORS)
        else:
            new = "" if rng.random() < 0.3 else t
        src = src[:m.start()] + new + src[m.end():]
    return src


def test_mutants_get_diagnostics_not_exceptions():
    rng = random.Random(1234)
    checked = 0
    for _ in range(250):
        prog = load_source(mutate(rng.choice(SOURCES), rng), "mutant.attn")
        check(prog)  # must not raise
        checked += not prog.diagnostics
    assert checked > 100  # most mutants parse, so the rules themselves are exercised
