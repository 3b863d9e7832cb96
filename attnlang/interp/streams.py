"""Processes and channels, after the Dataflow Abstract Machine (DAM).

Each process has its own clock. A channel has a depth, a latency and a
response latency; every element carries a timestamp. `send` on a full
channel waits until the receiver has freed a slot (the time of that receive
plus the response latency); `recv` waits for the element and advances the
receiver's clock to its arrival. Processes are Python generators that yield
when they block; the scheduler resumes them until all finish or all block,
which is a deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import report
from ..channels import Channel
from ..diagnostics import AttnError, Span, error
from ..syntax import ast
from .evaluate import evaluate


@dataclass
class Blocked:
    """What a process waits for when it yields."""

    process: str
    channel: Channel
    op: str  # "send" | "recv"
    span: Span


def channel_key(eng, ref: ast.UnitRef) -> Channel:
    if ref.index is None:
        ch = eng.channels.get(ref.name)
        if ch is not None:
            return ch
        name = ref.name
    else:
        name = f"{ref.name}[{eng._static_int(ref.index, 'a channel index')}]"
    ch = eng.channels.get(name)
    if ch is None:
        raise AttnError(error("E1031", f"there is no channel '{name}'", ref.span))
    return ch


# A send or receive that need not wait runs as a plain call; only one that blocks becomes a
# generator, which yields to the scheduler until the channel has room or an element.

def exec_send(eng, s: ast.Send):
    ch = channel_key(eng, s.channel)
    value = evaluate(eng, s.expr, 0.0, 1, None)
    data = value.data if hasattr(value, "data") else np.float32(value)
    ready = value.buf.ready if hasattr(value, "buf") else 0.0
    eng._end_statement()
    if len(ch.queue) >= ch.depth:
        return _send_when_free(eng, s, ch, value, data, ready)
    _send(eng, s, ch, value, data, ready)
    return None


def _send_when_free(eng, s: ast.Send, ch: Channel, value, data, ready: float):
    while len(ch.queue) >= ch.depth:
        yield Blocked(eng.process, ch, "send", s.span)
    _send(eng, s, ch, value, data, ready)


def _send(eng, s: ast.Send, ch: Channel, value, data, ready: float) -> None:
    t = ready if ready > eng.clock else eng.clock  # max(eng.clock, ready)
    index = ch.sent
    if index >= ch.depth:
        freed = ch.recv_times.pop(index - ch.depth) + ch.response
        if freed > t:
            ch.blocked_send_cycles += freed - t
            t = freed
    eng.clock = t
    if hasattr(value, "buf"):
        value.buf.last_read = max(value.buf.last_read, t)
    # A value's data is never written in place (a partial assignment copies it), so the channel can
    # hold the array itself; np.asarray makes a 0-d array of a NumPy scalar, as a copy would.
    ch.queue.append((data if type(data) is np.ndarray else np.asarray(data), t + ch.latency))
    ch.sent += 1
    if len(ch.queue) > ch.max_occupancy:
        ch.max_occupancy = len(ch.queue)
    eng.sched.progress += 1
    m = eng.m
    if t > m.end or m.limits.max_cycles is not None:
        m._finish(t, s.span)


def exec_recv(eng, s: ast.Recv):
    ch = channel_key(eng, s.channel)
    if not ch.queue:
        return _recv_when_ready(eng, s, ch)
    _recv(eng, s, ch)
    return None


def _recv_when_ready(eng, s: ast.Recv, ch: Channel):
    while not ch.queue:
        yield Blocked(eng.process, ch, "recv", s.span)
    _recv(eng, s, ch)


def _recv(eng, s: ast.Recv, ch: Channel) -> None:
    data, arrival = ch.queue.popleft()
    if arrival > eng.clock:
        ch.blocked_recv_cycles += arrival - eng.clock
        eng.clock = arrival
    ch.recv_times[ch.received] = eng.clock
    ch.received += 1
    eng.sched.progress += 1
    m = eng.m
    if eng.clock > m.end or m.limits.max_cycles is not None:
        m._finish(eng.clock, s.span)
    eng.bind_received(s.target.name, data, ch.dtype, eng.clock, s.span)


class Scheduler:
    """Runs processes until they all finish; a round with no progress is a deadlock.

    A process runs until it blocks or, while several run (`concurrent`), until it has issued a
    transfer: the memory ports take transfers in the order they are issued, so transfers that
    processes issue at the same simulated time take the port in turn, one from each process, rather
    than all of one process's before the next one's first (a round-robin arbiter).
    """

    TURN = "turn"  # what a process yields when it gives up its turn without blocking

    def __init__(self) -> None:
        self.procs: list[tuple[str, object]] = []
        self.progress = 0
        self.concurrent = False

    def turn(self) -> str:
        self.progress += 1
        return self.TURN

    def spawn(self, name: str, gen) -> None:
        self.procs.append((name, gen))

    def run(self) -> None:
        waiting: dict[str, Blocked] = {}
        while self.procs:
            progress = self.progress
            snapshot, self.procs = self.procs, []  # spawn() during the round appends here
            still, finished = [], 0
            for name, gen in snapshot:
                try:
                    waiting[name] = next(gen)
                    still.append((name, gen))
                except StopIteration:
                    waiting.pop(name, None)
                    finished += 1
            spawned = self.procs
            self.procs = still + spawned
            if still and not spawned and not finished and self.progress == progress:
                raise AttnError(deadlock([waiting[n] for n, _ in still]))


def deadlock(blocked: list[Blocked]) -> list:
    names = ", ".join(b.process for b in blocked)
    by_process = {b.process: b for b in blocked}
    head = f"deadlock: every process is blocked ({names})"
    span = blocked[0].span
    for b in blocked:
        reader = next((r for name, r in by_process.items()
                       if b.channel.reader and (name == b.channel.reader or name.startswith(b.channel.reader + "["))),
                      None)
        if b.op == "send" and reader is not None and reader.op == "recv" and reader.channel is not b.channel:
            head = (f"deadlock: channel {b.channel.name} is full ({len(b.channel.queue)} of depth {b.channel.depth}) "
                    f"while its receiver {reader.process} waits on {reader.channel.name}; every process is "
                    f"blocked ({names})")
            span = b.span
            break
    notes = []
    for b in blocked:
        ch = b.channel
        state = "full" if b.op == "send" else "empty"
        notes.append(f"process {b.process} waits at line {b.span.line} to {b.op} on channel {ch.name}, which is "
                     f"{state} ({len(ch.queue)} of depth {ch.depth})")
    return [error("E1032", head, span, *notes)]


def undrained(channels: dict[str, Channel]) -> list:
    return [report.undrained(c.name, len(c.queue), c.span) for c in channels.values() if c.queue]
