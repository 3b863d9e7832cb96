"""attnlang: a language, checker, interpreter, explorer and JIT for attention
dataflows on modeled hardware accelerators.

The Python API (attnlang/api.py, docs/api.md): `check_program`, `bind_kernel`, `run`,
`explore`, `validate`, `estimate` and `load_program`, and the errors they
raise (`AttnError`, `UsageError`), importable from here. They are loaded on
first use, so that `import attnlang` (and the `attn` command's start) stays
quick.
"""

__version__ = "0.1.0"

_API = ("check_program", "bind_kernel", "run", "explore", "validate", "estimate", "load_program")
_ERRORS = ("AttnError", "UsageError")
__all__ = ["__version__", *_API, *_ERRORS]


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in _ERRORS:
        from . import diagnostics

        return getattr(diagnostics, name)
    raise AttributeError(f"module 'attnlang' has no attribute '{name}'")
