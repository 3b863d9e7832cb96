"""`attn repl` (being built)."""

from .diagnostics import UsageError


def main(args) -> int:
    raise UsageError("attn repl is not built yet")
