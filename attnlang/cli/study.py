"""`attn study NAME`: reproduce a published study beside its reference.

    attn study flat [--json] [--max-seq N]
    attn study mas [--json] [--max-seq N] [--platform edge|cloud]
    attn study ring [--json] [--max-seq N]

Exit status: 0 success; 2 the command line is wrong or the reference is missing.
"""

from __future__ import annotations

import json

from ..diagnostics import UsageError

STUDIES = ("flat", "mas", "ring")


def add_arguments(p) -> None:
    p.add_argument("study", choices=STUDIES, metavar="STUDY",
                   help="flat: FLAT's published table beside our model on FLAT's assumptions; "
                        "mas: MAS-Attention's two streams against FLAT, an ablation on edge; "
                        "ring: ring scheduling over m units (Yu & Fujita), savings against the closed forms")
    p.add_argument("--json", action="store_true", help="print {\"rows\": [...]} as JSON")
    p.add_argument("--max-seq", type=int, default=16384, metavar="N",
                   help="the longest sequence to include (default 16384: for flat the 48 rows FLAT's table has "
                        "up to 16K; for mas N = 512 to 8192)")
    p.add_argument("--platform", choices=("edge", "cloud"), default="edge",
                   help="mas only: the hardware the kernels run on (default edge, the paper's NPU)")


def main(args) -> int:
    if args.max_seq < 1:
        raise UsageError(f"--max-seq takes a positive number, not {args.max_seq}")
    if args.platform != "edge" and args.study != "mas":
        raise UsageError(f"--platform is for the mas study; {args.study} runs on its own platforms")
    if args.study == "flat":
        from ..studies import flat as study

        try:
            rows = study.study(args.max_seq)
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from None
    elif args.study == "mas":
        from ..studies import mas as study

        rows = study.study(_sizes(study.SIZES, args.max_seq, "N"), args.platform)
    else:
        from ..studies import ring as study

        rows = study.study(tuple(_sizes(study.SIZES, args.max_seq, "n")))
    if args.json:
        print(json.dumps({"rows": [r.to_json() for r in rows]}, indent=2))
    else:
        print(study.text_table(rows))
    return 0


def _sizes(sizes, max_seq: int, name: str) -> list[int]:
    """The study's sizes up to --max-seq; none left is a usage error."""
    kept = [n for n in sizes if n <= max_seq]
    if not kept:
        raise UsageError(f"--max-seq {max_seq} leaves no size: the study runs {name} = {', '.join(map(str, sizes))}")
    return kept
