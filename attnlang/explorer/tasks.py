"""The pieces of work a search spreads over workers: a combination of the split params, or a chunk of it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .space import KernelSpace, Stage, combo_ruled_out


@dataclass
class Task:
    kernel: int
    combo: int  # stage 1: the mapping combination (KernelSpace.mapping_combos)
    chunk: slice | None
    size: int
    #: stage 1: the index of each leading hardware param fixed in this block (the others are arrays)
    lead: tuple = ()


def tasks(sps: list[KernelSpace], workers: int) -> tuple[list[Task], list[Stage]]:
    """The pieces of work: one per combination not ruled out by `where`, chunked for workers."""
    out: list[Task] = []
    skipped: list[Stage] = []
    for ki, sp in enumerate(sps):
        for ci, combo in enumerate(sp.combos()):
            ruled = combo_ruled_out(sp, combo)
            if ruled is not None:
                skipped.append(ruled)
                continue
            out.append(Task(ki, ci, None, sp.grid_size))
    return chunked(sps, out, workers), skipped


def chunked(sps: list[KernelSpace], out: list[Task], workers: int) -> list[Task]:
    """With workers and fewer than 4 tasks per worker, each task split along its layout's longest axis."""
    if workers > 1 and out and len(out) < 4 * workers:
        split = []
        for t in out:
            lay = sps[t.kernel].layout
            n = max(1, lay.shape[lay.chunk_axis]) if lay.axes else 1
            pieces = min(n, max(1, (4 * workers) // len(out)))
            bounds = np.linspace(0, n, pieces + 1).astype(int)
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                if b > a:
                    split.append(Task(t.kernel, t.combo, slice(int(a), int(b)) if pieces > 1 else None,
                                      t.size * (b - a) // n, t.lead))
        out = split
    return out
