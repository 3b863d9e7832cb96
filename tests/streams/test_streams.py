"""Processes and channels (docs/language.md): the streaming SDPA study."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attnlang.api import run
from attnlang.diagnostics import AttnError

NAIVE = "examples/stream_sdpa_naive.attn"
O1 = "examples/stream_sdpa.attn"


def reference(q, k, v):
    s = q.astype(np.float64) @ k.astype(np.float64).T / np.sqrt(q.shape[1])
    p = np.exp(s - s.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)) @ v


@pytest.fixture(autouse=True)
def _repo(monkeypatch, request):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[2])


@pytest.mark.parametrize("path", [NAIVE, O1])
def test_streaming_examples_compute_attention(path):
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((32, 16)).astype(np.float32) for _ in range(3))
    r = run(path, inputs={"Q": q, "K": k, "V": v})
    np.testing.assert_allclose(r.outputs["O"], reference(q, k, v), rtol=1e-4, atol=1e-5)
    assert r.verify["O"].ok


def test_naive_graph_deadlocks_below_n_and_names_the_bypass():
    with pytest.raises(AttnError) as exc:
        run(NAIVE, defines={"N": 32, "depth": 31}, check=False)
    text = " ".join(d.message for d in exc.value.diagnostics)
    assert "deadlock" in text and "bypass1" in text
    assert "full (31 of depth 31)" in text


def test_naive_graph_completes_at_n_plus_latency():
    r = run(NAIVE, defines={"N": 32, "depth": 33, "latency": 1}, check=False)
    assert r.verify["O"].ok


def _cycles_bound(n: int) -> float:
    # Full throughput: one score per cycle, plus a pipeline fill that depends on d and
    # the channel latency but not on N.
    return 1.1 * n * n + 40 * 16


@pytest.mark.parametrize("path", [NAIVE, O1])
def test_full_throughput_at_128(path):
    r = run(path, defines={"N": 128}, check=False)
    assert r.cycles <= _cycles_bound(128)


@pytest.mark.slow
@pytest.mark.parametrize("n", [256, 512])
@pytest.mark.parametrize("path", [NAIVE, O1])
def test_full_throughput_large(path, n):
    r = run(path, defines={"N": n}, check=False)
    assert r.cycles <= _cycles_bound(n)


def test_fifo_memory_is_constant_for_the_reordered_graph_and_linear_for_the_naive():
    o1 = [max(c["max_occupancy"] for c in run(O1, defines={"N": n}, check=False).channels.values())
          for n in (16, 32, 64)]
    naive = [run(NAIVE, defines={"N": n}, check=False).channels["bypass1"]["max_occupancy"] for n in (16, 32, 64)]
    assert o1[0] == o1[1] == o1[2] <= 16
    assert naive == [16, 32, 64]


def test_channel_statistics_are_reported():
    r = run(O1, defines={"N": 16}, check=False)
    c = r.channels["prods"]
    assert c["sent"] == 16 * 16
    assert set(c) >= {"max_occupancy", "sent", "blocked_send_cycles", "blocked_recv_cycles"}
    assert r.to_json()["channels"]["prods"]["sent"] == 256


def test_send_waits_for_a_freed_slot_plus_response_latency():
    # One producer, one consumer that takes 10 cycles per element: with depth 1, each
    # send waits for the previous element's receive plus the response latency.
    src = """
hardware h {
  clock 1 GHz
  memory dram { bandwidth 64 B/cycle }
  memory regs { capacity 64 KiB; bandwidth 64 B/cycle; parent dram }
  unit u[2] : vector { lanes 1; memory regs; op add { cycles 10 }; op mul { cycles 1 } }
}
kernel k(X: f32[n]) -> (Y: f32[n]) on h {
  dim n = 4
  channel c : f32 { depth 1; latency 2; response 3 }
  process p on u[0] {
    for i in 0 .. n {
      x = load X[i : i+1] -> regs
      send c, x * 1
    }
  }
  process q on u[1] {
    acc = zeros([1])
    for i in 0 .. n {
      y = recv c
      acc = acc + y
    }
    store acc -> Y[0 : 1]
  }
}
"""
    r = run(src, inputs={"X": np.ones(4, np.float32)}, check=False)
    assert r.outputs["Y"][0] == 4
    assert r.channels["c"]["blocked_send_cycles"] > 0
    assert r.channels["c"]["max_occupancy"] == 1


def test_undrained_channel_is_a_warning():
    src = """
hardware h {
  clock 1 GHz
  memory dram { bandwidth 64 B/cycle }
  unit u[2] : vector { lanes 4; op add { cycles 1 } }
}
kernel k(X: f32[n]) -> (Y: f32[n]) on h {
  dim n = 4
  channel c : f32 { depth 4 }
  process p on u[0] {
    x = load X -> dram
    send c, x
  }
  store zeros([n]) -> Y
}
"""
    r = run(src, check=False)
    assert any(w.code == "W1002" for w in r.warnings)


PORT_TURNS = Path(__file__).with_name("port_turns.attn")


def test_processes_take_the_port_in_turn():
    """Transfers issued at the same simulated time by two processes alternate on the DRAM port (a
    round-robin arbiter), rather than all of the first process's before the second's first."""
    r = run(str(PORT_TURNS), trace=True)
    assert r.verify["C"].ok and r.verify["D"].ok
    loads = [e.name for e in sorted(r.events, key=lambda e: e.start) if e.track == "port dram"
             and e.name.startswith("load")]
    assert loads[:4] == ["load A", "load B", "load A", "load B"], loads
