"""One table of timing rules, each counted by hand from its published form, driving all four places that
apply the rules: the interpreter, the JIT, the analytical model and the checker's occupancy walk.

The matrix unit's cycles are SCALE-Sim's stall-free counts (plus one: SCALE-Sim numbers cycles from 0):
folds x (stream + skew), folds and stream by the dataflow (os: m x n folded, k streams; ws: k x n folded,
m streams; is: k x m folded, n streams), skew R + C - 2 (os) or 2R + C - 2 (ws, is). A vector op over n
elements on L lanes is busy ceil(n / L) x interval. A transfer takes bytes / bandwidth cycles. A memory's
peak is the bytes live at once. Every engine must give the hand count, and the same total cycles.
"""

from __future__ import annotations

import pytest

from attnlang import api
from attnlang.check import bind_kernel
from attnlang.check.capacity import peak_bytes
from attnlang.model.analytic import estimate


def _hardware(dataflow: str = "os") -> str:
    return f"""
hardware t {{
  clock 1 GHz
  word 4 B
  memory dram {{ bandwidth 64 B/cycle; read 1 pJ/B; write 1 pJ/B }}
  memory sram {{ capacity 1 MiB; bandwidth 4096 B/cycle; read 0.1 pJ/B; write 0.1 pJ/B; parent dram; policy strict }}
  unit pe : matrix {{ size 32 x 32; dataflow {dataflow}; mac 1 pJ; memory sram }}
  unit vec : vector {{
    lanes 32
    memory sram
    op exp {{ interval 1; latency 4; energy 1 pJ }}
    op add, sub, mul, div, max {{ interval 2; latency 3; energy 0.5 pJ }}
  }}
}}
"""


MATMUL = """
kernel k(A: f32[M, K], B: f32[K, N]) -> (O: f32[M, N])
  on t
  spec O = A @ B
{
  dim M = 64, K = 32, N = 96
  a = load A -> sram
  b = load B -> sram
  store a @ b -> O
}
"""

VECTOR = """
kernel k(A: f32[M, N]) -> (O: f32[M, N])
  on t
  spec O = exp(A) + A
{
  dim M = 64, N = 64
  a = load A -> sram
  store exp(a) + a -> O
}
"""

# name, program, dataflow, unit -> busy cycles by hand, memory -> peak bytes by hand, dram bytes moved
ROWS = [
    # os: ceil(64/32) * ceil(96/32) = 6 folds x (k = 32 + 32 + 32 - 2) = 564
    ("matmul os", MATMUL, "os", {"pe": 6 * (32 + 62)}, {"sram": (64 * 32 + 32 * 96 + 64 * 96) * 4}),
    # ws: ceil(32/32) * ceil(96/32) = 3 folds x (m = 64 + 2*32 + 32 - 2) = 474
    ("matmul ws", MATMUL, "ws", {"pe": 3 * (64 + 94)}, {"sram": (64 * 32 + 32 * 96 + 64 * 96) * 4}),
    # is: ceil(32/32) * ceil(64/32) = 2 folds x (n = 96 + 94) = 380
    ("matmul is", MATMUL, "is", {"pe": 2 * (96 + 94)}, {"sram": (64 * 32 + 32 * 96 + 64 * 96) * 4}),
    # exp: 4096 / 32 = 128 groups x interval 1; add: 128 groups x interval 2
    ("vector ops", VECTOR, "os", {"vec": 128 * 1 + 128 * 2}, {"sram": 3 * 64 * 64 * 4}),
]


@pytest.mark.parametrize("name, body, dataflow, busy, peak", ROWS, ids=[r[0] for r in ROWS])
def test_every_engine_applies_the_rule_as_counted_by_hand(name, body, dataflow, busy, peak):
    source = _hardware(dataflow) + body
    prog = api.load_program(source)
    interp = api.run(prog, "k", verify="full")
    jit = api.run(prog, "k", engine="jit", verify="full")
    model = estimate(prog, "k")
    bound = bind_kernel(prog, "k")
    checker = peak_bytes(prog, bound.kernel, bound.env, bound.hardware)
    assert interp.ok and jit.ok and jit.engine == "jit"
    for unit, cycles in busy.items():
        assert interp.units[unit]["busy_cycles"] == cycles, (unit, interp.units[unit])
        assert jit.units[unit]["busy_cycles"] == cycles
        assert float(model.busy_cycles[unit]) == cycles
    for memory, nbytes in peak.items():
        assert interp.memories[memory]["peak_bytes"] == nbytes
        assert jit.memories[memory]["peak_bytes"] == nbytes
        assert float(model.peak_bytes[memory]) == nbytes
        assert float(checker[memory]) == nbytes
    # the same schedule: straight-line code, so the model's is exact too
    assert interp.cycles == jit.cycles == float(model.cycles)
    assert interp.energy_pj == pytest.approx(jit.energy_pj, rel=1e-12)
    assert float(model.energy_pj) == pytest.approx(interp.energy_pj, rel=1e-9)


def test_a_transfer_takes_its_bytes_over_the_bandwidth():
    """Loading 16 KiB over 64 B/cycle is 256 cycles; the kernel's two loads and one store share the port
    in turn, and nothing else takes time but the unit work between them."""
    source = _hardware() + """
kernel k(A: f32[M, N]) -> (O: f32[M, N])
  on t
  spec O = A
{
  dim M = 64, N = 64
  a = load A -> sram
  store a -> O
}
"""
    prog = api.load_program(source)
    for engine in ("interp", "jit"):
        r = api.run(prog, "k", engine=engine)
        assert r.cycles == 2 * 64 * 64 * 4 / 64, engine
    assert float(estimate(prog, "k").cycles) == 2 * 64 * 64 * 4 / 64
