"""The `attn` command: a thin face over the library (docs/cli.md).

Exit status: 0 success; 1 the program is wrong; 2 the command line or a file
is wrong; 3 an internal error (a bug in attnlang: please report it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from . import __version__
from .diagnostics import (
    NO_SPAN,
    AttnError,
    Sources,
    Span,
    UsageError,
    error,
    has_errors,
    json_text,
    render_all,
    to_json,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors are usage errors: exit 2
        self.print_usage(sys.stderr)
        raise UsageError(message)


def _defines(values: list[str] | None) -> dict:
    from .program import parse_define

    out = {}
    for text in values or []:
        name, value = parse_define(text)
        out[name] = value
    return out


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; only: give just this command its arguments (the others are listed with
    their help but take none), so a command does not import what another command's options need."""
    p = _Parser(prog="attn", description="attnlang: attention dataflows on modeled accelerators")
    p.add_argument("--version", action="version", version=f"attn {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("check", help="check programs and report every problem")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("-k", "--kernel", action="append", help="check only this kernel (repeatable)")
    c.add_argument("-D", dest="defines", action="append", metavar="NAME=VALUE", help="set a dimension or param")
    c.add_argument("--json", action="store_true", help="print diagnostics as JSON")

    r = sub.add_parser("run", help="run a kernel on its modeled hardware and verify it against its spec")
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

    e = sub.add_parser("explore", help="search the design space of a kernel's params with the analytical model")
    if only in (None, "explore"):
        from .model.explore_cli import add_arguments as add_explore_arguments

        add_explore_arguments(e)

    sc = sub.add_parser("schedule", help="a ring kernel's schedule in units of work; --prove: the fewest steps, by SAT")
    if only in (None, "schedule"):
        from .studies.schedule.cli import add_arguments as add_schedule_arguments

        add_schedule_arguments(sc)

    st = sub.add_parser("study", help="reproduce a published study beside its reference (flat: FLAT's table)")
    if only in (None, "study"):
        from .studies.cli import add_arguments as add_study_arguments

        add_study_arguments(st)

    rp = sub.add_parser("repl", help="an interactive session: statements, tensor expressions and their costs")
    rp.add_argument("file", nargs="?", metavar="FILE")
    for command in (c, r, e, sc, rp):
        command.add_argument("-I", dest="include", action="append", metavar="DIR",
                             help="a folder `use \"file\"` may also read from (repeatable; ATTN_PATH adds more)")
    sub.add_parser("lsp", help="the language server, over stdio")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        # the command is the first word (the only options before it are --help and --version)
        args = build_parser(argv[0] if argv and argv[0] in _COMMANDS else None).parse_args(argv)
        return _COMMANDS[args.command](args)
    except UsageError as exc:
        if "--json" in argv:  # --json promises JSON on stdout, whatever went wrong
            print(json.dumps([exc.diagnostic().to_json()], indent=2))
        print(exc.render(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _json_error(argv, INTERRUPTED, "interrupted")
        print("attn: interrupted", file=sys.stderr)
        return 130
    except MemoryError:  # a value too large for this machine: the program's sizes, not a bug
        message = ("out of host memory: the run makes a value larger than this machine can hold "
                   "(try smaller dims; `attn explore` costs a kernel without its numbers)")
        _json_error(argv, OUT_OF_MEMORY, message)
        print(f"attn: error[{OUT_OF_MEMORY}]: {message}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug in attnlang, not in the user's program
        if os.environ.get("ATTN_DEBUG"):
            raise
        message = f"internal error: {type(exc).__name__}: {exc}"
        _json_error(argv, INTERNAL_ERROR, f"{message} (a bug in attnlang; please report it)")
        print(f"attn: {message}\n"
              "This is a bug in attnlang; run again with ATTN_DEBUG=1 for the traceback and report it.",
              file=sys.stderr)
        return 3


#: Codes of what stops a command from outside the program (docs/diagnostics.md).
INTERNAL_ERROR = "E0110"  # a bug in attnlang (exit 3)
INTERRUPTED = "E0111"  # Ctrl-C (exit 130)
OUT_OF_MEMORY = "E1018"  # the run makes a value larger than this machine can hold (exit 1)


def _json_error(argv: list[str], code: str, message: str) -> None:
    """Under --json, the one diagnostic of a command that stopped, in the shape of `attn check --json`."""
    if "--json" not in argv:
        return
    try:
        print(to_json([error(code, message, Span(NO_SPAN.file, 0, 0, 0, 0))]), flush=True)
    except (BrokenPipeError, OSError):
        pass  # nobody is reading stdout any more


def cmd_check(args) -> int:
    from .check import check
    from .program import load

    defines = _defines(args.defines)
    all_diags = []
    sources = Sources()
    usage = False  # a file that cannot be read, or a -D or -k it cannot take: exit 2 once all are checked
    for path in args.files:
        try:
            prog = load(path, args.include or ())
            sources.merge(prog.sources)
            all_diags += check(prog, defines, args.kernel)
        except UsageError as exc:
            usage = True
            all_diags.append(exc.diagnostic())
    if args.json:
        print(to_json(all_diags))
    elif all_diags:
        print(render_all(all_diags, sources), file=sys.stderr)
    return 2 if usage else 1 if has_errors(all_diags) else 0


def cmd_run(args) -> int:
    import numpy as np

    from .api import load_npy, load_program, run, save_atomic
    from .interp.report import chrome_trace, text_report
    from .interp.values import numpy_dtype

    defines = _defines(args.defines)
    inputs = dict(load_npy(s) for s in args.input or [])
    saves = []
    for spec in args.save or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--save expects NAME=FILE.npy, not '{spec}'")
        saves.append((name, path))
    from .wallclock import Deadline, time_limit

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
        result = run(prog, args.kernel, defines, inputs, seed=args.seed, engine=args.engine,
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
        from .interp.spec import mismatch_diagnostic

        k = prog.kernel(args.kernel)
        diags = [mismatch_diagnostic(v, next(s for s in k.specs if s.output == v.output)) for v in failed]
        print(render_all(diags, prog.sources), file=sys.stderr)
        return 1
    return 0


def _hard_stop(timeout: float | None, as_json: bool):
    """A timer that ends the process (exit 1, E1004) when run() has not stopped itself at its --timeout: only
    native code (LLVM compiling a huge kernel) keeps the limit's alarm from being seen (wallclock.py)."""
    import threading

    from .diagnostics import error
    from .wallclock import HARD_STOP_S

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


def cmd_explore(args) -> int:
    from .model.explore_cli import main as explore_main

    return explore_main(args)


def cmd_schedule(args) -> int:
    from .studies.schedule.cli import main as schedule_main

    return schedule_main(args)


def cmd_study(args) -> int:
    from .studies.cli import main as study_main

    return study_main(args)


def cmd_repl(args) -> int:
    from .repl import main as repl_main

    return repl_main(args)


def cmd_lsp(args) -> int:
    from .lsp import main as lsp_main

    return lsp_main(args)


_COMMANDS = {"check": cmd_check, "run": cmd_run, "explore": cmd_explore, "schedule": cmd_schedule,
             "study": cmd_study, "repl": cmd_repl, "lsp": cmd_lsp}


def report_error(exc: AttnError, sources: Sources, as_json: bool) -> int:
    """Print an AttnError's diagnostics the way the contract says; exit status 1."""
    if as_json:  # the shape of `attn check --json`: a list of diagnostics
        print(to_json(exc.diagnostics))
    print(render_all(exc.diagnostics, sources), file=sys.stderr)
    return 1


def entry() -> None:
    try:
        status = main()
        if not sys.stdout.closed:  # the language server closes it on exit
            sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`attn ... | head`): nothing more to say, and no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 0
    sys.exit(status)


if __name__ == "__main__":
    entry()
