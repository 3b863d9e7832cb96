"""Units of measure: quantities with dimensions, prefixes, canonical values.

A dimension is a vector of exponents over four base dimensions: seconds,
cycles, bytes and joules. Frequency is s^-1, power J s^-1, bandwidth
B s^-1 or B cycle^-1, energy per byte J B^-1. Canonical units are the ones
the cost model computes in: seconds, cycles, bytes, picojoules, hertz, watts.
"""

from __future__ import annotations

import re

from .nodes import node

# Base dimensions, in the order of the exponent tuple.
_BASES = ("s", "cycle", "B", "J")

Dim = tuple[int, int, int, int]

NONE: Dim = (0, 0, 0, 0)
TIME: Dim = (1, 0, 0, 0)
CYCLES: Dim = (0, 1, 0, 0)
BYTES: Dim = (0, 0, 1, 0)
ENERGY: Dim = (0, 0, 0, 1)
FREQUENCY: Dim = (-1, 0, 0, 0)
POWER: Dim = (-1, 0, 0, 1)
BANDWIDTH: Dim = (-1, 0, 1, 0)
BYTES_PER_CYCLE: Dim = (0, -1, 1, 0)
ENERGY_PER_BYTE: Dim = (0, 0, -1, 1)

#: What each dimension is called in messages.
DIM_NAMES: dict[Dim, str] = {
    NONE: "a plain number",
    TIME: "a time",
    CYCLES: "a number of cycles",
    BYTES: "a size in bytes",
    ENERGY: "an energy",
    FREQUENCY: "a frequency",
    POWER: "a power",
    BANDWIDTH: "a bandwidth in bytes per second",
    BYTES_PER_CYCLE: "a bandwidth in bytes per cycle",
    ENERGY_PER_BYTE: "an energy per byte",
}

# unit word -> (dimension, factor to the canonical unit of that dimension)
_UNITS: dict[str, tuple[Dim, float]] = {
    "s": (TIME, 1.0),
    "Hz": (FREQUENCY, 1.0),
    "cycle": (CYCLES, 1.0),
    "cycles": (CYCLES, 1.0),
    "B": (BYTES, 1.0),
    "b": (BYTES, 1.0 / 8),
    "bit": (BYTES, 1.0 / 8),
    "bits": (BYTES, 1.0 / 8),
    "J": (ENERGY, 1e12),  # canonical energy is the picojoule
    "W": (POWER, 1e12),  # canonical power is pJ per second
}

_PREFIXES: dict[str, float] = {
    "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40,
}

_PREFIX_RE = "|".join(sorted((p for p in _PREFIXES if p), key=len, reverse=True))
_UNIT_RE = "|".join(sorted(_UNITS, key=len, reverse=True))
_WORD = rf"(?:{_PREFIX_RE})?(?:{_UNIT_RE})"
_QUANTITY = re.compile(
    rf"^\s*(?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(?P<num_unit>{_WORD})(?:/(?P<den_unit>{_WORD}))?\s*$"
)
_ONE_WORD = re.compile(rf"^(?P<prefix>{_PREFIX_RE})?(?P<unit>{_UNIT_RE})$")


@node
class Quantity:
    """A number with a dimension, held in canonical units."""

    value: float
    dim: Dim
    text: str = ""

    @property
    def dim_name(self) -> str:
        return describe(self.dim)


def describe(dim: Dim) -> str:
    """The dimension in words, or its unit formula when it has no name."""
    if dim in DIM_NAMES:
        return DIM_NAMES[dim]
    parts = []
    for base, exp in zip(_BASES, dim, strict=True):
        if exp:
            parts.append(base if exp == 1 else f"{base}^{exp}")
    return "a quantity in " + " ".join(parts)


def _word(word: str) -> tuple[Dim, float]:
    m = _ONE_WORD.match(word)
    if m is None:
        raise ValueError(f"unknown unit '{word}'")
    dim, factor = _UNITS[m.group("unit")]
    prefix = m.group("prefix") or ""
    if prefix in ("Ki", "Mi", "Gi", "Ti") and dim != BYTES:
        raise ValueError(f"binary prefix '{prefix}' only applies to bytes, not '{word}'")
    return dim, factor * _PREFIXES[prefix]


def parse_quantity(text: str) -> Quantity:
    """Parse `50 GiB/s` into a Quantity in canonical units; ValueError if malformed."""
    m = _QUANTITY.match(text)
    if m is None:
        raise ValueError(f"'{text}' is not a quantity")
    value = float(m.group("num"))
    dim, factor = _word(m.group("num_unit"))
    if m.group("den_unit"):
        den_dim, den_factor = _word(m.group("den_unit"))
        dim = tuple(a - b for a, b in zip(dim, den_dim, strict=True))  # type: ignore[assignment]
        factor /= den_factor
    return Quantity(value * factor, dim, text.strip())
