"""A schedule in units of work written out as a runnable ring kernel (`attn schedule --prove --emit`).

The kernel does exactly the placed schedule: PE p runs the units placed on it, step by step, each a
length-d vector operation on its 1 x 1 MAC cell (d cycles), on one-row tensors:

    D(i, j)   s = (q_i @ k_j.T on mac[p]) / sqrt(d)
    W(i, j)   an online-softmax update of row i's state (max, sum, accumulator) with s(i, j) and v_j:
              on row i's PE its own state, elsewhere (symmetric) a partial state of row i kept on
              that PE, which travels to row i's PE afterwards and is merged there

Data move as the model lets them: a key/value vector from its owner, a score from the PE that made
it, a partial state from the PE that made it, one hop a step along the ring p -> p + 1, as early as
they can (which is never later than the schedule needs them: the schedule holds them no sooner).
Each PE is one process with straight-line code, step by step: what arrives at the step, the step's
unit, then what leaves at the step, in one order on every link so that a receive gets the message
its sender sent. A channel deep enough for every message of a link means no send ever waits.
"""

from __future__ import annotations

from collections import defaultdict

from .ring import RingProblem

CHANNELS = ("cv", "cs", "cp")


def _vector_names(scheme: str, j: int) -> list[str]:
    """The variables that carry datum `kv j`: its key (for symmetric, q_j) and its value."""
    return [f"q{j}" if scheme == "symmetric" else f"k{j}", f"v{j}"]


class _Plan:
    """Where every datum is needed, when it is there, and the hops it takes."""

    def __init__(self, pr: RingProblem, placed: dict[str, tuple[int, int]], steps: int) -> None:
        self.pr, self.placed, self.steps = pr, placed, steps
        ops = {o.name: o for o in pr.ops}
        self.units: dict[int, dict[int, str]] = defaultdict(dict)          # pe -> step -> op name
        need: dict[str, set[int]] = defaultdict(set)                       # datum -> PEs that use it
        source: dict[str, tuple[int, int]] = {}                            # datum -> (pe, first step there)
        self.partials: dict[tuple[int, int], int] = {}                     # (row, pe) -> last W's step
        for name, (p, t) in placed.items():
            self.units[p][t] = name
            for d in ops[name].needs:
                need[d].add(p)
            if ops[name].makes:
                source[ops[name].makes] = (p, t + 1)
            row = _row(name)
            if name.startswith("W") and p != pr.owner[row]:
                self.partials[row, p] = max(self.partials.get((row, p), -1), t)
        for j in range(pr.n):
            source[f"kv {j}"] = (pr.owner[j], 0)
        for (row, p), t in self.partials.items():
            datum = f"part {row} {p}"
            source[datum] = (p, t + 1)
            need[datum].add(pr.owner[row])
        self.leaves: dict[int, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
        for datum, pes in need.items():
            a, t0 = source[datum]
            for h in range(max(pr.hops(a, b) for b in pes)):
                self.leaves[(a + h) % pr.m][t0 + h].append(datum)
        for per_step in self.leaves.values():
            for data in per_step.values():
                data.sort()
        self.arrival = max((t for per in self.leaves.values() for t in per), default=-1) + 1

    def messages(self, datum: str) -> list[tuple[str, str]]:
        """The (channel, variable) pairs a datum travels as, in the order they are sent: a channel
        carries one shape, cv the [1, d] rows, cs the [1, 1] scores, cp a partial state's [1] max and sum."""
        kind, *rest = datum.split()
        if kind == "kv":
            return [("cv", x) for x in _vector_names(self.pr.scheme, int(rest[0]))]
        if kind == "s":
            i, j = rest[0].split(",")
            return [("cs", f"s{i}_{j}")]
        row, p = rest
        return [("cp", f"pm{row}_{p}"), ("cp", f"pl{row}_{p}"), ("cv", f"pa{row}_{p}")]

    def depth(self) -> int:
        """Deep enough for every message of the busiest link on any channel: no send waits."""
        counts = [sum(1 for ds in per.values() for d in ds for c, _ in self.messages(d) if c == ch)
                  for per in self.leaves.values() for ch in CHANNELS]
        return max(counts, default=0) + 1


def _row(op: str) -> int:
    return int(op[2:-1].split(",")[0])


def _col(op: str) -> int:
    return int(op[2:-1].split(",")[1])


def emit(pr: RingProblem, placed: dict[str, tuple[int, int]], steps: int, d: int, latency: int = 4) -> str:
    """The text of a kernel that runs the schedule `placed` (op name -> (pe, step)) of `steps` steps."""
    plan = _Plan(pr, placed, steps)
    n, m, scheme = pr.n, pr.m, pr.scheme
    keys = "Q" if scheme == "symmetric" else "K"
    scores = f"Q @ {keys}.T / sqrt(d)"
    spec = f"softmax(causal({scores}, 0, 0)) @ V" if scheme == "causal" else f"softmax({scores}) @ V"
    out = [
        f"# The SAT-optimal {steps}-step schedule of the ring schedule of self-attention (Yu & Fujita) for",
        f"# n = {n}, m = {m}, scheme = {scheme}, written out by `attn schedule --prove --emit`: PE p runs",
        "# the units the solver placed on it, step by step; every unit is one length-d dot product or",
        "# weighted-sum update on its 1 x 1 MAC cell (d cycles).",
        "use hw.ring",
        "",
        f"kernel ring_{scheme}_n{n}_m{m}(Q: f32[n, d], K: f32[n, d], V: f32[n, d]) -> (O: f32[n, d])",
        "  on ring",
        f"  spec O = {spec}",
        "{",
        f"  dim n = {n}, d = {d}",
        f"  param m = {m}",
    ]
    used = {ch for per in plan.leaves.values() for ds in per.values() for d in ds for ch, _ in plan.messages(d)}
    out += [f"  channel {ch}[m] : f32 {{ depth {plan.depth()}; latency {latency} }}   # {ch}[p]: PE p - 1 to PE p"
            for ch in CHANNELS if ch in used]
    for p in range(m):
        out += [""] + [f"  {line}" for line in _process(plan, p)]
    out.append("}")
    return "\n".join(out) + "\n"


def _process(plan: _Plan, p: int) -> list[str]:
    pr, scheme = plan.pr, plan.pr.scheme
    rows = [i for i in range(pr.n) if pr.owner[i] == p]
    body: list[str] = []
    for i in rows:
        if scheme != "symmetric":
            body.append(f"q{i} = load Q[{i} : {i + 1}, :] -> regs")
        key, value = _vector_names(scheme, i)
        body.append(f"{key} = load {'Q' if scheme == 'symmetric' else 'K'}[{i} : {i + 1}, :] -> regs")
        body.append(f"{value} = load V[{i} : {i + 1}, :] -> regs")
        body += [f"mx{i} = full([1], -inf)", f"l{i} = zeros([1])", f"acc{i} = zeros([1, d])"]
    started: set[int] = set()
    prev = (p - 1) % pr.m
    for t in range(max(plan.steps, plan.arrival) + 1):
        for datum in plan.leaves[prev].get(t - 1, []) if pr.m > 1 else []:
            body += [f"{v} = recv {ch}[{p}]" for ch, v in plan.messages(datum)]
        if t in plan.units[p]:
            body.append(f"# step {t}: {plan.units[p][t]}")
            body += _unit(plan, p, plan.units[p][t], started)
        for datum in plan.leaves[p].get(t, []) if pr.m > 1 else []:
            body += [f"send {ch}[{(p + 1) % pr.m}], {v}" for ch, v in plan.messages(datum)]
    for (i, q) in sorted(plan.partials):
        if pr.owner[i] == p:                           # a partial state of row i, made on PE q: merge it
            body += [f"ma = max(mx{i}, pm{i}_{q})", f"ca = exp(mx{i} - ma)", f"cb = exp(pm{i}_{q} - ma)",
                     f"l{i} = l{i} * ca + pl{i}_{q} * cb",
                     f"acc{i} = acc{i} * ca[:, None] + pa{i}_{q} * cb[:, None]", f"mx{i} = ma"]
    body += [f"store acc{i} / l{i}[:, None] -> O[{i} : {i + 1}, :]" for i in rows]
    return [f"process pe{p} on vec[{p}] {{"] + [f"  {line}" for line in body] + ["}"]


def _unit(plan: _Plan, p: int, op: str, started: set[int]) -> list[str]:
    pr = plan.pr
    i, j = _row(op), _col(op)
    sym = pr.scheme == "symmetric"
    if op.startswith("D"):
        left, right = (f"q{i}", f"q{j}") if sym else (f"q{i}", f"k{j}")
        return [f"s{i}_{j} = ({left} @ {right}.T on mac[{p}]) / sqrt(d)"]
    s = f"s{min(i, j)}_{max(i, j)}" if sym else f"s{i}_{j}"
    if pr.owner[i] == p:
        mx, total, acc = f"mx{i}", f"l{i}", f"acc{i}"
        lines = []
    else:                                             # a partial state of row i, kept on this PE
        mx, total, acc = f"pm{i}_{p}", f"pl{i}_{p}", f"pa{i}_{p}"
        lines = [] if i in started else [f"{mx} = full([1], -inf)", f"{total} = zeros([1])",
                                         f"{acc} = zeros([1, d])"]
        started.add(i)
    return lines + [f"mn = max({mx}, rowmax({s}))", f"w = exp({s} - mn[:, None])", f"c = exp({mx} - mn)",
                    f"{total} = {total} * c + rowsum(w)", f"{mx} = mn",
                    f"{acc} = {acc} * c[:, None] + (w @ v{j} on mac[{p}])"]
