"""`attn study mas`: MAS-Attention's two streams against FLAT, as an ablation on the edge NPU.

MAS-Attention (Shakerdargah et al., MLSys 2025) runs the matrix work (QK^T, PV) and the vector
work (softmax) of attention as two concurrent streams on the two units. The kernels in
attnlang/studies/mas.attn take FLAT's row-fused dataflow there in two steps, one change each:

    flat          FLAT's dataflow (Kao et al., ASPLOS 2023)
    flat_softmax  the same schedule with MAS's softmax arithmetic
    mas           the same arithmetic as two overlapping streams

The kernels are written for hw.edge, the paper's platform; `platform="cloud"` runs the same
kernels on hw.cloud (the larger array, buffer and DRAM bandwidth). Each variant is tuned by the
analytical model (explore, minimizing latency) at each N, then run through the interpreter at its
best params. The speedup over FLAT splits into a product:
flat / flat_softmax is the part from the arithmetic, flat_softmax / mas the part from the overlap.
`model_error` is the model's cycles over the simulated cycles, minus one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..api import estimate, explore, load_program, run
from ..program import load_source

KERNELS = Path(__file__).resolve().parent / "mas.attn"
VARIANTS = ("flat", "flat_softmax", "mas")
PLATFORMS = ("edge", "cloud")
SIZES = (512, 1024, 2048, 4096, 8192)
D = 64


@dataclass
class Row:
    N: int
    variant: str
    Br: int
    Bc: int
    cycles: int  # simulated
    model_cycles: int
    energy_pj: float  # simulated
    model_energy_pj: float
    energy_breakdown_pj: dict  # per memory and unit, simulated
    dram_bytes: float
    pe_busy_cycles: float
    vec_busy_cycles: float
    #: flat_softmax only: the model's cycles at flat's (Br, Bc), which separates the arithmetic from the
    #: larger row block that overwriting the scores in place allows
    at_flat_tiles_model_cycles: int | None = None
    platform: str = "edge"

    @property
    def model_error(self) -> float:
        return self.model_cycles / self.cycles - 1.0

    @property
    def model_energy_error(self) -> float:
        return self.model_energy_pj / self.energy_pj - 1.0

    @property
    def overlap_cycles(self) -> float:
        """Cycles in which both units were busy, at least: their busy time past the run's length."""
        return max(0.0, self.pe_busy_cycles + self.vec_busy_cycles - self.cycles)

    def to_json(self) -> dict:
        return {"platform": self.platform, "N": self.N, "d": D, "variant": self.variant, "Br": self.Br, "Bc": self.Bc,
                "cycles": self.cycles, "model_cycles": self.model_cycles, "model_error": self.model_error,
                "energy_pj": self.energy_pj, "model_energy_pj": self.model_energy_pj,
                "model_energy_error": self.model_energy_error, "energy_breakdown_pj": self.energy_breakdown_pj,
                "dram_bytes": self.dram_bytes, "pe_busy_cycles": self.pe_busy_cycles,
                "vec_busy_cycles": self.vec_busy_cycles, "overlap_cycles": self.overlap_cycles,
                "at_flat_tiles_model_cycles": self.at_flat_tiles_model_cycles}


_cache: dict = {}


def _program(platform: str = "edge"):
    """The kernels on `platform`: mas.attn as written (edge), or with each kernel's `on edge` and the
    `use` of its hardware moved to the other platform."""
    if platform not in PLATFORMS:
        raise ValueError(f"platform {platform!r}: one of {', '.join(PLATFORMS)}")
    if platform not in _cache:
        if platform == "edge":
            _cache[platform] = load_program(str(KERNELS))
        else:
            text = KERNELS.read_text(encoding="utf-8")
            moved = text.replace("use hw.edge\n", f"use hw.{platform}\n").replace("  on edge\n", f"  on {platform}\n")
            if moved.count(f"  on {platform}\n") != len(VARIANTS):
                raise RuntimeError(f"{KERNELS}: each of {', '.join(VARIANTS)} must say '  on edge' "
                                   "on a line of its own")
            _cache[platform] = load_source(moved, str(KERNELS))
    return _cache[platform]


def study_row(N: int, variant: str, platform: str = "edge") -> Row:
    """One variant at one N: tuned by the model, then simulated at the model's pick."""
    prog = _program(platform)
    best = explore(prog, [variant], {"N": N, "d": D}).best
    sim = run(prog, variant, defines=best.defines, verify="rows=4")
    dram = sim.memories["dram"]
    return Row(N=N, variant=variant, Br=int(best.defines["Br"]), Bc=int(best.defines["Bc"]),
               cycles=int(sim.cycles), model_cycles=int(best.cycles), energy_pj=float(sim.energy_pj),
               model_energy_pj=float(best.energy_pj),
               energy_breakdown_pj={k: float(v) for k, v in sim.energy_breakdown_pj.items()},
               dram_bytes=float(dram["read_bytes"] + dram["write_bytes"]),
               pe_busy_cycles=float(sim.units["pe"]["busy_cycles"]),
               vec_busy_cycles=float(sim.units["vec"]["busy_cycles"]), platform=platform)


def study(sizes=SIZES, platform: str = "edge") -> list[Row]:
    """Every variant at every N; flat_softmax's row also carries its model cycles at flat's tiles."""
    rows = []
    for N in sizes:
        flat, soft, mas = (study_row(N, v, platform) for v in VARIANTS)
        est = estimate(_program(platform), "flat_softmax", {"N": N, "d": D, "Br": flat.Br, "Bc": flat.Bc})
        soft.at_flat_tiles_model_cycles = int(est.cycles)
        rows += [flat, soft, mas]
    return rows


def speedups(rows: list[Row]) -> dict[int, dict]:
    """Per N: MAS's speedup over FLAT, split into the arithmetic's part and the overlap's, and its
    energy against FLAT's. `arithmetic` (flat -> flat_softmax, each at its own best tiles) further
    splits into `ops` (at FLAT's tiles, by the model) and `row_block` (the larger row block that one
    score block instead of two allows)."""
    by = {(r.N, r.variant): r for r in rows}
    out = {}
    for N in sorted({r.N for r in rows}):
        flat, soft, mas = (by[(N, v)] for v in VARIANTS)
        out[N] = {"total": flat.cycles / mas.cycles, "arithmetic": flat.cycles / soft.cycles,
                  "overlap": soft.cycles / mas.cycles, "energy_vs_flat": mas.energy_pj / flat.energy_pj}
        if soft.at_flat_tiles_model_cycles:
            out[N]["ops"] = flat.cycles / soft.at_flat_tiles_model_cycles
            out[N]["row_block"] = soft.at_flat_tiles_model_cycles / soft.cycles
    return out


def text_table(rows: list[Row]) -> str:
    head = (f"{'N':>5} {'variant':13} {'Br':>3} {'Bc':>3} {'cycles':>11} {'model err':>9} "
            f"{'energy uJ':>9} {'dram':>8} {'sram':>8} {'pe':>7} {'vec':>6} {'DRAM MiB':>8} "
            f"{'pe busy':>6} {'vec busy':>8} {'overlap':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        e = r.energy_breakdown_pj
        lines.append(
            f"{r.N:>5} {r.variant:13} {r.Br:>3} {r.Bc:>3} {r.cycles:>11,} {r.model_error:>+9.1%} "
            f"{r.energy_pj * 1e-6:>9.1f} {e.get('dram', 0) * 1e-6:>8.1f} {e.get('sram', 0) * 1e-6:>8.1f} "
            f"{e.get('pe', 0) * 1e-6:>7.1f} {e.get('vec', 0) * 1e-6:>6.1f} {r.dram_bytes / 2**20:>8.2f} "
            f"{r.pe_busy_cycles / r.cycles:>7.1%} {r.vec_busy_cycles / r.cycles:>8.1%} "
            f"{r.overlap_cycles / r.cycles:>7.1%}")
    lines.append("")
    lines.append(f"{'N':>5} {'MAS / FLAT':>10} {'arithmetic':>10} {'= ops':>6} {'x row block':>11} "
                 f"{'overlap':>8} {'energy MAS / FLAT':>17}")
    for N, s in speedups(rows).items():
        lines.append(f"{N:>5} {s['total']:>9.2f}x {s['arithmetic']:>9.2f}x {s.get('ops', 0):>5.2f}x "
                     f"{s.get('row_block', 0):>10.2f}x {s['overlap']:>7.2f}x {s['energy_vs_flat']:>16.2f}x")
    return "\n".join(lines)
