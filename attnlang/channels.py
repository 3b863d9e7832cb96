"""A kernel's channels as declared: depth, latency, response latency, the process that reads each, and
what a run counts on them. One home for the interpreter and the JIT."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .diagnostics import AttnError, Span, error
from .limits import channel_property_problem
from .report import channel_stats
from .static import StaticError, static_eval
from .syntax import ast


@dataclass
class Channel:
    name: str
    dtype: str
    depth: int
    latency: float
    response: float
    span: Span
    queue: deque = field(default_factory=deque)  # (data, arrival time)
    recv_times: dict = field(default_factory=dict)  # element index -> time its slot was freed
    sent: int = 0
    received: int = 0
    max_occupancy: int = 0
    blocked_send_cycles: float = 0.0
    blocked_recv_cycles: float = 0.0
    reader: str | None = None  # the process that receives from this channel

    def stats(self) -> dict:
        return channel_stats(self.max_occupancy, self.sent, self.depth, self.blocked_send_cycles,
                             self.blocked_recv_cycles)


def _prop(props, name: str, env: dict, default: float) -> float:
    for p in props:
        if p.name == name and p.values:
            v = p.values[0]
            try:
                value = static_eval(v, env)
            except StaticError as exc:
                raise AttnError(exc.diagnostic) from None
            problem = channel_property_problem(name, v, value)
            if problem:
                raise AttnError(error("E1030", f"channel property '{name}' must be {problem}", v.span))
            return float(value)
    return default


def _readers(kernel: ast.Kernel) -> dict[str, str]:
    """Channel name -> the process whose body receives from it (read off the program)."""
    out: dict[str, str] = {}
    for st in ast.walk_statements(kernel.body):
        if isinstance(st, ast.Process):
            for inner in ast.walk_statements(st.body):
                if isinstance(inner, ast.Recv):
                    out.setdefault(inner.channel.name, st.name)
    for st in ast.walk_statements(kernel.body):
        if isinstance(st, ast.Recv):
            out.setdefault(st.channel.name, "main")
    return out


def declare_channels(kernel: ast.Kernel, env: dict) -> dict[str, Channel]:
    """The kernel's channels (arrays become c[0], c[1], ...), keyed by name."""
    out: dict[str, Channel] = {}
    readers = _readers(kernel)
    for s in kernel.body:
        if not isinstance(s, ast.ChannelDecl):
            continue
        depth = int(_prop(s.props, "depth", env, 1))
        latency = _prop(s.props, "latency", env, 1)
        response = _prop(s.props, "response", env, latency)
        if s.count is None:
            out[s.name] = Channel(s.name, s.dtype, depth, latency, response, s.span, reader=readers.get(s.name))
        else:
            try:
                count = static_eval(s.count, env)
            except StaticError as exc:
                raise AttnError(exc.diagnostic) from None
            problem = channel_property_problem("count", s.count, count)
            if problem:
                raise AttnError(error("E1030", f"the channel array {s.name}'s size must be {problem}", s.count.span))
            n = int(count)
            for i in range(n):
                out[f"{s.name}[{i}]"] = Channel(f"{s.name}[{i}]", s.dtype, depth, latency, response, s.span,
                                                reader=readers.get(s.name))
    return out
