"""The checker stays near linear in program size (issue 21, item 2): each shape of program that once made
it exponential, cubic or quadratic is checked here well within a bound the old behaviour could not meet,
and `attn run --timeout` stops a command that is still checking. bench/bench_check_scaling.py measures
the same shapes up to 10**4 lines."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attnlang.check import check
from attnlang.program import load_source

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from bench_check_scaling import error_after_long_name, long_sum, nested, straight  # noqa: E402


@pytest.fixture(autouse=True)
def deep_recursion():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20000))  # as `attn` sets it
    yield
    sys.setrecursionlimit(old)


def seconds(text: str) -> tuple[float, list]:
    t0 = time.perf_counter()
    diags = check(load_source(text, "scaling.attn"))
    return time.perf_counter() - t0, diags


def empty_loops(depth: int) -> str:
    body = "".join("  " * (i + 1) + f"for i{i} in 0 .. 2 {{\n" for i in range(depth))
    body += "".join("  " * (depth - i) + "}\n" for i in range(depth))
    return ("use hw.edge\nkernel k(Q: f16[N, d]) -> (O: f16[N, d]) on edge {\n  dim N = 64, d = 64\n" + body
            + "  q = load Q[0:64, :] -> sram\n  store q -> O[0:64, :]\n}\n")


def test_nested_empty_loops_do_not_double_per_level():
    t, diags = seconds(empty_loops(60))  # 2**60 walks before; depth 22 took 11.7 s
    assert t < 5 and not diags


def test_nested_loops_with_work_at_every_level():
    t, diags = seconds(nested(400, depth=40))
    assert t < 10 and not [d for d in diags if d.severity == "error"]


def test_a_long_sum_over_capacity_names_its_peak_without_cubic_labels():
    t, diags = seconds(long_sum(1600))  # 800 terms took over 60 s
    assert t < 10
    (d,) = [d for d in diags if d.code == "E0801"]
    (note,) = d.notes
    assert note.startswith("at its peak it holds ") and "796 more values" in note and len(note) < 400


def test_a_long_expression_in_the_peak_note_is_cut():
    terms = "+".join(["q"] * 60)
    src = ("use hw.edge\nkernel k(Q: f16[N, d]) -> (O: f16[N, d]) on edge {\n  dim N = 4096, d = 64\n"
           f"  q = load Q[0:N, :] -> sram\n  s = ({terms}) @ q.T\n  store q -> O[0:N, :]\n}}\n")
    (d,) = [d for d in check(load_source(src, "cut.attn")) if d.code == "E0801"]
    first = d.notes[0].removeprefix("at its peak it holds ").split(";")[0]
    assert first.startswith("intermediate (q+q+q") and "…: f16[N, N] = 32 MiB" in first


def test_a_syntax_error_after_a_long_name_is_quick_and_short():
    t, diags = seconds(error_after_long_name(10000))  # 60,000 characters took 27 s
    assert t < 3
    (d,) = diags
    assert d.code == "E0001" and len(d.message) < 200


def test_straight_line_code_is_near_linear():
    small, _ = seconds(straight(300))
    large, _ = seconds(straight(3000))
    assert large < 40 * max(small, 0.02)  # 10x the lines; quadratic was over 100x


def test_the_peak_note_names_a_value_as_it_was_called_at_the_peak():
    src = ("use hw.edge\nkernel k(Q: f16[N, d]) -> (O: f16[N, d]) on edge {\n  dim N = 4096, d = 64\n"
           "  q = load Q[0:N, :] -> sram\n  s = q @ q.T\n  store q -> O[0:N, :]\n}\n")
    (d,) = [d for d in check(load_source(src, "peak.attn")) if d.code == "E0801"]
    assert "intermediate q @ q.T" in d.notes[0]  # bound to s only after the peak


def test_timeout_covers_checking(tmp_path):
    path = tmp_path / "slow.attn"
    path.write_text(nested(6000), encoding="utf-8")  # tens of seconds to check
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "attnlang", "run", str(path), "--timeout", "1"], env=env,
                       capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - t0
    assert p.returncode == 1, p.stderr
    assert "error[E1004]" in p.stderr and "wall-time limit (--timeout) while" in p.stderr
    assert "internal error" not in p.stderr
    assert wall < 1 + 8  # the limit, the process's start and the grace
