"""What a JIT compile may cost: a loop whose slices change size with its index compiled as a loop (only
what changes is lowered per index), a code budget past which the interpreter runs the kernel, and
--timeout that ends LLVM's optimizer (a child process) at the deadline."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import attnlang.jit.budget as budget
import attnlang.jit.lower as lower
from attnlang.api import run
from attnlang.diagnostics import AttnError
from attnlang.jit import cache, native

ROOT = Path(__file__).resolve().parents[2]
#: bench/fuzz_campaign.py's run C hung on it: flash_causal whose store lost its start, so the slice of O
#: grows with the query block; at B = 1 the loop over i ran once per index, inner loop and all (336,000
#: LLVM instructions, O2 for minutes past --timeout).
GROWING_STORE = (ROOT / "examples" / "flash_causal.attn").read_text().replace(
    "-> O[i : i+B, :]", "-> O[ : i+B, :]")
SMALL = {"N": 32, "d": 16, "B": 1}


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    """Every test compiles: a cache of its own, empty."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache.forget_memory_cache()  # the sealed entries (cache.py) and LLVM's (native.py)


def same_run(a, b) -> None:
    ja, jb = a.to_json(), b.to_json()
    for key in ("cycles", "energy_pj", "units", "memories", "counters", "energy_breakdown_pj"):
        assert ja[key] == jb[key], key
    for name in a.outputs:
        np.testing.assert_allclose(b.outputs[name], a.outputs[name], rtol=2e-3, atol=2e-3)
    assert [v.ok for v in a.verify.values()] == [v.ok for v in b.verify.values()]


def jit_and_size(source: str, defines: dict, monkeypatch):
    """A JIT run, and the LLVM instructions of the kernel's IR as lower_kernel handed it to LLVM."""
    sizes = []
    real = lower.lower_kernel

    def counting(*args, **kw):
        text, meta = real(*args, **kw)
        sizes.append(sum(1 for line in text.splitlines() if line.startswith("  ") and not line.endswith(":")))
        return text, meta

    monkeypatch.setattr(lower, "lower_kernel", counting)
    monkeypatch.setattr(native, "load_cached", lambda key, entry: None)
    result = run(source, defines=defines, engine="jit")
    return result, sizes[0]


def test_a_store_into_a_slice_growing_with_the_index_compiles_as_a_loop(monkeypatch):
    """Run C's hang: the loop over i compiles once, with the inner loop; only the copy into O[: i+1, :]
    is lowered per index (N = 32 here). The engines agree (the mutant computes something else than its spec: both
    say so the same way)."""
    a = run(GROWING_STORE, defines=SMALL, engine="interp")
    b, size = jit_and_size(GROWING_STORE, SMALL, monkeypatch)
    assert b.engine == "jit" and b.fallback is None
    same_run(a, b)
    assert not b.ok
    # the unrolled lowering was 5,200 instructions per index (166,000 here); a loop plus 32 copies
    assert size < 15_000


BODY_AFTER = """
use hw.edge
kernel k(Q: f16[N, d]) -> (O: f16[N, d]) on edge spec O = Q {
  dim N = 8, d = 8
  for i in 0 .. N {
    acc = zeros([1, d])
    for j in 0 .. i + 1 {
      r = load Q[j : j + 1, :] -> sram
      acc = acc + r
    }
    BODY
  }
}
"""


@pytest.mark.parametrize("body", [
    # the rest of the body from the first growing slice is lowered per index: names it binds die there
    "p = load Q[0 : i + 1, :] -> sram\n    s = rowsum(p.T)\n    store acc + s[None, :] * 0 -> O[i : i + 1, :]",
    # the first part needs the index static (a shape from it): the loop is lowered whole per index
    "z = zeros([i + 1, d])\n    store z + acc -> O[0 : i + 1, :]",
    # two growing stores, the value computed once
    "store acc -> O[0 : i + 1, :]\n    store acc * 2 -> O[i : N, :]",
])
def test_loops_split_at_a_growing_slice_cost_what_the_interpreter_says(body):
    source = BODY_AFTER.replace("BODY", body)
    a = run(source, engine="interp", check=False)
    b = run(source, engine="jit", check=False)
    assert b.engine == "jit" and b.fallback is None, b.fallback
    same_run(a, b)


def test_a_kernel_over_the_code_budget_runs_in_the_interpreter_and_says_why(monkeypatch):
    monkeypatch.setattr(budget, "MAX_INSTRUCTIONS", 3_000)
    t0 = time.monotonic()
    b = run(GROWING_STORE, defines=SMALL, engine="jit")
    assert b.engine == "interp" and "over the JIT's budget of 3,000" in b.fallback
    assert time.monotonic() - t0 < 30
    same_run(run(GROWING_STORE, defines=SMALL, engine="interp"), b)


LIMIT = 4.0


def _stuck_optimizer(module) -> None:
    """LLVM busy for minutes, in native code: no Python signal handler runs until it returns."""
    ctypes.CDLL(None).sleep(120)


@pytest.mark.parametrize("thread", [False, True], ids=["main thread", "other thread"])
def test_timeout_ends_llvm_at_the_deadline(monkeypatch, thread):
    """In the main thread the command's alarm cannot interrupt native code, in another there is no
    alarm at all: either way the compile, in its child process, ends at the deadline with E1004."""
    run(GROWING_STORE, defines=SMALL, engine="interp", verify="off")  # the parse caches: not timed
    monkeypatch.setattr(native, "optimize", _stuck_optimizer)
    children = []
    fork = os.fork

    def recording_fork():
        pid = fork()
        if pid:
            children.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", recording_fork)
    outcome = {}

    def go():
        t0 = time.monotonic()
        try:
            run(GROWING_STORE, defines=SMALL, engine="jit", timeout=LIMIT)
        except AttnError as exc:
            outcome["codes"] = [d.code for d in exc.diagnostics]
            outcome["message"] = exc.diagnostics[0].message
        outcome["seconds"] = time.monotonic() - t0

    if thread:
        t = threading.Thread(target=go)
        t.start()
        t.join(30)
    else:
        go()
    assert outcome["codes"] == ["E1004"] and "compiling" in outcome["message"]
    assert outcome["seconds"] < LIMIT + 1.5
    assert len(children) == 1
    with pytest.raises(ChildProcessError):  # the compiling child was killed and reaped
        os.waitpid(children[0], os.WNOHANG)


@pytest.mark.parametrize("how", ["error", "crash"])
def test_llvm_failing_in_its_child_runs_the_interpreter(monkeypatch, how):
    def failing(module):
        if how == "crash":
            os._exit(7)
        raise RuntimeError("LLVM ERROR: something")

    monkeypatch.setattr(native, "optimize", failing)
    b = run(GROWING_STORE, defines=SMALL, engine="jit", timeout=60)
    assert b.engine == "interp"
    assert ("something" if how == "error" else "ended without an object") in b.fallback


def test_the_cli_ends_a_long_compile_by_its_timeout(tmp_path):
    """The real mutant at a size whose compile takes longer than the limit (N = 512: 512 copies of the
    store): `attn run --timeout 1.5` ends in time with E1004, or has compiled and run by then."""
    path = tmp_path / "growing_store.attn"
    path.write_text(GROWING_STORE)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "attnlang", "run", str(path), "-D", "N=512", "-D", "d=16", "-D",
                        "B=1", "--engine", "jit", "--timeout", "1.5", "--verify", "off"],
                       capture_output=True, text=True, env=env, timeout=60)
    seconds = time.monotonic() - t0
    assert "Traceback" not in p.stderr
    assert p.returncode == 0 or (p.returncode == 1 and "error[E1004]" in p.stderr), p.stderr
    assert seconds < 1.5 + 6.0  # Python's start-up comes on top (the compile alone takes over 15 s)
