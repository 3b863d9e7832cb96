"""Shapes and dtypes: the rule, the cached analysis other rules share, and the
value types a bound kernel carries (value_types).

Shapes are symbolic (`f16[Br, d]`), compared with the values of dims and
params, and printed as written. The analysis (typer.py) is computed once per
kernel, env and hardware and shared by the unit, bounds, race and capacity
rules.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

from ..diagnostics import Diagnostic, Span
from ..hardware import Hardware
from ..program import Program
from ..static import Static
from ..syntax import ast
from . import scope
from .dims import value_of
from .typer import Typer
from .types import Analysis

_CACHE: dict[tuple, tuple] = {}
_CACHE_SIZE = 16


def analyze(kernel: ast.Kernel, env: Mapping[str, Static], hw: Hardware | None) -> Analysis:
    """The types of a kernel's values at env (cached: every rule of one check shares it)."""
    key = (id(kernel), id(hw), tuple(sorted((k, repr(v)) for k, v in env.items())))
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is kernel and hit[1] is hw:
        return hit[2]
    a = Typer(kernel, env, hw).run()
    if any(isinstance(s, ast.Recv) for s in scope.walk(kernel.body)):
        # What a recv gives is what its channel's sender sends: type again, knowing that. A value sent on
        # may itself come from a recv (a relay, or a score made from a received vector), typed only in the
        # pass after: again until no channel learns a type (at most once per channel).
        decls = [s.name for s in scope.walk(kernel.body) if isinstance(s, ast.ChannelDecl)]
        chans: dict = {}
        for _ in range(len(decls)):
            known = {name: a.sent.get(name) for name in decls}
            if known == chans:
                break
            chans = known
            a = Typer(kernel, env, hw, chans).run()
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = (kernel, hw, a)
    return a


def check_shapes(prog: Program, kernel: ast.Kernel, env: Mapping[str, Static], hw: Hardware) -> list[Diagnostic]:
    """Shape, broadcasting and dtype mistakes (E04xx)."""
    return list(analyze(kernel, env, hw).diags)


class ValueType(NamedTuple):
    shape: tuple[int, ...] | None  # None where a dimension has no value here
    dtype: str | None
    memory: str | None


def value_types(a: Analysis, env: Mapping[str, Static]) -> dict[tuple[str, Span], ValueType]:
    """Every assigned name of an analysis at env, per statement ((name, statement span) -> ValueType).

    Shapes are evaluated with loop indices at their first iteration; a value whose type could not be
    inferred (a reported mistake) is left out.
    """
    out: dict[tuple[str, Span], ValueType] = {}
    for key, ty in a.assigned.items():
        if ty.poison or ty.static:
            continue
        first = a.first_env.get(key, env)
        dims = [value_of(d, first) for d in ty.shape]
        shape = None if any(d is None for d in dims) else tuple(int(d) for d in dims)
        out[key] = ValueType(shape, ty.dtype, ty.memory)
    return out
