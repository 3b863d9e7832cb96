"""The checker, kernel by kernel, remembering kernels an edit did not touch.

On a keystroke in one kernel of a long file, the other kernels' diagnostics
are the same as before, moved by as many lines as the edit added above them.
A kernel's diagnostics are kept under its own source text and the text of
everything it can see (the file's `use`s and hardware blocks, and every other
file loaded); any change there checks it again. The result is the same list
`attnlang.check.check` gives (tests/tooling/test_lsp.py compares them).
"""

from __future__ import annotations

import hashlib
import threading

from ..binding import unused_hardware_diagnostics
from ..check import check
from ..diagnostics import Diagnostic, shift_lines, sort_key
from ..program import Program
from ..syntax import ast

_KEPT: dict[tuple, tuple[list[Diagnostic], int]] = {}  # (path, context, kernel text) -> (diagnostics, first line)
_KEPT_MAX = 256
_KEPT_LOCK = threading.Lock()


def _lines(text: str, first: int, last: int) -> str:
    return "\n".join(text.split("\n")[first - 1:last])


def _context(prog: Program, path: str, text: str, module: ast.Module) -> str:
    """What any kernel of the file may depend on besides its own text."""
    h = hashlib.sha256()
    for item in (*module.uses, *module.hardware):
        h.update(_lines(text, item.span.line, item.span.end_line).encode() + b"\0")
    for name, other in sorted(prog.sources.items()):
        if name != path:
            h.update(name.encode() + b"\0" + other.encode() + b"\0")
    return h.hexdigest()


def _reusable(diags: list[Diagnostic], path: str, first: int, last: int) -> bool:
    """Diagnostics that lie in the kernel itself (or in other files) move with it."""
    return all(d.span.file != path or first <= d.span.line <= last for d in diags)


def check_document(prog: Program, path: str, text: str) -> list[Diagnostic]:
    """check(prog) for the document at path, rechecking only the kernels that changed."""
    module = prog.modules.get(path)
    if module is None:
        return check(prog)
    base = list(prog.diagnostics) + unused_hardware_diagnostics(prog)
    seen = {(d.span, d.code, d.message) for d in base}
    out = list(base)
    context = _context(prog, path, text, module)
    for k in prog.kernels.values():
        if k.span.file != path:
            continue
        key = (path, context, _lines(text, k.span.line, k.span.end_line))
        kept = _KEPT.get(key)
        if kept is not None:
            diags = [shift_lines(d, k.span.line - kept[1]) if d.span.file == path else d for d in kept[0]]
        else:
            diags = [d for d in check(prog, None, [k.name]) if (d.span, d.code, d.message) not in seen]
            if _reusable(diags, path, k.span.line, k.span.end_line):
                with _KEPT_LOCK:  # documents are checked in threads of their own (checks.py)
                    while len(_KEPT) >= _KEPT_MAX:
                        _KEPT.pop(next(iter(_KEPT)))
                    _KEPT[key] = (diags, k.span.line)
        for d in diags:
            if (d.span, d.code, d.message) not in seen:
                seen.add((d.span, d.code, d.message))
                out.append(d)
    return sorted(out, key=sort_key)
