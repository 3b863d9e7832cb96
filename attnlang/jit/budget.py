"""The JIT's code budget: how much it lowers before it gives a kernel to the interpreter, and how long.

A kernel whose lowered code would pass MAX_INSTRUCTIONS LLVM instructions (TooBig), or a loop lowered
once per index over more than MAX_UNROLLED iterations, runs in the interpreter, which says why; past the
command's wall-time limit the lowering stops (Expired). Tests lower the budget through this module.
"""

from __future__ import annotations

from .values import (
    Unsupported,
)

#: The most iterations of a loop lowered once per index (_unrolled): code grows with each one.
MAX_UNROLLED = 4096
#: The most LLVM instructions a kernel is lowered to. LLVM's O2 takes about 0.2 ms per instruction of
#: this code on a 2-core box (a 5,000-instruction example compiles in 1-2 s), and more than linearly in
#: a function's size past it: a kernel over the budget runs in the interpreter (TooBig) instead of
#: compiling for minutes.
MAX_INSTRUCTIONS = 60_000


class TooBig(Unsupported):
    """The lowered code would pass MAX_INSTRUCTIONS."""

    def __init__(self, count: int, span=None, estimated: bool = False):
        about = "about " if estimated else ""
        super().__init__(f"the compiled kernel would be {about}{count:,} LLVM instructions, over the JIT's "
                         f"budget of {MAX_INSTRUCTIONS:,} (its compile would take minutes)", span)


class Expired(Exception):
    """The wall-time deadline passed while lowering (compile_kernel reports E1004)."""


# ---------------------------------------------------------------- helpers
class Growth:
    """The code a loop lowered once per index adds, watched as it is lowered: when what the indices
    lowered so far add, projected over all of them, passes MAX_INSTRUCTIONS, TooBig at once (before
    minutes of lowering and of LLVM). Lowering.lower counts the whole module at its end."""

    def __init__(self, low: "Lowering", iterations: int, span):  # noqa: F821 (jit/lower.py)
        self.low, self.iterations, self.span = low, iterations, span
        self.added = self.done = 0
        self._mark()

    def _mark(self) -> None:
        self.blocks = len(self.low.fn.func.blocks)
        self.current = self.low.b.block
        self.current_count = len(self.current.instructions)

    def one_more(self) -> None:
        blocks = self.low.fn.func.blocks
        grown = len(self.current.instructions) - self.current_count
        self.added += grown + sum(len(block.instructions) for block in blocks[self.blocks:])
        self.done += 1
        self._mark()
        projected = self.added * self.iterations // self.done
        if projected > MAX_INSTRUCTIONS:
            raise TooBig(projected, self.span, estimated=True)
