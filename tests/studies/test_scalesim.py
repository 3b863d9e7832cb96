"""The matrix unit against SCALE-Sim 3.0.0, on SCALE-Sim's own assumptions.

tests/reference/scalesim/scalesim_gemm.csv holds SCALE-Sim's stall-free cycle counts for one GEMM
C[M, N] = A[M, K] @ B[K, N] on arrays of 32 x 32, 8 x 32 and 128 x 128 PEs in its three dataflows,
made by tests/reference/scalesim/generate.py with SCALE-Sim in its own virtual environment. Here
each GEMM is one `attn` program on a matrix unit of the same size and dataflow (fill and drain on
every fold, the default), and its busy cycles must be SCALE-Sim's plus one, exactly: SCALE-Sim counts
up to the last cycle a PE is busy (``Total Cycles`` is one less than the cycles the array is
occupied), attnlang counts the cycles the unit is occupied.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from attnlang.api import run

CSV = Path(__file__).resolve().parents[1] / "reference" / "scalesim" / "scalesim_gemm.csv"


def _rows() -> list[dict]:
    with CSV.open() as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


ROWS = _rows()

HARDWARE = """
hardware array {{
  clock 1 GHz
  word 2 B
  memory dram {{ bandwidth 1 TiB/s; read 1 pJ/B; write 1 pJ/B }}
  memory sram {{ capacity 64 MiB; bandwidth 4096 B/cycle; read 1 pJ/B; write 1 pJ/B; parent dram }}
  unit pe : matrix {{ size {rows} x {cols}; dataflow {dataflow}; mac 1 pJ; memory sram }}
  unit vec : vector {{ lanes 32; memory sram; op add {{ cycles 1; energy 1 pJ }} }}
}}

kernel gemm(A: f16[M, K], B: f16[K, N]) -> (C: f16[M, N])
  on array
  spec C = A @ B
{{
  dim M = {M}, N = {N}, K = {K}
  a = load A -> sram
  b = load B -> sram
  store a @ b -> C
}}
"""


def _id(r: dict) -> str:
    return f"{r['rows']}x{r['cols']}-{r['dataflow']}-{r['M']}x{r['N']}x{r['K']}"


def test_the_reference_covers_every_dataflow_and_array():
    assert {r["dataflow"] for r in ROWS} == {"os", "ws", "is"}
    assert {(r["rows"], r["cols"]) for r in ROWS} == {("32", "32"), ("8", "32"), ("128", "128")}
    assert all(r["stall_cycles"] == "0" for r in ROWS)  # stall-free: compute time only


@pytest.mark.parametrize("row", ROWS, ids=[_id(r) for r in ROWS])
def test_matrix_unit_cycles_match_scalesim(row):
    src = HARDWARE.format(**row)
    r = run(src, defines={})
    assert r.ok
    ours = r.units["pe"]["busy_cycles"]
    theirs = int(row["total_cycles"])
    assert ours == theirs + 1, f"attnlang {ours}, SCALE-Sim {theirs}"
    m, n, k = int(row["M"]), int(row["N"]), int(row["K"])
    assert r.counters["macs"] == m * n * k
