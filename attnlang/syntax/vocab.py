"""The vocabulary of the language in one place.

The grammar (grammar/attn.lark), the Pygments lexer, the editor grammars and
the REPL's completion all agree with these lists; tests check that they do.
"""

from __future__ import annotations

#: Reserved words of the grammar.
KEYWORDS: tuple[str, ...] = (
    "use", "hardware", "kernel", "memory", "unit", "op", "channel", "link",
    "on", "spec", "param", "dim", "where", "for", "in", "by", "load", "store",
    "send", "recv", "discard", "if", "else", "process", "and", "or", "not",
)

#: Functions callable in tensor expressions and specs.
BUILTINS: tuple[str, ...] = (
    "softmax", "exp", "log", "sqrt", "abs", "max", "min", "rowmax", "rowmin",
    "rowsum", "sum", "mean", "where", "causal", "dot", "full", "zeros", "ones",
    "transpose",
)

#: How many arguments each function of a tensor expression takes (full, zeros and ones have their own
#: rule, in the checker's shapes); the checker, the interpreter, the JIT and the model all follow it.
ARITY: dict[str, tuple[int, ...]] = {
    "softmax": (1,), "exp": (1,), "log": (1,), "sqrt": (1,), "abs": (1,), "rowmax": (1,), "rowmin": (1,),
    "rowsum": (1,), "sum": (1,), "mean": (1,), "transpose": (1,), "where": (3,), "causal": (3,), "dot": (2,),
    "max": (1, 2), "min": (1, 2),
}

#: Functions that also take numbers known before the kernel runs (and give one).
STATIC_FUNCS: frozenset[str] = frozenset({"sqrt", "exp", "log", "abs", "max", "min"})

#: Functions of one tensor, element by element.
ELEMENTWISE: frozenset[str] = frozenset({"exp", "log", "sqrt", "abs"})


def arity_message(func: str, nargs: int) -> str | None:
    """Why func cannot take nargs arguments (None when it can)."""
    want = ARITY.get(func)
    if want is None or nargs in want:
        return None
    return f"{func}() takes {' or '.join(map(str, want))} argument{'s' if want[-1] > 1 else ''}, not {nargs}"


#: Names with a fixed meaning in expressions.
CONSTANTS: tuple[str, ...] = ("inf", "None", "True", "False")

#: Element types of tensors and channels.
DTYPES: tuple[str, ...] = ("f32", "f16", "bf16", "f64", "i32", "i8")

#: Loop annotations (written with a leading '@').
ANNOTATIONS: tuple[str, ...] = ("parallel", "pipeline", "unroll")

#: Kinds of hardware unit.
UNIT_KINDS: tuple[str, ...] = ("matrix", "vector")

#: Base units of measure a quantity may be written in (prefixes apart).
MEASURE_UNITS: tuple[str, ...] = ("Hz", "B", "b", "bit", "bits", "s", "J", "W", "cycle", "cycles")

#: Prefixes of units of measure, SI and binary.
PREFIXES: tuple[str, ...] = ("Ki", "Mi", "Gi", "Ti", "k", "M", "G", "T", "m", "u", "n", "p", "f")
