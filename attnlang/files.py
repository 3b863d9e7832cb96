"""Reading source files, and where `use` may reach.

A program names other files with `use "path.attn"`. A program is often
someone else's, so a `use` must not become a way to read any file of the
user's: it resolves, after following symlinks, only inside the main file's
folder, the include folders the user names (`-I DIR`, or the ATTN_PATH
environment variable), and the standard library (which dotted names reach).
Only regular files are read, never more than MAX_SOURCE_BYTES bytes whatever
the file claims its size is, and a used file that is not attnlang source is
refused without showing its text (docs/language.md, "use").
"""

from __future__ import annotations

import os
import re
import stat
from typing import Sequence

from .diagnostics import FILE_ERROR, UsageError
from .syntax.nodes import node

#: Files larger than this are refused rather than parsed for a long time.
MAX_SOURCE_BYTES = 4 * 1024 * 1024

#: Folders, separated by os.pathsep, that `use "file.attn"` may also read from (after any -I).
INCLUDE_ENV = "ATTN_PATH"


class NotSource(UsageError):
    """A file that can be opened but is not attnlang source (binary, not UTF-8, not a regular file)."""


def read_source(path: str) -> str:
    """Read a source file or raise UsageError saying what is wrong with it (NotSource when what is
    there is not text: a FIFO, a device, a binary file). Reads at most MAX_SOURCE_BYTES + 1 bytes."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not wait; the mode is checked on the open file.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file", FILE_ERROR, path) from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a .attn file", FILE_ERROR, path) from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}", FILE_ERROR, path) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise UsageError(f"{path}: is a directory, not a .attn file", FILE_ERROR, path)
        if not stat.S_ISREG(mode):
            raise NotSource(f"{path}: is not a regular file (a FIFO, a device or a socket), so not attnlang "
                            "source", FILE_ERROR, path)
        data = _read_at_most(fd, MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}", FILE_ERROR, path) from None
    finally:
        os.close(fd)
    if len(data) > MAX_SOURCE_BYTES:
        raise UsageError(f"{path}: file is too large (over {MAX_SOURCE_BYTES // 2**20} MiB, the limit)",
                         FILE_ERROR, path)
    if b"\0" in data:
        raise NotSource(f"{path}: is a binary file, not attnlang source", FILE_ERROR, path)
    try:
        return data.decode("utf-8").removeprefix("\ufeff")  # editors may write a byte-order mark
    except UnicodeDecodeError as exc:
        raise NotSource(f"{path}: is not UTF-8 text (byte {exc.start})", FILE_ERROR, path) from None


def _read_at_most(fd: int, limit: int) -> bytes:
    parts, total = [], 0
    while total < limit:
        part = os.read(fd, min(1 << 20, limit - total))
        if not part:
            break
        parts.append(part)
        total += len(part)
    return b"".join(parts)


# ---------------------------------------------------------------- where `use` reaches


def include_dirs(given: Sequence[str] = ()) -> tuple[str, ...]:
    """The include folders: those given (-I), then those of ATTN_PATH; empty entries are skipped."""
    env = os.environ.get(INCLUDE_ENV, "")
    return tuple(d for d in [*given, *env.split(os.pathsep)] if d)


@node
class Roots:
    """The folders a `use "file"` may read from, each with its symlinks resolved."""

    program: str                  # the main file's folder (the working folder for source text)
    include: tuple[str, ...]      # -I and ATTN_PATH, in order

    @staticmethod
    def of(main_file: str, include: Sequence[str] = ()) -> Roots:
        folder = os.getcwd() if main_file.startswith("<") else os.path.dirname(main_file) or "."
        return Roots(os.path.realpath(folder), tuple(os.path.realpath(d) for d in include_dirs(include)))

    def holds(self, real: str) -> bool:
        return any(_inside(real, root) for root in (self.program, *self.include))


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives
        return False


class UseRefused(Exception):
    """A `use "file"` that may not be read: code (E0101 missing, E0103 outside the roots) and message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def resolve_use(module: str, using_file: str, roots: Roots) -> tuple[str, str]:
    """The file `use "module"` in using_file reads: (its name as shown, its real path). Relative to the
    using file's folder first, then to each include folder; the first that exists is the one, and it
    must lie, after its symlinks, inside the roots. Raises UseRefused."""
    base = os.getcwd() if using_file.startswith("<") else os.path.dirname(using_file)
    if os.path.isabs(module):
        candidates = [module]
    else:
        candidates = [os.path.normpath(os.path.join(base, module))]
        candidates += [os.path.normpath(os.path.join(d, module)) for d in roots.include]
    for shown in candidates:
        if not os.path.lexists(shown):
            continue
        real = os.path.realpath(shown)
        if not roots.holds(real):
            raise UseRefused("E0103", f"cannot use '{module}': it resolves to {real}, which is outside "
                                      f"{_roots_text(roots)}; name its folder with -I DIR or {INCLUDE_ENV} to "
                                      "allow it")
        return shown, real
    where = " or in an include folder" if roots.include else ""
    raise UseRefused("E0101", f"cannot use '{module}': {candidates[0]}: no such file{where}")


def _roots_text(roots: Roots) -> str:
    if not roots.include:
        return f"the program's folder {roots.program}"
    return f"the program's folder {roots.program} and the include folders {', '.join(roots.include)}"


#: Blank lines and comments, then the first item: what attnlang source begins with.
_SOURCE_START = re.compile(r"(?:[ \t\r\f\v]*(?:#[^\n]*)?\n)*[ \t]*(?:use|hardware|kernel)\b")


def looks_like_source(text: str) -> bool:
    """Whether text begins (after blank lines and comments) with `use`, `hardware` or `kernel`, or is only
    blank lines and comments. A used file that does not, and fails to parse, is refused without its text
    being shown: it is something else (a password file behind a symlink, say)."""
    if _SOURCE_START.match(text):
        return True
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())
