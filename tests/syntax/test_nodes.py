"""`nodes.node` makes the same classes as `dataclass(frozen=True)` (issue 19: start-up).

The reference is each module that uses it (the AST, Span, the hardware model, ...), executed again with
`node` standing for `dataclass(frozen=True)`: each class it made is compared with its twin — fields,
signature, docstring, `__match_args__`, parameters — and instances of both, made from the same values,
print, compare, hash, refuse assignment and deletion, and pickle alike."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import pickle
import re
import sys
import types
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlang.diagnostics import Span
from attnlang.syntax import nodes
from attnlang.syntax.nodes import node

ROOT = Path(__file__).resolve().parents[2]


_NODE_IMPORT = re.compile(r"^from \.+(syntax\.)?nodes import node\n", re.M)


def _reference_module(module):
    """The module's source run again, with `node` as dataclass(frozen=True)."""
    source = Path(module.__file__).read_text()
    assert _NODE_IMPORT.search(source), module.__name__
    source = _NODE_IMPORT.sub("from dataclasses import dataclass as _dataclass\nnode = _dataclass(frozen=True)\n",
                              source)
    mod = types.ModuleType(module.__name__ + "_reference")
    mod.__package__ = module.__package__
    sys.modules[mod.__name__] = mod  # for pickling its instances
    exec(compile(source, module.__file__, "exec"), mod.__dict__)
    return mod


#: every module whose classes @node makes
USERS = ("attnlang.syntax.ast", "attnlang.syntax.units", "attnlang.diagnostics", "attnlang.hardware",
         "attnlang.check.types", "attnlang.check.names", "attnlang.check.dims", "attnlang.spec", "attnlang.ops",
         "attnlang.jit.values", "attnlang.hostmem", "attnlang.files")
MODULES = {name: (importlib.import_module(name), _reference_module(importlib.import_module(name))) for name in USERS}
_NODE_EQ = nodes._eq(None).__code__
#: the classes @node made (a class it hands to dataclasses, or a plain @dataclass beside them, is left out)
CLASSES = sorted((module, name) for module, (m, _) in MODULES.items() for name, c in vars(m).items()
                 if isinstance(c, type) and c.__module__ == module and dataclasses.is_dataclass(c)
                 and getattr(c.__eq__, "__code__", None) is _NODE_EQ)


def test_every_module_using_node_is_compared():
    users = {str(p.relative_to(ROOT)).removesuffix(".py").removesuffix("/__init__").replace("/", ".")
             for p in (ROOT / "attnlang").rglob("*.py") if _NODE_IMPORT.search(p.read_text())}
    assert users == set(USERS)


def _pair(module: str, name: str):
    ours, ref = MODULES[module]
    return getattr(ours, name), getattr(ref, name)


def test_every_node_class_is_compared():
    assert len(CLASSES) >= 60 and ("attnlang.syntax.units", "Quantity") in CLASSES
    assert all(isinstance(_pair(*c)[1], type) for c in CLASSES)


def _field_facts(cls):
    return [(f.name, f.type, f.default, f.default_factory, f.init, f.repr, f.compare, f.hash, f.kw_only)
            for f in dataclasses.fields(cls)]


@pytest.mark.parametrize("module, name", CLASSES)
def test_the_class_is_what_dataclasses_makes(module, name):
    ours, ref = _pair(module, name)
    assert _field_facts(ours) == _field_facts(ref)
    assert ours.__doc__ == ref.__doc__
    assert str(inspect.signature(ours)) == str(inspect.signature(ref))
    assert inspect.signature(ours.__init__) == inspect.signature(ref.__init__)
    assert ours.__init__.__annotations__ == ref.__init__.__annotations__
    assert ours.__match_args__ == ref.__match_args__
    assert repr(ours.__dataclass_params__) == repr(ref.__dataclass_params__)
    for method in ("__init__", "__eq__", "__hash__", "__repr__", "__setattr__", "__delattr__"):
        assert getattr(ours, method).__qualname__ == getattr(ref, method).__qualname__
    assert {k for k in vars(ours) if not k.startswith("__")} == {k for k in vars(ref) if not k.startswith("__")}


_atoms = st.one_of(st.none(), st.integers(-3, 3), st.booleans(), st.sampled_from(["x", "y", "+"]),
                   st.floats(allow_nan=False, width=16), st.builds(Span, st.just("f.attn"), st.integers(1, 3),
                                                                   st.integers(1, 3), st.integers(1, 3),
                                                                   st.integers(1, 3)))
_values = st.one_of(_atoms, st.tuples(_atoms, _atoms), st.tuples())


@pytest.mark.parametrize("module, name", CLASSES)
@settings(max_examples=15)
@given(data=st.data())
def test_instances_behave_alike(module, name, data):
    ours, ref = _pair(module, name)
    n = len(dataclasses.fields(ours))
    v = data.draw(st.lists(_values, min_size=n, max_size=n))
    w = data.draw(st.one_of(st.just(list(v)), st.lists(_values, min_size=n, max_size=n)))
    a, b, ra, rb = ours(*v), ours(*w), ref(*v), ref(*w)
    assert repr(a) == repr(ra) and repr(b) == repr(rb)
    assert (a == b) == (ra == rb) and (a != b) == (ra != rb)
    assert hash(a) == hash(ra)
    assert a != ra and ra != a
    assert ours(**{f.name: x for f, x in zip(dataclasses.fields(ours), v, strict=True)}) == a
    assert pickle.loads(pickle.dumps(a)) == a and copy.deepcopy(a) == a
    for target in (dataclasses.fields(ours)[-1].name, dataclasses.fields(ours)[0].name, "not_a_field"):
        with pytest.raises(dataclasses.FrozenInstanceError) as got:
            setattr(a, target, 1)
        with pytest.raises(dataclasses.FrozenInstanceError) as want:
            setattr(ra, target, 1)
        assert str(got.value) == str(want.value)
        with pytest.raises(dataclasses.FrozenInstanceError) as got:
            delattr(a, target)
        with pytest.raises(dataclasses.FrozenInstanceError) as want:
            delattr(ra, target)
        assert str(got.value) == str(want.value)
    for bad in ((*v, None),) + (((),) if dataclasses.fields(ours)[0].default is dataclasses.MISSING else ()):
        with pytest.raises(TypeError) as got:
            ours(*bad)
        with pytest.raises(TypeError) as want:
            ref(*bad)
        assert str(got.value) == str(want.value)


def test_a_subclass_and_a_recursive_repr_behave_as_with_dataclasses():
    @node
    class Box:
        items: "list"
        span: "Span | None" = None

        def size(self) -> int:
            return len(self.items)

    @dataclasses.dataclass(frozen=True)
    class RefBox:
        items: "list"
        span: "Span | None" = None

    a, r = Box([]), RefBox([])
    a.items.append(a)
    r.items.append(r)
    assert repr(a) == repr(r).replace("RefBox", "Box") and repr(a).endswith(".Box(items=[...], span=None)")
    assert Box.__doc__ == RefBox.__doc__.replace("RefBox", "Box") and a.size() == 1

    @dataclasses.dataclass(frozen=True)
    class Sub(Box):  # a frozen dataclass may extend a node, as it may a frozen dataclass
        extra: int = 0

    assert Sub([1], None, 2).extra == 2 and Sub([1]) == Sub([1])
    with pytest.raises(TypeError, match="non-frozen"):
        @dataclasses.dataclass
        class Thawed(Box):
            extra: int = 0
