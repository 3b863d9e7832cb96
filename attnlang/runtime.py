"""What a run counts and how it stops, the same for every engine (the interpreter and the JIT).

The counters a run reports (busy cycles, energy, traffic, occupancy, peaks, MACs), and the run-time
errors both engines raise, each message written once: a memory that overflows (E1001), a run past
--max-steps (E1002), --max-cycles (E1003) or its wall-time limit (E1004). The JIT finds the same
sites in compiled code and reports them through these functions.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from .diagnostics import AttnError, Span, error


@dataclass
class Counters:
    busy: dict = field(default_factory=lambda: defaultdict(float))  # unit -> busy cycles (all instances)
    energy: dict = field(default_factory=lambda: defaultdict(float))  # component -> pJ
    read_bytes: dict = field(default_factory=lambda: defaultdict(float))
    write_bytes: dict = field(default_factory=lambda: defaultdict(float))
    occupancy: dict = field(default_factory=lambda: defaultdict(float))
    peak: dict = field(default_factory=lambda: defaultdict(float))
    macs: float = 0.0
    vector_ops: float = 0.0
    spill_bytes: float = 0.0


def kib(nbytes: float) -> str:
    """A size in a message: KiB with one decimal, MiB with two from 1 MiB."""
    if nbytes >= 2**20:
        return f"{nbytes / 2**20:.2f} MiB"
    return f"{nbytes / 2**10:.1f} KiB"


#: The note of an overflow: what would make the kernel fit.
OVERFLOW_NOTE = "a smaller tile, fewer pipeline copies, or 'policy spill' on the memory would fit"


def overflow_error(memory: str, need: float, capacity: float, span: Span) -> AttnError:
    """E1001: an allocation would pass a strict memory's capacity."""
    return AttnError(error("E1001", f"{memory} overflows: it would hold {kib(need)} here but has {kib(capacity)}",
                           span, OVERFLOW_NOTE))


def spill_short_error(memory: str, short: float, span: Span) -> AttnError:
    """E1001: a memory that spills cannot make room even with every value not in use written back."""
    return AttnError(error("E1001", f"{memory} overflows even after spilling every value not in use "
                                    f"({kib(short)} short)", span))


def steps_error(limit: float, span: Span) -> AttnError:
    """E1002: the run passed --max-steps."""
    return AttnError(error("E1002", f"the run passed --max-steps {limit:.0f} loop iterations here", span,
                           "a loop that runs this long does not end in a useful time; a larger --max-steps "
                           "runs it on"))


def cycles_error(limit: float, span: Span) -> AttnError:
    """E1003: the run's modeled time passed --max-cycles."""
    return AttnError(error("E1003", f"the run passed --max-cycles {limit:g} here", span))


def timeout_error(span: Span, phase: str | None = None) -> AttnError:
    """E1004: the command passed its wall-time limit while the kernel ran (at span), or while it was doing
    something else (phase: "checking the program", "compiling the kernel"...)."""
    if phase is None:
        return AttnError(error("E1004", "the run passed its wall-time limit (--timeout) here", span))
    return AttnError(error("E1004", f"the command passed its wall-time limit (--timeout) while {phase}", span))


def no_value(name: str) -> str:
    """A name read where it has no value (E1010; the model's E1401, the JIT's fallback)."""
    return f"'{name}' has no value here"


def not_loaded(name: str, root: str) -> str:
    """A kernel input named in an expression before a tile of it was loaded (E1014; the model's E1401)."""
    return f"'{name}' lives in {root}; load a tile of it first"


def name_value(name: str, env, tensors, root: str, fail, span):
    """The value of a name in an expression that no statement made: a dim, a param or a symbol (env), or
    inf. A kernel input not loaded (E1014) or a name with no value (E1010) raises fail(code, message,
    span), the engine's own exception (the model's is E1401 with the same message)."""
    if name in env:
        return env[name]
    if name == "inf":
        return math.inf
    if name in tensors:
        raise fail("E1014", not_loaded(name, root), span)
    raise fail("E1010", no_value(name), span)
