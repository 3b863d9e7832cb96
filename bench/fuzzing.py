"""Mutants of the shipped programs, each run through the checker, the interpreter and the JIT.

Shared by the fast sample in the tests (tests/test_fuzz_engines.py, hypothesis) and the long campaign
(bench/fuzz_campaign.py). A mutant is a shipped program (an example, or a standard hardware file put
inline above an example) changed by one to three mutators:

- token level: replace, delete, duplicate or swap tokens; insert a token from the grammar's words;
- semantic level: extreme numbers (1e308, 2**63, 10**30, -1, 4.5, 0), a non-divisor for a dim or a
  param, a huge or zero hardware size, a changed dtype (i8, i32, bf16, f32), deep nesting (a body
  inside 30-60 loops, brackets 150 deep), long lines (a name or number thousands of characters long),
  unicode (accents, zero-width and right-to-left marks, emoji), an annotation added to a loop.

`outcome(src)` runs one mutant and classifies it: what the checker said, and for each engine "ok",
"verify" (ran, an output differs from its spec), "error" (a coded diagnostic), "usage" (a usage
error), "timeout" (E1004), "memory" (out of host memory), "fallback" (the JIT ran the interpreter)
or "internal" (any other exception: a bug). Where both engines ran, `agree` says whether they
counted the same cycles, energy and verification, and computed the same outputs.
"""

from __future__ import annotations

import random
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples").glob("*.attn"))}
STDLIB_HW = {p.stem: p.read_text(encoding="utf-8")
             for p in sorted((ROOT / "attnlang" / "stdlib" / "hw").glob("*.attn"))}

#: Small sizes, so a mutant runs in milliseconds (what a mutant does not declare is dropped).
SMALL = {"N": 64, "d": 16, "B": 1, "H": 2}

TOKEN = re.compile(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?|[A-Za-z_]\w*|->|\.\.|\*\*|//|[-+*/@%\[\]():,{}=<>!]")
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])")
WORDS = ["0", "1", "3", "16", "17", "64", "N", "d", "i", "j", "q", "k", "s", "acc", "sram", "dram", "pe", "vec",
         "+", "-", "*", "/", "@", ":", ",", "(", ")", "[", "]", "{", "}", "None", "-inf", ".T", "exp", "rowmax",
         "zeros([4])", "discard", "store", "load", "i+1", "for", "if", "else", "process", "send", "recv",
         "channel", "param", "dim", "where", "spec", "softmax(", "causal(", "on", "->", "..", "by", "=", "==",
         "**", "//", "%", "and", "or", "not", "@pipeline(2)", "@parallel(pe)", "@unroll"]
EXTREMES = ["0", "-1", "4.5", "1e308", "-1e308", "1e-308", "2147483648", "9223372036854775808",
            "1000000000000000000000000000000", "10 ** 30", "2 ** 63", "(0 - 1)", "1e30 * 1e30", "3", "17", "100"]
QUANTITIES = ["1e308 TiB", "0 B", "1 B", "3 TiB", "1e308 GHz", "0 MHz", "1e308 pJ", "0 pJ", "1e308 B/cycle",
              "1e18 B", "1e308 cycles", "0.5 B"]
DTYPES = ["f16", "f32", "bf16", "i8", "i32", "f64"]
UNICODE = ["é", "∞", "\u200b", "\u202e", "😀", "ǅ", "ﬁ", "\u00a0", "Ω"]


def source(rng: random.Random) -> tuple[str, str]:
    """A shipped program to mutate: (its name, its text); sometimes with its hardware put inline."""
    name = rng.choice(sorted(EXAMPLES))
    text = EXAMPLES[name]
    m = re.search(r"^use hw\.(\w+)\s*$", text, re.M)
    if m and m.group(1) in STDLIB_HW and rng.random() < 0.4:
        text = text[:m.start()] + STDLIB_HW[m.group(1)] + text[m.end():]
        name += f"+hw.{m.group(1)}"
    return name, text


# ---------------------------------------------------------------- token level


def _tokens(text: str) -> list[re.Match]:
    return list(TOKEN.finditer(text))


def replace_token(text: str, rng: random.Random) -> str:
    m = rng.choice(_tokens(text))
    return text[:m.start()] + rng.choice(WORDS) + text[m.end():]


def delete_token(text: str, rng: random.Random) -> str:
    m = rng.choice(_tokens(text))
    return text[:m.start()] + text[m.end():]


def duplicate_token(text: str, rng: random.Random) -> str:
    m = rng.choice(_tokens(text))
    return text[:m.end()] + " " + m.group() + text[m.end():]


def swap_tokens(text: str, rng: random.Random) -> str:
    a, b = sorted(rng.sample(_tokens(text), 2), key=lambda m: m.start())
    return text[:a.start()] + b.group() + text[a.end():b.start()] + a.group() + text[b.end():]


def insert_token(text: str, rng: random.Random) -> str:
    m = rng.choice(_tokens(text))
    return text[:m.start()] + rng.choice(WORDS) + " " + text[m.start():]


# ---------------------------------------------------------------- semantic level


def extreme_number(text: str, rng: random.Random) -> str:
    numbers = list(NUMBER.finditer(text))
    if not numbers:
        return replace_token(text, rng)
    m = rng.choice(numbers)
    return text[:m.start()] + rng.choice(EXTREMES) + text[m.end():]


def non_divisor(text: str, rng: random.Random) -> str:
    spots = list(re.finditer(r"(\b(?:dim \w+|param \w+(?: in \{[^}]*\})?)\s*=\s*)([^\n,]+)", text))
    if not spots:
        return extreme_number(text, rng)
    m = rng.choice(spots)
    return text[:m.start(2)] + rng.choice(["17", "3", "100", "48", "1", "65"]) + text[m.end(2):]


def hardware_size(text: str, rng: random.Random) -> str:
    spots = list(re.finditer(r"\b\d+(?:\.\d+)?\s*(?:[KMGT]i?B|B/cycle|[KMG]?Hz|pJ|cycles|B)\b", text))
    spots += list(re.finditer(r"(?<=\[)\d+(?=\])|(?<=lanes )\d+|(?<=size )\d+ x \d+", text))
    if not spots:
        return extreme_number(text, rng)
    m = rng.choice(spots)
    new = rng.choice(QUANTITIES) if re.search(r"[A-Za-z]", m.group()) else rng.choice(EXTREMES)
    return text[:m.start()] + new + text[m.end():]


def dtype(text: str, rng: random.Random) -> str:
    spots = list(re.finditer(r"\b(?:f16|f32|bf16|i8|i32|f64)\b", text))
    if not spots:
        return replace_token(text, rng)
    m = rng.choice(spots)
    return text[:m.start()] + rng.choice(DTYPES) + text[m.end():]


def deep_nesting(text: str, rng: random.Random) -> str:
    m = re.search(r"^(kernel[^{]*\{\n)", text, re.M)
    if m is None or rng.random() < 0.3:
        depth = rng.choice([100, 150, 199, 201])
        spots = list(re.finditer(r"= ", text))
        if not spots:
            return text
        s = rng.choice(spots)
        return text[:s.end()] + "(" * depth + "1" + ")" * depth + " + " + text[s.end():]
    depth = rng.choice([10, 30, 60])
    end = text.index("\n}", m.end()) if "\n}" in text[m.end():] else len(text)
    body = text[m.end():end]
    head, rest = _split_decls(body)
    opened = "".join(f"for z{i} in 0 .. 1 {{\n" for i in range(depth))
    return text[:m.end()] + head + opened + rest + "\n" + "}\n" * depth + text[end:]


def _split_decls(body: str) -> tuple[str, str]:
    """The leading dim/param/where/channel lines of a kernel body, and the rest."""
    lines = body.split("\n")
    n = 0
    while n < len(lines) and re.match(r"\s*(dim|param|where|channel|#|$)", lines[n]):
        n += 1
    return "\n".join(lines[:n]) + ("\n" if n else ""), "\n".join(lines[n:])


def long_line(text: str, rng: random.Random) -> str:
    m = rng.choice(_tokens(text))
    long = rng.choice(["a" * rng.choice([300, 5000, 60000]), "9" * rng.choice([200, 400, 5000]),
                       " + ".join(["q"] * rng.choice([200, 800]))])
    return text[:m.start()] + long + text[m.end():]


def unicode(text: str, rng: random.Random) -> str:
    i = rng.randrange(len(text) + 1)
    return text[:i] + rng.choice(UNICODE) + text[i:]


def annotation(text: str, rng: random.Random) -> str:
    spots = list(re.finditer(r"\bfor \w+ in [^{\n]*?(?=\s*\{)", text))
    if not spots:
        return replace_token(text, rng)
    m = rng.choice(spots)
    ann = rng.choice(["@pipeline(2)", "@pipeline(0)", "@pipeline(1e9)", "@parallel(pe)", "@parallel(vec)",
                      "@unroll", "@unroll(1e308)", "@parallel(nothere)"])
    return text[:m.end()] + " " + ann + text[m.end():]


TOKEN_MUTATORS = [replace_token, delete_token, duplicate_token, swap_tokens, insert_token]
SEMANTIC_MUTATORS = [extreme_number, non_divisor, hardware_size, dtype, deep_nesting, long_line, unicode, annotation]
MUTATORS = TOKEN_MUTATORS + SEMANTIC_MUTATORS


def mutant(rng: random.Random) -> tuple[str, list[str], str]:
    """(the program it started from, the mutators applied, the mutant's text)."""
    name, text = source(rng)
    applied = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        f = rng.choice(MUTATORS)
        text = f(text, rng)
        applied.append(f.__name__)
    return name, applied, text


# ---------------------------------------------------------------- running one


@dataclass
class Outcome:
    check: str                       # "clean", "warnings", "errors" or "internal"
    engines: dict[str, str] = field(default_factory=dict)  # engine -> ok / verify / error / usage / ...
    agree: bool | None = None        # where both engines ran: the same costs and outputs
    detail: str = ""                 # an internal error's traceback, or what differed
    late: list = field(default_factory=list)  # engine runs that ended past their timeout + LATE_S

    @property
    def internal(self) -> bool:
        return self.check == "internal" or self.check.startswith("crash") or "internal" in self.engines.values()


#: An engine run that ends this long past its timeout did not stop at its limit: a hang, as the issue's
#: target counts them (the run is not killed, so how late it was is known).
LATE_S = 5.0


def defines_for(text: str) -> dict:
    """SMALL's values for the dims and params the mutant's kernel declares (none if it has not one kernel)."""
    import attnlang
    from attnlang.binding import signature_dims, static_decls

    try:
        k = attnlang.load_program(text).kernel(None)
    except (attnlang.UsageError, attnlang.AttnError):
        return {}  # (anything else escapes: outcome() counts it as an internal error)
    declared = {d.name for d in static_decls(k)} | set(signature_dims(k))
    return {name: v for name, v in SMALL.items() if name in declared}


def _run(text: str, engine: str, defines: dict, timeout: float):
    import attnlang
    from attnlang.diagnostics import AttnError, UsageError

    try:
        r = attnlang.run(text, defines=defines, engine=engine, timeout=timeout, verify="full")
    except AttnError as exc:
        codes = {d.code for d in exc.diagnostics}
        return ("timeout" if "E1004" in codes else "error"), exc
    except UsageError as exc:
        return "usage", exc
    except MemoryError as exc:
        return "memory", exc
    except RecursionError as exc:
        return "internal", exc
    except Exception as exc:  # noqa: BLE001 - what this harness looks for
        return "internal", exc
    if engine == "jit" and r.fallback:
        return "fallback", r
    return ("ok" if r.ok else "verify"), r


def outcome(text: str, engines=("interp", "jit"), timeout: float = 10.0) -> Outcome:
    """Check text, then run it on each engine (unless the checker found errors); see the module's doc."""
    import attnlang

    try:
        defines = defines_for(text)
        diags = attnlang.check_program(text, defines=defines)
    except attnlang.UsageError:
        diags = attnlang.check_program(text)  # a -D the mutant no longer declares
    except Exception:  # noqa: BLE001
        return Outcome("internal", detail=traceback.format_exc())
    if any(d.severity == "error" for d in diags):
        return Outcome("errors")
    out = Outcome("warnings" if diags else "clean")
    results = {}
    for engine in engines:
        t0 = time.monotonic()
        kind, value = _run(text, engine, defines, timeout)
        seconds = time.monotonic() - t0
        if seconds > timeout + LATE_S:
            out.late.append(f"{engine} ({kind}) took {seconds:.1f} s, its timeout {timeout:g} s")
            out.detail += out.late[-1] + "\n"
        out.engines[engine] = kind
        results[engine] = value
        if kind == "internal":
            out.detail += f"{engine}: " + "".join(traceback.format_exception(value))
    if set(engines) == {"interp", "jit"}:
        a, b = out.engines["interp"], out.engines["jit"]
        if a in ("ok", "verify") and b in ("ok", "verify"):
            out.agree, why = same_run(results["interp"], results["jit"])
            out.detail += why
        elif "fallback" not in (a, b) and "timeout" not in (a, b) and "internal" not in (a, b):
            out.agree = a == b and _codes(results["interp"]) == _codes(results["jit"])
            if not out.agree:
                out.detail += f"interp {a} {_codes(results['interp'])}, jit {b} {_codes(results['jit'])}"
    return out


def _codes(value) -> list[str]:
    return sorted({d.code for d in getattr(value, "diagnostics", [])})


def same_run(a, b) -> tuple[bool, str]:
    """Whether two Results counted the same and computed the same outputs (the JIT's promise)."""
    ja, jb = a.to_json(), b.to_json()
    for key in ("cycles", "energy_pj", "units", "memories"):
        if ja.get(key) != jb.get(key):
            return False, f"{key}: interp {ja.get(key)!r:.200} jit {jb.get(key)!r:.200}"
    if [v.ok for v in a.verify.values()] != [v.ok for v in b.verify.values()]:
        return False, "verification differs"
    for name in a.outputs:
        x, y = np.asarray(a.outputs[name], dtype=np.float64), np.asarray(b.outputs[name], dtype=np.float64)
        if x.shape != y.shape or not np.allclose(x, y, rtol=2e-3, atol=2e-3, equal_nan=True):
            return False, f"output {name} differs"
    return True, ""
