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
