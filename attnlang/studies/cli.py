"""`attn study NAME`: reproduce a published study beside its reference.

    attn study flat [--json] [--max-seq N]

Exit status: 0 success; 2 the command line is wrong or the reference is missing.
"""

from __future__ import annotations

import json

from ..diagnostics import UsageError

STUDIES = ("flat",)


def add_arguments(p) -> None:
    p.add_argument("study", choices=STUDIES, metavar="STUDY",
                   help="flat: FLAT's published table beside our model on FLAT's assumptions")
    p.add_argument("--json", action="store_true", help="print a list of rows as JSON")
    p.add_argument("--max-seq", type=int, default=16384, metavar="N",
                   help="the longest sequence to include (default 16384: the 48 rows FLAT's table has up to 16K)")


def main(args) -> int:
    from . import flat

    if args.max_seq < 1:
        raise UsageError(f"--max-seq takes a positive number, not {args.max_seq}")
    try:
        rows = flat.study(args.max_seq)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps([r.to_json() for r in rows], indent=2))
    else:
        print(flat.text_table(rows))
    return 0
