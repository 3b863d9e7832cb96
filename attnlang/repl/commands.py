"""The REPL's `:commands` and its completion.

Each command is a function (session, arguments) -> False to end the session,
anything else to go on. `:run` and `:explore` are the same code paths as
`attn run` and `attn explore`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
from typing import Callable

from ..diagnostics import AttnError, UsageError, render_all
from ..syntax import vocab

HELP = """\
Type a declaration (use, hardware, kernel), a statement (x = load Q[0:64, :] -> sram,
x = expr, dim N = 64, for ... { }), or a tensor expression (q @ q.T): expressions run on
the current hardware and print their value, cycles and energy. An unclosed { ( or [
continues on the next line.

  :help                      this text
  :load FILE                 load a .attn file (its hardware and kernels)
  :hw [NAME]                 show or pick the hardware (from the program, or the stdlib: :hw edge)
  :tensor NAME f16[64, 64]   declare a session input (standard normal, seed 0)
  :vars                      the session's tensors, values and dims
  :run [KERNEL] [-D N=V ...] run a kernel and print its report
  :explore [ARGS...]         attn explore on the loaded file
  :check                     check the session's program
  :reset                     forget values, tensors and typed declarations (keeps the loaded file)
  :quit                      leave (as does end of input)"""

COMMANDS = (":help", ":load", ":hw", ":tensor", ":vars", ":run", ":explore", ":check", ":reset", ":quit")


def cmd_help(s, args) -> None:
    s.say(HELP)


def cmd_quit(s, args) -> bool:
    return False


def cmd_load(s, args) -> None:
    if len(args) != 1:
        raise UsageError(":load takes one file: :load FILE")
    s.load_file(args[0])


def cmd_hw(s, args) -> None:
    from ..display import hardware_lines

    if len(args) > 1:
        raise UsageError(":hw takes one hardware name: :hw edge")
    if args:
        s.pick_hardware(args[0])
    else:
        s.say("\n".join(hardware_lines(s.hardware())))


def cmd_tensor(s, args) -> None:
    if len(args) < 2:
        raise UsageError(":tensor takes a name and a type: :tensor Q f16[64, 64]")
    s.declare_tensor(args[0], " ".join(args[1:]))


def cmd_vars(s, args) -> None:
    lines = [f"tensor {n}: {dtype}[{', '.join(map(str, data.shape))}]" for n, (data, dtype) in s.tensors.items()]
    if s.work is not None:
        lines += [f"value  {n}: {tv.dtype}[{', '.join(map(str, tv.data.shape))}] in {tv.buf.memory}"
                  for n, tv in s.work.values.items()]
    lines += [f"static {n} = {v}" for n, v in s.statics.items()]
    s.say("\n".join(lines) if lines else "(nothing yet: :tensor declares an input, x = ... a value)")


def cmd_run(s, args) -> None:
    from ..api import run
    from ..binding import parse_define
    from ..report import text_report

    kernel, defines, seed = None, {}, 0
    it = iter(args)
    for a in it:
        if a == "-D":
            a = "-D" + next(it, "")
        if a.startswith("-D"):
            name, value = parse_define(a[2:])
            defines[name] = value
        elif a == "--seed":
            text = next(it, "")
            if not text.isdigit():
                raise UsageError(f"--seed takes a whole number, not '{text}'")
            seed = int(text)
        elif a.startswith("-") or kernel is not None:
            raise UsageError(f":run [KERNEL] [-D NAME=VALUE]... [--seed N], not '{a}'")
        else:
            kernel = a
    if kernel is None:
        names = s.kernel_names()
        if len(names) != 1:
            raise UsageError(f"which kernel? (:run NAME; the session has: {', '.join(names) or 'none'})")
        kernel = names[0]
    result = run(s.prog, kernel, defines, seed=seed)
    if result.warnings:
        s.complain(render_all(result.warnings, s.sources))
    s.say(text_report(result))
    failed = [v for v in result.verify.values() if not v.ok]
    if failed:
        from ..spec import mismatch_diagnostic

        k = s.prog.kernel(kernel)
        raise AttnError([mismatch_diagnostic(v, next(x for x in k.specs if x.output == v.output)) for v in failed])


def cmd_explore(s, args) -> None:
    from ..cli.common import Parser, add_include
    from ..cli.explore import add_arguments
    from ..cli.explore import main as explore

    if s.file is None:
        raise UsageError(":explore works on a loaded file (:load FILE first)")
    parser = Parser(prog=":explore", add_help=False)
    add_arguments(parser)
    add_include(parser)
    with contextlib.redirect_stdout(s.out), contextlib.redirect_stderr(s.err):  # the session's streams
        code = explore(parser.parse_args([s.file, *args]))
    if code:
        s.complain(f"(attn explore exited with status {code})")


def cmd_check(s, args) -> None:
    from ..check import check

    diags = check(s.prog, None, s.kernel_names() or None)
    if diags:
        s.show_diagnostics(diags)
    else:
        s.say(f"no problems ({len(s.kernel_names())} kernels, {len(s.prog.hardware)} hardware)")


def cmd_reset(s, args) -> None:
    s.reset()
    s.say("session reset" + (f" (still loaded: {os.path.relpath(s.file)})" if s.file else ""))


_COMMANDS: dict[str, Callable] = {
    ":help": cmd_help, ":h": cmd_help, ":?": cmd_help, ":quit": cmd_quit, ":q": cmd_quit, ":exit": cmd_quit,
    ":load": cmd_load, ":hw": cmd_hw, ":tensor": cmd_tensor, ":vars": cmd_vars, ":run": cmd_run,
    ":explore": cmd_explore, ":check": cmd_check, ":reset": cmd_reset,
}


def find(name: str) -> Callable | None:
    return _COMMANDS.get(name)


# ---------------------------------------------------------------- completion

_WORD = re.compile(r"@?[A-Za-z_][A-Za-z0-9_]*$|@$")


def complete(s, before: str) -> list[str]:
    """Completions of the last word of `before`, the text left of the cursor."""
    from ..display import stdlib_hardware

    line = before.lstrip()
    if line.startswith(":"):
        head, sep, rest = line.partition(" ")
        if not sep:
            return [c for c in COMMANDS if c.startswith(head)]
        word = rest.split(" ")[-1] if not rest.endswith(" ") else ""
        if head == ":hw":
            pool = list(dict.fromkeys([*s.prog.hardware, *stdlib_hardware()]))
        elif head == ":run":
            pool = s.kernel_names() if not word.startswith("-") else ["-D"]
        elif head in (":load", ":explore"):
            return _paths(word)
        elif head == ":tensor" and " " in rest.strip():
            pool = list(vocab.DTYPES)
        else:
            return []
        return [w for w in pool if w.startswith(word)]
    m = _WORD.search(before)
    word = m.group() if m else ""
    if word.startswith("@"):
        return ["@" + a for a in vocab.ANNOTATIONS if ("@" + a).startswith(word)]
    pool = [*s.names_in_scope(), *vocab.KEYWORDS, *vocab.BUILTINS, *vocab.CONSTANTS, *vocab.DTYPES]
    return [w for w in dict.fromkeys(pool) if w.startswith(word) and w != word]


def _paths(word: str) -> list[str]:
    out = []
    for p in sorted(glob.glob(glob.escape(word) + "*")):
        if os.path.isdir(p):
            out.append(p + os.sep)
        elif p.endswith(".attn"):
            out.append(p)
    return out
