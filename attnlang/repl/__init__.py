"""`attn repl [FILE]`: an interactive session on a modeled accelerator.

At a terminal it runs on prompt_toolkit: highlighting with the Pygments lexer
(attnlang.highlight), completion of keywords, builtins and names in scope,
multi-line input for blocks, and history under the user's data directory.
With stdin not a terminal it reads line by line with no prompt, so it can be
scripted: `printf ':tensor Q f16[64, 64]\\nq = load Q -> sram\\nq @ q.T\\n' | attn repl`.
What each input does is in session.py.
"""

from __future__ import annotations

import os
import sys
from typing import Iterable

from .input import needs_more
from .session import Session

PROMPT = "attn> "
CONTINUATION = "  ... "
BANNER = "attnlang REPL: :help for commands, :quit or Ctrl-D to leave"


def main(args) -> int:
    """The `attn repl` command; 0 at the end of input."""
    session = Session(include=tuple(getattr(args, "include", None) or ()))
    if getattr(args, "file", None):
        session.load_file(args.file)  # a missing or unreadable file is a UsageError: exit 2
    if sys.stdin.isatty() and sys.stdout.isatty():
        return interactive(session)
    return scripted(session, sys.stdin)


def scripted(session: Session, lines: Iterable[str]) -> int:
    """Read inputs line by line; an incomplete input takes the next lines too."""
    buffer: list[str] = []
    for line in lines:
        buffer.append(line.rstrip("\n"))
        text = "\n".join(buffer)
        if needs_more(text):
            continue
        buffer = []
        if not session.execute(text):
            return 0
    if buffer:  # input ended inside a block: report what is missing
        session.execute("\n".join(buffer))
    return 0


def history_file() -> str | None:
    """$XDG_DATA_HOME/attnlang/history (~/.local/share/...), or None where it cannot be written."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    folder = os.path.join(base, "attnlang")
    try:
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "history")
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError:
        return None
    return path


def prompt_session(session: Session, **extra):
    """The prompt_toolkit PromptSession: lexer, completer, history, Enter that waits for a whole block."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import Completer, Completion
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.lexers import PygmentsLexer

    from ..highlight import AttnLexer

    class _Completer(Completer):
        def get_completions(self, document, complete_event):
            before = document.text_before_cursor
            for w in session.complete(before):
                yield Completion(w, start_position=-len(_last_word(before, w)))

    keys = KeyBindings()

    @keys.add("enter")
    def _enter(event):
        buf = event.current_buffer
        if buf.complete_state and buf.complete_state.current_completion:
            buf.apply_completion(buf.complete_state.current_completion)
            return
        if needs_more(buf.text):
            buf.insert_text("\n" + _indent(buf.text))
        else:
            buf.validate_and_handle()

    @keys.add("}")
    def _close(event):  # a closing brace on a line of its own goes back one level
        buf = event.current_buffer
        line = buf.document.current_line_before_cursor
        if line and not line.strip():
            buf.delete_before_cursor(min(2, len(line)))
        buf.insert_text("}")

    @keys.add("escape", "enter")
    def _force(event):  # Alt-Enter: run what is there, complete or not
        event.current_buffer.validate_and_handle()

    if "history" not in extra:
        path = history_file()
        extra["history"] = FileHistory(path) if path else InMemoryHistory()
    return PromptSession(
        PROMPT, multiline=True, key_bindings=keys, lexer=PygmentsLexer(AttnLexer), completer=_Completer(),
        complete_while_typing=False, prompt_continuation=lambda width, line, soft: CONTINUATION.rjust(width),
        **extra)


def _last_word(before: str, completion: str) -> str:
    """The part of `before` that `completion` replaces: the trailing word (with '@' or a path)."""
    tail = ""
    for ch in reversed(before):
        if not (ch.isalnum() or ch in "_@:./-~"):
            break
        tail = ch + tail
    while tail and not completion.startswith(tail):
        tail = tail[1:]
    return tail


def _indent(text: str) -> str:
    """Two spaces per open brace, for the next line of a block."""
    from .input import bracket_depth

    return "  " * max(bracket_depth(text), 0)


def interactive(session: Session) -> int:
    ps = prompt_session(session)
    print(BANNER)
    while True:
        try:
            text = ps.prompt()
        except KeyboardInterrupt:
            continue  # Ctrl-C drops the input being typed
        except EOFError:
            return 0
        if not session.execute(text):
            return 0
