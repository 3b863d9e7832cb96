"""Every diagnostic the front end can emit: a small wrong program each, its
rendering as `attn check` prints it (golden files), and its JSON form."""

from __future__ import annotations

import json
import re
import sys

import pytest

from attnlang.check import check
from attnlang.diagnostics import render_all
from attnlang.program import load_source
from attnlang.syntax.build import SyntaxProblem
from attnlang.syntax.parser import grammar, parse, parse_expression

HW = """\
hardware h {
  clock 1 GHz
  memory m { bandwidth 8 B/cycle }
  unit v : vector { lanes 4; memory m }
}
"""



def hw_plus(extra: str) -> str:
    """HW with more lines inside its block."""
    return HW[:-2] + extra + "}\n"


# 201 opening brackets spread over lines of 50, so the source line is short enough to show.
_DEEP = "\n".join("(" * 50 for _ in range(5)) + "(" + "1" + ")" * 201

#: id -> (program, codes it must produce). The id's prefix is the code under test.
CASES: dict[str, tuple[str, list[str]]] = {
    # ------------------------------------------------------------ syntax
    "E0001_expected_expression": ("kernel k() -> () {\n  x =\n}\n", ["E0001"]),
    "E0001_unexpected_character": ("kernel k() -> () {\n  x = a $ b\n}\n", ["E0001"]),
    "E0001_close_the_for_loop": ("kernel k() -> () {\n  for i in 0 .. 4 {\n    x = 1\n  )\n}\n", ["E0001"]),
    "E0001_missing_arrow": ("kernel k(A: f32[n]) (B: f32[n]) {\n}\n", ["E0001"]),
    "E0001_keyword_as_a_name": ("kernel k() -> () {\n  for = 1\n}\n", ["E0001"]),
    "E0001_missing_operand": ("kernel k() -> () {\n  x = a * * b\n}\n", ["E0001"]),
    "E0002_unclosed_for_loop": ("kernel k() -> () {\n  for i in 0 .. 4 {\n    x = 1\n", ["E0002"]),
    "E0002_unclosed_kernel": ("kernel k() -> () {\n  for i in 0 .. 4 {\n    x = 1\n  }\n", ["E0002"]),
    "E0002_expression_cut_off": ("kernel k() -> () {\n  x = a +", ["E0002"]),
    "E0003_brackets_too_deep": ("kernel k() -> () {\n  x = " + _DEEP + "\n}\n", ["E0003"]),
    "E0004_on_given_twice": ("kernel k() -> () on a on b {\n}\n", ["E0004"]),
    "E0005_call_of_a_non_function": ("kernel k() -> () {\n  x = a.b(1)\n}\n", ["E0005"]),
    "E0006_binary_prefix_on_hertz": ("hardware h {\n  clock 1 KiHz\n}\n", ["E0006"]),
    "E0006_number_too_long": ("kernel k() -> () {\n  x = " + "9" * 320 + "\n}\n", ["E0006"]),
    # ------------------------------------------------------------ use and names
    "E0101_missing_stdlib_module": ("use hw.nothere\n", ["E0101"]),
    "E0101_missing_relative_file": ('use "nothere.attn"\n', ["E0101"]),
    "E0101_not_an_attn_file": ('use "notes.txt"\n', ["E0101"]),
    "E0104_hardware_defined_twice": (HW + HW.replace("clock 1 GHz", "clock 2 GHz"), ["E0104"]),
    "E0104_kernel_defined_twice": (HW + "kernel k() -> () {\n}\nkernel k() -> () {\n}\n", ["E0104"]),
    "E0105_no_hardware_in_scope": ("kernel k() -> () {\n}\n", ["E0105"]),
    "E0105_unknown_hardware": (HW + "kernel k() -> () on nope {\n}\n", ["E0105"]),
    # ------------------------------------------------------------ hardware
    "E0201_unknown_property": (HW.replace("bandwidth 8 B/cycle", "bandwidth 8 B/cycle; capacty 1 KiB"), ["E0201"]),
    "E0201_unknown_hardware_property": (HW.replace("clock 1 GHz", "clock 1 GHz\n  lanes 4"), ["E0201"]),
    "E0201_op_table_on_a_matrix_unit": (
        hw_plus("  unit pe : matrix { size 4 x 4; op add { cycles 1 } }\n"), ["E0201"]),
    "E0202_capacity_is_a_bandwidth": (HW.replace("{ bandwidth", "{ capacity 50 GiB/s; bandwidth"), ["E0202"]),
    "E0202_lanes_not_whole": (HW.replace("lanes 4", "lanes 2.5"), ["E0202"]),
    "E0202_clock_in_bytes": (HW.replace("1 GHz", "1 KiB"), ["E0202"]),
    "E0202_capacity_a_product_of_sizes": (HW.replace("{ bandwidth", "{ capacity 2 KiB * 2 KiB; bandwidth"),
                                          ["E0202"]),
    "E0203_no_clock": (HW.replace("  clock 1 GHz\n", ""), ["E0203"]),
    "E0203_no_bandwidth_size_or_lanes": (
        "hardware h {\n  clock 1 GHz\n  memory m { capacity 1 KiB }\n  unit pe : matrix { mac 1 pJ }\n"
        "  unit v : vector { memory m }\n}\n", ["E0203", "E0203", "E0203"]),
    "E0204_unknown_parent": (HW.replace("{ bandwidth 8 B/cycle }", "{ bandwidth 8 B/cycle; parent dram }"),
                             ["E0204"]),
    "E0204_unknown_unit_memory": (HW.replace("memory m }", "memory sram }"), ["E0204"]),
    "E0204_channel_endpoint": (hw_plus("  channel c : v -> w\n"), ["E0204"]),
    "E0204_link_endpoint": (hw_plus("  link v -> w\n"), ["E0204"]),
    "E0205_policy": (HW.replace("{ bandwidth 8 B/cycle }", "{ bandwidth 8 B/cycle; policy lru }"), ["E0205"]),
    "E0205_zero_clock": (HW.replace("1 GHz", "0 Hz"), ["E0205"]),
    "E0205_negative_bandwidth": (HW.replace("8 B/cycle", "-8 B/cycle"), ["E0205"]),
    "E0205_size_is_not_a_shape": (
        hw_plus("  unit pe : matrix { size 32 }\n"), ["E0205"]),
    "E0205_two_values": (HW.replace("lanes 4", "lanes 4, 8"), ["E0205"]),
    "E0205_unknown_dataflow": (hw_plus("  unit pe : matrix { size 4 x 4; dataflow wss }\n"), ["E0205"]),
    "E0205_unknown_fill": (hw_plus("  unit pe : matrix { size 4 x 4; fill always }\n"), ["E0205"]),
    "E0205_zero_interval": (hw_plus("  unit w : vector { lanes 4; op exp { interval 0; latency 4 } }\n"),
                            ["E0205"]),
    "E0205_link_outside_the_array": (
        hw_plus("  link v[1] -> v[2]\n").replace("unit v :", "unit v[2] :"), ["E0205"]),
    "E0206_parent_cycle": (
        "hardware h {\n  clock 1 GHz\n  memory a { bandwidth 1 B/cycle; parent b }\n"
        "  memory b { bandwidth 1 B/cycle; parent a }\n}\n", ["E0206", "E0206"]),
    "E0207_property_given_twice": (HW.replace("lanes 4", "lanes 4; lanes 8"), ["E0207"]),
    "E0207_cycles_and_interval": (
        hw_plus("  unit w : vector { lanes 4; op exp { cycles 4; interval 1 } }\n"), ["E0207"]),
    "E0207_name_declared_twice": (HW.replace("unit v :", "unit m :"), ["E0207"]),
    "E0208_unit_kind": (HW.replace(": vector", ": scalar"), ["E0208"]),
    # ------------------------------------------------------------ static values
    "E0301_unit_array_size_unknown": (HW.replace("unit v :", "unit v[X] :") + "kernel k() -> () on h {\n}\n",
                                      ["E0301"]),
    "E0301_division_by_zero": (HW + "kernel k() -> () on h {\n  dim N = 4 / 0\n}\n", ["E0301"]),
    "E0301_power_too_large": (HW + "kernel k() -> () on h {\n  param P = 10 ** 10 ** 10\n}\n", ["E0301"]),
}

#: Every code the front end emits (grep error("E...") in attnlang/syntax, program, hardware, static).
FRONT_END_CODES = {"E0001", "E0002", "E0003", "E0004", "E0005", "E0006", "E0101", "E0102", "E0104", "E0105",
                   "E0201", "E0202", "E0203", "E0204", "E0205", "E0206", "E0207", "E0208", "E0301"}

JSON_FIELDS = {"file", "line", "column", "end_line", "end_column", "severity", "code", "message"}

_HEADER = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): error\[(?P<code>E\d{4})\]: (?P<msg>.+)$")


def _terminal_names() -> set[str]:
    return {t.name for t in grammar().terminals} | {"$END"}


def assert_in_words(message: str) -> None:
    """No grammar terminal name (LBRACE, RPAR, NAME, $END...) outside quotes."""
    bare = re.sub(r"'[^']*'", "''", message)
    words = set(re.findall(r"\$?[A-Za-z_][A-Za-z0-9_]*", bare))
    leaked = words & _terminal_names()
    assert not leaked, f"grammar terminal names in {message!r}: {leaked}"
    assert "__ANON" not in bare and "$END" not in bare


def run_check(attn_main, *args: str) -> tuple[str, list[dict]]:
    status, out, err = attn_main("check", *args)
    assert status == 1, (status, out, err)
    assert out == ""
    assert "Traceback" not in err
    status, out, err_json = attn_main("check", "--json", *args)
    assert status == 1
    return err, json.loads(out)


def check_rendering(err: str, items: list[dict]) -> None:
    """Each diagnostic: header line, then (when the line is short) source line and caret."""
    headers = [line for line in err.splitlines() if _HEADER.match(line)]
    assert len(headers) == len(items)
    for item, header in zip(items, headers, strict=True):
        assert JSON_FIELDS <= set(item), item
        assert item["severity"] == "error"
        assert all(isinstance(item[k], int) and item[k] >= 1 for k in ("line", "column", "end_line", "end_column"))
        assert (item["end_line"], item["end_column"]) > (item["line"], item["column"]) or \
            item["end_line"] > item["line"], item
        m = _HEADER.match(header)
        assert (m["file"], int(m["line"]), int(m["col"]), m["code"], m["msg"]) == (
            item["file"], item["line"], item["column"], item["code"], item["message"])
        assert_in_words(item["message"])
    lines = err.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s*\d+ \| ", line):  # a source line: a caret line follows
            assert _HEADER.match(lines[i - 1]), lines[i - 1]
            assert re.fullmatch(r"\s*\| *\^~*", lines[i + 1]), lines[i + 1]


@pytest.mark.parametrize("case", sorted(CASES))
def test_front_end_diagnostic(case, tmp_path, monkeypatch, attn_main, golden):
    src, codes = CASES[case]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.attn").write_text(src, encoding="utf-8")
    err, items = run_check(attn_main, "bad.attn")
    assert sorted(i["code"] for i in items) == sorted(codes), items
    assert case.split("_")[0] in codes
    assert all(i["file"] == "bad.attn" for i in items)
    check_rendering(err, items)
    golden(err + "\n--- json ---\n" + json.dumps(items, indent=2))


def test_use_cycle_between_two_files(tmp_path, monkeypatch, attn_main, golden):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.attn").write_text('use "b.attn"\n' + HW)
    (tmp_path / "b.attn").write_text('# b uses a back\nuse "a.attn"\n')
    err, items = run_check(attn_main, "a.attn")
    assert [(i["code"], i["file"], i["line"]) for i in items] == [("E0102", "b.attn", 2, )]
    assert "a.attn -> b.attn -> a.attn" in items[0]["message"]
    check_rendering(err, items)
    golden(err + "\n--- json ---\n" + json.dumps(items, indent=2))


def test_use_of_a_file_in_a_subfolder_resolves_next_to_the_user(tmp_path, monkeypatch, attn_main):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "hw.attn").write_text(HW)
    (tmp_path / "lib" / "k.attn").write_text('use "hw.attn"\nkernel k() -> () on h {\n}\n')
    (tmp_path / "main.attn").write_text('use "lib/k.attn"\nuse "lib/missing.attn"\n')
    monkeypatch.chdir(tmp_path)
    err, items = run_check(attn_main, "main.attn")
    assert [(i["code"], i["line"]) for i in items] == [("E0101", 2)]
    assert "lib/missing.attn" in items[0]["message"]


def test_every_front_end_code_has_a_case():
    covered = {c for _, codes in CASES.values() for c in codes} | {"E0102"}
    assert covered == FRONT_END_CODES


def test_two_bad_kernels_are_both_reported():
    src = HW + "kernel a() -> () on h {\n  x =\n}\n\nkernel b() -> () on h {\n  y = (1 +\n}\n"
    diags = check(load_source(src, "two.attn"))
    assert [(d.code, d.span.line) for d in diags] == [("E0001", 8), ("E0001", 12)]
    assert diags[0].message == "expected an expression after '=', found '}'"
    assert diags[1].message.startswith("expected an expression after '+'")


def test_a_size_times_a_number_is_a_size():
    """`capacity m * 8 MiB` (stdlib/hw/ring.attn: 8 MiB per PE of a ring of m) keeps its unit."""
    from attnlang.hardware import elaborate

    src = HW.replace("{ bandwidth", "{ capacity 3 * 2 KiB / 2; bandwidth") + "kernel a() -> () on h {\n}\n"
    prog = load_source(src, "t.attn")
    assert check(prog) == []
    hw, diags = elaborate(prog.hardware["h"], {})
    assert diags == [] and hw.memories["m"].capacity_bytes == 3 * 1024


def test_a_syntax_error_does_not_hide_a_hardware_error():
    src = HW.replace("lanes 4", "lanes 4; lanes 8") + "kernel a() -> () on h {\n  x = = 1\n}\n"
    codes = sorted(d.code for d in check(load_source(src, "t.attn")))
    assert codes == ["E0001", "E0207"]


def test_close_messages_name_the_block_and_where_it_opened():
    _, diags = parse("kernel k() -> () {\n  for i in 0 .. 4 {\n    x = 1\n  )\n}\n", "t.attn")
    assert "'}' to close the for loop opened at 2:19, found ')'" in diags[0].message
    _, diags = parse("hardware h {\n  memory m {\n    capacity 1 KiB\n", "t.attn")
    assert diags[0].message == "unexpected end of file: expected '}' to close the memory block opened at 2:12"
    _, diags = parse("use hw.edge\n\nkernel k() -> () {\n  if a {\n", "t.attn")
    assert diags[0].message == "unexpected end of file: expected '}' to close the if block opened at 4:8"


@pytest.mark.parametrize("src", [
    "kernel k() -> () {\n  x = \n}", "kernel k( -> () {}", "kernel k() -> () { for i 0 .. 4 {} }",
    "kernel k() -> () { x = load -> sram }", "kernel k() -> () { store x O }", "hardware { }",
    "hardware h { memory { } }", "hardware h { unit u vector { } }", "use", 'use "a', "kernel k() -> () { x[ = 1 }",
    "kernel k() -> () { param P in { } }", "kernel k() -> () { process p on { } }", "kernel k() -> () { x = 1 +",
    "kernel k() -> () { x = f(a b) }", "kernel k() -> () { if { } }", "kernel k() -> () { x = a[1:2:3] }",
    "kernel k() -> () @pipeline {}", "kernel k() -> () { for i in 0 .. 4 @pipeline( { } }",
    "kernel k() -> () { x = 1 } }", "kernel k(Q: f16[N,]) -> () {}", "hardware h { clock 1 GHz GHz }",
])
def test_syntax_errors_are_in_words(src):
    _, diags = parse(src, "t.attn")
    assert diags and all(d.code in ("E0001", "E0002") for d in diags)
    for d in diags:
        assert_in_words(d.message)
        assert d.message.startswith(("expected", "unexpected"))


def test_expected_words_group_statements_expressions_and_operators():
    _, diags = parse("kernel k() -> () {\n  x = sq 1.5\n}", "t.attn")
    assert "an operator" in diags[0].message and "'%'" not in diags[0].message
    _, diags = parse("kernel k() -> () {\n  x = 1\n  ->\n}", "t.attn")
    assert diags[0].message.startswith("expected a statement")
    _, diags = parse("kernel k() -> () {\n  x y\n}", "t.attn")
    assert "an update ('+=', '-=', '*=', '/=')" in diags[0].message


def test_a_long_operator_chain_is_E0003_not_a_crash():
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # the command line raises it; a library user may not
    try:
        _, diags = parse("kernel k() -> () {\n  x = " + "- " * 3000 + "1\n}\n", "t.attn")
        with pytest.raises(SyntaxProblem) as info:
            parse_expression("+".join(["1"] * 3000))
    finally:
        sys.setrecursionlimit(limit)
    assert [d.code for d in diags] == ["E0003"]
    assert "nested too deeply" in diags[0].message
    assert info.value.diagnostic.code == "E0003"


def test_deep_brackets_point_at_the_bracket_past_the_limit():
    _, diags = parse("kernel k() -> () {\n  x = " + "(" * 201 + "1" + ")" * 201 + "\n}\n", "t.attn")
    (d,) = diags
    # The kernel's "{" is the first bracket, so the 200th "(" is the 201st.
    assert (d.code, d.span.line, d.span.column, d.span.end_column) == ("E0003", 2, 6 + 200, 207)


def test_form_feeds_do_not_shift_the_source_line_shown():
    src = "# a comment\x0c with a form feed\nkernel k() -> () {\n  x = $\n}\n"
    prog = load_source(src, "ff.attn")
    text = render_all(check(prog), prog.sources)
    assert text.splitlines()[1].endswith("|   x = $")


def test_every_front_end_code_is_documented(repo_root):
    text = (repo_root / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    missing = [code for code in sorted(FRONT_END_CODES) if f"| {code} |" not in text]
    assert not missing


def test_the_language_reference_names_every_keyword_and_builtin(repo_root):
    from attnlang.syntax import vocab

    text = (repo_root / "docs" / "language.md").read_text(encoding="utf-8")
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    missing = [w for w in (*vocab.KEYWORDS, *vocab.BUILTINS, *vocab.DTYPES, *vocab.ANNOTATIONS, *vocab.UNIT_KINDS,
                           *vocab.CONSTANTS) if w not in words]
    assert not missing
