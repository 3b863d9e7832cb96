"""The JIT engine: identical cycles, energy and counters to the interpreter; outputs within tolerance;
interpreter fallback that says why; run-time errors as diagnostics; the compiled-code caches."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnlang.api import run
from attnlang.cli import main
from attnlang.diagnostics import AttnError, UsageError
from attnlang.jit import cache

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Compiled code goes to a cache of this test session, not the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


def same_costs(a, b) -> None:
    """Everything the interpreter counts, bit for bit."""
    ja, jb = a.to_json(), b.to_json()
    for key in ("cycles", "seconds", "energy_pj", "units", "memories", "counters"):
        assert ja[key] == jb[key], key
    assert list(ja["energy_breakdown_pj"].items()) == list(jb["energy_breakdown_pj"].items())
    assert set(a.outputs) == set(b.outputs)
    for name in a.outputs:
        np.testing.assert_allclose(b.outputs[name], a.outputs[name], rtol=2e-3, atol=2e-3)
    assert [v.ok for v in a.verify.values()] == [v.ok for v in b.verify.values()]


def both(source, **kw):
    return run(source, engine="interp", **kw), run(source, engine="jit", **kw)


# ---------------------------------------------------------------- every example
COMPILED = {
    "flash.attn": {"N": 256},
    "flash_causal.attn": {"N": 256, "B": 32},
    "naive.attn": {"N": 128},
    "flat.attn": {"N": 256},
    "flat_mha.attn": {},
    "mha.attn": {"N": 128, "Br": 32, "Bc": 64},
    "mas_attention.attn": {"N": 256},
    "mmee.attn": {"N": 256, "Br": 32, "Bc": 64, "Bv": 32, "order": "kv_outer", "kv_at": "outer", "v_at": "sub",
                  "s_at": "tile"},
}


@pytest.mark.parametrize("example", sorted(COMPILED))
def test_every_single_process_example_compiles_and_costs_the_same(example):
    a, b = both(str(EXAMPLES / example), defines=COMPILED[example])
    assert b.engine == "jit" and b.fallback is None
    assert b.jit["compile_seconds"] >= 0
    same_costs(a, b)
    assert b.ok


SLOW = pytest.mark.slow
RING_SIZES = [pytest.param("symmetric", 8, 4), pytest.param("symmetric", 6, 3),
              pytest.param("full", 12, 4), pytest.param("causal", 8, 2),
              *(pytest.param("symmetric", n, m, marks=SLOW) for n, m in [(16, 8), (4, 2), (3, 1), (5, 5)]),
              pytest.param("full", 16, 8, marks=SLOW), pytest.param("causal", 16, 8, marks=SLOW)]


@pytest.mark.parametrize("scheme,n,m", RING_SIZES)
def test_ring_compiles_every_scheme_and_costs_the_same(scheme, n, m):
    """The ring kernel under the JIT, natively: symmetric's slot program binds names of other shapes in
    the arms of `if`s on the slot (bound on some paths only: dropped where the interpreter drops them),
    its slices move with (p - t + m) % m (an extent the lowering proves constant), and its PEs take two
    branches on p (p < m // 2), two groups of instances that share a function each. Cycles, energy,
    every counter and channel statistic are the interpreter's (m even and odd, B = 1 and odd B)."""
    a, b = both(str(EXAMPLES / "ring_attention.attn"), defines={"n": n, "m": m, "d": 4, "scheme": scheme})
    assert b.engine == "jit" and b.fallback is None
    same_costs(a, b)
    assert b.channels == a.channels
    assert b.ok


def test_ring_symmetric_over_the_code_budget_runs_in_the_interpreter_and_says_so():
    """symmetric with B = n / m = 3 rows a block and m = 4: the rows of its triangle are lowered once per row
    (docs/jit.md), and the kernel would pass the JIT's code budget (60,000 LLVM instructions): the
    interpreter runs it, with the interpreter's costs, and the report says how large it would have been."""
    a, b = both(str(EXAMPLES / "ring_attention.attn"), defines={"n": 12, "m": 4, "d": 4, "scheme": "symmetric"})
    assert b.engine == "interp"
    assert re.search(r"would be [\d,]+ LLVM instructions, over the JIT's budget of 60,000", b.fallback), b.fallback
    same_costs(a, b)
    assert b.ok


@pytest.mark.parametrize("n,m", [(16, 4), (8, 2), (12, 4)])
def test_ring_causal_compiles_its_row_loops_and_costs_the_same(n, m):
    """The causal scheme's triangle is a loop over rows whose slices grow with the row (t[r, 0 : r + 1]):
    the JIT lowers such a loop once per row, and the run costs what the interpreter's does."""
    a, b = both(str(EXAMPLES / "ring_attention.attn"), defines={"n": n, "m": m, "scheme": "causal"})
    assert b.engine == "jit" and b.fallback is None
    same_costs(a, b)
    assert b.channels == a.channels
    assert b.ok


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_tiles=st.integers(1, 4), br=st.sampled_from([16, 32, 64]), bc=st.sampled_from([16, 32, 64]),
       causal=st.booleans())
def test_random_tilings_cost_the_same(n_tiles, br, bc, causal):
    n = max(br, bc) * n_tiles
    if causal:
        a, b = both(str(EXAMPLES / "flash_causal.attn"), defines={"N": n, "B": br})
    else:
        a, b = both(str(EXAMPLES / "flash.attn"), defines={"N": n, "Br": br, "Bc": bc})
    assert b.fallback is None
    same_costs(a, b)


# ---------------------------------------------------------------- constructs, by small programs
HW = """
hardware box {
  clock 1 GHz
  memory dram { bandwidth 16 B/cycle; read 10 pJ/B; write 12 pJ/B; latency 20 cycles }
  memory sram { capacity CAP; bandwidth 64 B/cycle; read 1 pJ/B; write 1.5 pJ/B; parent dram; policy POLICY }
  unit pe[2] : matrix { size 8 x 8; memory sram; mac 0.5 pJ }
  unit vec[2] : vector { lanes 8; memory sram
    op add, sub, mul, div, max, min, cmp, select, mask, neg { cycles 1; energy 0.2 pJ }
    op exp, log, sqrt, abs { cycles 4; energy 1 pJ } }
}
"""


def program(body: str, cap: str = "64 KiB", policy: str = "strict", sig: str | None = None) -> str:
    sig = sig or "(X: f16[32, 16], Y: f32[16, 32]) -> (O: f32[32, 32])"
    return HW.replace("CAP", cap).replace("POLICY", policy) + f"kernel k{sig} on box {{\n{body}\n}}\n"


CONSTRUCTS = {
    "runtime-if-and-partial-assign": """
  yy = load Y -> sram
  acc = zeros([32, 32])
  for i in 0 .. 32 by 8 @pipeline(3) {
    x = load X[i : i+8, :] -> sram
    if i % 16 == 0 { t = x * 2.0 } else { t = -x }
    acc[i : i+8, :] = t @ yy
  }
  store acc -> O
""",
    "parallel-lanes-and-views": """
  y = load Y -> sram
  for i in 0 .. 32 by 8 @parallel(pe) {
    x = load X[i : i+8, :] -> sram
    s = x @ y
    r = where(s > 0.0, s, s * 0.1) - rowmax(s)[:, None]
    store softmax(causal(r, i, 0)) -> O[i : i+8, :]
  }
""",
    "aliases-discard-and-reading-an-output-back": """
  y = load Y -> sram
  for i in 0 .. 32 by 16 @pipeline(2) {
    x = load X[i : i+16, :] -> sram
    z = x
    discard x
    m = max(z @ y, 0.5)
    store sqrt(abs(m)) + min(m, 2.0) / 3.0 -> O[i : i+16, :]
  }
  back = load O[0 : 8, :] -> sram
  store exp(back.T[0 : 8, :] - sum(back) / 64.0) + mean(back) -> O[0 : 8, 0 : 8]
""",
    # an f16 accumulator that the first product makes f32 (f32 @ f16 is f32), as in the FLAT study's
    # kernels: the first iteration is compiled on its own, then the loop from the second
    "an-accumulator-promoted-by-its-first-iteration": """
  acc = zeros([32, 32], f16)
  for i in 0 .. 16 by 4 @pipeline(2) {
    x = load X[:, i : i+4] -> sram
    y = load Y[i : i+4, :] -> sram
    acc = acc + (x * 1.0) @ y
  }
  store acc -> O
""",
    "a-one-iteration-loop-that-promotes": """
  acc = zeros([32, 32], f16)
  for i in 0 .. 16 by 16 {
    x = load X[:, i : i+16] -> sram
    y = load Y[i : i+16, :] -> sram
    acc = acc + x @ y
  }
  store acc -> O
""",
}


@pytest.mark.parametrize("name", sorted(CONSTRUCTS))
def test_constructs_cost_the_same(name):
    a, b = both(program(CONSTRUCTS[name]), check=False)
    assert b.fallback is None, b.fallback
    same_costs(a, b)


@SLOW
@pytest.mark.parametrize("kernel", ["flat_ws", "flat_ws_spill", "flat_scores_offchip", "flat_os"])
def test_the_flat_study_kernels_compile_and_cost_the_same(kernel):
    """The FLAT study's kernels at their defaults (G = 2, N = 256): an accumulator promoted by the first
    iteration (peeled), '/' of loop indices (whole); 2-15 s of LLVM each."""
    src = str(Path(__file__).resolve().parents[2] / "attnlang" / "studies" / "flat.attn")
    a, b = both(src, kernel=kernel)
    assert b.engine == "jit" and b.fallback is None, b.fallback
    same_costs(a, b)


def test_a_spilling_memory_falls_back_and_says_which_line():
    body = """
  for i in 0 .. 32 by 16 {
    x = load X[i : i+16, :] -> sram
    e = exp(x)
    f = exp(e)
    store e + f -> O[i : i+16, 0 : 16]
  }
"""
    src = program(body, cap="1536 B", policy="spill")
    a, b = both(src, check=False)
    assert a.counters["spill_bytes"] > 0
    assert b.engine == "interp" and "policy spill" in b.fallback and "line " in b.fallback
    same_costs(a, b)


def test_a_whole_division_of_loop_indices_compiles_and_a_fraction_falls_back():
    """`j / 8 * 4` is whole at every j here: compiled, the same costs; `(j + 4) / 8` is a fraction at
    j = 0 (0.5 >= 1 is false, as in the interpreter, whose arithmetic keeps it a float): the run goes to
    the interpreter, which says the same."""
    whole = """
  acc = zeros([8, 32])
  for j in 0 .. 32 by 8 {
    x = load X[j / 8 * 4 : j / 8 * 4 + 8, :] -> sram
    y = load Y -> sram
    acc = acc + x @ y
  }
  store acc -> O[0 : 8, :]
"""
    a, b = both(program(whole), check=False)
    assert b.engine == "jit" and b.fallback is None
    same_costs(a, b)
    fraction = """
  acc = zeros([8, 32])
  for j in 0 .. 32 by 8 {
    x = load X[j : j + 8, :] -> sram
    y = load Y -> sram
    if (j + 4) / 8 >= 1 { acc = acc + x @ y }
  }
  store acc -> O[0 : 8, :]
"""
    src = program(fraction)
    line = next(n for n, text in enumerate(src.splitlines(), 1) if "(j + 4) / 8" in text)
    a, b = both(src, check=False)
    assert b.engine == "interp" and f"line {line}: a '/' of loop indices is not whole" in b.fallback
    same_costs(a, b)


def test_a_division_of_loop_indices_by_zero_is_the_same_diagnostic():
    body = """
  for j in 0 .. 32 by 8 {
    x = load X[j / (j - 8) : j / (j - 8) + 8, :] -> sram
    store x @ x.T -> O[0 : 8, 0 : 8]
  }
"""
    interp, jit = errors(program(body))
    assert interp == jit and interp[0][0] == "E0301" and "division by zero" in interp[0][1]


def errors(source, **kw):
    out = []
    for engine in ("interp", "jit"):
        with pytest.raises(AttnError) as info:
            run(source, engine=engine, check=False, **kw)
        out.append([(d.code, d.message, d.span) for d in info.value.diagnostics])
    return out


def test_a_strict_overflow_is_the_same_diagnostic():
    body = """
  for i in 0 .. 32 by 32 {
    x = load X[i : i+32, :] -> sram
    store exp(x) -> O[i : i+32, 0 : 16]
  }
"""
    interp, jit = errors(program(body, cap="1 KiB"))
    assert interp == jit and interp[0][0] == "E1001"


def test_an_index_out_of_range_at_run_time_is_the_same_diagnostic():
    body = """
  for i in 0 .. 40 by 8 {
    x = load X[i : i+8, :] -> sram
    store x @ x.T -> O[0 : 8, 0 : 8]
  }
"""
    interp, jit = errors(program(body))
    assert interp == jit
    assert interp[0][0] == "E1005" and "slice 32:40" in interp[0][1]


def test_max_cycles_stops_at_the_same_operation():
    interp, jit = errors(str(EXAMPLES / "flash.attn"), defines={"N": 256}, max_cycles=5000)
    assert interp == jit and interp[0][0] == "E1003"


# ---------------------------------------------------------------- caches
@pytest.mark.parametrize("loader", ["native", "llvm"])
def test_compiled_code_is_reused_from_memory_then_from_disk_and_a_corrupt_entry_is_rebuilt(tmp_path, monkeypatch,
                                                                                           loader):
    """loader: "native" loads a kernel without LLVM where that is possible (x86-64 Linux); "llvm" is every
    other host, where LLVM's own entries (an object and its description) are written and loaded."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if loader == "llvm":
        monkeypatch.setattr(cache, "host", lambda: None)
    cache.forget_memory_cache()  # another test in this process may have compiled the same kernel
    src = str(EXAMPLES / "flash.attn")
    first = run(src, defines={"N": 128, "Br": 32, "Bc": 32}, engine="jit")
    assert first.jit["cached"] is None
    again = run(src, defines={"N": 128, "Br": 32, "Bc": 32}, engine="jit")
    assert again.jit["cached"] == "memory"
    cache.forget_memory_cache()
    disk = run(src, defines={"N": 128, "Br": 32, "Bc": 32}, engine="jit")
    assert disk.jit["cached"] == "disk"
    same_costs(first, disk)
    folder = tmp_path / "attnlang" / "jit"
    # one object on disk: in the entry loaded without LLVM (x86-64 Linux), else in LLVM's own entries
    objects = list(folder.glob("*.o")) + list(folder.glob("*.kernel"))
    assert [p.suffix for p in objects] == ([".kernel"] if cache.host() is not None else [".o"])
    for entry in objects:
        entry.write_bytes(b"not an object file")
    cache.forget_memory_cache()
    rebuilt = run(src, defines={"N": 128, "Br": 32, "Bc": 32}, engine="jit")
    assert rebuilt.jit["cached"] is None
    same_costs(first, rebuilt)
    for entry in list(folder.glob("*.json")) + list(folder.glob("*.kernel")):
        entry.write_text("{not json")
    cache.forget_memory_cache()
    assert run(src, defines={"N": 128, "Br": 32, "Bc": 32}, engine="jit").jit["cached"] is None
    # other defines are another entry
    other = run(src, defines={"N": 128, "Br": 16, "Bc": 32}, engine="jit")
    assert other.jit["cached"] is None and other.cycles != first.cycles


# ---------------------------------------------------------------- the command line
def test_cli_engine_jit_reports_compile_time(capsys):
    assert main(["run", str(EXAMPLES / "flash.attn"), "-D", "N=128", "--engine", "jit", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["engine"] == "jit"
    assert out["jit"]["compile_seconds"] >= 0 and out["jit"]["run_seconds"] >= 0
    assert main(["run", str(EXAMPLES / "flash.attn"), "-D", "N=128", "--engine", "jit"]) == 0
    assert "engine     jit (" in capsys.readouterr().out


def test_cli_trace_with_the_jit_runs_in_the_interpreter(tmp_path, capsys):
    trace = tmp_path / "t.json"
    assert main(["run", str(EXAMPLES / "flash.attn"), "-D", "N=64", "--engine", "jit", "--trace", str(trace)]) == 0
    assert "--trace runs in the interpreter" in capsys.readouterr().out
    assert json.loads(trace.read_text())


# ---------------------------------------------------------------- mutations
_TOKEN = re.compile(r"\d+|[A-Za-z_]\w*|->|\.\.|[-+*/@\[\]():,{}=<>]")
REPLACEMENTS = ["0", "1", "3", "16", "17", "64", "N", "d", "i", "j", "q", "k", "s", "acc", "sram", "dram", "+", "-",
                "*", "/", "@", ":", "(", ")", "None", "-inf", ".T", "exp", "rowmax", "zeros([4])", "discard", "i+1",
                "@pipeline(3)", "@parallel(pe)", "if j == 0 { q = q }", "j % 32"]
MUTATED = ["flash.attn", "flash_causal.attn", "naive.attn", "flat.attn", "mas_attention.attn"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(MUTATED), data=st.data())
def test_mutated_programs_either_fail_with_a_diagnostic_or_cost_the_same(name, data):
    """Random mutations of valid programs: the JIT never raises a Python exception (or crashes), and where a
    mutant runs, it costs exactly what the interpreter says."""
    src = (EXAMPLES / name).read_text()
    tokens = list(_TOKEN.finditer(src))
    m = tokens[data.draw(st.integers(0, len(tokens) - 1), label="token")]
    new = data.draw(st.sampled_from(REPLACEMENTS), label="replacement")
    mutated = src[:m.start()] + new + src[m.end():]
    defines = {k: v for k, v in {"N": 128, "d": 16}.items() if re.search(rf"\b{k}\b", mutated)}
    try:
        b = run(mutated, defines=defines, timeout=20, engine="jit")
    except (AttnError, UsageError) as exc:
        with pytest.raises((AttnError, UsageError)) as info:
            run(mutated, defines=defines, timeout=20, engine="interp")
        assert type(info.value) is type(exc)
        return
    a = run(mutated, defines=defines, timeout=20, engine="interp")
    same_costs(a, b)
