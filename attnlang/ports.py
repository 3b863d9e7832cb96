"""A memory port's busy time, and where a transfer fits in it (docs/cost-model.md).

The DMA engine takes transfers in the order they are ready: a transfer goes into the earliest idle
stretch, at or after its ready time, long enough for it on every port of its path. The interpreter
keeps one Timeline per memory port; the analytical model keeps one per port and candidate where
@parallel iterations share a port (attnlang/model/frame.py), and places their transfers by the same
rule, here.
"""

from __future__ import annotations

from bisect import bisect_right


class Timeline:
    """The busy intervals of one memory port, sorted and merged."""

    __slots__ = ("starts", "ends")

    def __init__(self, starts: list[float] | None = None, ends: list[float] | None = None) -> None:
        self.starts: list[float] = starts if starts is not None else []
        self.ends: list[float] = ends if ends is not None else []

    def copy(self) -> "Timeline":
        return Timeline(list(self.starts), list(self.ends))

    def earliest(self, t: float, cycles: float) -> float:
        """The earliest start >= t of an idle stretch of at least `cycles`."""
        i = bisect_right(self.starts, t) - 1
        if i >= 0 and self.ends[i] > t:
            t = self.ends[i]
        i += 1
        while i < len(self.starts) and self.starts[i] < t + cycles:
            t = max(t, self.ends[i])
            i += 1
        return t

    def reserve(self, start: float, end: float) -> None:
        i = bisect_right(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)
        # merge with the neighbours it touches
        if i + 1 < len(self.starts) and self.starts[i + 1] <= end:
            self.ends[i] = max(end, self.ends[i + 1])
            del self.starts[i + 1], self.ends[i + 1]
        if i > 0 and self.ends[i - 1] >= start:
            self.ends[i - 1] = max(self.ends[i - 1], self.ends[i])
            del self.starts[i], self.ends[i]


def place(ports: list[Timeline], ready: float, cycles: float) -> float:
    """Reserve the earliest stretch of `cycles` at or after `ready` idle on every port; its start."""
    start = ready
    while True:
        fits = max(p.earliest(start, cycles) for p in ports)
        if fits == start:
            break
        start = fits
    for p in ports:
        p.reserve(start, start + cycles)
    return start
