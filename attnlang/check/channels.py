"""Channels between processes: declarations, one sender and one receiver each, dtypes, static deadlock.

The kernel body (outside `process` blocks) is a process too. The deadlock
rule looks for a value a process S sends down two paths that meet again in
a process J: a *reducing* path, on which some process consumes n elements
before it produces one (a row max, a row sum), and a *bypass* path that
only forwards. J waits for the reduction while the bypass fills up, so the
bypass must hold n elements plus the reducing path's latency (the sum of its
channels' latencies), less whatever J takes from the bypass before it waits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..diagnostics import Diagnostic, error, warning
from ..hardware import Hardware
from ..limits import channel_property_problem
from ..program import Program
from ..static import Static
from ..syntax import ast
from ..syntax.vocab import DTYPES
from . import scope
from .deadlock import bypass_depths
from .dims import try_value
from .shapes import analyze

_PROPS = ("depth", "latency", "response")


@dataclass
class Proc:
    name: str
    node: ast.Process | None  # None: the kernel body
    body: tuple
    instances: object = 1
    sends: list[ast.Send] = field(default_factory=list)
    recvs: list[ast.Recv] = field(default_factory=list)


@dataclass
class Chan:
    decl: ast.ChannelDecl
    depth: object
    latency: object
    senders: list[Proc] = field(default_factory=list)
    receivers: list[Proc] = field(default_factory=list)


def processes(kernel: ast.Kernel, env: Mapping) -> list[Proc]:
    """The kernel body and every process block, each with the sends and receives it runs itself."""
    main = Proc("main", None, kernel.body)
    procs = [main]

    def collect(body, proc: Proc, quiet: bool) -> None:
        for s in body:
            if isinstance(s, ast.Process):
                count = 1
                if s.var is not None:
                    lo, hi = try_value(s.lo, env), try_value(s.hi, env)
                    count = (hi - lo) if isinstance(lo, int) and isinstance(hi, int) else None
                child = Proc(s.name, s, s.body, count)
                if not quiet:
                    procs.append(child)
                collect(s.body, child, quiet)
            elif isinstance(s, ast.For):
                collect(s.body, proc, quiet)
            elif isinstance(s, ast.If):
                choice = scope.condition(s.cond, env)
                collect(s.then, proc, quiet or choice is False)
                collect(s.orelse, proc, quiet or choice is True)
            elif not quiet and isinstance(s, ast.Send):
                proc.sends.append(s)
            elif not quiet and isinstance(s, ast.Recv):
                proc.recvs.append(s)

    collect(kernel.body, main, False)
    return procs


def check_channels(prog: Program, kernel: ast.Kernel, env: Mapping[str, Static], hw: Hardware) -> list[Diagnostic]:
    """Channels without exactly one sender and one receiver, dtype mismatches, provable deadlocks (E09xx)."""
    env = scope.full_env(kernel, env)
    diags: list[Diagnostic] = []
    chans: dict[str, Chan] = {}
    for s in kernel.body:
        if isinstance(s, ast.ChannelDecl) and s.name not in chans:
            diags += _decl(s, env)
            props = {p.name: p.values[0] for p in s.props if p.values}
            depth = try_value(props["depth"], env) if "depth" in props else 1
            latency = try_value(props["latency"], env) if "latency" in props else 1
            chans[s.name] = Chan(s, depth, latency)
    if not chans:
        return diags
    procs = processes(kernel, env)
    a = analyze(kernel, env, hw)
    for p in procs:
        for s in p.sends:
            c = chans.get(s.channel.name)
            if c is not None:
                diags += _index(s.channel, c.decl)
                if p not in c.senders:
                    c.senders.append(p)
                ty = a.types.get(id(s.expr))
                if ty is not None and ty.tensor and c.decl.dtype in DTYPES and ty.dtype != c.decl.dtype:
                    diags.append(error("E0905", f"channel {c.decl.name} carries {c.decl.dtype} but this sends {ty}",
                                       s.expr.span, f"convert it first, or declare the channel : {ty.dtype}"))
        for s in p.recvs:
            c = chans.get(s.channel.name)
            if c is not None:
                diags += _index(s.channel, c.decl)
                if p not in c.receivers:
                    c.receivers.append(p)
    # A channel used only in an `if` arm these params do not take (another scheme's) is not unused.
    used = {s.channel.name for s in ast.walk_statements(kernel.body) if isinstance(s, (ast.Send, ast.Recv))}
    for c in chans.values():
        if c.senders or c.receivers or c.decl.name not in used:
            diags += _ends(c)
    diags += bypass_depths(procs, chans, env, prog)
    return diags


def _decl(s: ast.ChannelDecl, env: Mapping) -> list[Diagnostic]:
    diags = []
    if s.dtype not in DTYPES:
        diags.append(error("E0908", f"unknown element type '{s.dtype}'{scope.suggest(s.dtype, DTYPES)} "
                                    f"(known: {', '.join(DTYPES)})", s.name_span))
    count = try_value(s.count, env) if s.count is not None else None
    problem = channel_property_problem("count", s.count, count) if count is not None else None
    if problem:
        diags.append(error("E0908", f"the channel array {s.name}'s size must be {problem}", s.count.span))
    seen = set()
    for p in s.props:
        if p.name not in _PROPS:
            hint = scope.suggest(p.name, _PROPS) or f" (known: {', '.join(_PROPS)})"
            diags.append(error("E0908", f"unknown channel property '{p.name}'{hint}", p.name_span))
            continue
        if p.name in seen:
            diags.append(error("E0908", f"channel property '{p.name}' is given twice", p.name_span))
        seen.add(p.name)
        v = try_value(p.values[0], env) if len(p.values) == 1 and not isinstance(p.values[0], ast.Shape2) else None
        if v is None:
            continue
        problem = channel_property_problem(p.name, p.values[0], v)
        if problem:
            diags.append(error("E0908", f"channel {s.name}'s {p.name} must be {problem}", p.values[0].span))
    return diags


def _index(ref: ast.UnitRef, decl: ast.ChannelDecl) -> list[Diagnostic]:
    if decl.count is not None and ref.index is None:
        return [error("E0909", f"channel {decl.name} is an array; say which one, as in {decl.name}[i]", ref.span)]
    if decl.count is None and ref.index is not None:
        return [error("E0909", f"channel {decl.name} is not an array; it takes no index", ref.span)]
    return []


def _ends(c: Chan) -> list[Diagnostic]:
    name, span = c.decl.name, c.decl.name_span
    if not c.senders and not c.receivers:
        return [warning("E0901", f"channel {name} is never used", span)]
    if not c.senders:
        who = ", ".join(p.name for p in c.receivers)
        return [error("E0901", f"channel {name} has no sender: {who} would wait for it forever", span)]
    if not c.receivers:
        who = ", ".join(p.name for p in c.senders)
        return [error("E0902", f"channel {name} has no receiver: {who} would fill it and block", span)]
    diags = []
    if c.decl.count is None:
        for role, procs, code in (("send on", c.senders, "E0903"), ("receive from", c.receivers, "E0904")):
            many = len(procs) > 1 or any(p.instances != 1 for p in procs)
            if many:
                who = ", ".join(p.name + ("[...]" if p.instances != 1 else "") for p in procs)
                diags.append(error(code, f"channel {name} connects one sender to one receiver, but several "
                                         f"processes {role} it ({who})", span))
    return diags
