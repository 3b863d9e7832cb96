"""Capacity: the checker, peak_bytes, feasible and feasible_many agree with
docs/semantics.md's occupancy rules, worked out by hand for flash.attn, and
with the interpreter's measured peak."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlang.binding import bind, hardware_for
from attnlang.check import check
from attnlang.check.capacity import feasible, feasible_many, peak_bytes
from attnlang.program import load

FLASH = Path(__file__).resolve().parents[2] / "examples" / "flash.attn"
PROG = load(str(FLASH))
KERNEL = PROG.kernels["flash"]
TILES = [8, 16, 32, 64, 128, 256]
SRAM = 512 * 1024


def flash_sram_peak(br: int, bc: int, n: int, d: int = 64) -> int:
    """flash.attn's peak sram bytes, worked out by hand from docs/semantics.md.

    At the start of a key iteration sram holds q (f16, 2 Br d), l (f32, 4 Br),
    acc (f32, 4 Br d) and m: full()'s 4 Br on the first iteration, then the
    previous iteration's m_new (f32 x 2 pipeline copies, 8 Br). The body adds
    k and v (f16 x 2 copies, 4 Bc d each), then per statement: s (f16 x 2,
    4 Br Bc) with the intermediate q @ k.T (2 Br Bc); m_new (8 Br) with
    rowmax(s) (2 Br); p (f32 x 2, 8 Br Bc) with s - m_new[:, None] (4 Br Bc);
    corr (8 Br) with m - m_new (4 Br); the new l with two intermediates
    (4 Br each); the new acc with two intermediates (4 Br d each).
    """
    m = 8 * br if -(-n // bc) >= 2 else 4 * br
    base = 2 * br * d + 4 * br + 4 * br * d + m + 2 * 4 * bc * d
    s, m_new, p, corr = 4 * br * bc, 8 * br, 8 * br * bc, 8 * br
    during = max(
        s + 2 * br * bc,  # s = q @ k.T / sqrt(d)
        s + m_new + 2 * br,  # m_new = max(m, rowmax(s))
        s + m_new + p + 4 * br * bc,  # p = exp(s - m_new[:, None])
        s + m_new + p + corr + 4 * br,  # corr = exp(m - m_new)
        s + m_new + p + corr + 3 * 4 * br,  # l = l * corr + rowsum(p)
        s + m_new + p + corr + 3 * 4 * br * d,  # acc = acc * corr[:, None] + p @ v
    )
    return base + during


def _env(br, bc, n):
    env, _ = bind(KERNEL, {"Br": br, "Bc": bc, "N": n})
    hw, _ = hardware_for(PROG, KERNEL, env)
    return env, hw


@settings(max_examples=40, deadline=None)
@given(br=st.sampled_from(TILES), bc=st.sampled_from(TILES), n=st.sampled_from([128, 256, 512]))
def test_flash_tilings_follow_the_formula(br, bc, n):
    env, hw = _env(br, bc, n)
    want = flash_sram_peak(br, bc, n)
    assert peak_bytes(PROG, KERNEL, env, hw)["sram"] == want
    fits = want <= SRAM
    assert feasible(PROG, KERNEL, env, hw) == fits
    codes = {d.code for d in check(PROG, {"Br": br, "Bc": bc, "N": n})}
    assert ("E0801" in codes) == (not fits)


def test_feasible_many_matches_one_at_a_time():
    grid = [(br, bc, n) for br in TILES for bc in TILES for n in (128, 256, 512)]
    br, bc, n = (np.array(x) for x in zip(*grid, strict=True))
    env, hw = _env(64, 64, 256)
    many = feasible_many(PROG, KERNEL, {"Br": br, "Bc": bc, "N": n}, hw)
    one = [flash_sram_peak(*g) <= SRAM for g in grid]
    assert many.tolist() == one
    assert 0 < many.sum() < len(grid)


def test_where_constraints_prune():
    prog = load(str(Path(__file__).resolve().parents[2] / "examples" / "mmee.attn"))
    k = prog.kernels["mmee"]
    env, _ = bind(k)
    hw, _ = hardware_for(prog, k, env)
    ok = feasible_many(prog, k, {"Bc": np.array([64, 64, 64]), "Bv": np.array([32, 48, 32]),
                                 "N": np.array([256, 256, 256]), "order": np.array(["q_outer", "q_outer", "kv_outer"]),
                                 "s_at": np.array(["tile", "tile", "row"])}, hw)
    assert ok.tolist() == [True, False, False]  # Bc % Bv != 0; kv_outer needs s_at == tile


def test_peak_matches_the_interpreter():
    from attnlang.api import run

    for path, defines in ((FLASH, {"N": 128, "Br": 32, "Bc": 64}),
                          (FLASH.parent / "flat.attn", {"N": 256, "Br": 16, "Bc": 64})):
        prog = load(str(path))
        k = next(iter(prog.kernels.values()))
        env, _ = bind(k, defines)
        hw, _ = hardware_for(prog, k, env)
        measured = run(str(path), defines=defines, check=False).memories
        assert peak_bytes(prog, k, env, hw) == {m: v["peak_bytes"] for m, v in measured.items()}


def test_one_candidate_walk_equals_the_array_walk():
    """The checker's walk (one candidate, plain Python numbers) gives the array walk's numbers exactly,
    on every kernel of the examples and the standard library, at its defaults."""
    from attnlang.check import scope
    from attnlang.check.capacity import _walk
    from attnlang.check.occupancy import Arrays, One

    root = Path(__file__).resolve().parents[2]
    walked = 0
    for path in sorted([*root.glob("examples/*.attn"), *root.glob("attnlang/stdlib/**/*.attn"),
                        *root.glob("tests/check/programs/E08*.attn")]):
        prog = load(str(path))
        for k in prog.kernels.values():
            env, _ = bind(k)
            hw, _ = hardware_for(prog, k, env)
            if hw is None:
                continue
            env = scope.full_env(k, env)
            one = _walk(k, env, hw, 1, explain=True)
            two = _walk(k, {n: v if isinstance(v, str) else np.array([v, v]) for n, v in env.items()}, hw, 2)
            assert one.xp is One and isinstance(two.xp, Arrays)
            for m in hw.memories:
                for a, b in ((one.peak[m], two.peak[m]), (one.solo[m], two.solo[m])):
                    assert a.shape == (1,) and b.tolist() == [a[0], a[0]], (path.name, k.name, m)
            walked += 1
    assert walked > 10
