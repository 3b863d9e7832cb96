"""The checker's rules: one small wrong program per diagnostic code, with its
rendering as `attn check` prints it (tests/golden/check/), and every program
that ships checks clean.

A program's file name starts with the code it is written to produce
(tests/check/programs/E0402_matmul_inner.attn must report E0402).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from attnlang.check import check
from attnlang.diagnostics import render_all, to_json
from attnlang.program import load, load_source

PROGRAMS = sorted((Path(__file__).parent / "programs").glob("*.attn"))
DOC = Path(__file__).resolve().parents[2] / "docs"


def _check(path: Path):
    prog = load_source(path.read_text(encoding="utf-8"), path.name)
    return prog, check(prog)


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_wrong_program(path, golden):
    prog, diags = _check(path)
    code = path.stem.split("_")[0]
    assert code in {d.code for d in diags}, render_all(diags, prog.sources)
    golden(render_all(diags, prog.sources))
    # The JSON form carries the same diagnostics.
    assert [d["code"] for d in json.loads(to_json(diags))] == [d.code for d in sorted(
        diags, key=lambda d: (d.span.file, d.span.line, d.span.column, d.code))]


def test_ships_clean(attn_file):
    prog = load(str(attn_file))
    diags = check(prog)
    assert not diags, render_all(diags, prog.sources)


def test_every_code_has_a_program_and_a_doc():
    source = "\n".join(p.read_text() for p in (Path(__file__).resolve().parents[2] / "attnlang" / "check").glob("*.py"))
    codes = set(re.findall(r'"(E0[3-9]\d\d)"', source)) - {"E0301"}
    covered = {p.stem.split("_")[0] for p in PROGRAMS}
    assert codes <= covered, f"codes with no wrong program: {sorted(codes - covered)}"
    docs = "\n".join(p.read_text() for p in DOC.glob("diagnostics*.md"))
    documented = set(re.findall(r"E0[3-9]\d\d", docs))
    assert codes <= documented, f"codes not documented: {sorted(codes - documented)}"


def test_one_mistake_one_diagnostic():
    """A broken operand poisons what is built from it instead of cascading."""
    prog = load_source("""use hw.edge
kernel k(Q: f16[N, d], K: f16[N, d]) -> (O: f16[N, d]) on edge {
  dim N = 256, d = 64
  for i in 0 .. N by 64 {
    q = load Q[i : i+64, :] -> sram
    k = load K[i : i+32, :] -> sram
    s = q @ k
    p = exp(s - rowmax(s)[:, None]) @ k
    store p + q -> O[i : i+64, :]
  }
}
""", "poison.attn")
    assert [d.code for d in check(prog)] == ["E0402"]


def test_params_choose_the_branch():
    """A branch the params rule out is not checked against them; -D picks the other."""
    src = """use hw.edge
kernel k(Q: f16[N, d]) -> (O: f16[N, d]) on edge {
  dim N = 256, d = 64
  param order in {rows, cols} = rows
  if order == rows {
    q = load Q -> sram
  }
  if order == rows {
    store q -> O
  } else {
    store zeros([300, d]) -> O[0 : 300, :]
  }
}
"""
    prog = load_source(src, "branch.attn")
    assert check(prog) == []
    assert [d.code for d in check(prog, {"order": "cols"})] == ["E0601"]


def test_a_param_settles_and_and_or_whatever_the_loop_index():
    """`hold == yes and g + 1 < G` is false for hold = no whatever g is: its branch is not checked, so
    a name the params leave unbound there is no error (an earlier fault reported E0312)."""
    src = """use hw.edge
kernel k(K: f16[G, N, d]) -> (O: f16[G, N, d]) on edge {
  dim G = 3, N = 64, d = 32
  param hold in {yes, no} = yes
  if hold == yes { kn = load K[0, :, :] -> sram }
  for g in 0 .. G {
    if hold == yes { kb = kn } else { kb = load K[g, :, :] -> sram }
    for j in 0 .. 2 @pipeline(2) {
      if hold == yes and g + 1 < G {
        if j == 0 { kn = load K[g + 1, :, :] -> sram }
      }
    }
    store kb -> O[g, :, :]
    if hold == yes and g + 1 < G { kb = kn }
    if hold == no or g < 0 { kb = kb * 2 }
  }
}
"""
    prog = load_source(src, "settle.attn")
    for hold in ("yes", "no"):
        assert [d for d in check(prog, {"hold": hold}) if d.severity == "error"] == [], hold
    # Where neither side settles it, the branch may run and is still checked.
    bad = src.replace("if hold == yes and g + 1 < G { kb = kn }", "if hold == no and g + 1 < G { kb = kn }")
    assert "E0312" in {d.code for d in check(load_source(bad, "settle.attn"), {"hold": "no"})}


def test_channel_of_an_untaken_branch_is_not_unused():
    """A channel only another param value uses is not 'never used' (E0901) at these params."""
    src = """use hw.stream
kernel k(Q: f32[N, d]) -> (O: f32[N, d]) on stream {
  dim N = 64, d = 16
  param route in {direct, fifo} = direct
  channel c : f32 { depth 4 }
  channel idle : f32 { depth 4 }
  if route == fifo {
    process source on node[0] {
      send c, zeros([N, d])
    }
    process sink on node[1] {
      x = recv c
      store x -> O
    }
  } else {
    store zeros([N, d]) -> O
  }
}
"""
    prog = load_source(src, "route.attn")
    for route in ("direct", "fifo"):
        diags = check(prog, {"route": route})
        assert [(d.code, d.message) for d in diags] == [("E0901", "channel idle is never used")], route


def test_cli_json(attn_main, tmp_path):
    path = PROGRAMS[0].parent / "E0402_matmul_inner.attn"
    status, out, _ = attn_main("check", path, "--json")
    assert status == 1
    assert [d["code"] for d in json.loads(out)] == ["E0402"]


def test_large_iteration_spaces_are_decided():
    """Millions of iterations: bounds that grow with the indices are settled at the first and last
    iterations, and @parallel iterations that index their own part of an output are told apart."""
    root = Path(__file__).resolve().parents[2] / "examples"
    for name, defines in (("flash_causal.attn", {"N": 65536, "B": 16}), ("mha.attn", {"N": 65536, "Br": 16, "Bc": 16})):
        prog = load(str(root / name))
        diags = check(prog, defines)
        assert not diags, render_all(diags, prog.sources)


_PIPELINED_READBACK = """
use hw.edge
kernel k(Q: f16[N, d]) -> (O: f16[N, d], S: f16[N, N])
  on edge
  spec O = Q
  spec S = Q[:, 0:1] @ Q[:, 0:1].T
{{
  dim N = 128, d = 32
  for i in 32 .. N by 32 {{
    for c in 0 .. 2 {{
      for j in 0 .. 64 by 32 @pipeline(2) {{
        a = load S[{read}] -> sram
        q = load Q[i : i+32, :] -> sram
        store q @ q.T -> S[i : i+32, c*64 + j : c*64 + j + 32]
        discard a
      }}
    }}
    o = load Q[i : i+32, :] -> sram
    store o -> O[i : i+32, :]
  }}
  o = load Q[0 : 32, :] -> sram
  store o -> O[0 : 32, :]
}}
"""


def test_a_pipelined_read_back_of_other_rows_is_no_dependence():
    # The store's region depends on the outer loop c, the load's does not: the checker must still
    # compare the same outer iterations (an earlier fault numbered them apart and reported E0705).
    ok = check(load_source(_PIPELINED_READBACK.format(read="i-32 : i, 0 : 64"), "readback.attn"))
    assert not [d for d in ok if d.severity == "error"], ok
    bad = check(load_source(_PIPELINED_READBACK.format(read="i : i+32, 0 : 32"), "readback.attn"))
    assert [d for d in bad if d.code == "E0705"], bad


def test_a_misspelt_standard_library_module_and_hardware_get_a_did_you_mean():
    from attnlang.api import check_program

    diags = check_program("use hw.egde\n")
    assert [d.message for d in diags] == ["no standard library module 'hw.egde'; did you mean 'hw.edge'?"]
    diags = check_program("use hw.edge\nkernel k() -> () on egde {\n}\n")
    assert "unknown hardware 'egde'; did you mean 'edge'? (in scope: edge)" in [d.message for d in diags]
