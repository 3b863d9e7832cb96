"""Parsed files kept on disk, so a command that reads an unchanged file skips the parser.

`attn run` parses the same few files every time (the user's and the standard
hardware it uses). A parse takes Lark's import and tables and the LALR drive,
some 70-100 ms of a run's start; reading back the parsed module takes about a
millisecond. The entry is keyed by the file's name and text and by the front
end's own sources (the grammar, the AST nodes, the builder, the parser), so a
changed file or a changed attnlang parses afresh. It lives in the user's cache
folder beside the grammar's, read and written through usercache (a pickle is
loaded only when it verifies as this user's own); an unwritable, unsafe or
corrupt cache is skipped.
"""

from __future__ import annotations

import hashlib
import pickle
from functools import lru_cache
from pathlib import Path

#: The files whose change makes every cached parse stale.
_FRONT_END = ("grammar/attn.lark", "syntax/ast.py", "syntax/nodes.py", "syntax/inits.py", "syntax/build.py",
              "syntax/parser.py", "syntax/lalr.py", "syntax/units.py", "diagnostics.py")


@lru_cache(maxsize=1)
def package_root():
    """The attnlang package's folder, to read its own files (the grammar, the standard library): a Path
    where the package is installed as files, as nearly always; importlib.resources' view otherwise (a
    zip). importlib.resources costs a run's start some 20 M instructions (its readers import zipfile)."""
    root = Path(__file__).resolve().parent.parent
    if (root / "stdlib").is_dir():
        return root
    from importlib import resources

    return resources.files("attnlang")


@lru_cache(maxsize=1)
def _front_end_digest() -> str:
    h = hashlib.sha256()
    root = package_root()
    for name in _FRONT_END:
        h.update(root.joinpath(name).read_bytes())
    return h.hexdigest()


def cached_parse(text: str, file: str):
    """parser.parse(text, file), read from the disk cache when this text was parsed before."""
    from .. import usercache

    entry = hashlib.sha256(f"{_front_end_digest()}\0{file}\0{text}".encode()).hexdigest()[:32] + ".pickle"
    saved = usercache.read("parsed", entry)
    if saved is not None:
        try:
            return pickle.loads(saved)
        except (EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError, ValueError):
            pass  # written by another attnlang whose nodes differ: parse afresh and overwrite it
    from .parser import parse

    result = parse(text, file)
    try:
        usercache.write("parsed", entry, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    except (pickle.PicklingError, RecursionError, TypeError):
        pass
    return result
