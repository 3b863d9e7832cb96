"""Symbolic dimensions, expression printing, and static evaluation over arrays.

A `Dim` is a polynomial with integer coefficients over atoms: names (`Br`,
`d`, `i`) and opaque sub-expressions (`N // Br`, kept as written). Slice
extents simplify as written (`i : i+Br` has extent `Br`), and messages print
dimensions the way the user wrote them. `veval` is the evaluator of
`attnlang.static` with the checker's policy (Unknown for anything it cannot
decide): every name may be a NumPy array of candidates, which is how the
capacity rule and explore evaluate many parameter choices at once.
"""

from __future__ import annotations

from functools import cached_property
from typing import Mapping

import numpy as np

from ..limits import MAX_INT
from ..static import evaluator
from ..syntax import ast
from ..syntax.nodes import node


class Unknown(Exception):
    """A static expression that cannot be evaluated here (a missing name, a tensor, a bad operation)."""


# ---------------------------------------------------------------- printing

_PREC = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5,
         "*": 6, "/": 6, "%": 6, "//": 6, "@": 6, "**": 8}


def show(e, prec: int = 0) -> str:
    """An expression (or slice) as source text, with the parentheses it needs."""
    if e is None:
        return ""
    if isinstance(e, ast.Num):
        whole = e.is_int or float(e.value).is_integer()
        return str(int(e.value)) if whole and abs(e.value) <= MAX_INT else repr(e.value)
    if isinstance(e, ast.QuantityLit):
        return e.quantity.text
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Unary):
        inner = show(e.operand, 7)
        text = f"not {inner}" if e.op == "not" else f"{e.op}{inner}"
        return f"({text})" if prec > 7 else text
    if isinstance(e, ast.Binary):
        p = _PREC.get(e.op, 3)
        right_prec = p + 1 if e.op != "**" else p
        sep = " " if e.op in ("and", "or", "@", "==", "!=", "<", "<=", ">", ">=") else ""
        text = f"{show(e.left, p if e.op != '**' else p + 1)}{sep}{e.op}{sep}{show(e.right, right_prec)}"
        if e.op == "@":
            text = f"{show(e.left, p)} @ {show(e.right, p + 1)}"
        return f"({text})" if p < prec else text
    if isinstance(e, ast.Call):
        return f"{e.func}({', '.join(show(a) for a in e.args)})"
    if isinstance(e, ast.Slice):
        if e.lo is None and e.hi is None:
            return ":"
        return f"{show(e.lo)} : {show(e.hi)}".strip()
    if isinstance(e, ast.Index):
        return f"{show(e.base, 9)}[{', '.join(show(i) for i in e.items)}]"
    if isinstance(e, ast.Attr):
        return f"{show(e.base, 9)}.{e.name}"
    if isinstance(e, ast.ListLit):
        return f"[{', '.join(show(i) for i in e.items)}]"
    if isinstance(e, ast.OnUnit):
        return f"({show(e.expr)} on {e.unit.name})"
    return "?"


# ---------------------------------------------------------------- dims

Mono = tuple[str, ...]  # sorted atom keys; () is the constant term


@node
class Dim:
    """A polynomial over atoms; `opaque` maps the key of each non-name atom to its expression."""

    terms: tuple[tuple[Mono, int], ...]
    opaque: tuple[tuple[str, object], ...] = ()

    @staticmethod
    def const(n: int) -> "Dim":
        return Dim((((), int(n)),)) if n else Dim(())

    @staticmethod
    def atom(key: str, expr=None) -> "Dim":
        return Dim((((key,), 1),), ((key, expr),) if expr is not None else ())

    def _combine(self, other: "Dim", sign: int) -> "Dim":
        acc: dict[Mono, int] = dict(self.terms)
        order = [m for m, _ in self.terms]
        for m, c in other.terms:
            if m not in acc:
                order.append(m)
            acc[m] = acc.get(m, 0) + sign * c
        return Dim(tuple((m, acc[m]) for m in order if acc[m]), _merge(self.opaque, other.opaque))

    def __add__(self, other: "Dim") -> "Dim":
        return self._combine(other, 1)

    def __sub__(self, other: "Dim") -> "Dim":
        return self._combine(other, -1)

    def __mul__(self, other: "Dim") -> "Dim":
        out = Dim(())
        for m1, c1 in self.terms:
            for m2, c2 in other.terms:
                out = out + Dim(((tuple(sorted(m1 + m2)), c1 * c2),))
        return Dim(out.terms, _merge(self.opaque, other.opaque))

    def as_int(self) -> int | None:
        """The value when the dim is a plain number."""
        if not self.terms:
            return 0
        if len(self.terms) == 1 and self.terms[0][0] == ():
            return self.terms[0][1]
        return None

    def names(self) -> set[str]:
        """Every static name the dim depends on (inside opaque atoms too)."""
        return set(self._names)

    @cached_property
    def _names(self) -> frozenset[str]:  # dims are immutable: worked out once (the checker asks often)
        from ..static import free_names

        out = {a for m, _ in self.terms for a in m if a not in dict(self.opaque)}
        for _, e in self.opaque:
            out |= free_names(e)
        return frozenset(out)

    def eval(self, env: Mapping):
        """The value with env's names (scalars or arrays); Unknown if a name is missing."""
        opaque = dict(self.opaque)
        total = 0
        for mono, coeff in self.terms:
            v = coeff
            for a in mono:
                if a in opaque:
                    v = v * veval(opaque[a], env)
                elif env.get(a) is not None and not isinstance(env[a], str):  # a loop index with no known
                    v = v * env[a]                                              # value is None; a symbol, no number
                else:
                    raise Unknown(a)
            total = total + v
        return total

    def __str__(self) -> str:
        if not self.terms:
            return "0"
        parts = []
        for i, (mono, c) in enumerate(self.terms):
            body = "*".join(_atom_text(a) for a in mono)
            mag = abs(c)
            text = body if mag == 1 and body else (f"{mag}*{body}" if body else str(mag))
            if i == 0:
                parts.append(text if c > 0 else f"-{text}")
            else:
                parts.append(f"{'+' if c > 0 else '-'} {text}")
        return " ".join(parts)


def _atom_text(a: str) -> str:
    return a if a.isidentifier() else f"({a})"


def _merge(a: tuple, b: tuple) -> tuple:
    if not b:
        return a
    seen = dict(a)
    return a + tuple((k, v) for k, v in b if k not in seen)


def dim_of(e) -> Dim:
    """The symbolic dim of a static expression, simplified where it is polynomial."""
    if isinstance(e, ast.Num) and e.is_int:
        return Dim.const(int(e.value))
    if isinstance(e, ast.Name):
        return Dim.atom(e.id)
    if isinstance(e, ast.Unary) and e.op == "-":
        return Dim.const(0) - dim_of(e.operand)
    if isinstance(e, ast.Binary) and e.op in ("+", "-", "*"):
        a, b = dim_of(e.left), dim_of(e.right)
        return a + b if e.op == "+" else a - b if e.op == "-" else a * b
    text = show(e)
    return Dim.atom(text, e)


def same(a: Dim, b: Dim, env: Mapping) -> bool | None:
    """Whether two dims are equal: structurally, else by value at env; None when undecidable."""
    if (a - b).as_int() == 0:
        return True
    try:
        va, vb = a.eval(env), b.eval(env)
    except Unknown:
        return None
    if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
        return None
    return bool(va == vb)


def value_of(d: Dim, env: Mapping):
    """The dim's value at env, or None."""
    try:
        v = d.eval(env)
    except Unknown:
        return None
    return None if isinstance(v, np.ndarray) else v


# ---------------------------------------------------------------- evaluation

def _unknown(e, message: str) -> Unknown:
    return Unknown(show(e))


veval = evaluator(_unknown)
veval.__doc__ = """Evaluate a static expression; names may be NumPy arrays (one entry per candidate).

Raises Unknown for anything it cannot decide: a name with no value, a tensor, a bad operation.
"""


def try_int(e, env: Mapping) -> int | None:
    """A static integer at env, or None (not static, not known here, or not whole)."""
    try:
        v = veval(e, env)
    except Unknown:
        return None
    if isinstance(v, (bool, np.bool_)) or isinstance(v, np.ndarray) or isinstance(v, str):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(f) or not f.is_integer():
        return None
    return int(f)


def try_value(e, env: Mapping):
    """A static scalar value at env, or None."""
    try:
        v = veval(e, env)
    except Unknown:
        return None
    if isinstance(v, np.ndarray):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v
