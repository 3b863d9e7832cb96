"""The campaign's runner (bench/fuzz_campaign.py): a mutant that hangs is killed at its deadline and
counted as a hang, one whose process dies is counted as a crash, and neither stops the others."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import fuzz_campaign  # noqa: E402


def test_hangs_and_crashes_are_counted_and_the_rest_run(monkeypatch):
    real = fuzz_campaign._one

    def one(job):
        if job[1] == 1:
            time.sleep(60)  # past the deadline: killed
        if job[1] == 2:
            os._exit(3)  # dies without answering
        return real(job)

    monkeypatch.setattr(fuzz_campaign, "_one", one)
    t0 = time.monotonic()
    results = {r[0]: r[4] for r in fuzz_campaign.run_all([(5, i, False, 5.0) for i in range(4)], 2, 2.0, 4.0)}
    assert time.monotonic() - t0 < 30
    assert sorted(results) == [0, 1, 2, 3]
    assert results[1].check == "hang"
    assert results[2].check.startswith("crash") and results[2].internal
    assert not results[0].internal and not results[3].internal


def test_an_engine_run_that_ends_past_its_timeout_is_counted_late(monkeypatch):
    """A run that overran its --timeout and then ended (native code that no signal stopped) is not a
    hang to the runner, but the issue's target counts it: outcome() records it as late."""
    import fuzzing

    def slow_run(text, engine, defines, timeout):
        time.sleep(timeout + fuzzing.LATE_S + 0.05)
        return "ok", None

    monkeypatch.setattr(fuzzing, "LATE_S", 0.05)
    monkeypatch.setattr(fuzzing, "_run", slow_run)
    o = fuzzing.outcome(fuzzing.EXAMPLES["flash.attn"], engines=("interp",), timeout=0.1)
    assert len(o.late) == 1 and o.late[0].startswith("interp (ok) took")
    monkeypatch.setattr(fuzzing, "_run", lambda text, engine, defines, timeout: ("ok", None))
    assert fuzzing.outcome(fuzzing.EXAMPLES["flash.attn"], engines=("interp",), timeout=0.1).late == []
