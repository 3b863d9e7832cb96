"""Properties every run must have, whatever the kernel: bounds, conservation, capacity, spills."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from attnlang.api import run
from attnlang.binding import bind, hardware_for
from attnlang.cli import main
from attnlang.diagnostics import AttnError
from attnlang.program import load

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
EDGE = (ROOT / "attnlang" / "stdlib" / "hw" / "edge.attn").read_text()

# (example, defines): small sizes and a few tilings of each example
CONFIGS = [
    ("flash", (("N", 256), ("d", 64))),
    ("flash", (("N", 128), ("d", 32), ("Br", 16), ("Bc", 32))),
    ("flat", (("N", 256), ("d", 64))),
    ("flat", (("N", 128), ("d", 64), ("Br", 64), ("Bc", 32))),
    ("naive", (("N", 256), ("d", 64))),
    ("naive", (("N", 128), ("d", 32), ("T", 32))),
    ("flash_causal", (("N", 256), ("d", 64))),
    ("flash_causal", (("N", 128), ("d", 32), ("B", 32))),
    ("mha", (("B", 1), ("H", 4), ("N", 128), ("d", 32), ("Br", 32), ("Bc", 64))),
]
FUSED = {"flash", "flat", "flash_causal", "mha"}
IDS = [f"{ex}-" + "-".join(f"{k}{v}" for k, v in d) for ex, d in CONFIGS]


@functools.lru_cache(maxsize=None)
def result(example: str, defines: tuple):
    return run(str(EXAMPLES / f"{example}.attn"), defines=dict(defines))


@functools.lru_cache(maxsize=None)
def hardware(example: str, defines: tuple):
    prog = load(str(EXAMPLES / f"{example}.attn"))
    kernel = prog.kernel(None)
    env, _ = bind(kernel, dict(defines))
    hw, diags = hardware_for(prog, kernel, env)
    assert hw is not None, diags
    return hw


@pytest.mark.parametrize("example,defines", CONFIGS, ids=IDS)
def test_run_is_within_its_bounds(example, defines):
    r = result(example, defines)
    hw = hardware(example, defines)
    assert r.ok
    # compute bound: every PE of every matrix unit busy every cycle
    pes = sum(u.rows * u.cols * u.count for u in hw.units.values() if u.kind == "matrix")
    assert r.counters["macs"] > 0
    assert r.cycles >= r.counters["macs"] / pes
    # bandwidth bound: every DRAM byte crosses the DRAM port, one transfer at a time
    dram = hw.root_memory()
    moved = r.memories[dram.name]["read_bytes"] + r.memories[dram.name]["write_bytes"]
    assert r.cycles >= moved / dram.bandwidth_bytes_per_cycle
    # utilization is a fraction; busy cycles per instance fit in the run
    for name, u in r.units.items():
        assert 0.0 <= u["utilization"] <= 1.0, name
        assert u["busy_cycles"] <= r.cycles * hw.units[name].count
    # no memory holds more than it can
    for name, m in r.memories.items():
        cap = hw.memories[name].capacity_bytes
        assert m["peak_bytes"] > 0
        if cap is not None:
            assert m["peak_bytes"] <= cap, name
    # the breakdown is the total, every part non-negative
    assert all(v >= 0 for v in r.energy_breakdown_pj.values())
    assert r.energy_pj == pytest.approx(sum(r.energy_breakdown_pj.values()), rel=1e-12)
    assert r.seconds == pytest.approx(r.cycles / hw.clock_hz)


@pytest.mark.parametrize("example,defines", [c for c in CONFIGS if c[0] in FUSED],
                         ids=[i for i, c in zip(IDS, CONFIGS, strict=True) if c[0] in FUSED])
def test_fused_kernels_read_every_input_from_dram(example, defines):
    r = result(example, defines)
    d = dict(defines)
    elements = d.get("B", 1) * d.get("H", 1) * d["N"] * d["d"] if example == "mha" else d["N"] * d["d"]
    qkv_bytes = 3 * elements * 2  # f16
    assert r.memories["dram"]["read_bytes"] >= qkv_bytes
    # and write O exactly once
    assert r.memories["dram"]["write_bytes"] == elements * 2


@pytest.mark.parametrize("n,tile", [(128, 32), (256, 64)])
def test_fused_kernels_move_fewer_dram_bytes_than_naive(n, tile):
    def moved(example, **defines):
        r = result(example, tuple(sorted({"N": n, "d": 64, **defines}.items())))
        return r.memories["dram"]["read_bytes"] + r.memories["dram"]["write_bytes"]

    naive = moved("naive", T=tile)
    # same row block as naive's tile, so K and V are streamed the same number of times
    assert moved("flash", Br=tile, Bc=tile) < naive
    assert moved("flat", Br=tile, Bc=tile) < naive
    # naive writes S and P (N x N f16 each) and reads them back: at least 4 N^2 * 2 B more
    assert naive - moved("flash", Br=tile, Bc=tile) >= 4 * n * n * 2


# ---------------------------------------------------------------- capacity and spills

TINY = """
hardware tiny {
  clock 1 GHz
  memory dram { bandwidth 4 B/cycle; read 1 pJ/B; write 1 pJ/B }
  memory sram { capacity 1 KiB; bandwidth 8 B/cycle; read 1 pJ/B; write 1 pJ/B; parent dram; policy POLICY }
  unit vec : vector { lanes 4; memory sram; op add, exp { cycles 1; energy 1 pJ } }
}

kernel big(X: f32[64, 16]) -> (O: f32[64, 16]) on tiny
  spec O = exp(X)
{
  for i in 0 .. 64 by 32 {
    x = load X[i : i+32, :] -> sram
    store exp(x) -> O[i : i+32, :]
  }
}
"""


def test_strict_overflow_is_an_error_at_the_statement(tmp_path, capsys):
    path = tmp_path / "big.attn"
    path.write_text(TINY.replace("POLICY", "strict"))
    assert main(["run", str(path)]) == 1
    err = capsys.readouterr().err
    # The checker sees it before the run (E0801, at the statement where sram peaks: x and
    # exp(x), 2 KiB each); the interpreter would stop at the load (E1001, below).
    m = re.search(rf"^{re.escape(str(path))}:(\d+):5: error\[(E0801|E1001)\]: sram ", err, re.M)
    assert m, err
    assert TINY.splitlines()[int(m[1]) - 1].strip() in {"x = load X[i : i+32, :] -> sram",
                                                        "store exp(x) -> O[i : i+32, :]"}
    assert "Traceback" not in err


def test_strict_overflow_in_the_interpreter_names_the_statement():
    with pytest.raises(AttnError) as info:
        run(TINY.replace("POLICY", "strict"), check=False)
    (d,) = info.value.diagnostics
    # the 32 x 16 f32 tile is 2 KiB; the sram holds 1 KiB
    assert d.code == "E1001"
    assert d.message == "sram overflows: it would hold 2.0 KiB here but has 1.0 KiB"
    assert TINY.splitlines()[d.span.line - 1].strip() == "x = load X[i : i+32, :] -> sram"


def flat_on_edge(capacity: str, policy: str, discard: bool = True) -> str:
    """examples/flat.attn on an edge accelerator whose sram has this capacity and policy."""
    hw = EDGE.replace("capacity 512 KiB", f"capacity {capacity}").replace("policy strict", f"policy {policy}")
    src = (EXAMPLES / "flat.attn").read_text().replace("use hw.edge", hw)
    assert ("discard s" in src) and hw != EDGE
    return src if discard else src.replace("discard s", "")


FLAT_SIZES = {"N": 256, "d": 64, "Br": 16, "Bc": 32}


@functools.lru_cache(maxsize=None)
def flat_run(capacity: str, policy: str, discard: bool):
    return run(flat_on_edge(capacity, policy, discard), defines=FLAT_SIZES)


def test_a_spill_memory_counts_spill_traffic():
    roomy = flat_run("512 KiB", "spill", False)
    tight = flat_run("32 KiB", "spill", False)
    assert roomy.counters["spill_bytes"] == 0
    assert tight.counters["spill_bytes"] > 0
    assert tight.memories["sram"]["peak_bytes"] <= 32 * 1024 < roomy.memories["sram"]["peak_bytes"]

    def dram(r):
        return r.memories["dram"]["read_bytes"] + r.memories["dram"]["write_bytes"]

    # every spilled byte is written to dram (and dead values are never read back)
    assert dram(tight) >= dram(roomy) + tight.counters["spill_bytes"]
    assert tight.energy_breakdown_pj["dram"] > roomy.energy_breakdown_pj["dram"]
    assert tight.cycles >= roomy.cycles
    assert tight.ok  # spilling changes the cost, never the numbers


def test_the_same_program_on_a_strict_memory_overflows():
    with pytest.raises(AttnError) as info:
        run(flat_on_edge("32 KiB", "strict", False), defines=FLAT_SIZES, check=False)
    assert info.value.diagnostics[0].code == "E1001"
    with pytest.raises(AttnError) as info:  # and the checker says so before running
        run(flat_on_edge("32 KiB", "strict", False), defines=FLAT_SIZES)
    assert info.value.diagnostics[0].code == "E0801"


def test_discard_lowers_spill_traffic():
    kept = flat_run("32 KiB", "spill", False)
    discarded = flat_run("32 KiB", "spill", True)
    # `discard s` frees the dead score row block before softmax's output and acc need room:
    # nothing is written back
    assert discarded.counters["spill_bytes"] < kept.counters["spill_bytes"]
    assert discarded.memories["dram"]["write_bytes"] < kept.memories["dram"]["write_bytes"]
    assert discarded.energy_pj < kept.energy_pj
    assert discarded.ok


SPILL = """
hardware tiny {
  clock 1 GHz
  memory dram { bandwidth 4 B/cycle; read 1 pJ/B; write 1 pJ/B }
  memory sram { capacity 192 B; bandwidth 8 B/cycle; read 1 pJ/B; write 1 pJ/B; parent dram; policy spill }
  unit vec : vector { lanes 4; memory sram; op add, exp { cycles 1; energy 1 pJ } }
}
kernel k(X: f32[4, 4], Y: f32[4, 4]) -> (O: f32[4, 4]) on tiny
  spec O = X + exp(exp(Y))
{
  x = load X -> sram
  y = load Y -> sram
  e = exp(y)
  DISCARD
  f = exp(e)
  store x + f -> O
}
"""


def test_spilled_values_are_written_back_and_read_back_when_used():
    """Least recently used values not in use by the statement are spilled; a spilled value is reloaded."""
    r = run(SPILL.replace("DISCARD", ""))
    # every value is 16 f32 = 64 B; the sram holds three.
    # x, y, e fill it. f = exp(e): e is in use, so x (least recently used) is spilled: 64 B.
    # store x + f: x is read back (64 B), which needs room: y is spilled (64 B); the sum's
    # temporary needs room too: e, the only value not in use, is spilled (64 B).
    assert r.counters["spill_bytes"] == 192
    # dram read: X, Y (64 each) and x read back (64); written: three spills and O
    assert r.memories["dram"]["read_bytes"] == 3 * 64
    assert r.memories["dram"]["write_bytes"] == 4 * 64
    assert r.memories["sram"]["peak_bytes"] == 192
    assert r.ok


def test_discard_frees_without_writing_back():
    r = run(SPILL.replace("DISCARD", "discard y"))
    # with y gone, x, e and f fit; only the sum's temporary needs room: e is spilled (64 B)
    # and x is never read back
    assert r.counters["spill_bytes"] == 64
    assert r.memories["dram"]["read_bytes"] == 2 * 64
    assert r.memories["dram"]["write_bytes"] == 2 * 64
    assert r.ok
