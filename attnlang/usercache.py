"""The user's cache folder, holding only what this user's attnlang wrote.

Three caches spare work between commands: the grammar's LALR tables, parsed
files, and the JIT's compiled objects. The first two are pickles and the
third is machine code, so loading a planted entry would run someone else's
code. Every entry is therefore read through this module, which

- uses the folder `$XDG_CACHE_HOME/attnlang/NAME` (default `~/.cache`) only
  when it and `attnlang/` are real folders (not symlinks) owned by the user
  and writable by no one else; it makes them with mode 0700. Any other folder
  turns that cache off (the work is simply redone);
- seals each entry with an HMAC-SHA256 under a key of 32 random bytes kept in
  `attnlang/key` (mode 0600, owned by the user), over the cache's name, the
  entry's name and its content. An entry that does not verify — planted,
  damaged, or copied under another entry's name — is ignored and rewritten;
- writes entries atomically (a temporary file in the same folder, fsync,
  rename), so a reader never sees half of one.

docs/cli.md ("Caches and written files") says the same for users.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from functools import lru_cache
from pathlib import Path

#: The first bytes of every entry: the format, so an entry of another version is ignored.
MAGIC = b"attn-cache-1\n"
_MAC_BYTES = 32
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def base_dir() -> Path:
    """`$XDG_CACHE_HOME/attnlang`, or `~/.cache/attnlang`."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "attnlang"


def _private_dir(path: Path) -> bool:
    """Make path (mode 0700) if it is missing; then whether it is a folder of ours no one else can write."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):  # a symlink or a file where the folder should be
        return False
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return False
    return not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def folder(name: str) -> Path | None:
    """The cache folder NAME (made if missing), or None when it is not safe to use or cannot be made."""
    root = base_dir()
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not _private_dir(root) or not _private_dir(root / name):
        return None
    return root / name


def _key(root: Path) -> bytes | None:
    """This user's cache key: made once, readable by the user alone."""
    return _key_at(str(root / "key"))


@lru_cache(maxsize=4)
def _key_at(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    except OSError:
        return None
    else:
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
            f.flush()
            os.fsync(f.fileno())
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077:
            return None
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            return None
        key = f.read(64)
    return key if len(key) == 32 else None


def _mac(key: bytes, name: str, entry: str, payload: bytes) -> bytes:
    h = hmac.new(key, digestmod=hashlib.sha256)
    h.update(f"{name}\0{entry}\0".encode("utf-8", "surrogatepass"))
    h.update(payload)
    return h.digest()


def _sealed(name: str) -> tuple[Path, bytes] | None:
    """The folder of cache NAME and this user's key, or None when the cache cannot be used."""
    d = folder(name)
    key = None if d is None else _key(d.parent)
    return None if key is None else (d, key)


def read(name: str, entry: str) -> bytes | None:
    """The content of entry in cache NAME, if this user's attnlang wrote it there under this name."""
    got = _sealed(name)
    if got is None:
        return None
    d, key = got
    try:
        fd = os.open(d / entry, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        data = f.read()
    head = len(MAGIC) + _MAC_BYTES
    if len(data) < head or not data.startswith(MAGIC):
        return None
    payload = data[head:]
    if not hmac.compare_digest(data[len(MAGIC):head], _mac(key, name, entry, payload)):
        return None
    return payload


def write(name: str, entry: str, payload: bytes) -> bool:
    """Store payload as entry in cache NAME, atomically; False when the cache cannot be used."""
    got = _sealed(name)
    if got is None:
        return False
    d, key = got
    import tempfile  # only a write needs it (a few ms of every command's start otherwise)

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{entry}.", dir=d)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + _mac(key, name, entry, payload) + payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, d / entry)
        return True
    except OSError:
        return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
