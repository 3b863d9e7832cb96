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
    if args.study == "mas":
        return _mas(args)
    if args.study == "ring":
        return _ring(args)
    from ..studies import flat

    try:
        rows = flat.study(args.max_seq)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({"rows": [r.to_json() for r in rows]}, indent=2))
    else:
        print(flat.text_table(rows))
    return 0


def _mas(args) -> int:
    from ..studies import mas

    sizes = [n for n in mas.SIZES if n <= args.max_seq]
    if not sizes:
        raise UsageError(f"--max-seq {args.max_seq} leaves no size: the study runs N = "
                         f"{', '.join(map(str, mas.SIZES))}")
    rows = mas.study(sizes, args.platform)
    if args.json:
        print(json.dumps({"rows": [r.to_json() for r in rows]}, indent=2))
    else:
        print(mas.text_table(rows))
    return 0


def _ring(args) -> int:
    from ..studies import ring

    sizes = [n for n in ring.SIZES if n <= args.max_seq]
    if not sizes:
        raise UsageError(f"--max-seq {args.max_seq} leaves no size: the study runs n = "
                         f"{', '.join(map(str, ring.SIZES))}")
    rows = ring.study(tuple(sizes))
    if args.json:
        print(json.dumps({"rows": [r.to_json() for r in rows]}, indent=2))
    else:
        print(ring.text_table(rows))
    return 0
