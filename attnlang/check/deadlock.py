"""The static deadlock rule: a bypass channel beside a reduction must hold what the reduction waits for.

Processes and channels form a graph. For two paths from a common sender S to
a common receiver J that share no other process, the path on which some
process receives n > 1 elements before it sends one is the reducing path;
the other, on which every process forwards as it receives, is the bypass.
J waits for the reduced value while S keeps filling the bypass. S sends one
element on each path per step, so before its n-th send on the reducing path
it has sent n - 1 on the bypass, or n when its bypass send comes first in the
step. Unless J drains k elements of the bypass first, the bypass must hold
that many less k, or S blocks with the reduction one element short: the
deadlock the runtime reports as E1032. The bypass holds the sum of its
channels' depths and one element in each process between them (received,
waiting to be sent). Latency delays elements but holds none: it does not
decide a deadlock (a depth below n + latency completes, with S stalling).
Counts come from loop trip counts at the chosen params; what cannot be
counted gets a warning, never a guess.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Mapping

from ..diagnostics import Diagnostic, error, warning
from ..limits import message_number
from ..static import free_names
from ..syntax import ast
from . import scope
from .dims import try_value

_MAX_PATHS = 2000
_MAX_LEN = 12


class Undecided(Exception):
    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


def count_before(body, counted, stop, env: Mapping, prog, indices: frozenset = frozenset()
                 ) -> tuple[int, bool, str | None]:
    """How many statements `counted` runs before the first `stop` runs (loops unrolled by their trip
    counts, every iteration counted like the first): (count, whether a stop was reached, the count as
    written when it is one loop's length). `indices` are the loop indices env holds."""
    count, text = 0, None
    for s in body:
        if stop(s):
            return count, True, text
        if counted(s):
            count, text = count + 1, None
        elif isinstance(s, ast.For):
            vals = [try_value(e, env) if e is not None else 1 for e in (s.lo, s.hi, s.step)]
            if any(v is None or isinstance(v, str) for v in vals) or vals[2] <= 0:
                raise Undecided(f"the trip count of the loop over {s.var} at {s.span.line}:{s.span.column} is not "
                                "known here")
            lo, hi, step = vals
            trips = max(0, math.ceil((hi - lo) / step))
            if trips == 0:
                continue
            c, stopped, t = count_before(s.body, counted, stop, {**env, s.var: lo}, prog, indices | {s.var})
            if stopped:
                return count + c, True, t if count == 0 else None
            if c:
                rng = scope.text_of(prog, s.hi) if lo == 0 and step == 1 else None
                text = rng if c == 1 and count == 0 else None
                count += c * trips
        elif isinstance(s, ast.If):
            inside = [x for x in scope.walk(s.then + s.orelse) if counted(x) or stop(x)]
            if not inside:
                continue
            choice = scope.condition(s.cond, env)
            if choice is None or free_names(s.cond) & indices:
                raise Undecided(f"the condition at {s.span.line}:{s.span.column} depends on the iteration")
            c, stopped, t = count_before(s.then if choice else s.orelse, counted, stop, env, prog, indices)
            if stopped:
                return count + c, True, t if count == 0 else None
            count, text = count + c, (t if count == 0 else None)
    return count, False, text


def _recv_on(name: str):
    return lambda s: isinstance(s, ast.Recv) and s.channel.name == name


def _send_on(name: str):
    return lambda s: isinstance(s, ast.Send) and s.channel.name == name


def _paths(procs, edges) -> dict[tuple[int, int], list[list]]:
    """Simple paths (lists of edges) between every two processes, grouped by (sender, receiver)."""
    out: dict[int, list] = {}
    for e in edges:
        out.setdefault(id(e[0]), []).append(e)
    found: dict[tuple[int, int], list[list]] = {}
    total = 0
    for p in procs:
        stack = [(p, [], {id(p)})]
        while stack and total < _MAX_PATHS:
            node, path, seen = stack.pop()
            for e in out.get(id(node), []):
                if id(e[1]) in seen or len(path) >= _MAX_LEN:
                    continue
                new = path + [e]
                found.setdefault((id(p), id(e[1])), []).append(new)
                total += 1
                stack.append((e[1], new, seen | {id(e[1])}))
    return found


def _factor(path, env, prog) -> tuple[int, str | None, object]:
    """Elements of the path's first channel consumed before the path's last channel gets one."""
    n, texts, reducer = 1, [], None
    for inner, outer in zip(path, path[1:], strict=False):
        proc = inner[1]
        c, stopped, text = count_before(proc.body, _recv_on(inner[2].decl.name), _send_on(outer[2].decl.name),
                                        env, prog)
        if not stopped:
            raise Undecided(f"process {proc.name} never sends on {outer[2].decl.name}")
        if c > 1:
            n, reducer = n * c, (proc, outer[2])
            texts.append(text)
    text = " * ".join(texts) if texts and all(texts) else None
    return n, text, reducer


def bypass_depths(procs, chans, env: Mapping, prog) -> list[Diagnostic]:
    edges = [(c.senders[0], c.receivers[0], c) for c in chans.values()
             if c.decl.count is None and len(c.senders) == 1 and len(c.receivers) == 1
             and c.senders[0] is not c.receivers[0] and c.senders[0].instances == 1 and c.receivers[0].instances == 1]
    diags: list[Diagnostic] = []
    done: set[str] = set()
    for (_, _), paths in _paths(procs, edges).items():
        for pa, pb in combinations(paths, 2):
            if pa[0][2] is pb[0][2] or pa[-1][2] is pb[-1][2]:
                continue
            if {id(e[1]) for e in pa[:-1]} & {id(e[1]) for e in pb[:-1]}:
                continue  # the paths meet before their end
            d = _pair(pa, pb, env, prog, done)
            if d is not None:
                diags.append(d)
    return diags


def _pair(pa, pb, env, prog, done: set[str]) -> Diagnostic | None:
    join = pa[-1][1]
    try:
        (na, ta, ra), (nb, tb, rb) = _factor(pa, env, prog), _factor(pb, env, prog)
    except Undecided as u:
        names = f"{pa[-1][2].decl.name} and {pb[-1][2].decl.name}"
        if names in done:
            return None
        done.add(names)
        return warning("E0907", f"could not decide whether channels {names}, which meet in process {join.name}, "
                                f"are deep enough: {u.why}", pa[-1][2].decl.name_span)
    if (na > 1) == (nb > 1):
        return None
    (red, n, text, (reducer, result)), byp = ((pa, na, ta, ra), pb) if na > 1 else ((pb, nb, tb, rb), pa)
    last = byp[-1][2]
    if last.decl.name in done:
        return None
    try:
        k, _, _ = count_before(join.body, _recv_on(last.decl.name), _recv_on(red[-1][2].decl.name), env, prog)
    except Undecided:
        k = 0
    depth = sum(e[2].depth for e in byp) if all(isinstance(e[2].depth, (int, float)) for e in byp) else None
    if k >= n or depth is None:
        return None
    sender = red[0][0]
    try:  # 1 when the sender's bypass send comes before its send into the reduction in a step
        first, _, _ = count_before(sender.body, _send_on(byp[0][2].decl.name), _send_on(red[0][2].decl.name),
                                   env, prog)
    except Undecided:
        first = 1  # the larger need: a depth the rule accepts never deadlocks
    held = len(byp) - 1  # one element in each process between the bypass's channels
    need = n - k - (1 - min(first, 1)) - held
    if depth >= need:
        return None
    done.add(last.decl.name)
    n_text = f"{text} = {n}" if text and text != str(n) else str(n)
    base = text if text else str(n)
    less = (f" - {k}" if k else "") + (" - 1" if not first else "") + (f" - {held}" if held else "")
    need_text = f"{base}{less} = {_num(need)}" if less or base != str(n) else str(n)
    chain = ", ".join(e[2].decl.name for e in byp)
    via = "" if len(byp) == 1 else f" (with the channels before it on the bypass: {chain})"
    order = (f"sends on {byp[0][2].decl.name} before {red[0][2].decl.name} in each step" if first else
             f"sends on {red[0][2].decl.name} before {byp[0][2].decl.name} in each step, so the last one is not "
             f"needed on the bypass")
    notes = [f"process {join.name} receives {result.decl.name} before it drains {last.decl.name}"
             + (f" (after {k} elements)" if k else "") + f", while process {sender.name} keeps sending into both; "
             f"it {order}"]
    if held:
        notes.append(f"the {held} process{'es' if held > 1 else ''} between the bypass's channels hold one element "
                     f"each")
    return error("E0906", f"channel {last.decl.name} has depth {_num(depth)}{via} but the reduction it waits beside "
                          f"(process {reducer.name}, which sends {result.decl.name}) reduces {n_text} elements: it "
                          f"needs depth >= {need_text}, or the pipeline deadlocks", last.decl.name_span, *notes)


_num = message_number
