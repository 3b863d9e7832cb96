"""The parser: each construct of the grammar becomes the AST node we expect,
with the right spans, and quantities come out in canonical units."""

from __future__ import annotations

import math

import pytest

from attnlang.diagnostics import Span
from attnlang.syntax import ast
from attnlang.syntax.build import SyntaxProblem
from attnlang.syntax.parser import parse, parse_expression
from attnlang.syntax.units import (
    BANDWIDTH,
    BYTES,
    BYTES_PER_CYCLE,
    CYCLES,
    ENERGY,
    ENERGY_PER_BYTE,
    FREQUENCY,
    POWER,
    TIME,
    parse_quantity,
)

# ---------------------------------------------------------------- helpers


def parse_ok(src: str) -> ast.Module:
    module, diags = parse(src, "t.attn")
    assert diags == [], [d.message for d in diags]
    return module


def body(src: str) -> tuple:
    """The statements of a kernel whose body is src."""
    return parse_ok("kernel k() -> () {\n" + src + "\n}").kernels[0].body


def stmt(src: str):
    (s,) = body(src)
    return s


def sx(e) -> str:
    """An expression as an S-expression, so tests can say what tree they expect."""
    if e is None:
        return "_"
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Num):
        return repr(e.value)
    if isinstance(e, ast.QuantityLit):
        return f"<{e.quantity.text}>"
    if isinstance(e, ast.Unary):
        return f"({e.op} {sx(e.operand)})"
    if isinstance(e, ast.Binary):
        return f"({e.op} {sx(e.left)} {sx(e.right)})"
    if isinstance(e, ast.Call):
        return "(" + " ".join([e.func, *map(sx, e.args)]) + ")"
    if isinstance(e, ast.Index):
        return "(index " + " ".join([sx(e.base), *map(sx, e.items)]) + ")"
    if isinstance(e, ast.Slice):
        return f"{sx(e.lo)}:{sx(e.hi)}"
    if isinstance(e, ast.Attr):
        return f"(. {sx(e.base)} {e.name})"
    if isinstance(e, ast.ListLit):
        return "[" + " ".join(map(sx, e.items)) + "]"
    if isinstance(e, ast.OnUnit):
        unit = e.unit.name + (f"[{sx(e.unit.index)}]" if e.unit.index is not None else "")
        return f"(on {sx(e.expr)} {unit})"
    raise AssertionError(f"not an expression: {e!r}")


def expr(src: str) -> str:
    return sx(parse_expression(src))


HW = """\
hardware h {
  clock 940 MHz
  leakage 10 mW
  word 2 B
  memory dram { bandwidth 50 GiB/s; read 100 pJ/B; write 100 pJ/B }
  memory sram {
    capacity 512 KiB; bandwidth 256 B/cycle; read 1.5 pJ/B; write 1.5 pJ/B
    parent dram; policy spill; latency 2 cycles
  }
  unit pe : matrix { size 32 x 32; mac 0.3 pJ; memory sram }
  unit core[4] : vector {
    lanes 32; memory sram
    op add, sub, mul, max { cycles 1; energy 0.1 pJ }
    op exp { cycles 4; energy 1.2 pJ }
  }
  channel ring[4] : core[0] -> core[1] { depth 2; latency 1 cycle }
  link core[i] -> core[i + 1] for i in 0 .. 3 { latency 1 cycle; bandwidth 64 B/cycle; energy 0.5 pJ/B }
  link pe -> core[0]
}
"""

# ---------------------------------------------------------------- hardware


def test_hardware_block_has_its_props_memories_units_channels_and_links():
    (hw,) = parse_ok(HW).hardware
    assert hw.name == "h"
    assert [p.name for p in hw.props] == ["clock", "leakage", "word"]
    assert [m.name for m in hw.memories] == ["dram", "sram"]
    assert [u.name for u in hw.units] == ["pe", "core"]
    assert [c.name for c in hw.channels] == ["ring"]
    assert len(hw.links) == 2


def test_memory_properties_keep_their_order_and_values():
    sram = parse_ok(HW).hardware[0].memories[1]
    assert [p.name for p in sram.props] == ["capacity", "bandwidth", "read", "write", "parent", "policy", "latency"]
    props = {p.name: p.values for p in sram.props}
    assert props["capacity"][0].quantity.value == 512 * 1024
    assert props["parent"] == (ast.Name("dram", props["parent"][0].span),)
    assert sx(props["policy"][0]) == "spill"
    assert props["latency"][0].quantity.dim == CYCLES


def test_matrix_unit_has_a_shape_value():
    pe = parse_ok(HW).hardware[0].units[0]
    assert (pe.name, pe.kind, pe.count) == ("pe", "matrix", None)
    size = pe.props[0]
    assert size.name == "size"
    assert isinstance(size.values[0], ast.Shape2)
    assert (size.values[0].rows, size.values[0].cols) == (32, 32)
    assert [p.name for p in pe.props] == ["size", "mac", "memory"]
    assert pe.ops == ()


def test_unit_array_with_op_tables():
    core = parse_ok(HW).hardware[0].units[1]
    assert (core.name, core.kind, sx(core.count)) == ("core", "vector", "4")
    assert [p.name for p in core.props] == ["lanes", "memory"]
    assert [op.ops for op in core.ops] == [("add", "sub", "mul", "max"), ("exp",)]
    assert [[p.name for p in op.props] for op in core.ops] == [["cycles", "energy"], ["cycles", "energy"]]
    assert core.ops[1].props[0].values[0].value == 4


def test_hardware_channel_between_array_elements():
    (ring,) = parse_ok(HW).hardware[0].channels
    assert (ring.name, sx(ring.count)) == ("ring", "4")
    assert (ring.src.name, sx(ring.src.index), ring.dst.name, sx(ring.dst.index)) == ("core", "0", "core", "1")
    assert [p.name for p in ring.props] == ["depth", "latency"]


def test_links_with_and_without_a_range():
    ranged, plain = parse_ok(HW).hardware[0].links
    assert (ranged.src.name, sx(ranged.src.index)) == ("core", "i")
    assert (ranged.dst.name, sx(ranged.dst.index)) == ("core", "(+ i 1)")
    assert (ranged.var, sx(ranged.lo), sx(ranged.hi)) == ("i", "0", "3")
    assert [p.name for p in ranged.props] == ["latency", "bandwidth", "energy"]
    assert (plain.src.name, plain.src.index, plain.dst.name, plain.var, plain.props) == ("pe", None, "core", None, ())


def test_property_with_several_values():
    (mem,) = parse_ok("hardware h { memory m { read 1 pJ/B, 2 pJ/B } }").hardware[0].memories
    assert len(mem.props[0].values) == 2


def test_semicolons_and_newlines_both_separate_properties():
    a = parse_ok("hardware h { clock 1 GHz; word 2 B; }").hardware[0]
    b = parse_ok("hardware h {\n clock 1 GHz\n word 2 B\n}").hardware[0]
    assert [p.name for p in a.props] == [p.name for p in b.props] == ["clock", "word"]


# ---------------------------------------------------------------- use


def test_use_of_a_stdlib_name_and_of_a_quoted_path():
    m = parse_ok('use hw.edge\nuse "lib/my hw.attn"\nuse x')
    assert [(u.module, u.is_path) for u in m.uses] == [("hw.edge", False), ("lib/my hw.attn", True), ("x", False)]
    assert m.uses[0].span == Span("t.attn", 1, 1, 1, 12)
    assert m.uses[1].span == Span("t.attn", 2, 1, 2, 21)


# ---------------------------------------------------------------- kernels

KERNEL = """\
kernel flash(Q: f16[N, d], K: bf16[N, d], V: f32[N, d],) -> (O: f16[N, d], L: f32)
  on edge
  spec O = softmax(Q @ K.T / sqrt(d)) @ V
  spec L = sum(Q)
{
}
"""


def test_kernel_signature_on_and_several_specs():
    (k,) = parse_ok(KERNEL).kernels
    assert k.name == "flash"
    assert [(t.name, t.dtype, [sx(d) for d in t.dims]) for t in k.inputs] == [
        ("Q", "f16", ["N", "d"]), ("K", "bf16", ["N", "d"]), ("V", "f32", ["N", "d"])]
    assert [(t.name, t.dtype, [sx(d) for d in t.dims]) for t in k.outputs] == [
        ("O", "f16", ["N", "d"]), ("L", "f32", [])]
    assert k.hardware == "edge"
    assert k.hardware_span == Span("t.attn", 2, 6, 2, 10)
    assert [(s.output, sx(s.expr)) for s in k.specs] == [
        ("O", "(@ (softmax (/ (@ Q (. K T)) (sqrt d))) V)"), ("L", "(sum Q)")]
    assert k.body == ()


def test_kernel_with_no_tensors_and_no_clauses():
    (k,) = parse_ok("kernel k() -> () {}").kernels
    assert (k.inputs, k.outputs, k.hardware, k.specs) == ((), (), None, ())


def test_kernel_clauses_in_any_order():
    (k,) = parse_ok("kernel k(A: f32[n]) -> (B: f32[n]) spec B = A on h { }").kernels
    assert k.hardware == "h" and [s.output for s in k.specs] == ["B"]


def test_kernel_span_and_name_span():
    (k,) = parse_ok(KERNEL).kernels
    assert k.span == Span("t.attn", 1, 1, 6, 2)
    assert k.name_span == Span("t.attn", 1, 8, 1, 13)
    assert k.inputs[1].dtype_span == Span("t.attn", 1, 31, 1, 35)


# ---------------------------------------------------------------- params, dims, where


def test_param_with_a_set_domain_and_default():
    p = stmt("param Br in {16, 32, 64} = 32")
    assert isinstance(p, ast.Param)
    assert (p.name, [sx(v) for v in p.domain], p.domain_range, sx(p.default)) == ("Br", ["16", "32", "64"], None, "32")


def test_param_with_a_symbolic_domain():
    p = stmt("param order in {q_outer, kv_outer}")
    assert ([sx(v) for v in p.domain], p.default) == (["q_outer", "kv_outer"], None)


def test_param_with_a_range_domain():
    p = stmt("param S in 1 .. 8 by 2 = 2")
    lo, hi, step = p.domain_range
    assert (p.domain, sx(lo), sx(hi), sx(step), sx(p.default)) == (None, "1", "8", "2", "2")
    lo, hi, step = stmt("param T in 1 .. N").domain_range
    assert (sx(lo), sx(hi), step) == ("1", "N", None)


def test_param_with_no_domain():
    p = stmt("param latency = 1")
    assert (p.name, p.domain, p.domain_range, sx(p.default)) == ("latency", None, None, "1")
    p = stmt("param T")
    assert (p.domain, p.domain_range, p.default) == (None, None, None)


def test_dim_with_several_bindings():
    d = stmt("dim N = 1024, d = 64 * 2")
    assert isinstance(d, ast.DimDecl)
    assert [(b.name, sx(b.value)) for b in d.bindings] == [("N", "1024"), ("d", "(* 64 2)")]


def test_where_with_several_conditions():
    w = stmt("where N % Br == 0, Br <= N and Bc <= N")
    assert isinstance(w, ast.Where)
    assert [sx(c) for c in w.conds] == ["(== (% N Br) 0)", "(and (<= Br N) (<= Bc N))"]


def test_kernel_channel_declaration():
    c = stmt("channel c[2] : f16 { depth 4; latency latency }")
    assert isinstance(c, ast.ChannelDecl)
    assert (c.name, sx(c.count), c.dtype, [p.name for p in c.props]) == ("c", "2", "f16", ["depth", "latency"])
    c = stmt("channel d : f32")
    assert (c.count, c.props) == (None, ())


# ---------------------------------------------------------------- loops


def test_for_with_step_and_annotations():
    f = stmt("for j in 0 .. i + Br by Bc @parallel(core) @pipeline(2) @unroll { x = 1 }")
    assert isinstance(f, ast.For)
    assert (f.var, sx(f.lo), sx(f.hi), sx(f.step)) == ("j", "0", "(+ i Br)", "Bc")
    assert [(a.name, [sx(x) for x in a.args]) for a in f.annotations] == [
        ("parallel", ["core"]), ("pipeline", ["2"]), ("unroll", [])]
    assert len(f.body) == 1


def test_for_without_step_or_annotations_and_empty_body():
    f = stmt("for i in 0 .. N { }")
    assert (f.step, f.annotations, f.body) == (None, (), ())


def test_for_span_covers_the_whole_loop():
    f = body("  for i in 0 .. 4 {\n    x = 1\n  }")[0]
    assert f.span == Span("t.attn", 2, 3, 4, 4)
    assert f.var_span == Span("t.attn", 2, 7, 2, 8)


# ---------------------------------------------------------------- statements


def test_load_with_slices_into_a_memory():
    s = stmt("q = load Q[i : i+Br, :] -> sram")
    assert isinstance(s, ast.Load)
    assert (s.target.name, s.tensor, [sx(x) for x in s.index], s.memory) == ("q", "Q", ["i:(+ i Br)", "_:_"], "sram")
    assert s.tensor_span == Span("t.attn", 2, 10, 2, 11)
    assert s.memory_span == Span("t.attn", 2, 28, 2, 32)
    s = stmt("kk = load K -> regs")
    assert (s.tensor, s.index) == ("K", None)


def test_store_with_and_without_slices():
    s = stmt("store acc / l[:, None] -> O[i : i+Br, :]")
    assert isinstance(s, ast.Store)
    assert (sx(s.expr), s.tensor, [sx(x) for x in s.index]) == (
        "(/ acc (index l _:_ None))", "O", ["i:(+ i Br)", "_:_"])
    s = stmt("store x -> P")
    assert (s.tensor, s.index) == ("P", None)


def test_assign_and_augmented_assign():
    a, b, c, d, e, f = body("x = a + b\nx += 1\nx -= 1; x *= 2; x /= 2\no[i, :] = x")
    assert [(s.target.name, s.op) for s in (a, b, c, d, e)] == [
        ("x", "="), ("x", "+="), ("x", "-="), ("x", "*="), ("x", "/=")]
    assert all(isinstance(s, ast.Assign) for s in (a, b, c, d, e, f))
    assert [sx(i) for i in f.target.index] == ["i", "_:_"]


def test_statement_level_on_unit():
    s = stmt("x = a + b on vec")
    assert sx(s.expr) == "(on (+ a b) vec)"
    s = stmt("y = a @ b on pe[2]")
    assert sx(s.expr) == "(on (@ a b) pe[2])"


def test_send_recv_and_discard():
    send, recv, discard = body("send c[0], x * 2\ny = recv c[1]\ndiscard q, y")
    assert isinstance(send, ast.Send) and isinstance(recv, ast.Recv) and isinstance(discard, ast.Discard)
    assert (send.channel.name, sx(send.channel.index), sx(send.expr)) == ("c", "0", "(* x 2)")
    assert (recv.target.name, recv.channel.name, sx(recv.channel.index)) == ("y", "c", "1")
    assert [n.id for n in discard.names] == ["q", "y"]


def test_if_else_if_else_chain():
    s = stmt("if order == q_outer { z = 1 } else if Br > 16 { z = 2 } else { z = 3; w = 4 }")
    assert isinstance(s, ast.If)
    assert sx(s.cond) == "(== order q_outer)"
    assert len(s.then) == 1
    (inner,) = s.orelse
    assert isinstance(inner, ast.If)
    assert sx(inner.cond) == "(> Br 16)"
    assert len(inner.orelse) == 2
    plain = stmt("if a { }")
    assert (plain.then, plain.orelse) == ((), ())


def test_process_with_a_range_and_without():
    p, q = body("process w[n in 0 .. 4] on core[n] { a = 1 }\nprocess solo on pe { }")
    assert isinstance(p, ast.Process)
    assert (p.name, p.var, sx(p.lo), sx(p.hi), p.unit.name, sx(p.unit.index), len(p.body)) == (
        "w", "n", "0", "4", "core", "n", 1)
    assert (q.name, q.var, q.lo, q.hi, q.unit.name, q.unit.index, q.body) == ("solo", None, None, None, "pe", None, ())


def test_statement_spans():
    s = body("  x = a + b")[0]
    assert s.span == Span("t.attn", 2, 3, 2, 12)
    assert s.target.span == Span("t.attn", 2, 3, 2, 4)
    assert s.expr.span == Span("t.attn", 2, 7, 2, 12)
    assert s.expr.right.span == Span("t.attn", 2, 11, 2, 12)


# ---------------------------------------------------------------- expressions


@pytest.mark.parametrize("src, tree", [
    ("a + b * c", "(+ a (* b c))"),
    ("a * b + c", "(+ (* a b) c)"),
    ("a - b - c", "(- (- a b) c)"),
    ("a / b * c", "(* (/ a b) c)"),
    ("a // b % c", "(% (// a b) c)"),
    ("a + b @ c", "(+ a (@ b c))"),
    ("a @ b @ c", "(@ (@ a b) c)"),
    ("q @ k.T / sqrt(d)", "(/ (@ q (. k T)) (sqrt d))"),
    ("-a * b", "(* (- a) b)"),
    ("-a ** 2", "(- (** a 2))"),
    ("a ** -b", "(** a (- b))"),
    ("2 ** 3 ** 2", "(** 2 (** 3 2))"),
    ("a - -b", "(- a (- b))"),
    ("+a", "a"),
    ("(a + b) * c", "(* (+ a b) c)"),
    ("a < b + 1", "(< a (+ b 1))"),
    ("a == b and c != d", "(and (== a b) (!= c d))"),
    ("a or b and c", "(or a (and b c))"),
    ("not a and b", "(and (not a) b)"),
    ("not a == b", "(not (== a b))"),
    ("a >= 1 or not b <= 2", "(or (>= a 1) (not (<= b 2)))"),
])
def test_operator_precedence(src, tree):
    assert expr(src) == tree


@pytest.mark.parametrize("src, tree", [
    ("x[i:i+Br, :]", "(index x i:(+ i Br) _:_)"),
    ("m[:, None]", "(index m _:_ None)"),
    ("x[:n]", "(index x _:n)"),
    ("x[n:]", "(index x n:_)"),
    ("x[0]", "(index x 0)"),
    ("x[i][j]", "(index (index x i) j)"),
    ("k.T", "(. k T)"),
    ("k[0:4, :].T", "(. (index k 0:4 _:_) T)"),
    ("max(m, rowmax(s))", "(max m (rowmax s))"),
    ("f()", "(f)"),
    ("f(a, b,)", "(f a b)"),
    ("full([Br, d], -inf)", "(full [Br d] (- inf))"),
    ("zeros([])", "(zeros [])"),
    ("-inf", "(- inf)"),
    ("where(c, a, b)", "(where c a b)"),
    ("(a on vec)", "(on a vec)"),
    ("(a + b on core[i]) * c", "(* (on (+ a b) core[i]) c)"),
    ("a + b on vec", "(on (+ a b) vec)"),
    ("1.5e3", "1500.0"),
    ("8 B", "<8 B>"),
])
def test_postfix_calls_lists_and_on(src, tree):
    assert expr(src) == tree


def test_numbers_keep_whether_they_are_integers():
    n = parse_expression("64")
    assert (n.value, n.is_int) == (64, True)
    n = parse_expression("0.5")
    assert (n.value, n.is_int) == (0.5, False)


def test_expression_spans_are_one_based_with_exclusive_end():
    e = parse_expression("q @ k.T / sqrt(d)")
    assert e.span == Span("<input>", 1, 1, 1, 18)
    assert e.left.span == Span("<input>", 1, 1, 1, 8)  # q @ k.T
    assert e.left.right.span == Span("<input>", 1, 5, 1, 8)  # k.T
    assert e.right.span == Span("<input>", 1, 11, 1, 18)  # sqrt(d)
    assert e.right.func_span == Span("<input>", 1, 11, 1, 15)
    s = parse_expression("m[:, None]")
    assert s.items[0].span == Span("<input>", 1, 3, 1, 4)
    assert s.items[1].span == Span("<input>", 1, 6, 1, 10)


def test_parse_expression_reports_errors_at_their_place():
    with pytest.raises(SyntaxProblem) as info:
        parse_expression("a + * b")
    d = info.value.diagnostic
    assert (d.code, d.span.line, d.span.column, d.span.end_column) == ("E0001", 1, 5, 6)
    assert "expected an expression after '+'" in d.message
    with pytest.raises(SyntaxProblem) as info:
        parse_expression("a b")
    assert info.value.diagnostic.span.column == 3


def test_comments_and_blank_lines_are_ignored():
    m = parse_ok("# a comment\n\nkernel k() -> () { # here too\n  x = 1 # and here\n}\n")
    assert len(m.kernels[0].body) == 1


# ---------------------------------------------------------------- quantities


@pytest.mark.parametrize("text, value, dim", [
    ("940 MHz", 9.4e8, FREQUENCY),
    ("1 GHz", 1e9, FREQUENCY),
    ("512 KiB", 524288, BYTES),
    ("32 MiB", 32 * 2**20, BYTES),
    ("50 GiB/s", 50 * 2**30, BANDWIDTH),
    ("1 kB", 1000, BYTES),
    ("16 bits", 2, BYTES),
    ("256 B/cycle", 256, BYTES_PER_CYCLE),
    ("1.5 pJ/B", 1.5, ENERGY_PER_BYTE),
    ("0.3 pJ", 0.3, ENERGY),
    ("1 nJ", 1000, ENERGY),
    ("10 mW", 1e10, POWER),  # pJ per second
    ("2 ns", 2e-9, TIME),
    ("1 cycle", 1, CYCLES),
    ("4 cycles", 4, CYCLES),
    ("1e3 Hz", 1000, FREQUENCY),
])
def test_quantities_convert_to_canonical_units(text, value, dim):
    q = parse_quantity(text)
    assert q.dim == dim
    assert math.isclose(q.value, value, rel_tol=1e-12)
    lit = parse_expression(text)
    assert isinstance(lit, ast.QuantityLit)
    assert lit.quantity == q


def test_quantity_in_a_hardware_property():
    clock = parse_ok("hardware h { clock 940 MHz }").hardware[0].props[0]
    (value,) = clock.values
    assert math.isclose(value.quantity.value, 9.4e8)
    assert value.span == Span("t.attn", 1, 20, 1, 27)


def test_binary_prefix_on_a_non_byte_unit_is_E0006():
    _, diags = parse("hardware h { clock 1 KiHz }", "t.attn")
    assert [(d.code, d.span.column, d.span.end_column) for d in diags] == [("E0006", 20, 26)]
    assert "binary prefix 'Ki' only applies to bytes" in diags[0].message
    with pytest.raises(ValueError):
        parse_quantity("2 Mis")

