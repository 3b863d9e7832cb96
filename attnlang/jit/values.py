"""What the lowering passes around: the kernel's return codes, the Unsupported
signal that sends a run to the interpreter, and the compile-time descriptions
of values (shared by lower.py and streams.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..syntax.nodes import node

if TYPE_CHECKING:  # only a type here; tiles imports llvmlite.ir, which a cached run does not need
    from .tiles import View

#: the compiled kernel's entry point and the function that frees what it allocated
ENTRY = "attn_main"
CLEANUP = "attn_cleanup"

# return codes of the compiled kernel and of its process functions
OK, OVERFLOW, SPILL, MAX_CYCLES, TIMEOUT, NO_MEMORY, RAISE = 0, 1, 2, 3, 4, 5, 6
#: a process function gave up its turn (a channel blocked it, or it issued a transfer); run it again
YIELD = 7
#: every process is blocked: the interpreter reruns the kernel for the diagnostic (E1032)
DEADLOCK = 8
#: the run passed --max-steps loop iterations (E1002)
MAX_STEPS = 9
#: a '/' of loop indices that is not whole: the JIT keeps indices as integers, the interpreter reruns it
INEXACT = 10


class Unsupported(Exception):
    def __init__(self, reason: str, span=None):
        super().__init__(reason)
        self.reason = reason
        self.span = span

    def describe(self) -> str:
        return f"line {self.span.line}: {self.reason}" if self.span is not None else self.reason


@dataclass
class Val:
    """A tensor value: its buffer id (i64 IR), its data, dtype and memory."""

    buf: object
    view: View
    dtype: str
    mem: str


@node
class Desc:
    """What is known at compile time about the value a name holds."""

    shape: tuple
    dtype: str
    mem: str


@dataclass
class RT:
    """A run-time integer or condition (i64 or i1)."""

    v: object
