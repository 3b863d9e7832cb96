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

from dataclasses import dataclass

import numpy as np

from .space import Part, evaluate_points
from .stage1 import Block, evaluate_block

#: Stage 2 re-ranks this many of stage 1's best (and its Pareto front). Measured (docs/explore.md): the
#: detailed best is at stage-1 rank 60 or better on every example (bench/bench_explore_stages.py), so 512
#: leaves a wide margin; stage 2 costs one detailed walk per combination among the survivors either way.
DEFAULT_K = 512


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
    def of(cls, b: Block, clock_hz: float) -> "Pool":
        n = len(b.index)
        return cls(np.full(n, b.kernel), np.asarray(b.combo, dtype=np.int64), np.asarray(b.index, dtype=np.int64),
                   b.cycles, b.energy_pj, b.cycles / clock_hz)

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
    obj, second = objective(p, minimize)
    if len(p) > 4 * k + 64:  # only the candidates as good as the k-th can be among the best k
        cut = np.partition(obj, k - 1)[k - 1]
        near = obj <= cut
        by = np.lexsort((p.energy_pj, p.seconds))
        front_sel = by[_front(p.energy_pj[by])]
        near[front_sel] = True
        p = p.take(np.flatnonzero(near))
        obj, second = objective(p, minimize)
    order = np.lexsort((p.index, p.combo, p.kernel, second, obj))
    keep = np.zeros(len(p), dtype=bool)
    keep[order[:k]] = True
    by = np.lexsort((p.index, p.combo, p.kernel, p.energy_pj, p.seconds))
    keep[by[_front(p.energy_pj[by])]] = True
    return p.take(order[keep[order]])


def _front(energy_sorted: np.ndarray) -> np.ndarray:
    """Of points sorted by time, then energy: those that lower the best energy so far."""
    out = np.ones(len(energy_sorted), dtype=bool)
    if len(energy_sorted) > 1:
        out[1:] = energy_sorted[1:] < np.minimum.accumulate(energy_sorted)[:-1]
    return out


def stage1_tasks(sps, workers: int) -> list:
    """Stage 1's blocks: one per mapping combination (the hardware params are arrays in it), split along
    the layout's longest axis for workers."""
    from .explore import Task, chunked

    out = []
    for ki, sp in enumerate(sps):
        size = sp.grid_size * sp.hw_size
        for mi in range(len(sp.mapping_combos())):
            out.append(Task(ki, mi, None, size))
    return chunked(sps, out, workers)


def stage1_task(sps, task) -> tuple[Block, Pool]:
    """One block of stage 1: its counts and what it keeps."""
    sp = sps[task.kernel]
    b = evaluate_block(sp, task.kernel, task.combo, task.chunk)
    return b, Pool.of(b, sp.hw.clock_hz)


def stage2(sps, survivors: Pool) -> list[Part]:
    """The detailed model over the survivors, one walk per combination."""
    parts = []
    keys = sorted(set(zip(survivors.kernel.tolist(), survivors.combo.tolist(), strict=True)))
    for ki, ci in keys:
        sel = (survivors.kernel == ki) & (survivors.combo == ci)
        index = np.unique(survivors.index[sel])
        parts.append(evaluate_points(sps[ki], ki, ci, index))
    return parts
