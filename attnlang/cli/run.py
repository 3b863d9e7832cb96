"""`attn run FILE [-k KERNEL] [-D NAME=VALUE]... [--engine interp|jit] [--verify ...] ...` (docs/cli.md)."""

from __future__ import annotations

import os
import sys

from ..diagnostics import AttnError, Sources, Span, UsageError, json_text, render_all, to_json
from .common import defines, report_error


def add_arguments(r) -> None:
    r.add_argument("file", metavar="FILE")
    r.add_argument("-k", "--kernel")
    r.add_argument("-D", dest="defines", action="append", metavar="NAME=VALUE")
    r.add_argument("--input", action="append", metavar="NAME=FILE.npy", help="an input tensor")
    r.add_argument("--save", action="append", metavar="NAME=FILE.npy", help="write an output tensor")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--engine", choices=("interp", "jit"), default="interp")
    r.add_argument("--json", action="store_true")
    r.add_argument("--trace", metavar="FILE.json", help="write a Chrome/Perfetto trace")
    r.add_argument("--max-cycles", type=float, default=None, help="stop a run past this many cycles")
    r.add_argument("--timeout", type=float, default=None, help="stop a run past this many wall seconds")
    r.add_argument("--max-steps", type=int, default=None, metavar="N",
                   help="stop a run past N loop iterations (default 100000000; 0: no limit)")
    r.add_argument("--verify", default="auto", metavar="auto|full|rows=K|off",
                   help="check every element against the spec (full), K rows drawn at random, none (off), or "
                        "full up to N = 2048 and rows=256 beyond (auto, the default)")


def main(args) -> int:
    import numpy as np

    from ..api import load_npy, load_program, run, save_atomic
    from ..dtypes import numpy_dtype
    from ..report import chrome_trace, text_report

    values = defines(args.defines)
    inputs = dict(load_npy(s) for s in args.input or [])
    saves = []
    for spec in args.save or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--save expects NAME=FILE.npy, not '{spec}'")
        saves.append((name, path))
    from ..wallclock import Deadline, time_limit

    stop = _hard_stop(args.timeout, args.json)
    deadline = Deadline(args.timeout, span=Span(args.file, 1, 1, 1, 2))  # reading and parsing count too
    try:
        with time_limit(deadline):
            prog = load_program(args.file, args.include or ())
    except AttnError as exc:
        return report_error(exc, Sources(), args.json)
    try:
        if args.max_steps is not None and args.max_steps < 0:
            raise UsageError(f"--max-steps takes a number of loop iterations, 0 for no limit, not {args.max_steps}")
        steps = {} if args.max_steps is None else {"max_steps": args.max_steps or None}
        result = run(prog, args.kernel, values, inputs, seed=args.seed, engine=args.engine,
                     trace=bool(args.trace), max_cycles=args.max_cycles, timeout=deadline.left(), verify=args.verify,
                     **steps)
    except AttnError as exc:
        return report_error(exc, prog.sources, args.json)
    finally:
        if stop is not None:
            stop.cancel()
    for name, _path in saves:
        if name not in result.outputs:
            raise UsageError(f"--save {name}: kernel '{result.kernel}' has no output '{name}' "
                             f"(outputs: {', '.join(result.outputs)})")
    for name, path in saves:
        dtype = next(t.dtype for t in prog.kernel(args.kernel).outputs if t.name == name)
        arr = result.outputs[name].astype(numpy_dtype(dtype))
        save_atomic(path, lambda f, a=arr: np.save(f, a, allow_pickle=False))
    if args.trace:
        text = chrome_trace(result)
        save_atomic(args.trace, lambda f: f.write(text.encode()))
    if result.warnings:
        print(render_all(result.warnings, prog.sources), file=sys.stderr)
    if args.json:
        print(json_text(result.to_json(), indent=2))
    else:
        print(text_report(result))
    failed = [v for v in result.verify.values() if not v.ok]
    if failed:
        from ..spec import mismatch_diagnostic

        k = prog.kernel(args.kernel)
        diags = [mismatch_diagnostic(v, next(s for s in k.specs if s.output == v.output)) for v in failed]
        print(render_all(diags, prog.sources), file=sys.stderr)
        return 1
    return 0


def _hard_stop(timeout: float | None, as_json: bool):
    """A timer that ends the process (exit 1, E1004) when run() has not stopped itself at its --timeout: only
    native code (LLVM compiling a huge kernel) keeps the limit's alarm from being seen (wallclock.py)."""
    import threading

    from ..diagnostics import error
    from ..wallclock import HARD_STOP_S

    if not timeout:
        return None

    def stop() -> None:
        d = error("E1004", "the command passed its wall-time limit (--timeout) in native code and was ended",
                  Span("<command line>", 1, 1, 1, 2))
        if as_json:
            print(to_json([d]), flush=True)
        print(f"attn: error[E1004]: {d.message}", file=sys.stderr, flush=True)
        os._exit(1)

    timer = threading.Timer(timeout + HARD_STOP_S, stop)
    timer.daemon = True
    timer.start()
    return timer
