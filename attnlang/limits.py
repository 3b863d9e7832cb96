"""The ranges numbers in a program must lie in: one home for the checker and every engine.

A number enters a program as a literal, a `-D` value, a param default or a
hardware property. Where an integer is meant (a dimension, a param, a loop
bound or step, a unit count, a channel depth) it must lie within MAX_INT, so
that a float64 holds it exactly, NumPy's int64 holds it with room for a sum
of a few, and the interpreter and the JIT (which keeps indices in 64-bit
registers) compute the same thing. A hardware quantity must be finite and at
most MAX_QUANTITY in its canonical unit (bytes, cycles, pJ, bytes per cycle),
so that totals over a run stay finite. Out of range is error E0302, placed at
the value.
"""

from __future__ import annotations

import math

from .diagnostics import Diagnostic, Span, error

#: The largest magnitude of an integer value: 2**53, exact in a float64.
MAX_INT = 2**53
#: The most units one unit array may have (the engines keep accounting per unit).
MAX_UNITS = 2**16
#: The largest hardware quantity, in canonical units (10**18 bytes, cycles or pJ).
MAX_QUANTITY = 1e18
#: The loop iterations a run may take unless told otherwise (`attn run --max-steps`, `run(max_steps=)`): a
#: minute or more of the interpreter on the smallest loop body, seconds of the JIT; well past what a
#: kernel at the sizes of the studies takes (flash at N = 65536 in tiles of 16 is 16.8 million).
DEFAULT_MAX_STEPS = 10**8
#: The most copies `@pipeline(k)` may take (E1012), which is also how many past values of a name an engine
#: remembers: a read of a name k iterations back finds it.
MAX_PIPELINE = 64


def integer_problem(value) -> str | None:
    """Why value cannot stand where an integer is meant (None when it can)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None  # a symbol or a truth value: the caller's own rule says what it needs
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if abs(value) > MAX_INT:
        return f"{show(value)} exceeds 2**53 in magnitude"
    return None


def integer_error(value, what: str, span: Span) -> Diagnostic | None:
    """E0302 when value cannot stand where an integer is meant: `what` names the place (a loop bound)."""
    problem = integer_problem(value)
    return error("E0302", f"{what} is out of range: {problem}", span) if problem else None


def quantity_problem(value: float, limit: float = MAX_QUANTITY) -> str | None:
    """Why a hardware quantity (canonical units) is unusable (None when it is fine)."""
    if not math.isfinite(value):
        return f"{value} is not a finite number"
    if abs(value) > limit:
        return f"{show(value)} exceeds {show(limit)}"
    return None


def channel_property_problem(name: str, expr, value) -> str | None:
    """Why a kernel channel's `depth`, `latency` or `response`, or the `count` of a channel array, cannot
    take value (None when it can).

    expr is the value's source: a quantity with a unit must be in cycles for a latency or a response (a
    size such as `3 TiB` is not a time), and a depth or a count has no unit; a latency or a response is a
    non-negative number within MAX_QUANTITY, a depth or a count a whole number from 1 to MAX_INT."""
    from .syntax import ast, units

    whole = name in ("depth", "count")
    things = "channels" if name == "count" else "elements"
    dim = expr.quantity.dim if isinstance(expr, ast.QuantityLit) else units.NONE
    if whole and dim != units.NONE:
        return f"a whole number of {things}, not {units.describe(dim)} ({expr.quantity.text})"
    if not whole and dim not in (units.NONE, units.CYCLES):
        return f"a number of cycles, not {units.describe(dim)} ({expr.quantity.text})"
    if isinstance(value, (str, bool)):
        return f"a number, not {value!r}"
    if not math.isfinite(value) or value < (1 if whole else 0):
        what = f"a whole number of {things}, at least 1" if whole else "a non-negative number"
        return f"{what}, not {show(value)}"
    problem = integer_problem(value) if whole else quantity_problem(value)
    if problem:
        return f"within range: {problem}"
    if whole and not float(value).is_integer():
        return f"a whole number of {things}, not {value}"
    return None


def message_number(value):
    """A number computed for a message (a NumPy scalar, a float that is whole): an int while it is exact
    (up to 2**53), else as show() writes it."""
    value = value.item() if hasattr(value, "item") and not isinstance(value, (int, float)) else value
    if isinstance(value, float) and value.is_integer():
        return int(value) if abs(value) <= MAX_INT else show(value)
    return value


def show(value) -> str:
    """A number for a message: short, whatever its size (Python will not print an int over 4300 digits)."""
    if isinstance(value, int) and abs(value) > 10**15:
        return f"about 10**{len(str(abs(value)))- 1}" if value.bit_length() < 14000 else \
            f"about 2**{value.bit_length() - 1}"
    if isinstance(value, float) and value.is_integer() and abs(value) > 1e15:
        return f"{value:.3g}"
    return str(value)
