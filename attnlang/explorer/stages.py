"""The two-stage search: stage 1 (stage1.py) over every candidate, the detailed model over its best k.

Stage 1 costs the candidates block by block (a combination of the split
params, or a chunk of its layout) and keeps, from each block, only what can
still matter: the best k by the objective and the points of the
stage-1 energy-latency Pareto front. Memory stays bounded by the size of
one block plus k, whatever the size of the space. Stage 2 walks the
detailed model (analytic.py) over the survivors, grouped by combination,
prunes what the detailed peaks do not fit, and ranks them as the exhaustive
search ranks its candidates.

The reduction is deterministic — candidates are ordered by (objective,
second objective, kernel, combination, grid index) — so the blocks may be
costed in any order, by any number of workers, with the same result.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .space import Part, evaluate_points
from .stage1 import Block, blocks, evaluate_block
from .tasks import Task, chunked

#: Stage 2 re-ranks this many of stage 1's best (and its Pareto front). Measured (docs/explore.md,
#: bench/bench_explore_stages.py): the detailed best is at stage-1 rank 588 at most (mmee at N = 256; 278 at
#: N = 512, 60 at N = 1024, under 10 on the other examples). Stage 2 costs one detailed walk per combination
#: among the survivors.
DEFAULT_K = 1024


@dataclass
class Pool:
    """The candidates kept so far: parallel arrays."""

    kernel: np.ndarray
    combo: np.ndarray
    index: np.ndarray
    cycles: np.ndarray
    energy_pj: np.ndarray
    seconds: np.ndarray

    @classmethod
    def empty(cls) -> "Pool":
        z = np.zeros(0)
        i = np.zeros(0, dtype=np.int64)
        return cls(i, i, i, z, z, z)

    @classmethod
    def of(cls, b: Block, clock_hz: float, k: int, minimize: str) -> "Pool":
        """What a reduce of b's candidates could keep (their places worked out for those only)."""
        seconds = b.cycles / clock_hz
        sel = _near(b.cycles, b.energy_pj, seconds, k, minimize)
        combo, index = b.ids(sel)
        return cls(np.full(len(index), b.kernel), combo, index, b.cycles[sel], b.energy_pj[sel], seconds[sel])

    def __len__(self) -> int:
        return len(self.index)

    def take(self, sel) -> "Pool":
        return Pool(self.kernel[sel], self.combo[sel], self.index[sel], self.cycles[sel], self.energy_pj[sel],
                    self.seconds[sel])

    @staticmethod
    def join(pools: list["Pool"]) -> "Pool":
        return Pool(*[np.concatenate([getattr(p, f) for p in pools])
                      for f in ("kernel", "combo", "index", "cycles", "energy_pj", "seconds")])


def objective(p: Pool, minimize: str) -> tuple[np.ndarray, np.ndarray]:
    """(what is minimized, what breaks its ties)."""
    if minimize == "energy":
        return p.energy_pj, p.seconds
    if minimize == "edp":
        return p.seconds * p.energy_pj, p.energy_pj
    return p.seconds, p.energy_pj


def reduce(p: Pool, k: int, minimize: str) -> Pool:
    """The best k of p by the objective, and p's energy-latency Pareto front, in a canonical order."""
    if len(p) == 0:
        return p
    sel = _near(p.cycles, p.energy_pj, p.seconds, k, minimize)
    if len(sel) < len(p):
        p = p.take(sel)
    obj, second = objective(p, minimize)
    order = np.lexsort((p.index, p.combo, p.kernel, second, obj))
    keep = np.zeros(len(p), dtype=bool)
    keep[order[:k]] = True
    by = np.lexsort((p.index, p.combo, p.kernel, p.energy_pj, p.seconds))
    keep[by[_front(p.energy_pj[by])]] = True
    return p.take(order[keep[order]])


def _near(cycles, energy, seconds, k: int, minimize: str) -> np.ndarray:
    """The candidates a reduce could keep: those as good as the k-th by the objective, and those that may be
    on the Pareto front (all of them when there are few)."""
    n = len(cycles)
    if n <= 4 * k + 64:
        return np.arange(n)
    obj = {"latency": seconds, "energy": energy, "edp": seconds * energy}[minimize]
    cut = np.partition(obj, k - 1)[k - 1]
    return np.flatnonzero((obj <= cut) | _maybe_front(seconds, energy, k))


def _maybe_front(seconds, energy, k: int) -> np.ndarray:
    """A mask that holds every point of the Pareto front, found without sorting every point. A point is on
    no front when the fastest point or the least-energy one beats it on both counts; of those left (the
    box between them), when a staircase of steps — the front of the k fastest and k least-energy among
    them — has a step as fast and as cheap as it, and better on one count. Exact ties with the corners
    and the steps stay, so the canonical choice among equal points is made later, whatever the blocks."""
    i, j = int(np.argmin(seconds)), int(np.argmin(energy))
    box = (energy < energy[i]) & (seconds < seconds[j])
    out = box | ((seconds == seconds[i]) & (energy == energy[i])) | ((seconds == seconds[j]) & (energy == energy[j]))
    inside = np.flatnonzero(box)
    if len(inside) <= 4 * k:
        return out
    sec, en = seconds[inside], energy[inside]
    few = np.unique(np.concatenate([np.argpartition(sec, k - 1)[:k], np.argpartition(en, k - 1)[:k]]))
    by = few[np.lexsort((en[few], sec[few]))]
    steps = by[_front(en[by])]
    s_steps, e_steps = sec[steps], en[steps]  # seconds increase, energy decreases
    at = np.searchsorted(s_steps, sec, side="right") - 1  # the last step as fast or faster
    keep = np.ones(len(inside), dtype=bool)
    has = at >= 0
    step = at[has]
    keep[has] = (en[has] < e_steps[step]) | ((en[has] == e_steps[step]) & (sec[has] == s_steps[step]))
    out[inside[~keep]] = False
    return out


def _front(energy_sorted: np.ndarray) -> np.ndarray:
    """Of points sorted by time, then energy: those that lower the best energy so far."""
    out = np.ones(len(energy_sorted), dtype=bool)
    if len(energy_sorted) > 1:
        out[1:] = energy_sorted[1:] < np.minimum.accumulate(energy_sorted)[:-1]
    return out


def stage1_tasks(sps, workers: int) -> list:
    """Stage 1's blocks: per mapping combination, per value of the leading hardware params that keep a
    block under stage1.BLOCK candidates (the others are arrays in it), per chunk of its layout; split
    further along the layout for workers."""
    out = []
    for ki, sp in enumerate(sps):
        fixed, pieces = blocks(sp)
        sizes = [len(a.values) for a in sp.hw_split]
        size = sp.grid_size * int(np.prod(sizes[fixed:]))
        n = sp.layout.shape[sp.layout.chunk_axis] if sp.layout.axes else 1
        pieces = min(pieces, n)
        bounds = np.linspace(0, n, pieces + 1).astype(int)
        for mi in range(len(sp.mapping_combos())):
            for lead in itertools.product(*[range(k) for k in sizes[:fixed]]):
                for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                    if b > a:
                        out.append(Task(ki, mi, slice(int(a), int(b)) if pieces > 1 else None,
                                        size * (b - a) // n, lead))
    return chunked(sps, out, workers)


def stage1_task(sps, task, k: int, minimize: str) -> tuple[Block, Pool]:
    """One block of stage 1: its counts and what it keeps (the best k and the front)."""
    sp = sps[task.kernel]
    b = evaluate_block(sp, task.kernel, task.combo, task.chunk, task.lead)
    return b, reduce(Pool.of(b, sp.hw.clock_hz, k, minimize), k, minimize)


def stage2(sps, survivors: Pool, progress=None, imap=None) -> list[Part]:
    """The detailed model over the survivors, one walk per combination (spread by imap(fn, jobs, small),
    which yields fn(job, spaces) in order, over workers); progress(done, total) after each."""
    jobs = []
    for ki, ci in sorted(set(zip(survivors.kernel.tolist(), survivors.combo.tolist(), strict=True))):
        sel = (survivors.kernel == ki) & (survivors.combo == ci)
        jobs.append((ki, ci, np.unique(survivors.index[sel])))
    parts = []
    for part in (imap(stage2_job, jobs, small=True) if imap is not None else (stage2_job(j, sps) for j in jobs)):
        parts.append(part)
        if progress is not None:
            progress(len(parts), len(jobs))
    return parts


def stage2_job(job: tuple, sps) -> Part:
    """One combination's survivors through the detailed model."""
    ki, ci, index = job
    return evaluate_points(sps[ki], ki, ci, index)
