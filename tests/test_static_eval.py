"""Static evaluation as the interpreter (static_eval), the checker (veval) and the model (aeval) see it.

One evaluator serves the three, each with its policy: what error it raises,
whether `and`/`or` short-circuit to an operand's value (static_eval), whether
integral float arrays become integer arrays (aeval). The table pins every
evaluator's outcome on hand-picked edge cases; the properties relate the
evaluators to each other on random expression trees, scalars and arrays.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnlang.check.dims import Unknown, veval
from attnlang.diagnostics import AttnError
from attnlang.model.statics import aeval
from attnlang.static import StaticError, static_eval
from attnlang.syntax.parser import parse_expression

ENVS = {
    "none": {},
    "s": {"a": 6, "b": 0, "x": 2.5, "y": -1.5, "s": "q_outer", "q_outer": "q_outer", "t": True, "f": False},
    "v": {"A": np.array([0, 2, 4]), "F": np.array([0.5, 2.0, 3.0]), "S": np.array(["q", "kv", "q"]),
          "T": np.array([True, False, True]), "n": 4, "z": 0, "q": "q"},
}


def _scalar(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return f"bool {bool(v)}"
    if isinstance(v, (int, np.integer)):
        return f"int {int(v)}" if abs(int(v)) < 10**12 else f"int ~2**{int(v).bit_length()}"
    if isinstance(v, (float, np.floating)):
        return "float nan" if math.isnan(v) else f"float {float(v):.6g}"
    if isinstance(v, str):
        return f"str {v}"
    return type(v).__name__


def outcome(fn, text: str, env) -> str:
    """What evaluating text gives, as a short line: `int 3`, `array bool [...]`, `error Unknown`."""
    try:
        v = fn(parse_expression(text), env)
    except Exception as exc:  # noqa: BLE001 - the type of any exception is the outcome
        return f"error {type(exc).__name__}"
    if isinstance(v, np.ndarray):
        kind = {"b": "bool", "i": "int", "u": "int", "f": "float"}.get(v.dtype.kind, v.dtype.kind)
        items = ["nan" if isinstance(x, float) and math.isnan(x) else round(x, 6) if isinstance(x, float) else x
                 for x in v.tolist()]
        return f"array {kind} {items}"
    return _scalar(v)


# text, env, static_eval, veval, aeval (static_eval never sees arrays: None)
CASES = [
    ('3', 'none', 'int 3', 'int 3', 'int 3'),
    ('2.0', 'none', 'float 2', 'float 2', 'float 2'),
    ('2.5', 'none', 'float 2.5', 'float 2.5', 'float 2.5'),
    ('1 KiB', 'none', 'int 1024', 'int 1024', 'int 1024'),
    ('1.5 KiB', 'none', 'int 1536', 'int 1536', 'int 1536'),
    ('inf', 'none', 'float inf', 'float inf', 'float inf'),
    ('True', 'none', 'bool True', 'bool True', 'bool True'),
    ('False', 'none', 'bool False', 'bool False', 'bool False'),
    ('nope', 'none', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('-inf', 'none', 'float -inf', 'float -inf', 'float -inf'),
    ('not 0', 'none', 'bool True', 'bool True', 'bool True'),
    ('not 3', 'none', 'bool False', 'bool False', 'bool False'),
    ('s', 's', 'str q_outer', 'str q_outer', 'str q_outer'),
    ('-s', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('not s', 's', 'bool False', 'bool False', 'bool False'),
    ('x', 's', 'float 2.5', 'float 2.5', 'float 2.5'),
    ('t', 's', 'bool True', 'bool True', 'bool True'),
    ('6 / 2', 'none', 'int 3', 'int 3', 'int 3'),
    ('7 / 2', 'none', 'float 3.5', 'float 3.5', 'float 3.5'),
    ('7 // 2', 'none', 'int 3', 'int 3', 'int 3'),
    ('-7 // 2', 'none', 'int -4', 'int -4', 'int -4'),
    ('-7 % 3', 'none', 'int 2', 'int 2', 'int 2'),
    ('7.5 // 2', 'none', 'int 3', 'int 3', 'int 3'),
    ('2.0 * 3', 'none', 'int 6', 'int 6', 'int 6'),
    ('x * 2', 's', 'int 5', 'int 5', 'int 5'),
    ('x + y', 's', 'int 1', 'int 1', 'int 1'),
    ('a * x', 's', 'int 15', 'int 15', 'int 15'),
    ('2 ** 10', 'none', 'int 1024', 'int 1024', 'int 1024'),
    ('2 ** -1', 'none', 'float 0.5', 'float 0.5', 'float 0.5'),
    ('2 ** 0.5', 'none', 'float 1.41421', 'float 1.41421', 'float 1.41421'),
    ('(-8) ** 0.5', 'none', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('4 ** 0.5', 'none', 'int 2', 'int 2', 'int 2'),
    ('0 ** -1', 'none', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('2 ** 100000', 'none', 'error StaticError', 'error Unknown', 'error AttnError'),
    # Integers are exact only up to 2**53 (attnlang.limits): a result past it is an error, not a bigint.
    ('2 ** 53', 'none', 'int ~2**54', 'int ~2**54', 'int ~2**54'),  # (bit_length 54)
    ('2 ** 62 + 2 ** 62', 'none', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('3 ** 40', 'none', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('10.0 ** 400', 'none', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('inf - inf', 'none', 'float nan', 'float nan', 'float nan'),
    ('inf * 0', 'none', 'float nan', 'float nan', 'float nan'),
    ('1 KiB / 4', 'none', 'int 256', 'int 256', 'int 256'),
    ('1 KiB * 2', 'none', 'int 2048', 'int 2048', 'int 2048'),
    ('t + t', 's', 'int 2', 'int 2', 'int 2'),
    ('t - f', 's', 'int 1', 'int 1', 'int 1'),
    ('-t', 's', 'int -1', 'int -1', 'int -1'),
    ('a - t', 's', 'int 5', 'int 5', 'int 5'),
    ('a / b', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('a // b', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('a % b', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('x / 0.0', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('a / f', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('1 / inf', 'none', 'int 0', 'int 0', 'int 0'),
    ('A / z', 'v', None, 'error Unknown', 'error AttnError'),
    ('n / A', 'v', None, 'array float [inf, 2.0, 1.0]', 'array float [inf, 2.0, 1.0]'),
    ('n // A', 'v', None, 'array int [0, 2, 1]', 'array int [0, 2, 1]'),
    ('n % A', 'v', None, 'array int [0, 0, 0]', 'array int [0, 0, 0]'),
    ('F / A', 'v', None, 'array float [inf, 1.0, 0.75]', 'array float [inf, 1.0, 0.75]'),
    ('A // A', 'v', None, 'array int [0, 1, 1]', 'array int [0, 1, 1]'),
    ('s == q_outer', 's', 'bool True', 'bool True', 'bool True'),
    ('s != q_outer', 's', 'bool False', 'bool False', 'bool False'),
    ('s == 3', 's', 'bool False', 'bool False', 'bool False'),
    ('s != 3', 's', 'bool True', 'bool True', 'bool True'),
    ('s < 3', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('3 <= s', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('s < q_outer', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('s + 1', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('s * 2', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('min(s, 1)', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('sqrt(s)', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('S == q', 'v', None, 'array bool [True, False, True]', 'array bool [True, False, True]'),
    ('S != q', 'v', None, 'array bool [False, True, False]', 'array bool [False, True, False]'),
    ('S == 1', 'v', None, 'array bool [False, False, False]', 'array bool [False, False, False]'),
    ('S != n', 'v', None, 'array bool [True, True, True]', 'array bool [True, True, True]'),
    ('S < q', 'v', None, 'error Unknown', 'error AttnError'),
    ('S + 1', 'v', None, 'error Unknown', 'error AttnError'),
    ('-S', 'v', None, 'error Unknown', 'error AttnError'),
    ('q == A', 'v', None, 'array bool [False, False, False]', 'array bool [False, False, False]'),
    ('a > 2', 's', 'bool True', 'bool True', 'bool True'),
    ('a >= x and x > 0', 's', 'bool True', 'bool True', 'bool True'),
    ('b or a', 's', 'int 6', 'bool True', 'bool True'),
    ('a and b', 's', 'int 0', 'bool False', 'bool False'),
    ('a and x', 's', 'float 2.5', 'bool True', 'bool True'),
    ('b and nope', 's', 'int 0', 'error Unknown', 'error AttnError'),
    ('a or nope', 's', 'int 6', 'error Unknown', 'error AttnError'),
    ('not (a > 2)', 's', 'bool False', 'bool False', 'bool False'),
    ('(a > 2) or (b > 2) and not t', 's', 'bool True', 'bool True', 'bool True'),
    ('s and a', 's', 'int 6', 'bool True', 'bool True'),
    ('t == 1', 's', 'bool True', 'bool True', 'bool True'),
    ('A > 1', 'v', None, 'array bool [False, True, True]', 'array bool [False, True, True]'),
    ('A > 1 and F < 3', 'v', None, 'array bool [False, True, False]', 'array bool [False, True, False]'),
    ('A > 1 or n > 3', 'v', None, 'array bool [True, True, True]', 'array bool [True, True, True]'),
    ('not (A > 1)', 'v', None, 'array bool [True, False, False]', 'array bool [True, False, False]'),
    ('n > 3 and A > 0', 'v', None, 'array bool [False, True, True]', 'array bool [False, True, True]'),
    ('T and A', 'v', None, 'array bool [False, False, True]', 'array bool [False, False, True]'),
    ('not T', 'v', None, 'array bool [False, True, False]', 'array bool [False, True, False]'),
    ('-T', 'v', None, 'error Unknown', 'error AttnError'),
    ('T + T', 'v', None, 'array bool [True, False, True]', 'array bool [True, False, True]'),
    ('T - T', 'v', None, 'error Unknown', 'error AttnError'),
    ('min(a, x)', 's', 'float 2.5', 'float 2.5', 'float 2.5'),
    ('max(a, x, 9)', 's', 'int 9', 'int 9', 'int 9'),
    ('min(a)', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('max()', 'none', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('sqrt(16)', 'none', 'int 4', 'int 4', 'int 4'),
    ('sqrt(2)', 'none', 'float 1.41421', 'float 1.41421', 'float 1.41421'),
    ('sqrt(-1)', 'none', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('log(0)', 'none', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('log(1)', 'none', 'int 0', 'int 0', 'int 0'),
    ('exp(0)', 'none', 'int 1', 'int 1', 'int 1'),
    ('exp(1000)', 'none', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('abs(y)', 's', 'float 1.5', 'float 1.5', 'float 1.5'),
    ('abs(-3)', 'none', 'int 3', 'int 3', 'int 3'),
    ('sqrt(4, 9)', 'none', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('floor(2.5)', 'none', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('min(A, n)', 'v', None, 'array int [0, 2, 4]', 'array int [0, 2, 4]'),
    ('max(A, F)', 'v', None, 'array float [0.5, 2.0, 4.0]', 'array float [0.5, 2.0, 4.0]'),
    ('min(A)', 'v', None, 'error Unknown', 'error AttnError'),
    ('sqrt(A)', 'v', None, 'array float [0.0, 1.414214, 2.0]', 'array float [0.0, 1.414214, 2.0]'),
    ('sqrt(F * 4)', 'v', None, 'array float [1.414214, 2.828427, 3.464102]',
     'array float [1.414214, 2.828427, 3.464102]'),
    ('log(A)', 'v', None, 'array float [-inf, 0.693147, 1.386294]', 'array float [-inf, 0.693147, 1.386294]'),
    ('abs(A - 3)', 'v', None, 'array int [3, 1, 1]', 'array int [3, 1, 1]'),
    ('exp(A)', 'v', None, 'array float [1.0, 7.389056, 54.59815]', 'array float [1.0, 7.389056, 54.59815]'),
    ('F * 2', 'v', None, 'array float [1.0, 4.0, 6.0]', 'array int [1, 4, 6]'),
    ('A / 2', 'v', None, 'array float [0.0, 1.0, 2.0]', 'array int [0, 1, 2]'),
    ('A * 0.5', 'v', None, 'array float [0.0, 1.0, 2.0]', 'array int [0, 1, 2]'),
    ('A ** 2', 'v', None, 'array int [0, 4, 16]', 'array int [0, 4, 16]'),
    ('A ** -1', 'v', None, 'error Unknown', 'error AttnError'),
    ('F ** -1', 'v', None, 'array float [2.0, 0.5, 0.333333]', 'array float [2.0, 0.5, 0.333333]'),
    ('A + F', 'v', None, 'array float [0.5, 4.0, 7.0]', 'array float [0.5, 4.0, 7.0]'),
    ('n * A + 1', 'v', None, 'array int [1, 9, 17]', 'array int [1, 9, 17]'),
    ('A - n', 'v', None, 'array int [-4, -2, 0]', 'array int [-4, -2, 0]'),
    ('n / 2', 'v', None, 'int 2', 'int 2'),
    ('A % 3 == 0', 'v', None, 'array bool [True, False, False]', 'array bool [True, False, False]'),
    ('x @ a', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('q @ A', 'v', None, 'error Unknown', 'error AttnError'),
    ('a[0]', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
    ('full(a)', 's', 'error StaticError', 'error Unknown', 'error AttnError'),
]


@pytest.mark.parametrize("text, env, want_static, want_veval, want_aeval", CASES)
def test_each_evaluator_on_edge_cases(text, env, want_static, want_veval, want_aeval):
    got = (outcome(static_eval, text, ENVS[env]) if want_static is not None else None,
           outcome(veval, text, ENVS[env]), outcome(aeval, text, ENVS[env]))
    assert got == (want_static, want_veval, want_aeval)


def test_errors_say_what_is_wrong():
    env = ENVS["s"]
    for text, message in [("a / b", "division by zero"), ("s + 1", "'+' needs numbers, not 'q_outer' and '1'"),
                          ("nope", "'nope' has no value here"), ("2 ** 100000", "the power is too large to compute"),
                          ("s < 3", "cannot compare 'q_outer' with '3'"),
                          ("x @ a", "'@' is a tensor operation, not a static one"),
                          ("-s", "cannot negate the symbol 'q_outer'"), ("max()", "max() needs numbers")]:
        with pytest.raises(StaticError) as exc:
            static_eval(parse_expression(text), env)
        said = exc.value.diagnostic
        assert (said.code, said.message) == ("E0301", message)
        with pytest.raises(AttnError) as exc:
            aeval(parse_expression(text), env)
        [model_said] = exc.value.diagnostics
        assert (model_said.code, model_said.message, model_said.span) == ("E1401", message, said.span)


# ---------------------------------------------------------------- random expression trees

_NAMES = ("a", "b", "c")
_leaf = st.one_of(st.integers(-3, 6).map(str), st.sampled_from(["0.5", "2.0", "1.5", "inf", *_NAMES]))


def _numeric_from(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "//", "%"]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(_leaf, st.integers(0, 2)).map(lambda t: f"({t[0]} ** {t[1]})"),
        children.map(lambda c: f"(-{c})"),
        st.tuples(st.sampled_from(["min", "max"]), children, children).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(st.sampled_from(["sqrt", "abs", "log", "exp"]), children).map(lambda t: f"{t[0]}({t[1]})"),
    )


_numeric = st.recursive(_leaf, _numeric_from, max_leaves=8)
_comparison = st.tuples(_numeric, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), _numeric).map(
    lambda t: f"({t[0]} {t[1]} {t[2]})")
_logic = st.recursive(_comparison, lambda c: st.one_of(
    st.tuples(c, st.sampled_from(["and", "or"]), c).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    c.map(lambda x: f"(not {x})")), max_leaves=4)
expressions = st.one_of(_numeric, _logic)
_number = st.one_of(st.integers(-3, 6), st.sampled_from([0.5, 2.0, -1.5]))
scalar_envs = st.fixed_dictionaries({n: _number for n in _NAMES})


def _run(fn, e, env):
    """(True, value) or (False, the exception)."""
    try:
        return True, fn(e, env)
    except Exception as exc:  # noqa: BLE001 - which exception is part of what is compared
        return False, exc


def _close(x, y) -> bool:
    x, y = (v.item() if isinstance(v, np.generic) else v for v in (x, y))
    if isinstance(x, bool) or isinstance(y, bool):
        return type(x) is type(y) and x == y
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == y or math.isclose(x, y, rel_tol=1e-9)


_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(expressions, scalar_envs)
def test_on_scalars_the_model_and_the_checker_agree_with_the_interpreter(text, env):
    e = parse_expression(text)
    ok, want = _run(static_eval, e, env)
    assert ok or isinstance(want, StaticError)
    # static_eval short-circuits `and`/`or`; the others evaluate both sides, so may fail on the other one
    skipped = " and " in text or " or " in text
    ok_a, got_a = _run(aeval, e, env)
    ok_v, got_v = _run(veval, e, env)
    if not ok:  # what the interpreter cannot evaluate, neither can the others
        assert isinstance(got_a, AttnError) and isinstance(got_v, Unknown), (text, env, want, got_a, got_v)
        return
    assert (ok_a and _close(got_a, want)) or (skipped and isinstance(got_a, AttnError)), (text, env, want, got_a)
    assert (ok_v and _close(got_v, want)) or (skipped and isinstance(got_v, Unknown)), (text, env, want, got_v)


_column = st.lists(_number, min_size=1, max_size=4)


@_SETTINGS
@given(expressions, _column, _column, _number)
def test_over_arrays_each_entry_is_the_scalar_value(text, col_a, col_b, c):
    n = min(len(col_a), len(col_b))
    env = {"a": np.array(col_a[:n]), "b": np.array(col_b[:n]), "c": c}
    e = parse_expression(text)
    for fn, error in ((aeval, AttnError), (veval, Unknown)):
        ok, whole = _run(fn, e, env)
        if not ok:
            assert isinstance(whole, error), (text, env, whole)
            continue
        whole = np.broadcast_to(whole, (n,))
        for i in range(n):
            ok_i, one = _run(fn, e, {"a": env["a"][i].item(), "b": env["b"][i].item(), "c": c})
            if not ok_i or _is_nan(one) or _is_nan(whole[i]):
                continue
            assert _close(whole[i], one), (fn.__name__, text, env, i, whole, one)


def _is_nan(v) -> bool:
    return isinstance(v, (float, np.floating)) and math.isnan(v)
