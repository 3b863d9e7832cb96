"""`attn schedule`: the ring kernel's schedule in units of work, and with --prove the fewest steps.

    attn schedule FILE [-k KERNEL] [-D NAME=VALUE]... [--prove] [--proof PREFIX] [--emit FILE.attn] [--json]
                       [--softmax-steps L] [--link-capacity C]

Exit status: 0 success (whether or not the kernel's schedule is the shortest); 1 the program is wrong
(diagnostics, a failed run, a kernel whose work per PE is not the ring schedule's); 2 the command line
or a file is wrong, the kernel is not a ring kernel, python-sat is missing, or n is too large for SAT.
"""

from __future__ import annotations

from collections import defaultdict

from ..diagnostics import AttnError, UsageError, error, has_errors, json_text
from ..studies.schedule.ring import SCHEMES, RingProblem, Timing, kernel_schedule, lower_bound, problem

#: The largest problem --prove takes: n = 16 on 16 PEs encodes to ~10^5 variables and takes ~20 s.
MAX_N = 16

GRANULARITY = ("a unit of work is one length-d vector operation on a PE's MAC cell, a dot product "
               "D(i,j) = q_i . k_j or a weighted-sum update W(i,j): acc_i += p_ij v_j; a step is one unit")


#: The text report draws a shortest schedule up to this many steps.
SHOW_STEPS = 24


def add_arguments(p) -> None:
    p.add_argument("file", metavar="FILE")
    p.add_argument("-k", "--kernel", help="the kernel (required when the file has several)")
    p.add_argument("-D", dest="defines", action="append", metavar="NAME=VALUE", help="set a dimension or param")
    p.add_argument("--prove", action="store_true",
                   help="find the fewest steps with a SAT solver and prove one fewer impossible (python-sat)")
    p.add_argument("--proof", metavar="PREFIX",
                   help="with --prove: write the formula one step below the optimum (PREFIX.cnf) and the "
                        "solver's DRUP refutation of it (PREFIX.drup), for drat-trim")
    p.add_argument("--emit", metavar="FILE.attn",
                   help="with --prove: write a shortest schedule as a runnable ring kernel (one process per PE, "
                        "the solver's units step by step) that checks, runs and verifies against the spec")
    p.add_argument("--softmax-steps", type=int, default=0, metavar="L",
                   help="the timed model: a weighted sum runs at least L steps after its score is on its PE "
                        "(the vector unit's softmax; 1 on hw.ring, where it is under one step; default 0)")
    p.add_argument("--link-capacity", type=int, default=None, metavar="C",
                   help="the timed model: a link carries at most C data a step, and every weighted sum runs "
                        "on its row's PE (default: links unlimited)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def main(args) -> int:
    from ..api import load_program
    from ..check import bind_kernel
    from .common import defines as _defines
    from .common import report_error

    if args.proof and not args.prove:
        raise UsageError("--proof needs --prove")
    if args.emit and not args.prove:
        raise UsageError("--emit needs --prove (it writes the solver's shortest schedule)")
    if args.softmax_steps < 0:
        raise UsageError(f"--softmax-steps takes a number of steps >= 0, not {args.softmax_steps}")
    if args.link_capacity is not None and args.link_capacity < 1:
        raise UsageError(f"--link-capacity takes a number of data a step >= 1, not {args.link_capacity}")
    timing = Timing(args.softmax_steps, args.link_capacity)
    defines = _defines(args.defines)
    prog = load_program(args.file, args.include or ())
    if has_errors(prog.diagnostics):
        return report_error(AttnError([d for d in prog.diagnostics if d.severity == "error"]), prog.sources,
                            args.json)
    k = prog.kernel(args.kernel)
    try:
        bound = bind_kernel(prog, k.name, defines)
    except AttnError as exc:
        return report_error(exc, prog.sources, args.json)
    env = bound.env
    n, m, scheme = _ring_params(k, env)
    if args.prove:
        if n > MAX_N:
            raise UsageError(f"n = {n} is too large for the SAT encoding: --prove takes n <= {MAX_N} "
                             f"(n = {MAX_N} on {MAX_N} PEs is about 10^5 variables and 20 s); "
                             f"without --prove, attn schedule times the kernel's schedule at any n")
        _need_pysat()
    pr = problem(n, m, scheme, timing)
    ks = kernel_schedule(pr)
    try:
        hw_name, units = _run_units(prog, k, defines, bound.hardware, env, m)
    except AttnError as exc:
        return report_error(exc, prog.sources, args.json)
    if units != ks.units:
        return report_error(AttnError(error(
            "E1501", f"kernel '{k.name}' does not do the work of the ring schedule ({scheme}, n = {n}, m = {m}): "
                     f"a run gives its PEs {_list(units)} units of MAC work, the ring schedule "
                     f"{_list(ks.units)}", k.name_span)), prog.sources, args.json)
    proof = None
    if args.prove:
        from ..studies.schedule.sat import prove

        proof = prove(pr, ks)
        if args.proof and proof.unsat_proof is not None:
            _write_proof(args.proof, proof)
    report = _report(k.name, hw_name, pr, ks, proof, env.get("d"))
    if args.emit:
        from ..api import save_atomic
        from ..studies.schedule.emit import emit
        from ..studies.schedule.sat import solve

        # the solver's own schedule at the optimum, free of the kernel's placement (which the search
        # above starts from, and reports when it is already optimal)
        free, _, _ = solve(pr, proof.optimum)
        text = emit(pr, free.placed, proof.optimum, env["d"], _latency(env))
        save_atomic(args.emit, lambda f: f.write(text.encode()))
        report["emitted"] = args.emit
    print(json_text(report, indent=2) if args.json else text_report(args.file, report))
    return 0


def _latency(env) -> int:
    """The ring links' latency the kernel uses (its param latency, else 4 cycles)."""
    lat = env.get("latency", 4)
    return lat if isinstance(lat, int) and not isinstance(lat, bool) and lat >= 0 else 4


def _ring_params(k, env) -> tuple[int, int, str]:
    missing = [x for x in ("n", "m") if not isinstance(env.get(x), int) or isinstance(env.get(x), bool)]
    if missing:
        raise UsageError(f"attn schedule models the ring schedule of self-attention (Yu & Fujita): kernel "
                         f"'{k.name}' needs integer {' and '.join(missing)} (n vectors over m PEs; it has "
                         f"{', '.join(sorted(env)) or 'no dims or params'})")
    scheme = env.get("scheme", "full")
    if scheme not in SCHEMES:
        raise UsageError(f"scheme = {scheme}: attn schedule knows the schemes {', '.join(SCHEMES)}")
    n, m = env["n"], env["m"]
    if m < 1 or n < 1 or n % m:
        raise UsageError(f"n = {n} over m = {m} PEs: the ring schedule needs n a positive multiple of m")
    return n, m, scheme


def _run_units(prog, k, defines, hw, env, m) -> tuple[str, list[int]]:
    """Run the kernel (the checker has passed) and count each PE's MAC units: matmul cycles / d."""
    from ..api import run

    d = env.get("d")
    if not isinstance(d, int) or isinstance(d, bool) or d < 1:
        raise UsageError(f"kernel '{k.name}' needs an integer dimension d (the length of a vector)")
    if not _has_ring(hw, m):
        raise UsageError(f"kernel '{k.name}' does not run on a unidirectional ring of m = {m} PEs "
                         f"(a unit array u[{m}] with links u[p] -> u[(p + 1) % {m}])")
    result = run(prog, k.name, defines, trace=True, check=False)
    busy: dict[str, float] = defaultdict(float)
    for e in result.events or []:
        if e.name == "matmul":
            busy[e.track] += e.busy_cycles
    arrays = {t.split("[")[0] for t in busy}
    if len(arrays) != 1:
        raise UsageError(f"kernel '{k.name}' runs its matmuls on {len(arrays)} matrix units; the ring schedule "
                         "has one per PE, an array of m")
    name = arrays.pop()
    if m == 1 and name in busy:                      # an array of one unit is traced by its bare name
        busy[f"{name}[0]"] = busy.pop(name)
    return result.hardware, [round(busy.get(f"{name}[{p}]", 0.0) / d) for p in range(m)]


def _has_ring(hw, m) -> bool:
    if m == 1:
        return True
    hops = {(ln.src, ln.src_index, ln.dst, ln.dst_index) for ln in hw.links}
    return any(all((u, p, u, (p + 1) % m) in hops for p in range(m)) for u in hw.units)


def _write_proof(prefix: str, proof) -> None:
    from ..api import save_atomic

    cnf = proof.unsat_cnf
    top = max((abs(v) for c in cnf for v in c), default=0)
    text = f"p cnf {top} {len(cnf)}\n" + "".join(" ".join(map(str, c)) + " 0\n" for c in cnf)
    save_atomic(prefix + ".cnf", lambda f: f.write(text.encode()))
    drup = "".join(line if line.endswith("\n") else line + "\n" for line in proof.unsat_proof)
    save_atomic(prefix + ".drup", lambda f: f.write(drup.encode()))


def _need_pysat() -> None:
    try:
        import pysat.solvers  # noqa: F401
    except ImportError:
        raise UsageError("attn schedule --prove needs python-sat: pip install 'attnlang[sat]'") from None


def _list(xs) -> str:
    return ", ".join(str(x) for x in xs)


def _report(kernel: str, hardware: str, pr: RingProblem, ks, proof, d) -> dict:
    lb, why = lower_bound(pr)
    out = {
        "kernel": kernel, "hardware": hardware, "n": pr.n, "m": pr.m, "scheme": pr.scheme, "d": d,
        "granularity": GRANULARITY, "model": pr.timing.to_json(), "model_text": pr.timing.describe(),
        "units": len(pr.ops), "kernel_units_per_pe": ks.units,
        "kernel_steps": ks.steps, "lower_bound": lb, "lower_bound_reason": why,
    }
    if proof is not None:
        from ..studies.schedule.sat import SOLVER

        out.update({
            "optimum": proof.optimum, "unsat_below": proof.unsat_proof is not None,
            "proof_checked": bool(proof.proof_check and proof.proof_check.refuted),
            "proof_check": proof.proof_check.reason if proof.proof_check else None,
            "kernel_is_optimal": proof.kernel_is_optimal, "solver": SOLVER, "seconds": proof.seconds,
            "solves": [{"steps": s.steps, "sat": s.sat, "seconds": s.seconds, "variables": s.variables,
                        "clauses": s.clauses, "kernel_placement": s.with_kernel, "proof_lines": s.proof_lines}
                       for s in proof.solves],
            "schedule": _grid(pr, proof.schedule, proof.optimum),
        })
    return out


def _grid(pr: RingProblem, placed: dict, steps: int) -> list[list[str | None]]:
    """One list per PE: the unit it runs at each step, or None."""
    grid: list[list[str | None]] = [[None] * steps for _ in range(pr.m)]
    for name, (p, t) in placed.items():
        grid[p][t] = name
    return grid


def text_report(path: str, r: dict) -> str:
    unit, step = r["granularity"].split("; ")
    lines = [f"schedule {path}: {r['kernel']} on {r['hardware']}   n={r['n']} m={r['m']} scheme={r['scheme']}",
             f"  {unit.replace(', a dot', ',' + chr(10) + '  a dot')}",
             f"  ({r['d']} cycles here); {step}",
             f"  in {r['model_text']}",
             f"  {r['units']:,} units on {r['m']} PEs; the kernel gives them {_list(r['kernel_units_per_pe'])} "
             "(counted from a run)",
             f"  kernel's schedule  {r['kernel_steps']:>6,} steps",
             f"  lower bound        {r['lower_bound']:>6,} steps ({r['lower_bound_reason']})"]
    if "optimum" in r:
        below = "UNSAT" if r["unsat_below"] else "not proven"
        lines.append(f"  optimum (SAT)      {r['optimum']:>6,} steps; {r['optimum'] - 1:,} steps: {below}")
        if r["unsat_below"]:
            verdict = "checked" if r["proof_checked"] else "REJECTED"
            lines.append(f"  DRUP proof {verdict}: {r['proof_check']}")
        if r["kernel_is_optimal"]:
            lines.append("  the kernel's schedule is optimal")
        else:
            extra = r["kernel_steps"] - r["optimum"]
            lines.append(f"  the kernel's schedule is {extra:,} step{'s' * (extra != 1)} longer than the optimum")
        lines.append(f"  solver {r['solver']}: {len(r['solves'])} calls in {r['seconds']:.2f} s")
        for s in r["solves"]:
            note = "  (the kernel's placement)" if s["kernel_placement"] else ""
            lines.append(f"    {s['steps']:>6,} steps  {'SAT  ' if s['sat'] else 'UNSAT'}  {s['seconds']:7.3f} s  "
                         f"{s['variables']:>9,} variables  {s['clauses']:>9,} clauses{note}")
        if r.get("emitted"):
            lines.append(f"  a shortest schedule written as a ring kernel: {r['emitted']} (attn run {r['emitted']})")
        if r["optimum"] <= SHOW_STEPS:
            lines.append(f"  a shortest schedule ({r['optimum']} steps, '.' idle):")
            width = max(len(u or ".") for row in r["schedule"] for u in row)
            lines += [f"    PE {p}  " + " ".join(f"{u or '.':<{width}}" for u in row).rstrip()
                      for p, row in enumerate(r["schedule"])]
    return "\n".join(lines)
