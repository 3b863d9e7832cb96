"""How the model lays out a combination's grid: only the candidates that can pass `where`.

A kernel space's grid (space.KernelSpace.grid) is the Cartesian product of
the grid params' domains, one open-grid axis each. The model need not cost
the candidates that a `where` constraint on grid params alone rules out, so
it walks a *layout* of the grid instead:

- the params of such a constraint share one axis, the tuples of their values
  that pass it (mmee's `where Bc % Bv == 0`: 51 (Bc, Bv) pairs, not 9 x 8);
- a param alone keeps the values that pass its own constraints
  (mas_attention's `where N % Br == 0`);
- the axes go shortest first, so that the innermost one, along which NumPy's
  loops run, is the longest (an operation between a whole-grid array and one
  over a few params then runs in long strides).

Each point of the layout is one candidate of the grid: `Layout.full` gives
its flat index there, so results read as if the grid had been walked. A
candidate's costs do not depend on the layout: every array operation of the
model is elementwise over candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.statics import aeval
from ..static import free_names


@dataclass
class LayoutAxis:
    names: tuple[str, ...]
    columns: tuple[np.ndarray, ...]  # each name's value at each point of this axis
    codes: tuple[np.ndarray, ...]  # the position of that value in the name's domain


@dataclass
class Layout:
    axes: list[LayoutAxis]
    #: the grid's flat index of each layout point, in the layout's C order
    full: np.ndarray
    #: full is increasing: results in layout order are in grid order
    monotonic: bool

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a.columns[0]) for a in self.axes)

    @property
    def chunk_axis(self) -> int:
        """The axis that `--workers` slices a combination along: the longest."""
        return len(self.axes) - 1

    def arrays(self, chunk: slice | None = None) -> dict[str, np.ndarray]:
        """Each grid param as an open-grid array over the layout (sliced along chunk_axis)."""
        m = len(self.axes)
        out = {}
        for i, a in enumerate(self.axes):
            for name, col in zip(a.names, a.columns, strict=True):
                if chunk is not None and i == self.chunk_axis:
                    col = col[chunk]
                shape = [1] * m
                shape[i] = len(col)
                out[name] = col.reshape(shape)
        return out

    def points(self, chunk: slice | None = None) -> np.ndarray:
        """The grid's flat index of each point of the (chunk of the) layout, in C order."""
        if chunk is None:
            return self.full
        return self.full.reshape(self.shape)[(slice(None),) * self.chunk_axis + (chunk,)].reshape(-1)


def build(grid: list, constraints: list, split: set[str], env: dict) -> Layout:
    """The layout of a grid (space.Axis list) under the `where` constraints (expressions).

    env: the fixed dims and params and the symbols; constraints that name a
    split param vary between combinations and are left to evaluate_combo.
    """
    names = [a.name for a in grid]
    position = {n: i for i, n in enumerate(names)}
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    own: list[tuple] = []
    for c in constraints:
        used = free_names(c)
        mine = used & set(names)
        if not mine or used & split:
            continue
        own.append((c, mine))
        first, *rest = sorted(mine, key=position.get)
        for n in rest:
            parent[root(n)] = root(first)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(root(n), []).append(n)
    axes = [_axis([grid[position[n]] for n in members], [c for c, m in own if m <= set(members)], env)
            for members in groups.values()]
    axes.sort(key=lambda a: len(a.columns[0]))  # stable: ties keep the grid's order
    return Layout(axes, *_full(axes, grid))


def _axis(members: list, conds: list, env: dict) -> LayoutAxis:
    """The tuples of the members' values (in grid order) that pass conds."""
    sizes = [len(a.values) for a in members]
    codes = [c.reshape(-1) for c in np.meshgrid(*[np.arange(n) for n in sizes], indexing="ij")]
    columns = [a.array()[code] for a, code in zip(members, codes, strict=True)]
    keep = np.ones(len(codes[0]), dtype=bool)
    if conds:
        local = dict(env)
        local.update({a.name: col for a, col in zip(members, columns, strict=True)})
        for c in conds:
            keep &= np.broadcast_to(np.asarray(aeval(c, local), dtype=bool), keep.shape)
    return LayoutAxis(tuple(a.name for a in members), tuple(col[keep] for col in columns),
                      tuple(code[keep] for code in codes))


def _full(axes: list[LayoutAxis], grid: list) -> tuple[np.ndarray, bool]:
    sizes = [len(a.values) for a in grid]
    stride = {}
    step = 1
    for a, n in zip(reversed(grid), reversed(sizes), strict=True):
        stride[a.name] = step
        step *= n
    m = len(axes)
    full = np.zeros([len(a.columns[0]) for a in axes], dtype=np.int64)
    for i, a in enumerate(axes):
        shape = [1] * m
        shape[i] = len(a.columns[0])
        for name, code in zip(a.names, a.codes, strict=True):
            full = full + (code * stride[name]).reshape(shape)
    full = full.reshape(-1)
    return full, bool(np.all(np.diff(full) > 0))
