"""Caches never run what they did not write, and outputs are written safely (issue 21, item 6).

The grammar's tables and parsed files are pickles and the JIT's entries are machine code: a planted or
swapped entry must be ignored (and rebuilt), never loaded. Outputs: fsync before the rename, no temporary
left behind by SIGTERM, a mode that follows the umask."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attnlang.jit import cache as jit_cache

ROOT = Path(__file__).resolve().parents[1]
FLASH = str(ROOT / "examples" / "flash.attn")


class _Plant:
    """Unpickling this makes a folder: proof that a planted pickle ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def attn(cache: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "attnlang", *args], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def entries(cache: Path, name: str) -> list[Path]:
    return sorted(p for p in (cache / "attnlang" / name).iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("keep", [0, 13, 45, "line"])
def test_a_planted_pickle_in_the_grammar_or_parse_cache_never_runs(tmp_path, keep):
    """Each cached pickle is replaced by one that makes a folder, behind the first `keep` bytes of the real
    entry (its header, so a check of the header or of a hash line alone is not enough)."""
    cache, marker = tmp_path / "cache", tmp_path / "planted-ran"
    attn(cache, "check", FLASH)
    planted = entries(cache, "grammar") + entries(cache, "parsed")
    assert len(planted) >= 3  # the grammar's tables, flash.attn, hw.edge
    evil = pickle.dumps(_Plant(marker))
    for path in planted:
        data = path.read_bytes()
        head = data[: data.index(b"\n") + 1] if keep == "line" else data[:keep]
        path.write_bytes(head + evil)
    p = attn(cache, "check", FLASH)
    assert not marker.exists()
    assert p.returncode == 0 and p.stderr == ""
    attn(cache, "run", FLASH, "-D", "N=64")  # the entries were rewritten: they are read back, and nothing ran
    assert not marker.exists()
    assert all(not path.read_bytes().endswith(evil) for path in planted)


def _jit(cache: Path, br: int) -> dict:
    p = attn(cache, "run", FLASH, "-D", "N=128", "-D", f"Br={br}", "--engine", "jit", "--json")
    return json.loads(p.stdout)


def _by_suffix(cache: Path) -> dict[str, list[Path]]:
    """The jit cache's entries by suffix: LLVM's object and description (.o, .json) and, where kernels are
    loaded without LLVM (attnlang/jit/cache.py), the entry holding both (.kernel)."""
    out: dict[str, list[Path]] = {}
    for p in entries(cache, "jit"):
        out.setdefault(p.suffix, []).append(p)
    return out


def test_a_jit_object_copied_under_another_key_is_rebuilt_not_run(tmp_path):
    cache = tmp_path / "cache"
    a = _jit(cache, 32)
    first = _by_suffix(cache)
    b = _jit(cache, 16)
    assert a["cycles"] != b["cycles"]
    both = _by_suffix(cache)
    assert {k: len(v) for k, v in both.items()} == {k: 2 for k in first}
    assert _jit(cache, 16)["jit"]["cached"] == "disk"
    # Each of A's entries under B's name, the name inside a description changed to B's.
    for suffix, paths in both.items():
        a_path, = first[suffix]
        b_path, = (p for p in paths if p != a_path)
        b_path.write_bytes(a_path.read_bytes().replace(a_path.stem.encode(), b_path.stem.encode()))
    again = _jit(cache, 16)
    assert again["jit"]["cached"] is None  # compiled afresh
    assert again["cycles"] == b["cycles"]
    assert _jit(cache, 16)["jit"]["cached"] == "disk"  # and the rewritten entries are good


@pytest.mark.skipif(jit_cache.host() is None, reason="kernels are loaded without LLVM on x86-64 Linux only")
def test_a_kernel_entry_copied_under_another_name_is_refused_and_the_right_one_is_compiled(tmp_path):
    cache = tmp_path / "cache"
    _jit(cache, 32)
    assert set(_by_suffix(cache)) == {".kernel"}  # the object once, in the entry loaded without LLVM
    (a_kernel,) = _by_suffix(cache)[".kernel"]
    b = _jit(cache, 16)
    (b_kernel,) = (p for p in _by_suffix(cache)[".kernel"] if p != a_kernel)
    b_kernel.write_bytes(a_kernel.read_bytes().replace(a_kernel.stem.encode(), b_kernel.stem.encode()))
    again = _jit(cache, 16)  # the HMAC (over the entry's name) refuses A's entry: B is compiled again
    assert again["jit"]["cached"] is None and again["cycles"] == b["cycles"]
    again = _jit(cache, 16)  # and its entry rewritten
    assert again["jit"]["cached"] == "disk" and again["cycles"] == b["cycles"]


def test_a_jit_cache_folder_others_can_write_is_not_used(tmp_path):
    cache = tmp_path / "cache"
    _jit(cache, 32)
    folder = cache / "attnlang" / "jit"
    folder.chmod(0o777)
    try:
        again = _jit(cache, 32)
        assert again["jit"]["cached"] is None
        folder.chmod(0o755)  # the user's own, writable by no one else: used
        assert _jit(cache, 32)["jit"]["cached"] == "disk"
    finally:
        folder.chmod(0o700)


def test_new_cache_folders_are_private_and_a_symlinked_one_is_not_followed(tmp_path):
    cache = tmp_path / "cache"
    attn(cache, "check", FLASH)
    for name in ("", "grammar", "parsed"):
        assert (cache / "attnlang" / name).stat().st_mode & 0o777 == 0o700
    assert (cache / "attnlang" / "key").stat().st_mode & 0o777 == 0o600
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    shutil.rmtree(cache / "attnlang" / "parsed")
    (cache / "attnlang" / "parsed").symlink_to(elsewhere, target_is_directory=True)
    attn(cache, "check", FLASH)
    assert list(elsewhere.iterdir()) == []


# ---------------------------------------------------------------- outputs


def test_save_mode_follows_the_umask(tmp_path, attn_main):
    for mask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        old = os.umask(mask)
        try:
            out = tmp_path / f"o{mask:o}.npy"
            assert attn_main("run", FLASH, "-D", "N=64", "--save", f"O={out}", "--trace", f"{out}.json")[0] == 0
        finally:
            os.umask(old)
        assert out.stat().st_mode & 0o777 == mode
        assert Path(f"{out}.json").stat().st_mode & 0o777 == mode


def test_save_syncs_the_file_before_the_rename(tmp_path, attn_main, monkeypatch):
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(f"replace {Path(b).name}"), real_replace(a, b))[1])
    out = tmp_path / "o.npy"
    assert attn_main("run", FLASH, "-D", "N=64", "--save", f"O={out}")[0] == 0
    at = events.index("replace o.npy")
    assert "fsync" in events[:at]


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32", reason="POSIX signals")
def test_sigterm_while_saving_leaves_no_temporary_file(tmp_path):
    code = ("import sys, time\n"
            "from attnlang.api import save_atomic\n"
            "def slow(f):\n"
            "    f.write(b'partial')\n"
            "    print('writing', flush=True)\n"
            "    time.sleep(60)\n"
            "save_atomic(sys.argv[1], slow)\n")
    target = tmp_path / "out.bin"
    p = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert p.stdout.readline().strip() == "writing"
        assert [x.name for x in tmp_path.iterdir() if x.name.startswith(".out.bin.")]  # the temporary exists
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        if p.poll() is None:
            p.kill()
        p.stdout.close()
    time.sleep(0.05)
    assert list(tmp_path.iterdir()) == []
