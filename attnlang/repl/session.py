"""The state of an `attn repl` session and what each input does to it.

The session's program is the declarations typed at the prompt (`use`,
`hardware`, `kernel`), plus the loaded file, which the session uses by path.
Statements and expressions run on a Workspace (evaluate.py) for the current
hardware. Output goes to two streams; errors are diagnostics, rendered with
attnlang.diagnostics.render, never tracebacks.
"""

from __future__ import annotations

import os
import shlex
import sys
import traceback
from functools import lru_cache
from typing import TextIO

import numpy as np

from ..api import held_bytes, host_memory_bytes
from ..check.capacity import fmt_bytes
from ..diagnostics import AttnError, Diagnostic, Sources, UsageError, did_you_mean, has_errors, render_all
from ..display import hardware_lines, stdlib_hardware, value_lines
from ..hardware import Hardware, elaborate
from ..program import Program, load_source, read_source
from ..static import StaticError, static_int
from ..syntax import ast, vocab
from ..syntax.build import SyntaxProblem
from ..syntax.parser import parse_expression
from .evaluate import Outcome, Workspace, cost_line
from .input import PROMPT_FILE, Parsed, parse_input

DEFAULT_HARDWARE = "edge"
#: The file name of the session's program: the declarations typed so far (and a `use` of the loaded file).
SESSION_FILE = "<session>"



class Session:
    """One REPL session: the program, the hardware, the workspace, and the streams it writes to."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, include: tuple[str, ...] = ()):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.file: str | None = None
        self.include = tuple(include)  # -I: folders `use "file"` may read from, besides the loaded file's
        self.decls: list[str] = []  # declarations typed at the prompt, in order
        self.prog: Program = self._build([])
        self.hw_name: str | None = None
        self.work: Workspace | None = None
        self.tensors: dict[str, tuple[np.ndarray, str]] = {}
        self.statics: dict = {}
        self.rng = np.random.default_rng(0)
        self.sources = Sources()

    # ---------------------------------------------------------- output
    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def complain(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def show_diagnostics(self, diags: list[Diagnostic], sources: Sources | None = None) -> None:
        if diags:
            self.complain(render_all(diags, sources or self.sources))

    # ---------------------------------------------------------- the program
    def _program_text(self, decls: list[str]) -> str:
        text = "\n".join(decls)
        if self.file is not None:
            text += f'\nuse "{self.file}"'
        return text + "\n"

    def _build(self, decls: list[str]) -> Program:
        # The loaded file's folder is the program's folder: its `use "file"`s read from there (files.py).
        folder = (os.path.dirname(self.file),) if self.file is not None else ()
        return load_source(self._program_text(decls), SESSION_FILE, include=folder + self.include)

    def _refresh_sources(self) -> None:
        """The program's files, and the input being run, for rendering diagnostics."""
        typed = self.sources.line(PROMPT_FILE, 1) is not None and self.sources.text(PROMPT_FILE)
        self.sources = Sources()
        for name, text in self.prog.sources.items():
            self.sources.add(name, text)
        if typed:
            self.sources.add(PROMPT_FILE, typed)

    def file_kernels(self) -> list[str]:
        mod = self.prog.modules.get(self.file) if self.file else None
        return [k.name for k in mod.kernels] if mod else []

    def kernel_names(self) -> list[str]:
        return list(dict.fromkeys([*self.prog.kernels, *self.file_kernels()]))

    def hardware(self) -> Hardware:
        """The current hardware, elaborated (hw.edge unless another was picked or loaded)."""
        name = self.hw_name or DEFAULT_HARDWARE
        if name not in self.prog.hardware and self.hw_name is None:
            self._add_declaration(f"use hw.{DEFAULT_HARDWARE}", quiet=True)
        block = self.prog.hardware.get(name)
        if block is None:
            raise UsageError(f"no hardware '{name}' in the session (pick one with :hw NAME)")
        hw, diags = elaborate(block, self.statics)
        if hw is None or has_errors(diags):
            raise AttnError(diags)
        return hw

    def workspace(self) -> Workspace:
        if self.work is None:
            self.work = Workspace(self.hardware(), self.statics)
            for name, (data, dtype) in self.tensors.items():
                self.work.declare_tensor(name, data, dtype)
        return self.work

    def _add_declaration(self, text: str, quiet: bool = False) -> bool:
        """Add a declaration to the program (a typed one replaces an earlier one of the same name);
        its problems are shown, and one that does not load is left out. True when it was added."""
        module = parse_input(text).module
        names = _declared_names(module)
        for k in module.kernels if module else ():
            # A kernel on standard hardware that is not in scope yet brings it in, as :hw would.
            if k.hardware and k.hardware not in self.prog.hardware and k.hardware in stdlib_hardware():
                self._add_declaration(f"use hw.{k.hardware}", quiet=True)
        kept = [d for d in self.decls if not (_declared_names(parse_input(d).module) & names)]
        before = {(x.span, x.code, x.message) for x in self._build(kept).diagnostics}
        prog = self._build(kept + [text])
        new = [d for d in prog.diagnostics if (d.span, d.code, d.message) not in before]
        if has_errors(new):
            self.show_diagnostics(new, prog.sources)
            return False
        self.decls, self.prog = kept + [text], prog
        self._refresh_sources()
        if module is None or quiet:
            return True
        from ..check import check

        for u in module.uses:
            self.say(f"use {u.module}: hardware in scope: {', '.join(self.prog.hardware) or 'none'}")
        for h in module.hardware:
            self.say(f"hardware {h.name}")
            if h.name == (self.hw_name or DEFAULT_HARDWARE) and self.work is not None:
                if self.work.values:
                    self.say("(the session's values are cleared: the hardware they lived on changed)")
                self.work = None  # the current hardware changed: a fresh machine
        for k in module.kernels:
            self.say(f"kernel {k.name}" + (f" on {k.hardware}" if k.hardware else ""))
            new += [d for d in check(self.prog, None, [k.name]) if d.span.file == SESSION_FILE]
        self.show_diagnostics(new)
        return True

    # ---------------------------------------------------------- inputs
    def execute(self, text: str) -> bool:
        """Run one complete input; False when the session should end."""
        try:
            with np.errstate(all="ignore"):  # -inf, exp overflow and 0/0 are part of the numbers, as in a run
                return self._execute(text)
        except AttnError as exc:
            self.show_diagnostics(exc.diagnostics)
        except UsageError as exc:
            self.complain(f"error[{exc.code}]: {exc}")
        except MemoryError:
            self.complain("error: out of host memory: that value is larger than this machine can hold")
        except Exception as exc:  # a bug in attnlang: say so, keep the session
            if os.environ.get("ATTN_DEBUG"):
                traceback.print_exc(file=self.err)
            self.complain(f"internal error: {type(exc).__name__}: {exc}\nThis is a bug in attnlang; "
                          "ATTN_DEBUG=1 shows the traceback.")
        return True

    def _execute(self, text: str) -> bool:
        parsed = parse_input(text)
        self.sources.add(PROMPT_FILE, text)
        if parsed.kind == "empty":
            return True
        if parsed.kind == "command":
            return self.command(text.strip())
        if parsed.diagnostics:
            raise AttnError(list(parsed.diagnostics))
        if parsed.kind == "declaration":
            self._add_declaration(text)
            return True
        self._run(parsed)
        return True

    def _run(self, parsed: Parsed) -> None:
        work = self.workspace()
        if parsed.kind == "expression":
            outcome = work.run_expression(parsed.expression)
        else:
            outcome = work.run_statements(parsed.statements)
            self.statics.update({k: v for k, v in work.engine.env.items() if k not in self.tensors})
        self._print_outcome(outcome)

    def _print_outcome(self, o: Outcome) -> None:
        for name, value in o.statics:
            self.say(f"{name} = {value}")
        for name, tv in o.bound:
            self.say("\n".join(value_lines(name, tv.data, tv.dtype, tv.buf.memory)))
        if o.value is not None:
            self.say("\n".join(value_lines(None, o.value.data, o.value.dtype, o.value.buf.memory)))
        elif o.static is not None:
            self.say(f"{o.static!r}   (a static value: it runs on no unit)")
        if o.value is not None or o.bound or o.cost.operations:
            self.say(cost_line(o.cost))

    # ---------------------------------------------------------- commands
    def command(self, line: str) -> bool:
        from . import commands as repl_commands

        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"{exc} in '{line}'") from None
        name, args = words[0], words[1:]
        handler = repl_commands.find(name)
        if handler is None:
            raise UsageError(f"unknown command '{name}' (:help lists them)")
        return handler(self, args) is not False

    def load_file(self, path: str) -> None:
        read_source(path)  # a UsageError names what is wrong with the file
        self.file = os.path.abspath(path)
        self.prog = self._build(self.decls)
        self._refresh_sources()
        self.show_diagnostics([d for d in self.prog.diagnostics])
        ks = [self.prog.kernel(k) for k in self.file_kernels()]
        hws = [h.name for m in self.prog.modules.values() for h in m.hardware]
        self.say(f"loaded {path}: " + (", ".join(f"kernel {k.name}" + (f" on {k.hardware}" if k.hardware else "")
                                                for k in ks) or "no kernels")
                 + (f"; hardware {', '.join(dict.fromkeys(hws))}" if hws else ""))
        on = {k.hardware for k in ks if k.hardware}
        pick = next(iter(on)) if len(on) == 1 else (hws[0] if len(set(hws)) == 1 else None)
        if pick and pick != self.hw_name and pick in self.prog.hardware:
            changed = pick != (self.hw_name or DEFAULT_HARDWARE)
            self.pick_hardware(pick, show=False)
            if changed:
                self.say(f"hardware is now {pick} (:hw to see it)")

    def pick_hardware(self, name: str, show: bool = True) -> None:
        if name not in self.prog.hardware:
            short = name[3:] if name.startswith("hw.") else name
            if short not in stdlib_hardware():
                known = sorted(set(self.prog.hardware) | set(stdlib_hardware()))
                raise UsageError(f"no hardware '{name}'{did_you_mean(short, known)} (known: {', '.join(known)})")
            if not self._add_declaration(f"use hw.{short}", quiet=True):
                return
            name = short
        old = self.work
        self.hw_name = name
        self.work = None
        if old is not None and old.hw == self.hardware():
            self.work = old  # the same machine: values and clocks carry on
        elif old is not None and old.values:
            self.say("(the session's values are cleared: they lived on the previous hardware; tensors are kept)")
        if show:
            self.say("\n".join(hardware_lines(self.hardware())))

    def declare_tensor(self, name: str, spec: str) -> None:
        if not name.isidentifier() or name in vocab.KEYWORDS:
            raise UsageError(f":tensor needs a name, not '{name}'")
        try:
            e = parse_expression(spec, PROMPT_FILE)
        except SyntaxProblem as exc:
            self.sources.add(PROMPT_FILE, spec)
            raise AttnError(exc.diagnostic) from None
        if not (isinstance(e, ast.Index) and isinstance(e.base, ast.Name) and e.base.id in vocab.DTYPES):
            raise UsageError(f":tensor {name} needs a type such as f16[64, 64], not '{spec}'")
        self.sources.add(PROMPT_FILE, spec)
        try:
            shape = tuple(static_int(i, self.statics, "a dimension") for i in e.items)
        except StaticError as exc:
            raise AttnError(exc.diagnostic) from None
        if any(s < 0 for s in shape):
            raise UsageError(f":tensor {name}: a shape cannot be negative: {list(shape)}")
        limit, n = host_memory_bytes(), int(np.prod(shape, dtype=object))
        need = held_bytes(n, e.base.id, drawn=True)
        if limit is not None and need > limit:
            raise UsageError(f":tensor {name}: {n:,} elements need more host memory than this machine has "
                             f"({fmt_bytes(need)} against {fmt_bytes(limit)})")
        work = self.workspace()
        work.declare_tensor(name, self.rng.standard_normal(shape), e.base.id)
        self.tensors[name] = work.engine.tensors[name]
        self.say(f"tensor {name}: {e.base.id}[{', '.join(map(str, shape))}] in {work.engine.root} "
                 "(standard normal, seed 0)")

    def reset(self) -> None:
        self.decls, self.tensors, self.statics = [], {}, {}
        self.prog = self._build([])
        self._refresh_sources()
        self.work = None
        self.rng = np.random.default_rng(0)
        if self.hw_name not in self.prog.hardware:
            self.hw_name = None

    # ---------------------------------------------------------- completion
    def names_in_scope(self) -> list[str]:
        """Every name a user may type next: values, tensors, dims, kernels, hardware, units, memories."""
        names = list(self.tensors) + list(self.statics)
        if self.work is not None:
            names += list(self.work.values)
            names += list(self.work.hw.units) + list(self.work.hw.memories)
        names += self.kernel_names() + list(self.prog.hardware)
        return list(dict.fromkeys(names))

    def complete(self, before_cursor: str) -> list[str]:
        """Completions of the word before the cursor (what the interactive prompt offers)."""
        from .commands import complete

        return complete(self, before_cursor)


def _declared_names(module: ast.Module | None) -> set[str]:
    """The hardware and kernels a declaration brings in (those of a standard module it uses too)."""
    if module is None:
        return set()
    names = {h.name for h in module.hardware} | {k.name for k in module.kernels}
    for u in module.uses:
        if not u.is_path:
            names |= _stdlib_names(u.module)
    return names


@lru_cache(maxsize=64)
def _stdlib_names(module: str) -> frozenset[str]:
    prog = load_source(f"use {module}\n", SESSION_FILE)
    return frozenset(prog.hardware) | frozenset(prog.library_kernels)
