"""Shared fixtures for the whole test suite.

- ``repo_root``: the checkout's root folder.
- ``attn_file``: a test that takes this argument runs once per example and
  stdlib program (``ATTN_FILES``); ``attn_files`` is the whole list.
- ``attn_main``: runs the command line in-process (``attnlang.cli.main``) and
  returns ``(status, stdout, stderr)``.
- ``run_attn``: runs ``python -m attnlang ...`` in a subprocess (for what
  only a real process shows: exit status, startup, stray output).
- ``golden``: compares text with ``tests/golden/<module>/<test>.txt``; run
  pytest with ``--update-golden`` to write the files instead, then review the
  diff.

Hypothesis draws new examples on every run, which is how its properties find
new bugs. With ``HYPOTHESIS_PROFILE=ci`` (as `.ci/run` sets it) the draws
are derandomized: CI gives the same answer for the same code.

A test skips only when it needs a tool that is optional for users (Emacs,
node, python-sat, matplotlib). `.ci/run` installs every one of them and sets
``ATTN_NO_SKIPS=1``, which turns any skip into a failure: in CI every test runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"

#: Every program that ships: the examples and the standard library.
ATTN_FILES: list[Path] = sorted([*ROOT.glob("examples/*.attn"), *ROOT.glob("attnlang/stdlib/**/*.attn")])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("ATTN_NO_SKIPS") and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped where ATTN_NO_SKIPS is set (CI installs every optional tool): {reason}"


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/golden/ files from the current output instead of comparing")


def pytest_generate_tests(metafunc):
    if "attn_file" in metafunc.fixturenames:
        metafunc.parametrize("attn_file", ATTN_FILES, ids=[str(p.relative_to(ROOT)) for p in ATTN_FILES])


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def attn_files() -> list[Path]:
    """Every example and stdlib program (ATTN_FILES)."""
    return list(ATTN_FILES)


@pytest.fixture
def attn_main(capsys):
    """Run ``attn ARGS...`` in this process: returns (exit status, stdout, stderr)."""
    from attnlang.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()  # drop anything printed before
        status = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def run_attn():
    """Run ``python -m attnlang ARGS...`` in a subprocess; returns the CompletedProcess."""

    def run(*args: str, cwd: Path | str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "attnlang", *map(str, args)], cwd=cwd, capture_output=True,
                              text=True, timeout=timeout)

    return run


def _golden_path(request) -> Path:
    module = request.node.module.__name__.rpartition(".")[2].removeprefix("test_")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    return GOLDEN / module / f"{name}.txt"


@pytest.fixture
def golden(request):
    """``golden(text)``: assert text equals the test's golden file (or write it with --update-golden)."""
    update = request.config.getoption("--update-golden")

    def check(text: str) -> None:
        path = _golden_path(request)
        if not text.endswith("\n"):
            text += "\n"
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        if not path.exists():
            pytest.fail(f"no golden file {path.relative_to(ROOT)}; run pytest --update-golden and review it")
        expected = path.read_text(encoding="utf-8")
        assert text == expected, f"output differs from {path.relative_to(ROOT)} (pytest --update-golden rewrites it)"

    return check
