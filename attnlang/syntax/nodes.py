"""`@node`: `@dataclass(frozen=True)`, made without compiling code.

`dataclasses.dataclass(frozen=True)` writes six methods per class as source
text and compiles each (`exec`), and works out a docstring from
`inspect.signature`: for the AST's forty-odd classes alone, about a sixth of
an `attn check` process (docs/performance.md, "`attn run` as a process").
`node` gives the same class — a dataclass with the same fields, parameters,
`__match_args__`, `__init__`, frozen `__setattr__` and `__delattr__`,
`__eq__`, `__hash__`, `__repr__` and `__doc__`, value for value — with
nothing compiled: `dataclasses` does its bookkeeping only, `__init__` is a
compiled template for the number of fields (inits.py) given the fields'
names, the other methods are one set of functions over a per-class
`operator.attrgetter` of the fields, and the docstring is written from the
class's annotations. A class it does not handle (a `field()`, a
`__post_init__`, a dataclass base, annotations that are not strings) goes
to `dataclasses` unchanged. `tests/syntax/test_nodes.py` checks every class
it makes against `dataclass(frozen=True)`.
"""

from __future__ import annotations

import copy
import dataclasses
from _thread import get_ident
from operator import attrgetter
from types import FunctionType

from .inits import INITS


def node(cls: type) -> type:
    """`@dataclass(frozen=True)` for a class of plain fields (annotations written as strings, plain
    defaults), made without compiling code; any other class goes to `dataclasses` itself."""
    own = cls.__dict__
    annotations = own.get("__annotations__", {})
    plain = (len(annotations) < len(INITS) and "__post_init__" not in own
             and not any(hasattr(base, "__dataclass_fields__") for base in cls.__mro__[1:])
             and all(isinstance(a, str) and a.split("[")[0].split(".")[-1] not in ("ClassVar", "InitVar")
                     and not isinstance(own.get(n), dataclasses.Field) for n, a in annotations.items()))
    if not plain:
        return dataclasses.dataclass(frozen=True)(cls)
    for name in ("__setattr__", "__delattr__"):
        if name in own:  # as dataclasses says of a frozen class
            raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
    kept = {name for name in ("__eq__", "__repr__") if name in own}
    explicit_hash = "__hash__" in own and not (own["__hash__"] is None and "__eq__" in own)
    if not cls.__doc__:
        cls.__doc__ = _doc(cls, annotations)
    # dataclasses' bookkeeping (fields, __match_args__) and nothing it would compile
    cls = dataclasses.dataclass(init=False, repr=False, eq=False)(cls)
    params = copy.copy(cls.__dataclass_params__)
    params.init = params.repr = params.eq = params.frozen = True
    cls.__dataclass_params__ = params
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields)
    made = {"__init__": _init(cls, fields), "__eq__": _eq(_values(names)), "__repr__": _repr(names, _values(names)),
            "__setattr__": _setattr(cls, names), "__delattr__": _delattr(cls, names)}
    if not explicit_hash:
        made["__hash__"] = _hash(_values(names))
    for name, fn in made.items():
        if name not in kept:
            fn.__qualname__ = f"{cls.__qualname__}.{name}"
            fn.__module__ = cls.__module__
            setattr(cls, name, fn)
    return cls


def _init(cls: type, fields) -> FunctionType:
    """dataclasses' __init__ for these fields: each argument set with object.__setattr__, in order."""
    template = INITS[len(fields)].__code__
    names = [f.name for f in fields]
    defaults = [f.default for f in fields if f.default is not dataclasses.MISSING]
    if any(f.default is dataclasses.MISSING for f in fields[len(fields) - len(defaults):]):
        bad = next(f for f in fields[len(fields) - len(defaults):] if f.default is dataclasses.MISSING)
        raise TypeError(f"non-default argument {bad.name!r} follows default argument")
    slots = {str(i): name for i, name in enumerate(names)}
    code = template.replace(co_varnames=("self", *names), co_name="__init__",
                            co_consts=tuple(slots.get(c, c) if isinstance(c, str) else c for c in template.co_consts),
                            co_qualname=f"{cls.__qualname__}.__init__")
    fn = FunctionType(code, INITS[0].__globals__, "__init__", tuple(defaults) or None)
    fn.__annotations__ = {**{f.name: f.type for f in fields}, "return": None}
    return fn


def _setattr(cls: type, names: tuple):
    def __setattr__(self, name, value):
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    return __setattr__


def _delattr(cls: type, names: tuple):
    def __delattr__(self, name):
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return __delattr__


def _values(names: list[str]):
    """A function from an instance to the tuple of these fields' values (what dataclasses compare)."""
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda self: (one(self),)
    return attrgetter(*names) if names else lambda self: ()


def _eq(values):
    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    return __eq__


def _hash(values):
    def __hash__(self):
        return hash(values(self))

    return __hash__


_REPR_RUNNING: set = set()  # (id, thread) of the instances being printed, as dataclasses' recursion guard


def _repr(names: list[str], values):
    def __repr__(self):
        key = id(self), get_ident()
        if key in _REPR_RUNNING:
            return "..."
        _REPR_RUNNING.add(key)
        try:
            return self.__class__.__qualname__ + "(" + ", ".join(
                f"{name}={value!r}" for name, value in zip(names, values(self), strict=True)) + ")"
        finally:
            _REPR_RUNNING.discard(key)

    return __repr__


def _doc(cls: type, annotations: dict) -> str:
    """What dataclasses writes for a class without a docstring: its name and __init__'s signature."""
    params = []
    for name, annotation in annotations.items():
        default = cls.__dict__.get(name, dataclasses.MISSING)
        params.append(f"{name}: {annotation!r}" + ("" if default is dataclasses.MISSING else f" = {default!r}"))
    return f"{cls.__name__}({', '.join(params)})"


__all__ = ["node"]
