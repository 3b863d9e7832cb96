"""The analytical model against the interpreter (attnlang.api.run), example by example.

The targets (issue 6): cycles within 10%, energy and DRAM traffic within 1%,
at several parameter points per example, at small N. Energy, traffic and
peak occupancy do not depend on timing, so the model gets them exactly; the
cycles are where it approximates (docs/explore.md says how, and how well).
"""

from __future__ import annotations

import pytest

from attnlang.api import load_program, run
from attnlang.model.analytic import estimate

CYCLES = 0.10
EXACT = 0.01

POINTS = {
    "flash": [dict(N=256, Br=64, Bc=64), dict(N=256, Br=16, Bc=16), dict(N=256, Br=32, Bc=128),
              dict(N=512, Br=128, Bc=32)],
    "flat": [dict(N=256, Br=32, Bc=128), dict(N=256, Br=16, Bc=16), dict(N=256, Br=64, Bc=256),
             dict(N=512, Br=32, Bc=64)],
    "naive": [dict(N=256, T=64), dict(N=256, T=16), dict(N=256, T=128), dict(N=512, T=32)],
    "flash_causal": [dict(N=256, B=64), dict(N=256, B=16), dict(N=512, B=32)],
    # Heads on four cores share one DRAM port, which the interpreter fills gap by gap; the model puts
    # each head's transfers into the gaps the heads before it leave (docs/explore.md, "How close it is").
    "mha": [dict(N=256), dict(N=128, B=1, H=2, Br=32, Bc=64),
            dict(N=256, B=1, H=4, Br=128, Bc=16), dict(N=256, B=2, H=3, Br=16, Bc=16),
            dict(N=256, B=1, H=3, Br=128, Bc=32), dict(N=128, B=2, H=4, Br=32, Bc=16),
            dict(N=256, B=1, H=4, Br=16, Bc=16), dict(N=256, B=1, H=2, Br=16, Bc=128),
            dict(N=256, B=2, H=4, Br=16, Bc=16), dict(N=256, B=2, H=2, Br=16, Bc=128),
            dict(N=128, B=2, H=3, Br=32, Bc=128), dict(N=256, B=1, H=3, Br=16, Bc=64),
            dict(N=128, B=1, H=4, Br=64, Bc=128), dict(N=256, B=2, H=4, Br=64, Bc=64),
            # 32-row blocks: a block's first QK^T waits for the matrix unit, not for the vector unit that
            # makes the block start (times.Early); it ends earlier, and so do the loads that wait for it.
            dict(N=128, B=1, H=3, Br=32, Bc=128), dict(N=128, B=1, H=4, Br=32, Bc=64)],
    # Row blocks of 4 to 16 queries: the loads of block i+1 are prefetched during block i (the model's
    # loop bodies take loads that need nothing made in them as done before the body starts).
    "mas_attention": [dict(N=256), dict(N=256, Br=64, Bc=128), dict(N=512, Br=16, Bc=64),
                      dict(N=512, Br=64, Bc=256), dict(N=256, Br=4, Bc=256), dict(N=256, Br=8, Bc=256),
                      dict(N=512, Br=4, Bc=256), dict(N=256, Br=16, Bc=256)],
    "flat_mha": [dict(N=256), dict(N=128, H=1, Br=8, Bc=64), dict(N=256, H=2, Br=128, Bc=16),
                 dict(N=128, H=2, Br=128, Bc=128)],
    "mmee": [
        dict(N=256),
        dict(N=256, order="q_outer", s_at="tile", v_at="sub", Br=16, Bc=128, Bv=16, P=1, Pv=2),
        dict(N=256, order="q_outer", s_at="row", v_at="tile", Br=128, Bc=32, Bv=32, P=3),
        dict(N=256, order="q_outer", s_at="row", v_at="sub", Br=32, Bc=64, Bv=8, P=4, Pv=4),
        dict(N=256, order="kv_outer", kv_at="inner", v_at="tile", Br=64, Bc=64, Bv=32, P=2),
        dict(N=256, order="kv_outer", kv_at="outer", v_at="sub", Br=16, Bc=128, Bv=16, P=1, Pv=2),
        dict(N=512, order="kv_outer", kv_at="outer", v_at="tile", Br=128, Bc=128, Bv=64, P=2),
    ],
}

CASES = [(name, d) for name, pts in POINTS.items() for d in pts]

# Where the model is known to be further off, with the bound it is held to and why.
OUTLIERS = {
    # Two batches of four heads with 16 x 16 tiles: the DRAM port and the four matrix units are both
    # near saturation (72 port cycles against 70 matrix cycles per head and step), and the second
    # batch's heads fill the port gaps the first batch's leave; the model places them later
    # (+13%: model 233,250, interpreter 206,337). One batch of the same (B=1) is exact.
    ("mha", (("B", 2), ("Bc", 16), ("Br", 16), ("H", 4), ("N", 256))): 0.15,
}


def _close(model: float, sim: float, tol: float) -> bool:
    return abs(model - sim) <= tol * max(abs(sim), 1.0)


@pytest.mark.parametrize("name,defines", CASES, ids=[f"{n}-{'-'.join(f'{k}{v}' for k, v in d.items())}"
                                                     for n, d in CASES])
def test_model_matches_interpreter(repo_root, name, defines):
    prog = load_program(str(repo_root / "examples" / f"{name}.attn"))
    kernel = prog.kernel(None)
    sim = run(prog, None, defines)
    est = estimate(prog, kernel, defines)
    cycles = float(est.cycles)
    bound = OUTLIERS.get((name, tuple(sorted(defines.items()))), CYCLES)
    assert _close(cycles, sim.cycles, bound), f"cycles: model {cycles:,.0f}, interpreter {sim.cycles:,}"
    assert _close(float(est.energy_pj), sim.energy_pj, EXACT), \
        f"energy: model {float(est.energy_pj):,.0f} pJ, interpreter {sim.energy_pj:,.0f} pJ"
    for memory, m in sim.memories.items():
        for field, table in (("read_bytes", est.read_bytes), ("write_bytes", est.write_bytes),
                             ("peak_bytes", est.peak_bytes)):
            assert _close(float(table[memory]), m[field], EXACT), \
                f"{memory} {field}: model {float(table[memory]):,.0f}, interpreter {m[field]:,.0f}"
    for unit, u in sim.units.items():
        assert _close(float(est.busy_cycles[unit]), u["busy_cycles"], EXACT), f"{unit} busy cycles"


def test_mha_grid_equals_one_candidate_at_a_time(repo_root):
    """The heads' transfers go into the port's gaps per candidate, and their times move with their units
    (loops in closed form in a @parallel body): a grid of tiles (loops of different trip counts, padded)
    costs each candidate as it costs alone."""
    import numpy as np

    prog = load_program(str(repo_root / "examples" / "mha.attn"))
    kernel = prog.kernel(None)
    tiles = np.array([16, 32, 64, 128])
    for dims in (dict(N=128, B=1, H=3), dict(N=128, B=1, H=4), dict(N=128, B=2, H=4)):
        grid = estimate(prog, kernel, {**dims, "Br": tiles[:, None], "Bc": tiles[None, :]})
        one = [[float(estimate(prog, kernel, {**dims, "Br": int(r), "Bc": int(c)}).cycles) for c in tiles]
               for r in tiles]
        assert np.array_equal(grid.cycles, np.array(one))


_ALIASED = """use hw.edge
kernel k(Q: f16[G, N, d]) -> (O: f16[G, N, d]) on edge {{
  dim G = 4, N = 256, d = 64
  q = load Q[0, 0 : 32, :] -> sram
  qn = q
  qs = qn * 1
  for g in 0 .. G {{
    for i in 0 .. N by 32 {{
      if i + 32 < N {{ qn = load Q[g, i + 32 : i + 64, :] -> sram }} else {{
        if g + 1 < G {{ qn = load Q[g + 1, 0 : 32, :] -> sram }}
      }}
      store qs * 2 -> O[g, i : i+32, :]
      qs = qn * 1
    }}
  }}
}}
"""


def test_a_value_given_under_two_names_is_released_once_both_are_rebound():
    """`qn = q` before the loop: the loop rebinds qn only, so the first iteration keeps the value (q still
    has it) and every later one frees the value it rebinds. The model's peak must not grow with the trip
    count (an earlier fault grew it by a tile per iteration: 432 KiB at G = 16, against the interpreter's
    16 KiB); it stays within two 4 KiB tiles of the interpreter's (it frees a rebound value after the
    load that replaces it, one tile early or late)."""
    prog = load_program(_ALIASED.format())
    peaks = []
    for G in (3, 4, 8, 16, 64):
        peaks.append(float(estimate(prog, "k", {"G": G}).peak_bytes["sram"]))
        if G <= 8:
            ran = run(prog, "k", defines={"G": G}, verify="off")
            assert abs(peaks[-1] - ran.memories["sram"]["peak_bytes"]) <= 2 * 4096, G
    assert len(set(peaks)) == 1, peaks


_NEXT_TILE = """use hw.flat_edge
kernel k(Q: f16[N, d], K: f16[N, d]) -> (O: f16[N, N])
  on flat_edge
  spec O = Q @ K.T / sqrt(d)
{{
  dim N = {N}, d = 64
  kb = load K -> sram
  qn = load Q[0 : 32, :] -> sram
  qs = qn / sqrt(d)
  for i in 0 .. N by 32 {{
    for j in 0 .. N by 32 @pipeline(2) {{
      st = qs @ kb[j : j+32, :].T
      store st -> O[i : i+32, j : j+32]
      if i + 32 < N {{
        if j == 0 {{ qn = load Q[i + 32 : i + 64, :] -> sram }}
      }}
    }}
    qs = qn / sqrt(d)
  }}
}}
"""


@pytest.mark.parametrize("N", [128, 256, 512])
def test_a_load_read_after_the_loop_takes_its_turn_on_the_port(N):
    """The next query tile, loaded in the first iteration of a pipelined loop and read after it, goes into
    the port's next idle stretch, beside the stores (the array never waits for it); an earlier model took
    it for the body's prefetch, done before the body starts, and was 8-16% slow here."""
    prog = load_program(_NEXT_TILE.format(N=N))
    est = estimate(prog, "k", {})
    ran = run(prog, "k", verify="off")
    assert abs(float(est.cycles) / ran.cycles - 1) <= 0.06, (float(est.cycles), ran.cycles)


_FOLDS = """use hw.flat_edge
kernel k(Q: f16[N, d], K: f16[N, d], V: f16[N, d]) -> (O: f16[N, d], S: f16[N, N])
  on flat_edge
  spec O = Q
  spec S = Q @ K.T
{
  dim N = 512, d = 128
  q = load Q[0 : 128, :] -> sram
  for i in 0 .. 256 by 128 {
    for j in 0 .. N by 32 @pipeline(2) {
      k = load K[j : j+32, :] -> sram
      st = q @ k.T
      for f in 0 .. d by 32 @pipeline(2) {
        v = load V[j : j+32, f : f+32] -> sram
        pv = st @ v
      }
      store st -> S[i : i+128, j : j+32]
    }
  }
  store q -> O[0 : 128, :]
}
"""


def test_the_next_key_tile_fits_the_idle_stretch_after_this_ones():
    """Four folds of V per key tile: the array's 1,024 cycles a tile leave the port idle from the key
    tile's load to the first fold's; the next key tile's load goes there (its copy is free), not after
    the tile's last store. An earlier model queued it behind that store: +15.5% against the interpreter."""
    prog = load_program(_FOLDS)
    est = estimate(prog, "k", {})
    ran = run(prog, "k", verify="off")
    assert abs(float(est.cycles) / ran.cycles - 1) <= 0.05, (float(est.cycles), ran.cycles)


_READ_BACK = """use hw.flat_edge
kernel k(V: f16[N, d]) -> (O: f16[N, d], S: f16[N, N])
  on flat_edge
  spec O = V
  spec S = zeros([N, N])
{{
  dim N = {N}, d = 64
  for i in 128 .. N by 128 {{
    acc = zeros([128, d], f16)
    for j in 0 .. N by 32 @pipeline(2) {{
      pa = zeros([128, 64], f16)
      for f in 0 .. d by 32 @pipeline(2) {{
        a = load S[i-128 : i, j : j+32] -> sram
        pa[:, f : f+32] = exp(a)
      }}
      for f in 0 .. d by 32 @pipeline(2) {{
        v = load V[j : j+32, f : f+32] -> sram
        acc[:, f : f+32] = acc[:, f : f+32] + pa[:, f : f+32] @ v
      }}
    }}
    store acc -> O[i-128 : i, :]
  }}
}}
"""


@pytest.mark.parametrize("N", [256, 512])
def test_a_read_of_an_output_the_loop_does_not_store_is_a_prefetch(N):
    """A loop body reading back an output it never stores to waits only for the stores before the loop,
    so the DMA engine loads the next iteration's tile while this one computes, as for an input. An
    earlier model queued every read of an output inside the body: +24% against the interpreter."""
    prog = load_program(_READ_BACK.format(N=N))
    est = estimate(prog, "k", {})
    ran = run(prog, "k", verify="off")
    assert abs(float(est.cycles) / ran.cycles - 1) <= 0.03, (float(est.cycles), ran.cycles)


def test_a_dead_value_in_a_names_history_is_released_by_no_iteration(repo_root):
    """The study's scores-off-chip kernel: a name's history before the head loop holds a dead value of
    another size (its pipelined copy), which no iteration releases. An earlier model took it for one
    the first iteration released and grew the peak by a row vector per head (1,094 KiB at 768 heads
    against the interpreter's 329 KiB). The model's peak must not grow with the heads, and must be the
    interpreter's."""
    prog = load_program(str(repo_root / "attnlang" / "studies" / "flat.attn"))
    dims = {"N": 256, "d": 64, "Tq": 64, "Tk": 32, "Fc": 32, "R": 8, "q_at": "hold", "k_at": "stream",
            "v_at": "stream"}
    peaks = {G: float(estimate(prog, "flat_scores_offchip", {**dims, "G": G}).peak_bytes["sram"])
             for G in (4, 8, 30, 768)}
    assert len(set(peaks.values())) == 1, peaks
    ran = run(prog, "flat_scores_offchip", defines={**dims, "G": 8}, verify="off")
    assert peaks[8] == ran.memories["sram"]["peak_bytes"]
