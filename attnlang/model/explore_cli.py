"""`attn explore`: arguments and the command (DESIGN §8)."""

from __future__ import annotations

from ..diagnostics import UsageError


def add_arguments(p) -> None:
    p.add_argument("file", metavar="FILE")
    p.add_argument("-k", "--kernel", action="append")
    p.add_argument("-D", dest="defines", action="append", metavar="NAME=VALUE")
    p.add_argument("--minimize", choices=("latency", "energy", "edp"), default="latency")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--validate", type=int, default=0, metavar="K")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", metavar="FILE.png")


def main(args) -> int:
    raise UsageError("attn explore is not built yet")
