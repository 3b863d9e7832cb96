"""`attn explore`: arguments and the command (docs/cli.md).

    attn explore FILE [-k KERNEL]... [-D NAME=VALUE]... [--minimize latency|energy|edp]
                      [--top N] [--validate K] [--exhaustive] [--rerank K] [--workers N]
                      [--cluster ADDRESS [--cluster-timeout S]] [--json] [--plot FILE.png]

Exit status: 0 success; 1 the program is wrong, or no candidate is feasible;
2 the command line or a file is wrong.
"""

from __future__ import annotations

import sys

from ..diagnostics import AttnError, UsageError, json_text


def add_arguments(p) -> None:
    p.add_argument("file", metavar="FILE")
    p.add_argument("-k", "--kernel", action="append", help="a kernel to explore (repeatable; default: every "
                                                            "kernel of the file that shares one spec)")
    p.add_argument("-D", dest="defines", action="append", metavar="NAME=VALUE", help="fix a dimension or param")
    p.add_argument("--minimize", choices=("latency", "energy", "edp"), default="latency",
                   help="what `best` and `top` rank by (edp: energy x delay)")
    p.add_argument("--top", type=int, default=10, help="how many of the best candidates to list (default 10)")
    p.add_argument("--validate", type=int, default=0, metavar="K",
                   help="run the best K through the interpreter and show the model's error")
    p.add_argument("--exhaustive", action="store_true",
                   help="cost every candidate with the detailed model (default: two stages)")
    p.add_argument("--rerank", type=int, default=None, metavar="K",
                   help="how many of stage 1's best the detailed model re-ranks (default 1024)")
    p.add_argument("--workers", type=int, default=1, help="processes to spread the candidates over")
    p.add_argument("--cluster", metavar="ADDRESS", help="spread the candidates over the Dask cluster whose "
                                                        "scheduler is at ADDRESS (needs attnlang[cluster])")
    p.add_argument("--cluster-timeout", type=float, default=None, metavar="S",
                   help="seconds to wait for the cluster's scheduler and a worker (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="FILE.png", help="write the energy-latency plot (needs matplotlib)")


def main(args) -> int:
    from ..api import explore, load_program, validate
    from .common import defines as _defines
    from .common import report_error

    if args.top < 1:
        raise UsageError(f"--top takes a positive number, not {args.top}")
    if args.validate < 0:
        raise UsageError(f"--validate takes a number of candidates, not {args.validate}")
    if args.rerank is not None and args.rerank < 1:
        raise UsageError(f"--rerank takes a positive number, not {args.rerank}")
    if args.workers < 1:
        raise UsageError(f"--workers takes a positive number, not {args.workers}")
    if args.cluster_timeout is not None and args.cluster is None:
        raise UsageError("--cluster-timeout goes with --cluster")
    if args.plot:
        _need_matplotlib()
    defines = _defines(args.defines)
    prog = load_program(args.file, args.include or ())
    progress = _Progress()
    try:
        ex = explore(prog, args.kernel, defines, args.minimize, args.top, args.workers, progress, args.exhaustive,
                     args.rerank, args.cluster, args.cluster_timeout)
    except AttnError as exc:
        progress.done()
        return report_error(exc, prog.sources, args.json)
    progress.done()
    validated = None
    if args.validate:
        try:
            validating = _Progress("validate", "runs in the interpreter", after_s=0.0)
            validated = validate(prog, ex.top[:args.validate], validating)
            validating.done()
        except AttnError as exc:
            return report_error(exc, prog.sources, args.json)
    if args.plot:
        _plot(ex, args.plot)
        print(f"explore: wrote the energy-latency plot to {args.plot}", file=sys.stderr)
    if args.json:
        out = ex.to_json()
        out["rate"] = ex.rate
        if validated is not None:
            out["validated"] = validated
        print(json_text(out, indent=2))
    else:
        print(text_report(ex, args.file, validated))
    return 0


class _Progress:
    """Progress on stderr (tqdm) once a stage has taken more than after_s seconds: the search, or the
    validating runs (each can take seconds, so they show from the first). Called as progress(done, total,
    seconds), seconds counted by the search from the stage's start."""

    def __init__(self, stage: str = "explore", what: str = "candidates", after_s: float = 1.0) -> None:
        self.bar = None
        self.stage, self.what, self.after_s = stage, what, after_s

    def phase(self, stage: str, what: str) -> None:
        """The next calls count something else (the second stage of a search)."""
        self.done()
        self.stage, self.what = stage, what

    def __call__(self, done: int, total: int, seconds: float) -> None:
        if self.bar is None:
            if seconds < self.after_s:
                return
            from tqdm import tqdm

            # delay: nothing printed until the first refresh below; smoothing 0: the rate is the average
            # over the whole stage, which began `seconds` before the bar
            self.bar = tqdm(total=total, desc=self.stage, unit=f" {self.what}", file=sys.stderr, mininterval=0.5,
                            smoothing=0, delay=1e-9, unit_scale=total > 10**5, leave=True)
            self.bar.start_t -= seconds
            self.bar.update(done)
            self.bar.refresh()
            return
        if total != self.bar.total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def done(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _need_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install attnlang[plot]") from None


# ---------------------------------------------------------------- text


def text_report(ex, path: str, validated: list | None = None) -> str:
    out = [f"explore {path}: {', '.join(ex.kernels)}"]
    removed = [f"{s.what} removed {s.removed:,}" for s in ex.pruned if s.removed]
    out.append(f"  {_count(ex.candidates, 'candidate')}" + (f"; {'; '.join(removed)}" if removed else "")
               + f"; {ex.feasible:,} feasible")
    modeled = ex.evaluated - ex.simulated
    how = ("by simulation" if not modeled else f"{modeled:,} by the model, {ex.simulated:,} by simulation") \
        if ex.simulated else "by the model"
    rate = f"{ex.rate:,.0f}" if ex.rate >= 10 else f"{ex.rate:.2g}"
    out.append(f"  {ex.evaluated:,} evaluated {how} in {ex.seconds:.3f} s ({rate} candidates/s)")
    if ex.stage1 is not None:
        s1, s2 = ex.stage1, ex.stage2
        out.append(f"  stage 1: {s1['candidates']:,} in {s1['seconds']:.3f} s; stage 2, the detailed model: "
                   f"{s2['candidates']:,} re-ranked in {s2['seconds']:.3f} s")
    for note in ex.notes:
        out.append(f"  note: {note}")
    out.append("")
    out.append(f"best {len(ex.top)} by {ex.minimize}" + (
        " (candidates of the same cycles and energy are one line; 'same cost' counts the others)"
        if any(c.same_cost for c in ex.top) else ""))
    out += _table(ex.top, ex.varying, numbered=True)
    out.append("")
    out.append(f"energy-latency Pareto front ({len(ex.pareto)} point{'s' if len(ex.pareto) != 1 else ''}, "
               "fastest first)")
    out += _table(ex.pareto, ex.varying, numbered=False)
    if validated:
        out.append("")
        out.append("validated against the interpreter")
        out.append(f"  {'#':>2}  {'model cycles':>13}  {'sim cycles':>13}  {'error':>7}  {'energy error':>12}  spec")
        for i, v in enumerate(validated, 1):
            out.append(f"  {i:>2}  {v['model_cycles']:>13,}  {v['sim_cycles']:>13,}  {100 * v['error']:>+6.1f}%  "
                       f"{100 * v['energy_error']:>+11.2f}%  {'ok' if v['verified'] else 'FAILED'}")
    return "\n".join(out)


def _table(cands, varying: list[str], numbered: bool) -> list[str]:
    if not cands:
        return ["  (none)"]
    shown = [n for n in varying if any(n in c.defines for c in cands)]
    # params worked out from others (a hardware's area) where they differ between the lines
    shown += [n for n in cands[0].defines if n not in shown and len({repr(c.defines.get(n)) for c in cands}) > 1]
    kernels = len({c.kernel for c in cands}) > 1
    same = any(c.same_cost for c in cands)
    head = (["#"] if numbered else []) + (["kernel"] if kernels else []) + shown + ["cycles", "time", "energy"]
    head += ["same cost"] if same else []
    rows = []
    for i, c in enumerate(cands, 1):
        row = ([str(i)] if numbered else []) + ([c.kernel] if kernels else [])
        row += [_value(c.defines.get(n, "")) for n in shown]
        row += [f"{c.cycles:,}", _si(c.seconds, "s"), _si(c.energy_pj * 1e-12, "J")]
        row += [f"+{c.same_cost:,}" if c.same_cost else ""] if same else []
        rows.append(row)
    widths = [max(len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(head)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return ["  " + fmt.format(*head)] + ["  " + fmt.format(*r) for r in rows]


def _value(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p")):
        if abs(value) >= factor:
            return f"{value / factor:.3f} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _count(n: int, noun: str) -> str:
    """'1 candidate', '2 candidates'."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


# ---------------------------------------------------------------- plot


def _plot(ex, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..api import save_atomic

    fig, ax = plt.subplots(figsize=(7, 5))
    if ex.points is not None and len(ex.points[0]):
        ax.scatter(ex.points[0] * 1e3, ex.points[1] * 1e-6, s=4, c="0.75", label="feasible candidates")
    px = [c.seconds * 1e3 for c in ex.pareto]
    py = [c.energy_pj * 1e-6 for c in ex.pareto]
    ax.plot(px, py, "o-", c="C3", ms=4, label="Pareto front")
    if ex.best is not None:
        ax.plot([ex.best.seconds * 1e3], [ex.best.energy_pj * 1e-6], "*", c="C0", ms=14,
                label=f"best ({ex.minimize})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("energy (\u00b5J)")
    ax.set_title(f"{', '.join(ex.kernels)}: {ex.feasible:,} feasible of {ex.candidates:,}")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    save_atomic(path, lambda f: fig.savefig(f, format="png", dpi=120))
    plt.close(fig)


__all__ = ["add_arguments", "main", "text_report"]
