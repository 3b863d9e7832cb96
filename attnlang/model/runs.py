"""A port's runs of transfers in a frame, over candidates: the arithmetic Frame's scheduling and placing share.

A frame keeps, per memory port, its first transfer (`first`), the end of the run of back-to-back transfers
that starts there (`lead`), where a second run starts (`gap`), and the port's last run (`tail`, `idle`):
enough to put another frame's transfers before, into or after them (attnlang/model/frame.py, place.py).
Every time is a float or an array over candidates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .times import INF, mn, mx

if TYPE_CHECKING:
    from .frame import Frame

#: A port this busy over its span (work issued so far, plus the new frame's) is congested.
CONGESTED = 0.75


def port_wait(f: Frame, r2, b: Frame, r):
    """When b's first transfer on port r can start after what f has issued on it.

    The interpreter puts a transfer in the earliest idle stretch long enough
    for it, earlier-issued transfers first. On a lightly used port, b's
    transfers find room right after f's first run of back-to-back transfers;
    on a congested one the stretches left are too short, and b waits for the
    work issued before it, as if it were packed from the port's first use.
    """
    lead = f.lead[r2]
    used = f.pbusy.get(r2, 0.0)
    fluid = f.first[r2] + used
    congested = (used + b.pbusy.get(r, 0.0)) > CONGESTED * (f.free[r2] - f.first[r2])
    if isinstance(congested, np.ndarray):
        return np.where(congested, fluid, lead)
    return fluid if congested else lead


def port_span(b: Frame, r, pre: bool) -> tuple:
    """The start of b's first transfer on port r and the end of its first run of back-to-back ones.

    pre: b is placed in a loop body after what the body issued, where its prefetched transfers
    join the body's (before its start). Elsewhere they run back to back from when the port is free,
    finishing in time for their reads (pneed, pcum).
    """
    need = b.pneed.get(r)
    if pre or need is None:
        return b.first[r], b.lead[r]
    lead = mx(b.lead[r], need + b.pcum[r])
    if isinstance(need, np.ndarray):  # INF where nothing is prefetched
        lead = np.where(need == INF, b.lead[r], lead)
    return mn(need, b.post.get(r)), lead


def join(lead, old_first, end):
    """The end of a port's first busy run after a transfer ending at end goes before it."""
    if type(lead) is float and type(old_first) is float and type(end) is float:
        return lead if old_first <= end else end
    return np.where(old_first <= end, lead, end)


def arrays(*xs) -> bool:
    return any(isinstance(x, np.ndarray) for x in xs)


def second_run(gap, lead, start):
    """The start of a port's second run after a transfer from start is put after its work so far."""
    if type(gap) is float and type(lead) is float and type(start) is float:
        return start if gap == INF and start > lead else gap
    return np.where((gap == INF) & (start > lead), start, gap)


def after_join(gap, old_first, end):
    """The start of a port's second run after a prefetch ending at end goes before its first run."""
    if type(gap) is float and type(old_first) is float and type(end) is float:
        return gap if old_first <= end else old_first
    return np.where(old_first <= end, gap, old_first)


def extend(lead, start, end):
    """The end of a port's first busy run, after a transfer from start to end."""
    if type(lead) is float and type(start) is float:
        return end if start <= lead else lead
    return np.where(start <= lead, end, lead)
