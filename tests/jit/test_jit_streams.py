"""The JIT on processes and channels: the same report as the interpreter — cycles, energy, units,
memories, counters, channel statistics, warnings — outputs within tolerance, the same deadlock
diagnostic, and a fallback that says why for what it does not compile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attnlang.api import run
from attnlang.diagnostics import AttnError

ROOT = Path(__file__).resolve().parents[2]
O1 = str(ROOT / "examples/stream_sdpa.attn")
NAIVE = str(ROOT / "examples/stream_sdpa_naive.attn")


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


def same_report(source, **kw):
    """Run both engines; everything they report must agree (outputs within 1e-3). Returns the JIT's."""
    a = run(source, engine="interp", check=False, **kw)
    b = run(source, engine="jit", check=False, **kw)
    assert b.engine == "jit" and b.fallback is None, b.fallback
    ja, jb = a.to_json(), b.to_json()
    for key in ("cycles", "seconds", "energy_pj", "units", "memories", "counters", "channels"):
        assert ja[key] == jb[key], key
    assert [v["ok"] for v in ja["verify"].values()] == [v["ok"] for v in jb["verify"].values()]
    assert list(ja["energy_breakdown_pj"].items()) == list(jb["energy_breakdown_pj"].items())
    assert [w.to_json() for w in a.warnings] == [w.to_json() for w in b.warnings]
    for name in a.outputs:
        np.testing.assert_allclose(b.outputs[name], a.outputs[name], rtol=1e-3, atol=1e-3)
    return b


@pytest.mark.parametrize("source,defines", [
    (O1, {"N": 32, "d": 8, "latency": 2}),
    (NAIVE, {"N": 16}),
    (NAIVE, {"N": 32, "depth": 33, "latency": 1}),
])
def test_streaming_sdpa_compiles_and_reports_the_same(source, defines):
    b = same_report(source, defines=defines)
    assert b.channels and all(c["sent"] > 0 for c in b.channels.values())


@pytest.mark.slow
@pytest.mark.parametrize("source,defines", [
    (O1, {"N": 16}), (O1, {"N": 64, "latency": 3}), (O1, {"N": 128}),
    (NAIVE, {"N": 64, "latency": 2, "depth": 65}), (NAIVE, {"N": 128}),
])
def test_streaming_sdpa_reports_the_same_at_larger_sizes(source, defines):
    same_report(source, defines=defines)


def test_a_deadlock_is_the_interpreters_diagnostic():
    def diagnostic(engine):
        with pytest.raises(AttnError) as exc:
            run(NAIVE, defines={"N": 16, "depth": 15}, engine=engine, check=False)
        return [d.to_json() for d in exc.value.diagnostics]

    want = diagnostic("interp")
    assert want[0]["code"] == "E1032" and "bypass1" in want[0]["message"]
    assert diagnostic("jit") == want


SMALL = """
hardware h {
  clock 1 GHz
  memory dram { bandwidth 64 B/cycle }
  memory regs { capacity 64 KiB; bandwidth 64 B/cycle; parent dram }
  unit u[2] : vector { lanes 1; memory regs; op add { cycles 10 }; op mul { cycles 1 } }
}
kernel k(X: f32[n]) -> (Y: f32[n]) on h {
  dim n = 4
  channel c : f32 { depth 1; latency 2; response 3 }
  channel left : f32 { depth 8 }
  process p on u[0] {
    for i in 0 .. n {
      x = load X[i : i+1] -> regs
      send c, x * 1
      send left, 2
    }
  }
  process q on u[1] {
    acc = zeros([1])
    for i in 0 .. n {
      y = recv c
      acc = acc + y
    }
    z = recv left
    store acc * z -> Y[0 : 1]
  }
}
"""


def test_a_full_channel_waits_for_the_freed_slot_plus_response_and_an_undrained_one_warns(tmp_path):
    path = tmp_path / "small.attn"
    path.write_text(SMALL)
    b = same_report(str(path), inputs={"X": np.ones(4, np.float32)})
    assert b.outputs["Y"][0] == 8
    assert b.channels["c"]["blocked_send_cycles"] > 0
    assert [w.code for w in b.warnings] == ["W1002"]


PORT_TURNS = ROOT / "tests" / "streams" / "port_turns.attn"


def test_processes_take_the_port_in_turn_as_in_the_interpreter():
    same_report(str(PORT_TURNS))


THREE_UNITS = """
hardware h {
  clock 1 GHz
  memory dram { bandwidth 64 B/cycle }
  unit u[3] : vector { lanes 4; op add { cycles 1 } }
}
"""

TWO_SENDERS = THREE_UNITS + """kernel k(X: f32[n]) -> (Y: f32[n]) on h {
  dim n = 4
  channel c : f32 { depth 2 }
  process a on u[0] { send c, 1 }
  process b on u[1] { send c, 2 }
  process r on u[2] {
    x = recv c
    y = recv c
    store zeros([n]) + x + y -> Y
  }
}
"""


def test_a_channel_with_two_senders_falls_back_and_says_so(tmp_path):
    path = tmp_path / "two_senders.attn"
    path.write_text(TWO_SENDERS)
    a = run(str(path), engine="interp", check=False)
    b = run(str(path), engine="jit", check=False)
    assert b.engine == "interp" and "more than one sending process" in b.fallback
    assert b.to_json()["channels"] == a.to_json()["channels"]


def process_functions(monkeypatch) -> list:
    """Collects, per compile, how many process functions the lowered IR defines."""
    import attnlang.jit.lower as jit  # compile_kernel imports lower_kernel from here when it compiles

    counts, lower = [], jit.lower_kernel

    def counting(*args, **kw):
        text, meta = lower(*args, **kw)
        counts.append(sum(line.startswith("define") and "@\"process." in line for line in text.splitlines()))
        return text, meta

    monkeypatch.setattr(jit, "lower_kernel", counting)
    return counts


def test_the_instances_of_a_process_array_share_one_function(monkeypatch):
    counts = process_functions(monkeypatch)
    same_report(str(ROOT / "examples/ring_attention.attn"), defines={"n": 16, "m": 8, "scheme": "full"})
    assert counts == [1]


BY_INSTANCE = THREE_UNITS + """kernel k(X: f32[n]) -> (Y: f32[n]) on h {
  dim n = 4
  channel c[3] : f32 { depth 1; latency 2 }
  process pe[p in 0 .. 3] on u[p] {
    x = load X -> dram
    if p == 1 {
      x = x + x
    }
    send c[(p + 1) % 3], x
    y = recv c[p]
    if p == 0 {
      store y + x -> Y
    }
  }
}
"""


def test_instances_that_differ_in_more_than_constants_keep_their_own_functions(tmp_path, monkeypatch):
    counts = process_functions(monkeypatch)
    path = tmp_path / "by_instance.attn"
    path.write_text(BY_INSTANCE)
    same_report(str(path), inputs={"X": np.ones(4, np.float32)})
    assert counts == [3]


TWO_GROUPS = THREE_UNITS.replace("u[3]", "u[4]") + """kernel k(X: f32[n]) -> (Y: f32[n]) on h {
  dim n = 4
  channel c[4] : f32 { depth 1; latency 2 }
  process pe[p in 0 .. 4] on u[p] {
    x = load X -> dram
    send c[(p + 1) % 4], x
    y = recv c[p]
    if p < 2 {
      y = y + x
    }
    send c[(p + 1) % 4], y
    z = recv c[p]
    if p == 0 {
      store z + y -> Y
    }
  }
}
"""


def test_instances_share_a_function_per_group_and_a_failed_match_leaves_each_function_as_lowered(
        tmp_path, monkeypatch):
    """pe[0] and pe[1] take the branch, pe[2] and pe[3] do not, pe[0] alone stores: three groups, one
    function each. Matching pe[2] against pe[0] rewrites pe[2]'s constants (its frame's slots) before the
    branch tells them apart; they are put back, or pe[2] would run on pe[0]'s frame (the deadlock the ring
    kernel's symmetric scheme met)."""
    counts = process_functions(monkeypatch)
    path = tmp_path / "two_groups.attn"
    path.write_text(TWO_GROUPS)
    b = same_report(str(path), inputs={"X": np.arange(4, dtype=np.float32)})
    assert counts == [3]
    np.testing.assert_allclose(b.outputs["Y"], 3 * np.arange(4))  # 2x on pe[0], x from pe[3]
