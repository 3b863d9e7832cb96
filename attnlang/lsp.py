"""`attn lsp` (being built)."""

from .diagnostics import UsageError


def main(args) -> int:
    raise UsageError("attn lsp is not built yet")
