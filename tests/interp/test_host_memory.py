"""The host-memory guard (attnlang/hostmem.py, E1013) and the run limits (--max-steps, E1002).

The guard's counts are checked against what a run really allocates, measured with tracemalloc (NumPy
reports its buffers to it): the guard must be an upper bound of the growth from a small size to a larger
one, and not a wild one."""

from __future__ import annotations

import re
import tracemalloc

import pytest

import attnlang
from attnlang import hostmem
from attnlang.binding import bind, hardware_for
from attnlang.cli import main
from attnlang.diagnostics import AttnError
from attnlang.spec import VerifyPlan

UNCAPPED = """\
hardware big {
  clock 1 GHz
  memory dram { bandwidth 50 GiB/s; read 32 pJ/B; write 32 pJ/B }
  unit pe : matrix { size 32 x 32; mac 0.3 pJ; memory dram }
  unit vec : vector { lanes 32; memory dram
    op add, sub, mul, max, min, exp, div { interval 1; latency 1; energy 0.1 pJ } }
}

kernel k(Q: f32[N, d]) -> (O: f32[N, d])
  on big
  spec O = Q
{
  dim d = 16
  q = load Q[:, :] -> dram
  s = q @ q.T
  store s @ q -> O[:, :]
}
"""

CHANNELS = """\
use hw.edge
kernel k(X: f32[N, d]) -> (O: f32[N, d])
  on edge
  spec O = X
{
  dim N = 16
  dim d = 8
  channel c[COUNT] : f32 { depth 4 }
  process p on vec {
    for i in 0 .. N {
      x = load X[i, :] -> sram
      send c[0], x
    }
  }
  process r on vec {
    for i in 0 .. N {
      y = recv c[0]
      store y -> O[i, :]
    }
  }
}
"""

SPIN = """\
use hw.edge
kernel k(X: f32[N, d]) -> (O: f32[N, d])
  on edge
  spec O = X
{
  for i in 0 .. 1000000000000000 {
  }
  for i in 0 .. N by 16 {
    x = load X[i : i+16, :] -> sram
    store x -> O[i : i+16, :]
  }
}
"""


def attn(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_an_n_by_n_intermediate_in_a_memory_without_capacity_is_refused_before_the_run(capsys, tmp_path):
    """The issue's case: s = q @ q.T in an uncapped memory passed the old guard, which counted only the
    inputs and outputs; the kernel's own values now count, and the largest is named with its size."""
    path = tmp_path / "big.attn"
    path.write_text(UNCAPPED)
    assert attn(capsys, "run", str(path), "-D", "N=64")[0] == 1  # it runs (the spec differs on purpose)
    code, _, err = attn(capsys, "run", str(path), "-D", "N=1000000")
    assert code == 1
    assert re.search(r"big\.attn:16:3: error\[E1013\]: the run needs [\d.]+ TiB of host memory", err), err
    assert "the largest is s: f32[N, N], that is f32[1000000, 1000000], 3.6 TiB" in err


def test_the_run_phase_counts_the_intermediate_exactly():
    """At N = 1000 the run holds Q, O, q (N x 16 each), s (N x N) and the product s @ q at its peak, in
    float32: the guard's total is that sum, worked out here by hand."""
    prog = attnlang.load_program(UNCAPPED)
    k = prog.kernel(None)
    env, _ = bind(k, {"N": 1000}, {})
    hw, _ = hardware_for(prog, k, env)
    peak, _ = hostmem.run_items(k, env, hw)
    n, d = 1000, 16
    assert peak == 4 * (n * d * 4 + n * n)
    with pytest.raises(AttnError) as exc:
        hostmem.check_host_memory(k, env, hw, None, limit=int(peak) - 1)
    assert exc.value.diagnostics[0].code == "E1013"
    hostmem.check_host_memory(k, env, hw, None, limit=int(peak) + 4 * 3 * n * d)  # the inputs drawn fit too


def test_a_billion_channels_are_refused_with_the_channel_named(capsys, tmp_path):
    path = tmp_path / "chan.attn"
    path.write_text(CHANNELS.replace("COUNT", "1000000000"))
    code, _, err = attn(capsys, "run", str(path))
    assert code == 1
    assert "chan.attn:8:3: error[E1013]: the run needs" in err
    assert "the largest is channel c[1000000000]: depth 4" in err
    path.write_text(CHANNELS.replace("COUNT", "2"))
    assert attn(capsys, "run", str(path))[0] == 0


def test_a_spec_that_holds_an_n_by_n_value_whole_is_counted():
    """`(Q @ Q.T).T` takes the N x N product whole (a transpose's operand), so its verification holds it,
    while flash's spec goes a block of rows at a time."""
    prog = attnlang.load_program("use hw.edge\nkernel k(Q: f32[N, d]) -> (O: f32[N, N])\n  on edge\n"
                                 "  spec O = (Q @ Q.T).T\n{\n}\n")
    k = prog.kernel(None)
    n = 30000
    env = {"N": n, "d": 16}
    (item,) = hostmem.spec_items(k, env, VerifyPlan("rows", 256))
    assert item.nbytes >= 2 * 8 * n * n  # the whole product, and the blocks it is made of
    with pytest.raises(AttnError) as exc:
        hostmem.check_host_memory(k, env, None, VerifyPlan("rows", 256), limit=10 * 2**30)
    assert "verifying the outputs needs" in exc.value.diagnostics[0].message
    flash = attnlang.load_program("examples/flash.attn").kernel(None)
    (item,) = hostmem.spec_items(flash, {"N": n, "d": 64}, VerifyPlan("full"))
    assert item.nbytes < 1 * 2**30


def _allocated(prog, defines: dict, verify: str) -> int:
    attnlang.run(prog, defines=defines, verify=verify)  # parse, check and compile caches warm
    tracemalloc.start()
    try:
        attnlang.run(prog, defines=defines, verify=verify)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _guard(prog, defines: dict, verify: str) -> float:
    k = prog.kernel(None)
    env, _ = bind(k, defines, {})
    hw, _ = hardware_for(prog, k, env)
    peak, _ = hostmem.run_items(k, env, hw)
    draw = sum(i.nbytes for i in hostmem.io_items(k, env))
    kept = sum(i.nbytes for i in hostmem.io_items(k, env, drawn=False))
    spec = sum(i.nbytes for i in hostmem.spec_items(k, env, VerifyPlan(verify)))
    return max(peak, draw, kept + spec)


@pytest.mark.parametrize("example, small, large", [("naive", 64, 512), ("flash", 64, 1024)])
def test_the_guard_bounds_what_a_run_allocates(example, small, large):
    """Growth from a small N to a larger one: measured by tracemalloc, at most the guard's, at least a
    third of it (the fixed costs of parsing and checking cancel out in the difference)."""
    prog = attnlang.load_program(f"examples/{example}.attn")
    for verify in ("off", "full"):
        measured = _allocated(prog, {"N": large}, verify) - _allocated(prog, {"N": small}, verify)
        counted = _guard(prog, {"N": large}, verify) - _guard(prog, {"N": small}, verify)
        assert counted / 3 <= measured <= counted, (verify, measured, counted)


def test_a_loop_that_advances_no_time_stops_at_max_steps_in_both_engines(capsys, tmp_path):
    path = tmp_path / "spin.attn"
    path.write_text(SPIN)
    for engine in ("interp", "jit"):
        code, _, err = attn(capsys, "run", str(path), "-D", "N=64", "-D", "d=16", "--max-steps", "20000",
                            "--engine", engine)
        assert code == 1, err
        assert "spin.attn:6:3: error[E1002]: the run passed --max-steps 20000 loop iterations here" in err


def test_max_steps_counts_every_iteration_of_every_loop():
    """flash at N = 64 in tiles of 16: 4 row blocks, each with 4 key blocks: 4 + 16 = 20 iterations."""
    d = {"N": 64, "Br": 16, "Bc": 16}
    for engine in ("interp", "jit"):
        attnlang.run("examples/flash.attn", defines=d, engine=engine, max_steps=20)
        with pytest.raises(AttnError) as exc:
            attnlang.run("examples/flash.attn", defines=d, engine=engine, max_steps=19)
        assert exc.value.diagnostics[0].code == "E1002"


def test_max_steps_on_the_command_line(capsys):
    code, _, err = attn(capsys, "run", "examples/flash.attn", "-D", "N=64", "--max-steps", "-1")
    assert code == 2 and "--max-steps takes a number of loop iterations" in err
    assert attn(capsys, "run", "examples/flash.attn", "-D", "N=64", "--max-steps", "0")[0] == 0


@pytest.mark.parametrize("prop, message", [
    ("latency 3 TiB", "channel c's latency must be a number of cycles, not a size in bytes (3 TiB)"),
    ("response 2 ns", "channel c's response must be a number of cycles, not a time (2 ns)"),
    ("latency 1e308", "channel c's latency must be within range: 1e+308 exceeds 1e+18"),
    ("depth 4 KiB", "channel c's depth must be a whole number of elements, not a size in bytes (4 KiB)"),
    ("depth 1e300", "channel c's depth must be within range: 1e+300 exceeds 2**53 in magnitude"),
])
def test_a_channel_property_of_the_wrong_kind_is_a_checker_error(capsys, tmp_path, prop, message):
    """`latency 3 TiB` ran as 1.7e15 cycles: a size where a time is meant is now E0908, at the value; the
    interpreter, run without the checker, refuses it too (E1030)."""
    path = tmp_path / "lat.attn"
    path.write_text(CHANNELS.replace("COUNT", "1").replace("{ depth 4 }", "{ " + prop + " }"))
    code, _, err = attn(capsys, "check", str(path))
    assert code == 1
    assert f"error[E0908]: {message}" in err
    with pytest.raises(AttnError) as exc:
        attnlang.run(str(path), check=False)
    # (a depth of 1e300 is too much host memory before it is anything else)
    assert exc.value.diagnostics[0].code == ("E1013" if prop == "depth 1e300" else "E1030")


@pytest.mark.parametrize("count, message", [
    ("9223372036854775808", "within range: about 10**18 exceeds 2**53 in magnitude"),
    ("4.5", "a whole number of channels, not 4.5"),
    ("0 - 3", "a whole number of channels, at least 1, not -3"),
    ("4 KiB", "a whole number of channels, not a size in bytes (4 KiB)"),
])
def test_the_size_of_a_channel_array_is_checked(capsys, tmp_path, count, message):
    """`channel c[4.5]` ran with 4 channels and `c[-3]` with none (E1031 at the first send)."""
    path = tmp_path / "count.attn"
    path.write_text(CHANNELS.replace("COUNT", count))
    code, _, err = attn(capsys, "check", str(path))
    assert code == 1
    assert f"count.attn:8:13: error[E0908]: the channel array c's size must be {message}" in err
    if count in ("4.5", "0 - 3"):
        with pytest.raises(AttnError) as exc:
            attnlang.run(str(path), check=False)
        assert exc.value.diagnostics[0].code == "E1030"
