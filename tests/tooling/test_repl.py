"""`attn repl` driven through a pipe (no terminal: no prompts, no prompt_toolkit), and once
through a pseudo-terminal to see the interactive prompt, continuation and history."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("attnlang") is None:
    sys.path.insert(0, str(ROOT))

TIMEOUT_S = 60


def repl(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {}))
    return subprocess.run([sys.executable, "-m", "attnlang", "repl", *args], input=script, capture_output=True,
                          text=True, timeout=TIMEOUT_S, cwd=str(ROOT), env=full_env)


def stat(out: str, name: str) -> float:
    return float(re.search(rf"{name} (-?[\d.]+(?:e[-+]?\d+)?)", out).group(1))


def test_the_scripted_session_of_the_brief():
    r = repl(":hw edge\n:tensor Q f16[64, 64]\nq = load Q -> sram\nq @ q.T\n")
    assert r.returncode == 0 and r.stderr == ""
    out = r.stdout
    assert "hardware edge: clock 940 MHz" in out
    assert "memory sram: capacity 512 KiB; bandwidth 256 B/cycle" in out
    assert "unit pe: matrix 32 x 32, dataflow os, fill each; 0.3 pJ per MAC; memory sram" in out
    assert "q: f16[64, 64] in sram" in out
    # The product is symmetric, its diagonal is each row's squared norm: the largest values.
    q = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float16).astype(np.float32)
    product = out[out.index("\nf16[64, 64] in sram"):]
    assert stat(product, "max") == pytest.approx(float((q @ q.T).max()), rel=2e-3)
    # 64 x 64 x 64 MACs at 0.3 pJ each on the PE array: 78.6 nJ.
    assert "pe 78.6 nJ" in product
    costs = re.findall(r"cost   ([\d,]+) cycles \(the session now ends at cycle ([\d,]+), \+([\d,]+)\)", out)
    assert len(costs) == 2 and all(int(c[0].replace(",", "")) > 0 for c in costs)
    first_end, second_end = (int(c[1].replace(",", "")) for c in costs)
    assert second_end > first_end  # the matmul waits for the load: the session's clock carries on


def test_an_error_is_a_diagnostic_and_the_session_goes_on():
    r = repl(":tensor Q f32[32, 64]\nq = load Q -> sram\nq @ q\nz = nothing + 1\nrowsum(q)\n")
    assert r.returncode == 0
    assert "<repl>:1:1: error[E1011]: cannot multiply [32, 64] @ [32, 64]: inner dimensions differ" in r.stderr
    assert "    1 | q @ q\n      | ^~~~~" in r.stderr
    assert "<repl>:1:5: error[E1010]: 'nothing' has no value here" in r.stderr
    assert "Traceback" not in r.stderr
    assert "f32[32] in sram" in r.stdout  # the line after the errors still ran


def test_multi_line_blocks_and_brackets():
    script = """\
:tensor K f32[64, 16]
q = load K[0:8, :] -> sram
acc = zeros([8, 8])
for j in 0 .. 64 by 8 {
  k = load K[j : j+8, :] -> sram
  acc += q @ k.T
}
sum(
  acc
)
"""
    r = repl(script)
    assert r.returncode == 0 and r.stderr == ""
    k = np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32)
    want = sum(k[:8] @ k[j:j + 8].T for j in range(0, 64, 8))
    parts = r.stdout.split("acc: f32[8, 8] in sram")
    assert len(parts) == 3  # zeros, then the loop's updates
    assert stat(parts[2], "mean") == pytest.approx(float(want.mean()), rel=1e-3, abs=1e-3)
    total = r.stdout.split("f32[] in sram")  # sum( ... ) over three lines
    assert len(total) == 2 and stat(total[1], "mean") == pytest.approx(float(want.sum()), rel=1e-3)


def test_an_unclosed_block_at_the_end_of_input():
    r = repl(":tensor Q f32[8, 8]\nfor i in 0 .. 2 {\n  x = load Q -> sram\n")
    assert r.returncode == 0
    assert "error[E0002]: unexpected end of input: expected '}' to close the '{' at 1:17" in r.stderr


def test_declarations_typed_at_the_prompt_and_run():
    script = """\
kernel twice(X: f32[16, 16]) -> (Y: f32[16, 16])
  on edge
  spec Y = X * 2
{
  x = load X -> sram
  store x * 2 -> Y
}
:run twice
:check
"""
    r = repl(script)
    assert r.returncode == 0, r.stderr
    assert "kernel twice on edge" in r.stdout
    assert "verify     Y: ok" in r.stdout
    assert "no problems (1 kernels" in r.stdout


def test_a_loaded_file_its_kernels_and_commands():
    r = repl(":run flash -D N=128\n:hw\n:vars\n:nonsense\n:help\n:quit\n2 + 2\n", "examples/flash.attn")
    assert r.returncode == 0
    assert "loaded examples/flash.attn: kernel flash on edge" in r.stdout
    assert "kernel flash on edge   N=128 d=64 Br=64 Bc=64" in r.stdout
    assert "verify     O: ok" in r.stdout
    assert "hardware edge: clock 940 MHz" in r.stdout
    assert "error[E0109]: unknown command ':nonsense' (:help lists them)" in r.stderr
    assert ":tensor NAME f16[64, 64]" in r.stdout
    assert "4" not in r.stdout.split(":quit")[-1].splitlines()  # nothing runs after :quit


def test_a_missing_file_is_a_usage_error():
    r = repl("", "no/such/file.attn")
    assert r.returncode == 2 and "no such file" in r.stderr


def test_completion_offers_keywords_builtins_and_names_in_scope():
    from attnlang.repl.session import Session

    s = Session(out=open(os.devnull, "w"), err=open(os.devnull, "w"))
    s.execute(":tensor Query f32[4, 4]")
    s.execute("qv = load Query -> sram")
    assert s.complete("x = row") == ["rowmax", "rowmin", "rowsum"]
    assert {"qv", "Query"} <= set(s.complete("x = "))
    assert "sram" in s.complete("y = load Query -> s")
    assert s.complete(":h") == [":help", ":hw"]
    assert "cloud" in s.complete(":hw c")
    assert s.complete("for i in 0 .. 4 @pi") == ["@pipeline"]


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_interactive_prompt_continuation_and_history(tmp_path):
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: attn repl on a terminal
        os.environ.update(XDG_DATA_HOME=str(tmp_path), PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm",
                          PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        os.execvp(sys.executable, [sys.executable, "-m", "attnlang", "repl"])

    def read_until(pattern: str) -> str:
        buf, deadline = "", time.monotonic() + 20
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                buf += chunk.decode(errors="replace")
                if re.search(pattern, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf)):
                    return buf
        raise AssertionError(f"no {pattern!r} in {buf!r}")

    status = None
    try:
        read_until("attn>")
        os.write(fd, b"2 *\r")
        read_until(r"\.\.\.")  # the expression is not complete: a continuation line
        os.write(fd, b"21\r")
        read_until(r"42[\s\S]*attn>")  # the answer, then a fresh prompt that reads raw keys
        os.write(fd, b"\x04")  # Ctrl-D
        status = None
        deadline = time.monotonic() + 20
        while status is None and time.monotonic() < deadline:
            done, code = os.waitpid(pid, os.WNOHANG)
            status = code if done else None
            time.sleep(0.05)
    finally:
        if status is None:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
    assert status is not None and os.waitstatus_to_exitcode(status) == 0
    assert "2 *\n+21" in (tmp_path / "attnlang" / "history").read_text()


def test_a_tensor_larger_than_the_machine_is_refused_and_warnings_stay_quiet():
    r = repl(":tensor Q f16[100000, 100000]\n:tensor K f32[4, 4]\nk = load K -> sram\nlog(k - 10)\n")
    assert r.returncode == 0
    assert "error[E0109]: :tensor Q: 10,000,000,000 elements need more host memory than this machine has" in r.stderr
    assert "RuntimeWarning" not in r.stderr and "Traceback" not in r.stderr
    assert "(16 not finite)" in r.stdout  # log of negative numbers: NaN, as in a run, without a warning


def test_explore_in_a_session_writes_to_the_sessions_streams():
    import io

    from attnlang.repl import scripted
    from attnlang.repl.session import Session

    out, err = io.StringIO(), io.StringIO()
    scripted(Session(out, err), io.StringIO(f":load {ROOT / 'examples' / 'flash.attn'}\n:explore -D N=64\n"
                                            ":explore -D zz=1\n"))
    assert "energy-latency Pareto front" in out.getvalue()
    # a usage error is the session's own: reported once, the session goes on
    assert err.getvalue().count("-D zz: no kernel declares a dimension or param 'zz'") == 1


def test_names_get_the_checkers_did_you_mean_at_the_prompt():
    r = repl(":tensor Q f32[8, 8]\nq = load Q -> sarm\nq = load Q -> sram\nx = softmax(q) on vecc\n"
             ":hw egde\nsofmax(q)\n")
    assert r.returncode == 0
    assert "error[E1008]: hardware 'edge' has no memory 'sarm'; did you mean 'sram'?" in r.stderr
    assert "error[E0501]: hardware 'edge' has no unit 'vecc'; did you mean 'vec'?" in r.stderr
    assert "error[E0109]: no hardware 'egde'; did you mean 'edge'?" in r.stderr
    assert "<repl>:1:1: error[E1017]: unknown function 'sofmax'; did you mean 'softmax'?" in r.stderr


def test_an_unknown_function_is_unknown_whatever_its_arguments():
    r = repl("oops(\n)\n")
    assert r.returncode == 0
    assert "<repl>:1:1: error[E1017]: unknown function 'oops'" in r.stderr
    assert "needs a tensor argument" not in r.stderr


def test_an_unclosed_brace_continues_even_after_a_mistake_in_its_first_line():
    r = repl("fro i in 0 .. 4 {\n  y = 1\n}\nz = zeros([2])\n")
    assert r.returncode == 0
    # One error, for the whole block once it is closed; the brace's lines are not errors of their own.
    assert r.stderr.count("error[") == 1, r.stderr
    assert "<repl>:1:5: error[E0001]" in r.stderr
    assert "z: f32[2] in sram" in r.stdout
