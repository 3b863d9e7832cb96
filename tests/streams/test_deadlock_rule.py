"""The checker's static deadlock rule (E0906) against the simulator: for every depth of a bypass channel
beside a reduction, the checker rejects exactly the depths at which a run deadlocks (E1032)."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnlang import api
from attnlang.diagnostics import AttnError

ROOT = Path(__file__).resolve().parents[2]


def graph(n: int, depth: int, latency: int, bypass_first: bool, forwarder: bool) -> str:
    """A source sends each element to a row max and to a bypass; `shift` needs the max before it drains
    the bypass. With `forwarder`, the bypass is two channels with a process between them."""
    sends = ["send bypass, s", "send to_max, s"]
    sends = "\n        ".join(sends if bypass_first else sends[::-1])
    bypass_out = "hop" if forwarder else "bypass"
    hop = f"""
  channel hop : f32 {{ depth {depth}; latency {latency} }}
  process fwd on node[3] {{
    for t in 0 .. N * N {{
      x = recv bypass
      send hop, x
    }}
  }}""" if forwarder else ""
    return f"""use hw.stream
kernel k(S: f32[N, N]) -> (O: f32[N, N]) on stream {{
  dim N = {n}
  channel to_max : f32 {{ depth 4; latency {latency} }}
  channel bypass : f32 {{ depth {depth}; latency {latency} }}
  channel row_max : f32 {{ depth 4; latency {latency} }}{hop}
  process source on node[0] {{
    for i in 0 .. N {{
      for j in 0 .. N {{
        s = load S[i, j] -> regs
        {sends}
      }}
    }}
  }}
  process rmax on node[1] {{
    for i in 0 .. N {{
      m = full([], -inf)
      for j in 0 .. N {{
        s = recv to_max
        m = max(m, s)
      }}
      send row_max, m
    }}
  }}
  process shift on node[2] {{
    for i in 0 .. N {{
      m = recv row_max
      for j in 0 .. N {{
        s = recv {bypass_out}
        store s - m -> O[i, j]
      }}
    }}
  }}
}}
"""


def simulator_deadlocks(source: str) -> bool:
    try:
        api.run(source, check=False)
    except AttnError as exc:
        assert [d.code for d in exc.diagnostics] == ["E1032"], exc.diagnostics
        return True
    return False


def checker_rejects(source: str) -> list[str]:
    return [d.message for d in api.check_program(source) if d.code == "E0906"]


@pytest.mark.parametrize("bypass_first", [True, False])
@pytest.mark.parametrize("forwarder", [False, True])
@pytest.mark.parametrize("latency", [1, 4])
def test_the_checker_rejects_exactly_the_depths_that_deadlock(bypass_first, forwarder, latency):
    n = 8
    # With a forwarder both bypass channels get the depth, so the bypass holds 2 * depth + 1.
    depths = range(2, 7) if forwarder else range(n - 3, n + latency + 2)
    verdicts = []
    for depth in depths:
        source = graph(n, depth, latency, bypass_first, forwarder)
        verdicts.append((depth, simulator_deadlocks(source), bool(checker_rejects(source))))
    assert all(sim == chk for _, sim, chk in verdicts), verdicts
    assert any(sim for _, sim, _ in verdicts) and not all(sim for _, sim, _ in verdicts), verdicts


def test_the_message_says_the_depth_that_completes():
    (msg,) = checker_rejects(graph(8, 6, 1, bypass_first=False, forwarder=False))
    assert msg.endswith("it needs depth >= N - 1 = 7, or the pipeline deadlocks")
    assert not checker_rejects(graph(8, 7, 1, bypass_first=False, forwarder=False))


@pytest.mark.parametrize("depth, deadlocks", [(63, True), (64, False), (65, False)])
def test_stream_sdpa_naive_depths_against_the_simulator(depth, deadlocks):
    path = str(ROOT / "examples" / "stream_sdpa_naive.attn")
    defines = {"N": 64, "depth": depth}
    rejected = [d for d in api.check_program(path, defines) if d.code == "E0906"]
    assert bool(rejected) == deadlocks
    try:
        api.run(path, defines=defines, check=False, max_cycles=10**7)
        ran = True
    except AttnError as exc:
        assert [d.code for d in exc.diagnostics] == ["E1032"]
        ran = False
    assert ran != deadlocks
