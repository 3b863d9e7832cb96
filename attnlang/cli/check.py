"""`attn check FILE... [-k KERNEL]... [-D NAME=VALUE]... [--json]` (docs/cli.md)."""

from __future__ import annotations

import sys

from ..diagnostics import Sources, UsageError, has_errors, render_all, to_json
from .common import defines


def add_arguments(c) -> None:
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("-k", "--kernel", action="append", help="check only this kernel (repeatable)")
    c.add_argument("-D", dest="defines", action="append", metavar="NAME=VALUE", help="set a dimension or param")
    c.add_argument("--json", action="store_true", help="print diagnostics as JSON")


def main(args) -> int:
    from ..check import check
    from ..program import load

    values = defines(args.defines)
    all_diags = []
    sources = Sources()
    usage = False  # a file that cannot be read, or a -D or -k it cannot take: exit 2 once all are checked
    for path in args.files:
        try:
            prog = load(path, args.include or ())
            sources.merge(prog.sources)
            all_diags += check(prog, values, args.kernel)
        except UsageError as exc:
            usage = True
            all_diags.append(exc.diagnostic())
    if args.json:
        print(to_json(all_diags))
    elif all_diags:
        print(render_all(all_diags, sources), file=sys.stderr)
    return 2 if usage else 1 if has_errors(all_diags) else 0
