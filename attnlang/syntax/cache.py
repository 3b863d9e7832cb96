"""Parsed files kept on disk, so a command that reads an unchanged file skips the parser.

`attn run` parses the same few files every time (the user's and the standard
hardware it uses). A parse takes Lark's import and tables and the LALR drive,
some 70-100 ms of a run's start; reading back the parsed module takes about a
millisecond. The entry is keyed by the file's name and text and by the front
end's own sources (the grammar, the AST nodes, the builder, the parser), so a
changed file or a changed attnlang parses afresh. It lives in the user's cache
folder beside the grammar's; an unwritable or corrupt cache is skipped.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from functools import lru_cache
from importlib import resources

#: The files whose change makes every cached parse stale.
_FRONT_END = ("grammar/attn.lark", "syntax/ast.py", "syntax/build.py", "syntax/parser.py", "syntax/lalr.py",
              "syntax/units.py", "diagnostics.py")


@lru_cache(maxsize=1)
def _front_end_digest() -> str:
    h = hashlib.sha256()
    root = resources.files("attnlang")
    for name in _FRONT_END:
        h.update(root.joinpath(name).read_bytes())
    return h.hexdigest()


def _folder() -> str | None:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "attnlang", "parsed")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def cached_parse(text: str, file: str):
    """parser.parse(text, file), read from the disk cache when this text was parsed before."""
    folder = _folder()
    path = None
    if folder is not None:
        key = hashlib.sha256(f"{_front_end_digest()}\0{file}\0{text}".encode()).hexdigest()[:32]
        path = os.path.join(folder, f"{key}.pickle")
        try:
            with open(path, "rb") as f:
                return pickle.load(f)
        except FileNotFoundError:
            pass
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError, ValueError):
            pass  # corrupt or from elsewhere: parse afresh and overwrite it
    from .parser import parse

    result = parse(text, file)
    if path is not None:
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except (OSError, pickle.PicklingError, RecursionError, TypeError):
            if os.path.exists(tmp):
                os.unlink(tmp)
    return result
