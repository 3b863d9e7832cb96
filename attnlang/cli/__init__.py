"""The `attn` command: a thin face over the library (docs/cli.md).

One module per command (check, run, explore, schedule, study; the REPL and the language server are
packages of their own), each with its `add_arguments(parser)` and `main(args)`; common.py holds what they
share.

Exit status: 0 success; 1 the program is wrong; 2 the command line or a file
is wrong; 3 an internal error (a bug in attnlang: please report it).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Sequence

from .. import __version__
from ..diagnostics import NO_SPAN, Span, UsageError, error, to_json
from .common import Parser, add_include

#: Each command: the module with its main(args) (and, but for the REPL and the language server, its
#: add_arguments(parser)), relative to this package, and its help.
_COMMANDS = {
    "check": (".check", "check programs and report every problem"),
    "run": (".run", "run a kernel on its modeled hardware and verify it against its spec"),
    "explore": (".explore", "search the design space of a kernel's params with the analytical model"),
    "schedule": (".schedule", "a ring kernel's schedule in units of work; --prove: the fewest steps, by SAT"),
    "study": (".study", "reproduce a published study beside its reference (flat: FLAT's table)"),
    "repl": ("..repl", "an interactive session: statements, tensor expressions and their costs"),
    "lsp": ("..lsp", "the language server, over stdio"),
}


def _module(command: str):
    """The command's module, imported when it is needed: a command does not import what another needs."""
    return importlib.import_module(_COMMANDS[command][0], __package__)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; only: give just this command its arguments (the others are listed with
    their help but take none), so a command does not import what another command's options need."""
    p = Parser(prog="attn", description="attnlang: attention dataflows on modeled accelerators")
    p.add_argument("--version", action="version", version=f"attn {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, (_, help_text) in _COMMANDS.items():
        c = sub.add_parser(name, help=help_text)
        if name == "repl":
            c.add_argument("file", nargs="?", metavar="FILE")
        elif name != "lsp" and only in (None, name):
            _module(name).add_arguments(c)
        if name not in ("study", "lsp"):  # the commands that read programs: -I DIR
            add_include(c)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        # the command is the first word (the only options before it are --help and --version)
        args = build_parser(argv[0] if argv and argv[0] in _COMMANDS else None).parse_args(argv)
        return _module(args.command).main(args)
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
