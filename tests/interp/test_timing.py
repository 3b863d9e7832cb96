"""Exact cycles and energy of tiny programs, worked out by hand.

The rules (docs/semantics.md, "Time"): every operation is bound to one
resource and starts at max(operands ready, resource free, destination buffer
free); a transfer holds the ports of every memory on its path. The formulas
(attnlang/cost.py, docs/cost-model.md):

    transfer  ceil(bytes / narrowest bandwidth on the path) + latencies on the path
    matmul    folds * (k + R + C - 2),  folds = ceil(m / R) * ceil(n / C)   (output stationary;
              SCALE-Sim's stall-free count plus one, tests/reference/scalesim checks it)
    vector    ceil(elements / lanes) * interval, the result latency - interval later
              (per unit op; `cycles c` is interval = latency = c; softmax is five ops)
    energy    MACs * mac pJ + elements * op pJ + bytes read/written * pJ/B per memory
              + leakage pJ/cycle * cycles

Every test below writes its arithmetic in comments; the numbers are round on
purpose so that a reader can redo them.
"""

from __future__ import annotations

import pytest

from attnlang.api import run


def tiny(*, dram_latency: str = "0 cycles", sram_latency: str = "0 cycles", leakage: str = "",
         dram_bandwidth: str = "4 B/cycle", vec_count: str = "") -> str:
    """1 GHz; DRAM 4 B/cycle, SRAM 8 B/cycle, 1 pJ/B each way; a 2 x 2 array at 1 pJ/MAC; 4 lanes."""
    return f"""
hardware tiny {{
  clock 1 GHz
  {leakage}
  memory dram {{ bandwidth {dram_bandwidth}; read 1 pJ/B; write 1 pJ/B; latency {dram_latency} }}
  memory sram {{ capacity 64 KiB; bandwidth 8 B/cycle; read 1 pJ/B; write 1 pJ/B; parent dram
                 latency {sram_latency} }}
  unit pe : matrix {{ size 2 x 2; mac 1 pJ; memory sram }}
  unit vec{vec_count} : vector {{
    lanes 4
    memory sram
    op add, sub, mul, max {{ cycles 1; energy 1 pJ }}
    op exp                {{ cycles 4; energy 2 pJ }}
    op div                {{ cycles 8; energy 3 pJ }}
  }}
  unit vec2 : vector {{ lanes 4; memory sram; op add, exp {{ cycles 4; energy 2 pJ }} }}
}}
"""


def go(kernel: str, hw: str | None = None, **kw):
    return run((hw or tiny()) + kernel, trace=True, **kw)


def spans(r, track: str) -> list[tuple[float, float]]:
    return [(e.start, e.end) for e in r.events if e.track == track]


# ---------------------------------------------------------------- one load


def test_one_load():
    r = go("""
kernel k(X: f32[4, 4]) -> (O: f32[4, 4]) on tiny {
  x = load X -> sram
}""")
    # 16 f32 = 64 B from dram to sram; narrowest bandwidth min(4, 8) = 4 B/cycle:
    # ceil(64 / 4) + 0 latency = 16 cycles, [0, 16) on both ports.
    assert r.cycles == 16
    assert spans(r, "port dram") == spans(r, "port sram") == [(0, 16)]
    # read 64 B from dram at 1 pJ/B, write 64 B into sram at 1 pJ/B
    assert r.energy_breakdown_pj == {"dram": 64.0, "sram": 64.0}
    assert r.energy_pj == 128.0
    assert r.memories["dram"]["read_bytes"] == 64 and r.memories["sram"]["write_bytes"] == 64
    # sram holds x (64 B); dram holds the resident input X and output O (64 + 64)
    assert r.memories["sram"]["peak_bytes"] == 64
    assert r.memories["dram"]["peak_bytes"] == 128
    assert r.seconds == pytest.approx(16e-9)


def test_one_load_with_latency_and_fractional_bandwidth():
    hw = tiny(dram_latency="10 cycles", sram_latency="2 ns", dram_bandwidth="3 GB/s")
    r = go("""
kernel k(X: f32[4, 4]) -> (O: f32[4, 4]) on tiny {
  x = load X -> sram
}""", hw)
    # 3 GB/s at 1 GHz is 3 B/cycle, the narrowest on the path: ceil(64 / 3) = 22 cycles;
    # latencies add up along the path: 10 cycles (dram) + 2 ns * 1 GHz = 2 cycles (sram).
    # 22 + 12 = 34.
    assert r.cycles == 34
    assert r.energy_pj == 128.0  # latency costs time, not energy


def test_one_load_of_f16_moves_half_the_bytes():
    r = go("""
kernel k(X: f16[4, 4]) -> (O: f16[4, 4]) on tiny {
  x = load X -> sram
}""")
    # 16 f16 = 32 B: ceil(32 / 4) = 8 cycles; 32 pJ out of dram, 32 pJ into sram.
    assert r.cycles == 8
    assert r.energy_pj == 64.0


# ---------------------------------------------------------------- one matmul


def test_one_matmul():
    r = go("""
kernel k(A: f32[4, 6], B: f32[6, 2]) -> (C: f32[4, 2]) on tiny {
  a = load A -> sram
  b = load B -> sram
  c = a @ b
  store c -> C
}""")
    # load A: 24 f32 = 96 B / 4 = 24 cycles, [0, 24)
    # load B: 12 f32 = 48 B / 4 = 12 cycles; the ports are busy until 24: [24, 36)
    # a @ b: m=4, k=6, n=2 on 2 x 2: folds = ceil(4/2) * ceil(2/2) = 2, each fold streams k = 6
    #        and fills and drains 2 + 2 - 2 = 2: 2 * (6 + 2) = 16 cycles, from 36 (b ready): [36, 52)
    # store C: 8 f32 = 32 B / 4 = 8 cycles, from 52: [52, 60)
    assert r.cycles == 60
    assert spans(r, "pe") == [(36, 52)]
    assert spans(r, "port dram") == [(0, 24), (24, 36), (52, 60)]
    assert r.units["pe"]["busy_cycles"] == 16
    assert r.units["pe"]["utilization"] == pytest.approx(16 / 60)
    assert r.counters["macs"] == 4 * 6 * 2
    # energy:
    #   pe    48 MACs * 1 pJ                                  =  48
    #   dram  read 96 + 48 (loads), write 32 (store)          = 176
    #   sram  write 96 + 48 (loads) + 32 (c, the pe's result)
    #         read  96 + 48 (pe operands) + 32 (the store)    = 352
    assert r.energy_breakdown_pj == {"pe": 48.0, "dram": 176.0, "sram": 352.0}
    assert r.energy_pj == 576.0


def test_matmul_pads_partial_passes():
    r = go("""
kernel k(A: f32[3, 5], B: f32[5, 3]) -> (C: f32[3, 3]) on tiny {
  a = load A -> sram
  b = load B -> sram
  c = a @ b
}""")
    # loads: 60 B -> 15 cycles [0, 15), then [15, 30)
    # a @ b: folds = ceil(3/2) * ceil(3/2) = 4; 4 * (5 + 2) = 28: [30, 58)
    assert spans(r, "pe") == [(30, 58)]
    assert r.cycles == 58
    # MAC energy counts real MACs (3 * 5 * 3 = 45), not the padded array
    assert r.energy_breakdown_pj["pe"] == 45.0


MATMUL = """
kernel k(A: f32[4, 6], B: f32[6, 2]) -> (C: f32[4, 2]) on tiny {
  a = load A -> sram
  b = load B -> sram
  c = a @ b
}"""


@pytest.mark.parametrize("props, cycles", [
    # output stationary, fill and drain once per operation: 2 folds * 6 + (2 + 2 - 2) = 14
    ("fill once", 14),
    # weight stationary: the 6 x 2 weights fold onto the 2 x 2 array, ceil(6/2) * ceil(2/2) = 3 folds;
    # each preloads 2 rows of weights and streams m = 4 rows through the skew: 3 * (4 + 2*2 + 2 - 2) = 24
    ("dataflow ws", 24),
    # once per operation: 3 * 4 + (2*2 + 2 - 2) = 16
    ("dataflow ws; fill once", 16),
    # no fill or drain at all (Timeloop's compute-bound array): 2 folds * 6 = 12
    ("fill none", 12),
    # input stationary: the 6 x 4 inputs (k x m) fold: ceil(6/2) * ceil(4/2) = 6 folds, n = 2 streams:
    # 6 * (2 + 4) = 36
    ("dataflow is", 36),
])
def test_matmul_dataflows(props, cycles):
    hw = tiny().replace("size 2 x 2; mac 1 pJ;", f"size 2 x 2; {props}; mac 1 pJ;")
    r = go(MATMUL, hw)
    # loads [0, 24) and [24, 36); the matmul starts at 36
    assert spans(r, "pe") == [(36, 36 + cycles)]
    assert r.units["pe"]["busy_cycles"] == cycles
    assert r.energy_breakdown_pj["pe"] == 48.0  # the same 48 MACs whatever the dataflow


PIPELINED = """
  unit vec : vector {
    lanes 4
    memory sram
    op add, sub, max { interval 1; latency 1; energy 1 pJ }
    op exp           { interval 1; latency 4; energy 2 pJ }
    op div           { interval 1; latency 8; energy 3 pJ }
  }
}
"""


def pipelined() -> str:
    hw = tiny()
    return hw[:hw.index("  unit vec :")] + PIPELINED


def test_pipelined_vector_ops_overlap_in_the_unit():
    r = go("""
kernel k(X: f32[4, 4]) -> (O: f32[4, 4]) on tiny {
  x = load X -> sram
  y = exp(x)
  w = x + x
  z = y + x
}""", pipelined())
    # load X [0, 16)
    # exp(x): 4 lane groups issued one a cycle, [16, 20) on the unit; the last group's result
    #         is ready 4 cycles after its issue at 19: y ready at 23
    # x + x:  needs only x; the unit is free at 20: issued [20, 24), ready at 24
    # y + x:  waits for y (23) and the unit (24): [24, 28)
    assert r.cycles == 28
    assert r.units["vec"]["busy_cycles"] == 12  # three ops of 4 groups at interval 1
    assert [e.start for e in r.events if e.track == "vec"] == [16, 20, 24]


def test_softmax_steps_chain_through_the_pipeline():
    r = go("""
kernel k(X: f32[1, 4]) -> (O: f32[1, 4]) on tiny {
  x = load X -> sram
  p = softmax(x)
}""", pipelined())
    # load [0, 4); softmax over 4 elements is one lane group per step; each step waits for the
    # previous step's group: max [4, 5) ready 5; sub [5, 6) ready 6; exp [6, 7) ready 10;
    # add [10, 11) ready 11; div [11, 12) ready 19
    assert r.cycles == 19
    assert r.units["vec"]["busy_cycles"] == 5
    # over 16 elements (load [0, 16)) the groups keep the pipeline full: each step issues 4 groups
    # and the next starts when the unit is free: max from 16, sub 20, exp 24, add 28 (exp's first
    # group is ready at 24 + 4), div [32, 36), its last group (issued at 35) ready at 35 + 8 = 43
    r = go("""
kernel k(X: f32[4, 4]) -> (O: f32[4, 4]) on tiny {
  x = load X -> sram
  p = softmax(x)
}""", pipelined())
    assert r.units["vec"]["busy_cycles"] == 20
    assert r.cycles == 43


# ---------------------------------------------------------------- vector ops


def test_dependent_vector_ops():
    r = go("""
kernel k(X: f32[4, 4]) -> (O: f32[4, 4]) on tiny {
  x = load X -> sram
  y = exp(x)
  z = y + x
  store z -> O
}""")
    # load X: 64 B / 4 = 16 cycles, [0, 16)
    # exp(x): 16 elements on 4 lanes = 4 lane groups * 4 cycles = 16, waits for x: [16, 32)
    # y + x:  4 lane groups * 1 cycle = 4, waits for y: [32, 36)
    # store:  64 B / 4 = 16, waits for z: [36, 52)
    assert r.cycles == 52
    assert spans(r, "vec") == [(16, 32), (32, 36)]
    assert r.units["vec"]["busy_cycles"] == 20
    # energy:
    #   vec   exp 16 * 2 pJ + add 16 * 1 pJ                   =  48
    #   dram  read 64, write 64                               = 128
    #   sram  write 64 (x) + 64 (y) + 64 (z)
    #         read  64 (exp reads x) + 128 (add reads y, x) + 64 (store reads z) = 448
    assert r.energy_breakdown_pj == {"vec": 48.0, "dram": 128.0, "sram": 448.0}
    assert r.energy_pj == 624.0


def test_vector_lane_groups_round_up_and_softmax_is_five_ops():
    r = go("""
kernel k(X: f32[2, 3]) -> (O: f32[2, 3]) on tiny {
  x = load X -> sram
  p = softmax(x)
}""")
    # load: 6 f32 = 24 B / 4 = 6 cycles, [0, 6)
    # softmax over 6 elements: ceil(6 / 4) = 2 lane groups per op, and the unit has no
    # `op softmax`, so it runs max, sub, exp, add, div: 2 * (1 + 1 + 4 + 1 + 8) = 30, [6, 36)
    assert r.cycles == 36
    assert spans(r, "vec") == [(6, 36)]
    # vec energy: 6 elements * (1 + 1 + 2 + 1 + 3) pJ = 48
    assert r.energy_breakdown_pj["vec"] == 48.0
    assert r.counters["vector_ops"] == 6


# ---------------------------------------------------------------- overlap


def test_two_independent_ops_on_two_units_overlap():
    r = go("""
kernel k(X: f32[4, 4]) -> (O: f32[4, 4]) on tiny {
  x = load X -> sram
  a = x @ x
  y = exp(x)
}""")
    # load: [0, 16)
    # x @ x on pe: folds = 2 * 2 = 4; 4 * (4 + 2) = 24 cycles, [16, 40)
    # exp(x) on vec: 16 cycles; it needs only x, and vec is free: [16, 32), beside the matmul
    # total 40, where one unit after the other would take 16 + 24 + 16 = 56
    assert spans(r, "pe") == [(16, 40)]
    assert spans(r, "vec") == [(16, 32)]
    assert r.cycles == 40
    # energy: dram 64; sram write 64 + 64 + 64, read 128 (pe) + 64 (vec); pe 64 MACs; vec 16 * 2
    assert r.energy_breakdown_pj == {"dram": 64.0, "sram": 384.0, "pe": 64.0, "vec": 32.0}


def test_two_vector_units_overlap_with_on():
    r = go("""
kernel k(X: f32[4, 4]) -> (O: f32[4, 4]) on tiny {
  x = load X -> sram
  y = exp(x)
  z = exp(x) on vec2
  w = y + z
}""")
    # load [0, 16); exp on vec [16, 32); exp on vec2 (4 groups * 4) [16, 32) at the same time;
    # y + z on vec (the default vector unit): 4 groups * 1, after both: [32, 36)
    assert spans(r, "vec") == [(16, 32), (32, 36)]
    assert spans(r, "vec2") == [(16, 32)]
    assert r.cycles == 36
    # vec: exp 16 * 2 + add 16 * 1 = 48; vec2: exp 16 * 2 = 32
    assert r.energy_breakdown_pj["vec"] == 48.0 and r.energy_breakdown_pj["vec2"] == 32.0


def test_parallel_loop_spreads_over_a_unit_array():
    r = go("""
kernel k(X: f32[4, 4]) -> (O: f32[8, 4]) on tiny {
  x = load X -> sram
  for h in 0 .. 2 @parallel(vec) {
    store exp(x) -> O[h * 4 : h * 4 + 4, :]
  }
}""", tiny(vec_count="[2]"))
    # iteration h runs on vec[h]: both exps start when x is ready, [16, 32) on each instance;
    # the stores (64 B, 16 cycles each) share the ports in program order: [32, 48), [48, 64)
    assert spans(r, "vec[0]") == [(16, 32)]
    assert spans(r, "vec[1]") == [(16, 32)]
    assert spans(r, "port dram") == [(0, 16), (32, 48), (48, 64)]
    assert r.cycles == 64
    # busy cycles add over instances; utilization divides by cycles * instances: 32 / (64 * 2)
    assert r.units["vec"]["busy_cycles"] == 32
    assert r.units["vec"]["utilization"] == 0.25


def test_on_picks_an_instance_of_a_unit_array():
    r = go("""
kernel k(X: f32[4, 4]) -> (O: f32[4, 4]) on tiny {
  x = load X -> sram
  y = exp(x) on vec[1]
  z = exp(x) on vec[1]
  w = exp(x)
}""", tiny(vec_count="[2]"))
    # two exps queue on vec[1]: [16, 32), [32, 48); the unnamed one runs on vec[0] beside them
    assert spans(r, "vec[1]") == [(16, 32), (32, 48)]
    assert spans(r, "vec[0]") == [(16, 32)]
    assert r.cycles == 48


def test_fma_fuses_multiply_add_where_the_unit_has_it():
    src = """
kernel k(X: f32[4, 4]) -> (O: f32[4, 4]) on tiny {
  x = load X -> sram
  z = x * x + x
}"""
    plain = go(src)
    # without `op fma`: mul [16, 20) then add [20, 24), 4 lane groups * 1 cycle each
    assert spans(plain, "vec") == [(16, 20), (20, 24)]
    assert plain.energy_breakdown_pj["vec"] == 32.0  # 16 * 1 + 16 * 1
    fused = go(src, tiny().replace("op add, sub, mul, max {", "op fma { cycles 2; energy 1.5 pJ }\n"
                                                              "    op add, sub, mul, max {"))
    # with `op fma { cycles 2; energy 1.5 pJ }`: one op, 4 groups * 2 cycles = 8, [16, 24)
    assert spans(fused, "vec") == [(16, 24)]
    assert fused.energy_breakdown_pj["vec"] == 24.0  # 16 * 1.5
    # sram: x in (64), x read three times by the fma (192), z out (64); no intermediate x * x
    assert fused.energy_breakdown_pj["sram"] == 64.0 + 192.0 + 64.0
    assert plain.energy_breakdown_pj["sram"] == 64.0 + 128.0 + 64.0 + 128.0 + 64.0


def test_transfers_share_the_ports_in_program_order():
    r = go("""
kernel k(X: f32[4, 4]) -> (O: f32[4, 4], P: f32[4, 4]) on tiny {
  x = load X -> sram
  a = x @ x
  y = exp(x)
  store y -> O
  store a -> P
}""")
    # load [0, 16); matmul [16, 34); exp [16, 32)
    # store y: ready at 32, ports free since 16: [32, 48)
    # store a: ready at 34, but the ports are held by the first store until 48: [48, 64)
    assert spans(r, "port dram") == [(0, 16), (32, 48), (48, 64)]
    assert r.cycles == 64


def test_leakage_is_power_times_time():
    r = go("""
kernel k(X: f32[4, 4]) -> (O: f32[4, 4]) on tiny {
  x = load X -> sram
  y = exp(x)
}""", tiny(leakage="leakage 2 mW"))
    # 2 mW at 1 GHz is 2e-3 J/s / 1e9 cycles/s = 2 pJ per cycle; the run takes 16 + 16 = 32 cycles
    assert r.cycles == 32
    assert r.energy_breakdown_pj["leakage"] == 64.0
    # 64 (leakage) + 64 dram + 64 + 64 + 64 sram (x in, x read, y out) + 32 vec
    assert r.energy_pj == 352.0
    assert r.energy_pj == sum(r.energy_breakdown_pj.values())


# ---------------------------------------------------------------- pipelining

LOOP = """
kernel k(X: f32[12, 4]) -> (O: f32[4, 4]) on tiny {
  for j in 0 .. 12 by 4 ANNOTATION {
    x = load X[j : j+4, :] -> sram
    y = exp(x)
  }
}"""


def test_loop_without_pipeline_serializes_on_the_buffer():
    r = go(LOOP.replace("ANNOTATION", ""))
    # Each iteration loads 16 f32 (64 B, 16 cycles) and runs exp (16 cycles).
    # Without @pipeline the next load into x must wait until exp has read x:
    #   j=0: load [0, 16)   exp [16, 32)
    #   j=4: load [32, 48)  exp [48, 64)      (x free at 32)
    #   j=8: load [64, 80)  exp [80, 96)
    assert spans(r, "port dram") == [(0, 16), (32, 48), (64, 80)]
    assert spans(r, "vec") == [(16, 32), (48, 64), (80, 96)]
    assert r.cycles == 96
    # sram holds one x and one y at a time: 64 + 64
    assert r.memories["sram"]["peak_bytes"] == 128
    _check_loop_energy(r)


def test_pipelined_loop_overlaps_loads_with_compute():
    r = go(LOOP.replace("ANNOTATION", "@pipeline(2)"))
    # With two copies, iteration j+1 loads into the other copy of x and waits only for the
    # readers of the copy from two iterations back:
    #   j=0: load [0, 16)   exp [16, 32)
    #   j=4: load [16, 32)  exp [32, 48)      (copy 1 is fresh; ports free at 16)
    #   j=8: load [32, 48)  exp [48, 64)      (copy 0 read by the first exp until 32)
    assert spans(r, "port dram") == [(0, 16), (16, 32), (32, 48)]
    assert spans(r, "vec") == [(16, 32), (32, 48), (48, 64)]
    assert r.cycles == 64
    # two copies of x and y are charged: 2 * (64 + 64)
    assert r.memories["sram"]["peak_bytes"] == 256
    _check_loop_energy(r)


def _check_loop_energy(r) -> None:
    # per iteration: dram read 64; sram write 64 (x) + 64 (y), read 64 (exp); vec 16 * 2 = 32
    assert r.energy_breakdown_pj == {"dram": 3 * 64.0, "sram": 3 * 192.0, "vec": 3 * 32.0}
    assert r.energy_pj == 864.0


def test_pipelining_is_faster_and_costs_the_same_energy():
    plain = go(LOOP.replace("ANNOTATION", ""))
    piped = go(LOOP.replace("ANNOTATION", "@pipeline(2)"))
    assert piped.cycles < plain.cycles
    assert piped.energy_pj == plain.energy_pj
