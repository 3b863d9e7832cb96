"""What every command of `attn` shares: -D values, and how a program's errors are reported (docs/cli.md)."""

from __future__ import annotations

import argparse
import sys

from ..diagnostics import AttnError, Sources, UsageError, render_all, to_json


class Parser(argparse.ArgumentParser):
    """argparse, with its own errors as usage errors (exit status 2) rather than an exit."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        raise UsageError(message)


def add_include(p) -> None:
    """-I DIR: where `use "file"` may also read from."""
    p.add_argument("-I", dest="include", action="append", metavar="DIR",
                   help="a folder `use \"file\"` may also read from (repeatable; ATTN_PATH adds more)")


def defines(values: list[str] | None) -> dict:
    """The -D NAME=VALUE options as a dict."""
    from ..binding import parse_define

    out = {}
    for text in values or []:
        name, value = parse_define(text)
        out[name] = value
    return out


def report_error(exc: AttnError, sources: Sources, as_json: bool) -> int:
    """Print an AttnError's diagnostics the way the contract says; exit status 1."""
    if as_json:  # the shape of `attn check --json`: a list of diagnostics
        print(to_json(exc.diagnostics))
    print(render_all(exc.diagnostics, sources), file=sys.stderr)
    return 1
