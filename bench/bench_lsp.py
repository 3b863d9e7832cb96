"""Diagnostics after an edit in a 200-line file: what `attn lsp` does on every keystroke (issue 9).

The document is the examples concatenated (flash, flash_causal, flat, naive,
mha, mmee) up to the last whole kernel within 200 lines, padded with
comments to exactly 200. Each round makes a new version of the text and
calls attnlang.lsp.features.diagnostics, the function the server calls on
didChange: load (parse, `use`), then the checker, kernel by kernel
(lsp/incremental.py: a kernel whose text and surroundings did not change
keeps its diagnostics). Two kinds of edit are timed: inside one kernel (the
usual keystroke: one kernel is checked again) and on a `use` line (every
kernel is checked again: the cold case).

    python bench/bench_lsp.py              # 30 rounds
    python bench/bench_lsp.py --rounds 100
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path

from attnlang.lsp.features import diagnostics

ROOT = Path(__file__).resolve().parents[1]
GOAL_MS = 100.0
LINES = 200


def document() -> str:
    """About 200 lines of real kernels, exactly LINES long."""
    uses, kernels = set(), []
    for name in ("flash", "flash_causal", "flat", "naive", "mha", "mmee"):
        text = (ROOT / "examples" / f"{name}.attn").read_text(encoding="utf-8")
        uses |= set(re.findall(r"^use .*$", text, re.M))
        kernels.append(text[text.index("\nkernel") + 1:])
    head = sorted(uses)
    body: list[str] = []
    for k in kernels:
        if len(head) + len(body) + k.count("\n") > LINES:
            break
        body += k.rstrip("\n").split("\n") + [""]
    lines = head + [""] + body
    lines += [f"# padding line {i}" for i in range(LINES - len(lines))]
    return "\n".join(lines[:LINES]) + "\n"


def measure(text: str, path: str, edit, rounds: int) -> list[float]:
    """Milliseconds of diagnostics() for `rounds` versions of text, each made new by edit(text, i)."""
    times_ms = []
    for i in range(rounds):
        changed = edit(text, i)
        t0 = time.perf_counter()
        diagnostics(changed, path)
        times_ms.append((time.perf_counter() - t0) * 1e3)
    return sorted(times_ms)


def in_one_kernel(text: str, i: int) -> str:
    """A keystroke inside the first kernel: a param default changes and a comment grows."""
    m = re.search(r"(param Br in \{[^}]*\} = )(\d+)", text)
    value = (16, 32, 64, 128)[i % 4]
    return text[:m.start(2)] + f"{value}  # edit {i}" + text[m.end(2):]


def in_what_all_see(text: str, i: int) -> str:
    """A keystroke on a `use` line: every kernel may see it, so every kernel is checked again."""
    return text.replace("use hw.edge\n", f"use hw.edge  # edit {i}\n", 1)


def report(label: str, times_ms: list[float]) -> None:
    median = statistics.median(times_ms)
    p90 = times_ms[int(0.9 * (len(times_ms) - 1))]
    verdict = "met" if median <= GOAL_MS else "NOT met"
    print(f"  {label:<34} median {median:6.1f} ms   p90 {p90:6.1f} ms   best {times_ms[0]:6.1f} ms"
          f"   (goal {GOAL_MS:.0f} ms: {verdict})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    text = document()
    path = str(ROOT / "examples" / "bench_lsp_document.attn")
    found = diagnostics(text, path)  # warm-up: the grammar's tables, imports
    print(f"document: {text.count(chr(10))} lines, {len(re.findall(r'^kernel ', text, re.M))} kernels, "
          f"{len(found)} diagnostics; diagnostics after a change, {args.rounds} rounds:")
    report("edit inside one kernel", measure(text, path, in_one_kernel, args.rounds))
    report("edit every kernel sees (a `use`)", measure(text, path, in_what_all_see, args.rounds))


if __name__ == "__main__":
    main()
