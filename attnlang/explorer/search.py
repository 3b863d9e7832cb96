"""Design-space exploration: every candidate of one or more kernels, ranked.

`explore` enumerates the spaces (attnlang/explorer/space.py), prunes, costs the
rest with the analytical model, and returns the best candidates and the
energy-latency Pareto front. It is exhaustive: the best it reports is the
best within the model. `validate` runs candidates through the interpreter.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..diagnostics import AttnError, UsageError, error
from ..program import Program
from ..syntax import ast
from .heap import keep_heap
from .space import KernelSpace, Part, Stage, evaluate_combo, has_processes, kernel_space
from .stages import DEFAULT_K, Pool, reduce, stage1_task, stage1_tasks, stage2
from .tasks import Task, tasks

OBJECTIVES = ("latency", "energy", "edp")


@dataclass
class Candidate:
    kernel: str
    defines: dict
    cycles: int
    energy_pj: float
    seconds: float
    #: in a ranking, how many more candidates have exactly these cycles and energy (collapsed into this one)
    same_cost: int = 0

    def to_json(self) -> dict:
        return {"kernel": self.kernel, "defines": self.defines, "cycles": self.cycles, "energy_pj": self.energy_pj,
                "seconds": self.seconds, "same_cost": self.same_cost}


@dataclass
class Exploration:
    candidates: int
    feasible: int
    evaluated: int
    seconds: float
    minimize: str
    best: Candidate | None
    top: list[Candidate]
    pareto: list[Candidate]
    pruned: list[Stage]
    notes: list[str] = field(default_factory=list)
    kernels: list[str] = field(default_factory=list)
    #: (seconds, energy_pj) of the feasible candidates, at most 50,000 of them (for plots)
    points: tuple | None = None
    #: the params that take more than one value, in declaration order
    varying: list[str] = field(default_factory=list)
    #: of the evaluated candidates, those costed by simulation (kernels with processes and channels)
    simulated: int = 0
    #: the two-stage search: {"candidates": costed by stage 1, "seconds": its time}; None when exhaustive
    stage1: dict | None = None
    #: the two-stage search: {"candidates": re-ranked by the detailed model, "seconds", "k"}
    stage2: dict | None = None

    @property
    def rate(self) -> float:
        return self.evaluated / self.seconds if self.seconds > 0 else float("inf")

    def to_json(self) -> dict:
        return {
            "candidates": self.candidates, "feasible": self.feasible, "evaluated": self.evaluated,
            "simulated": self.simulated, "seconds": self.seconds, "minimize": self.minimize,
            "kernels": self.kernels,
            "best": self.best.to_json() if self.best else None,
            "top": [c.to_json() for c in self.top], "pareto": [c.to_json() for c in self.pareto],
            "pruned": [{"constraint": s.what, "removed": s.removed} for s in self.pruned if s.removed],
            "notes": self.notes,
            **({"stage1": self.stage1, "stage2": self.stage2} if self.stage1 is not None else {}),
        }


def spaces(prog: Program, names: list[str] | None, defines: dict,
           simulate: Callable | None = None) -> tuple[list[KernelSpace], list[str]]:
    """The spaces to search: the named kernels, or every kernel of the file that shares one spec.
    simulate(prog, kernel, defines, check=False) runs one candidate: how a kernel with processes and
    channels is costed (api.explore gives api.run, the interpreter)."""
    notes: list[str] = []
    if names:
        kernels = [prog.kernel(n) for n in dict.fromkeys(names)]
    else:
        pool = list(prog.kernels.values()) or list(prog.library_kernels.values())
        if not pool:
            raise UsageError(f"{prog.root}: there is no kernel to explore")
        groups: dict[tuple, list[ast.Kernel]] = {}
        for k in pool:
            groups.setdefault(_spec_key(k), []).append(k)
        if len(groups) > 1:
            described = "; ".join(", ".join(k.name for k in g) for g in groups.values())
            raise UsageError(f"{prog.root} has kernels with different specs ({described}); pick with -k")
        kernels = pool
    if len({_spec_key(k) for k in kernels}) > 1:
        notes.append("the kernels explored together do not share one spec: they may compute different things")
    for name in defines:
        if not any(name in _declared(k) for k in kernels):
            raise UsageError(f"-D {name}: no kernel explored declares a dimension or param '{name}'")
    out = []
    for k in kernels:
        mine = {n: v for n, v in defines.items() if n in _declared(k)}
        sp = kernel_space(prog, k, mine)
        sp.simulate = simulate
        notes += sp.notes
        out.append(sp)
    if all(sp.size == 1 for sp in out) and len(out) == 1:
        notes.append("nothing varies: every param is fixed, so the space is one candidate")
    return out, notes


def _declared(k: ast.Kernel) -> set[str]:
    from ..binding import signature_dims, static_decls

    return {d.name for d in static_decls(k)} | set(signature_dims(k))


def _spec_key(k: ast.Kernel) -> tuple:
    from ..model.statics import structure_key

    return tuple(sorted((s.output, repr(structure_key(s.expr))) for s in k.specs))


# ---------------------------------------------------------------- the search


_WORKER: dict = {}


def _worker_init(prog: Program, names, defines, simulate) -> None:
    _WORKER["spaces"] = spaces(prog, names, defines, simulate)[0]


def _spaces_only(prog: Program, names, defines, simulate=None) -> list[KernelSpace]:
    return spaces(prog, names, defines, simulate)[0]


def _in_pool(fn: Callable, job):
    with keep_heap():
        return fn(job, _WORKER["spaces"])


def _run_task(task: Task, sps: list[KernelSpace]) -> Part:
    """One combination (or chunk) through the detailed model: the exhaustive search's piece of work."""
    return evaluate_combo(sps[task.kernel], task.kernel, task.combo, task.chunk)


def _stage1_job(job: tuple, sps: list[KernelSpace]) -> tuple:
    """One block of stage 1: (its pruning stages, candidates costed, feasible, what it keeps)."""
    task, k, minimize = job
    b, kept = stage1_task(sps, task, k, minimize)
    return b.stages, b.considered, len(b.cycles), kept


@contextlib.contextmanager
def _local_map(workers: int, prog: Program, names, defines, simulate):
    """imap(fn, jobs, small=False) over a pool of local processes: fn(job, spaces) for each job, in order
    (small jobs go one by one too: a pipe costs much less than a Dask task)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers, _worker_init, (prog, names, defines, simulate)) as pool:
        yield lambda fn, jobs, small=False: pool.imap(functools.partial(_in_pool, fn), jobs)


def _spread(stack: contextlib.ExitStack, prog: Program, names, defines, workers: int, cluster,
            cluster_timeout: float | None, simulate, make_work: Callable[[int], list]) -> tuple[list, Callable | None]:
    """The pieces of work (make_work(how many run at once)) and the imap that spreads them: over the
    cluster when there is one, over local processes with workers > 1, else None (run here)."""
    if cluster is not None:
        from .cluster import CONNECT_TIMEOUT_S, cluster_map

        make_spaces = functools.partial(_spaces_only, simulate=simulate)
        threads, imap = stack.enter_context(cluster_map(cluster, prog, names, defines, make_spaces,
                                                        cluster_timeout or CONNECT_TIMEOUT_S))
        return make_work(threads), imap
    work = make_work(workers)
    if workers > 1 and len(work) > 1:  # each worker is handed the program, parsed
        return work, stack.enter_context(_local_map(workers, prog, names, defines, simulate))
    return work, None


def explore(prog: Program, names: list[str] | None = None, defines: dict | None = None, minimize: str = "latency",
            top: int = 10, workers: int = 1, progress: Callable[[int, int, float], None] | None = None,
            exhaustive: bool = False, k: int | None = None, cluster=None,
            cluster_timeout: float | None = None, simulate: Callable | None = None) -> Exploration:
    """Search every candidate; the best `top` by `minimize`, and the energy-latency Pareto front.

    By default in two stages (stages.py): stage 1's closed forms over every candidate, the
    detailed model over its best k (DEFAULT_K) and its Pareto front. exhaustive: the detailed model
    over every candidate. Kernels with processes and channels are always searched exhaustively.
    workers: local processes to spread the work over; cluster: a Dask scheduler's address (or a
    distributed.Client) to spread it over instead (cluster.py), waiting cluster_timeout seconds
    at most for it to answer. Either way the result is one worker's. simulate(prog, kernel, defines,
    check=False) runs a candidate of a kernel with processes and channels (api.explore: the interpreter)."""
    if minimize not in OBJECTIVES:
        raise UsageError(f"--minimize takes {', '.join(OBJECTIVES)}, not '{minimize}'")
    if k is not None and k < 1:
        raise UsageError(f"--k takes a positive number, not {k}")
    if cluster is not None and workers > 1:
        raise UsageError("--workers and --cluster: pick one (the cluster's workers are its processes)")
    t0 = time.perf_counter()
    defines = dict(defines or {})
    sps, notes = spaces(prog, names, defines, simulate)
    total = sum(sp.size for sp in sps)
    spread = functools.partial(_spread, prog=prog, names=names, defines=defines, workers=workers, simulate=simulate,
                               cluster=cluster, cluster_timeout=cluster_timeout)
    if not exhaustive and total and not any(has_processes(sp.kernel) for sp in sps):
        got = _two_stage(sps, notes, total, minimize, top, progress, k or DEFAULT_K, t0, spread)
        if got is not None:
            return got
        notes = notes + ["stage 1 left no candidate the detailed model could cost: searched exhaustively"]
    parts: list[Part] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(keep_heap())
        skipped: list[Stage] = []

        def make_work(n: int) -> list[Task]:
            work, ruled = tasks(sps, n)
            skipped.extend(ruled)
            return work

        work, imap = spread(stack, make_work=make_work)
        done = sum(s.removed for s in skipped)
        results = imap(_run_task, work) if imap is not None else (_run_task(t, sps) for t in work)
        for part, task in zip(results, work, strict=True):
            parts.append(part)
            done += task.size
            if progress:
                progress(done, total, time.perf_counter() - t0)
    stages = _merge_stages(skipped, parts)
    feasible = sum(len(p.index) for p in parts)
    evaluated = sum(p.considered for p in parts)
    simulated = sum(p.considered for p in parts if has_processes(sps[p.kernel].kernel))
    if total == 0:
        raise AttnError(error("E1403", "the space is empty", sps[0].kernel.name_span))
    if feasible == 0:
        raise AttnError(_nothing_feasible(sps, stages, total))
    best, top_list, pareto, points = _rank(sps, parts, minimize, top)
    seconds = time.perf_counter() - t0
    return Exploration(total, feasible, evaluated, seconds, minimize, best, top_list, pareto, stages, notes,
                       [sp.kernel.name for sp in sps], points, _varying(sps), simulated)


def _two_stage(sps, notes, total, minimize, top, progress, k, t0, spread) -> Exploration | None:
    """Stage 1 over every block, stage 2 over the survivors; None when the search should be exhaustive
    instead (stage 1 cannot cost the kernel, or leaves nothing the detailed model finds feasible: the
    exhaustive search then says why, exactly)."""
    kept = Pool.empty()
    stages: list[Stage] = []
    considered = feasible1 = done = 0

    def take(b_stages, b_considered, b_feasible, b_kept, size) -> None:
        nonlocal kept, considered, feasible1, done
        stages.extend(b_stages)
        considered += b_considered
        feasible1 += b_feasible
        kept = reduce(Pool.join([kept, b_kept]), k, minimize)
        done += size
        if progress:
            progress(done, total, time.perf_counter() - t0)

    with contextlib.ExitStack() as stack:
        stack.enter_context(keep_heap())
        work, imap = spread(stack, make_work=lambda n: stage1_tasks(sps, n))
        jobs = [(t, k, minimize) for t in work]
        try:
            for got, task in zip(imap(_stage1_job, jobs) if imap is not None else
                                 (_stage1_job(j, sps) for j in jobs), work, strict=True):
                take(*got, task.size)
        except AttnError:
            return None
        t1 = time.perf_counter()
        if feasible1 == 0:
            return None
        phase = getattr(progress, "phase", None)  # the command's progress line names the stage it is in
        if phase is not None:
            phase("explore, stage 2", "combinations re-ranked by the detailed model")
        parts = stage2(sps, kept, None if progress is None else
                       lambda done, n: progress(done, n, time.perf_counter() - t1), imap)
    after = [s for p in parts for s in p.stages]
    feasible = feasible1 - sum(s.removed for s in after)
    if not any(len(p.index) for p in parts):
        return None
    merged = _merge_stages(stages + after, [])
    best, top_list, pareto, points = _rank(sps, parts, minimize, top)
    t2 = time.perf_counter()
    return Exploration(total, feasible, considered, t2 - t0, minimize, best, top_list, pareto, merged, notes,
                       [sp.kernel.name for sp in sps], points, _varying(sps), 0,
                       {"candidates": considered, "seconds": t1 - t0},
                       {"candidates": len(kept), "seconds": t2 - t1, "k": k})


def _varying(sps: list[KernelSpace]) -> list[str]:
    return list(dict.fromkeys(a.name for sp in sps for a in sorted(sp.split + sp.grid,
                                                                   key=lambda a: sp.order.index(a.name))))


def _merge_stages(skipped: list[Stage], parts: list[Part]) -> list[Stage]:
    merged: dict[str, Stage] = {}
    for s in skipped + [s for p in parts for s in p.stages]:
        m = merged.get(s.what)
        if m is None:
            merged[s.what] = m = Stage(s.what, s.span, 0, None, s.memory)
        m.removed += s.removed
        if s.smallest is not None:
            m.smallest = s.smallest if m.smallest is None else min(m.smallest, s.smallest)
    return list(merged.values())


def _nothing_feasible(sps: list[KernelSpace], stages: list[Stage], total: int):
    """Say which constraint removed the last candidates."""
    remaining = total
    last = None
    for s in stages:
        if s.removed:
            last = (s, remaining)
        remaining -= s.removed
    if last is None:
        return error("E1402", "no candidate is feasible", sps[0].kernel.name_span)
    stage, before = last
    span = stage.span or sps[0].kernel.name_span
    if stage.memory is not None:
        left = "" if before == total else " left"
        msg = f"{stage.what} removed {_all(before)}{left}; the smallest needs {_bytes(stage.smallest)}"
        mem = sps[0].hw.memories[stage.memory]
        notes = [f"{stage.memory} holds {_bytes(mem.capacity_bytes)}"]
        if mem.policy != "strict":
            notes.append(f"{stage.memory} spills when full; `attn run` runs such a candidate, spilling, "
                         "but explore cannot cost it")
        return error("E1402", msg, span, *notes)
    if before == total:
        return error("E1402", f"{stage.what} removed {_all(total)}", span)
    last_ones = "the last candidate" if before == 1 else f"the last {before:,} candidates"
    return error("E1402", f"{stage.what} removed {last_ones}", span,
                 "; ".join(f"{s.what} removed {s.removed:,}" for s in stages if s.removed))


def _all(n: int) -> str:
    return "the only candidate" if n == 1 else f"all {n:,} candidates"


def _bytes(n: float | None) -> str:
    if n is None:
        return "?"
    if n >= 2**20:
        return f"{n / 2**20:.2f} MiB"
    if n >= 2**10:
        return f"{n / 2**10:.0f} KiB" if n % 1024 == 0 else f"{n / 2**10:.1f} KiB"
    return f"{n:.0f} B"


def _distinct_best(objective, second, cycles, energy, kernel, n: int) -> tuple[list[int], dict[int, int]]:
    """The n best candidates of distinct cost, and for each how many others of its kernel cost exactly the
    same: candidates that differ only in params that change nothing are one line of the ranking, not ten.
    (Two kernels are two dataflows: a tie between them stays two lines.)"""
    k = n
    while True:
        if len(objective) > 4 * k + 64:
            cut = np.argpartition(objective, k - 1)[:k]
            keep = np.flatnonzero(objective <= objective[cut].max())
        else:
            keep = np.arange(len(objective))
        order = keep[np.lexsort((second[keep], objective[keep]))]  # stable: ties keep that order
        picked: list[int] = []
        first: dict[tuple, int] = {}
        same: dict[int, int] = {}
        for i in order.tolist():
            key = (kernel[i], cycles[i], energy[i], objective[i])
            if key in first:
                same[first[key]] += 1
            elif len(picked) < n:
                first[key], same[i] = i, 0
                picked.append(i)
        # Every candidate as good as a picked one is in keep, so its count is whole.
        if len(picked) == n or len(keep) == len(objective):
            return picked, same
        k *= 4


def _rank(sps: list[KernelSpace], parts: list[Part], minimize: str, top: int):
    cycles = np.concatenate([p.cycles for p in parts])
    energy = np.concatenate([p.energy_pj for p in parts])
    owner = np.concatenate([np.full(len(p.index), i) for i, p in enumerate(parts)])
    local = np.concatenate([p.index for p in parts])
    if len({(p.kernel, p.combo) for p in parts}) < len(parts):
        # Chunks of one combination: back to the order of kernels, combinations and the grid, which
        # breaks ties below (parts come in kernel and combination order, each in grid order).
        combo = np.array([p.combo for p in parts])[owner]
        kernel = np.array([p.kernel for p in parts])[owner]
        canon = np.lexsort((local, combo, kernel))
        cycles, energy, owner, local = cycles[canon], energy[canon], owner[canon], local[canon]
    seconds = cycles / np.array([sps[p.kernel].hw_for(sps[p.kernel].combos()[p.combo]).clock_hz
                                 for p in parts])[owner]
    objective = {"latency": seconds, "energy": energy, "edp": seconds * energy}[minimize]
    second = energy if minimize != "energy" else seconds
    kernel_of = np.array([p.kernel for p in parts])[owner]
    order, same = _distinct_best(objective, second, cycles, energy, kernel_of, min(top, len(objective)))

    def cand(i: int) -> Candidate:
        p = parts[owner[i]]
        sp = sps[p.kernel]
        combo = sp.combos()[p.combo]
        index = tuple(int(x) for x in np.unravel_index(int(local[i]), sp.shape)) if sp.grid else ()
        return Candidate(sp.kernel.name, sp.defines(combo, index), int(cycles[i]), float(energy[i]),
                         float(seconds[i]))

    top_list = [dataclasses.replace(cand(int(i)), same_cost=same[int(i)]) for i in order]
    # Pareto front: by time, then energy; keep each point that lowers the best energy so far.
    by = np.lexsort((energy, seconds))
    e_sorted = energy[by]
    running = np.minimum.accumulate(e_sorted)
    front = np.ones(len(by), dtype=bool)
    front[1:] = e_sorted[1:] < running[:-1]
    pareto = [cand(int(i)) for i in by[front]]
    step = max(1, len(seconds) // 50_000)
    return (top_list[0] if top_list else None), top_list, pareto, (seconds[::step], energy[::step])


# ---------------------------------------------------------------- validation


def validate(prog: Program, cands: list[Candidate], simulate: Callable,
             progress: Callable[[int, int, float], None] | None = None) -> list[dict]:
    """Run candidates through the interpreter; the model's error next to each. progress(done, total,
    seconds) is called before each run and after the last. simulate(prog, kernel, defines) runs one
    (api.validate: api.run, the interpreter)."""

    out = []
    t0 = time.perf_counter()
    for i, c in enumerate(cands):
        if progress is not None:
            progress(i, len(cands), time.perf_counter() - t0)
        r = simulate(prog, c.kernel, c.defines)
        out.append({
            "kernel": c.kernel, "defines": c.defines, "model_cycles": c.cycles, "sim_cycles": int(r.cycles),
            "error": (c.cycles - r.cycles) / r.cycles if r.cycles else 0.0,
            "model_energy_pj": c.energy_pj, "sim_energy_pj": r.energy_pj,
            "energy_error": (c.energy_pj - r.energy_pj) / r.energy_pj if r.energy_pj else 0.0,
            "verified": all(v.ok for v in r.verify.values()),
        })
    if progress is not None:
        progress(len(cands), len(cands), time.perf_counter() - t0)
    return out
