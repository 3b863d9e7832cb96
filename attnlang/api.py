"""The Python API: what `attn check`, `attn run` and `attn explore` do, as functions.

    import attnlang
    diags = attnlang.check_program("examples/flash.attn")         # [Diagnostic], [] when clean
    r = attnlang.run("examples/flash.attn", defines={"N": 512})   # a Result: cycles, energy, outputs, ...
    ex = attnlang.explore("examples/mmee.attn", defines={"N": 1024}, minimize="edp")
    est = attnlang.estimate("examples/flash.attn", params={"Br": np.array([16, 32, 64])})
    b = attnlang.bind_kernel("examples/flash.attn", defines={"N": 512})  # checked once; run(b, seed=1), ...

Each takes a path to a `.attn` file, source text, or a Program from
`load_program`. A wrong program raises AttnError (its `diagnostics` have the
file, line, column, code and message `attn` prints); wrong arguments raise
UsageError. The CLI, REPL and LSP are thin faces over these functions
(docs/api.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .binding import BoundKernel, signature_dims
from .diagnostics import DEFINE_ERROR, AttnError, UsageError, has_errors
from .hostmem import check_host_memory, held_bytes, host_memory_bytes  # noqa: F401 - the API's names
from .limits import DEFAULT_MAX_STEPS
from .program import Program, load, load_source
from .syntax import ast


def load_program(source_or_path: str, include: Sequence[str] = ()) -> Program:
    """A path to a .attn file, or source text. include: folders besides the file's own (the working
    folder's, for text) that its `use "file"`s may read from, like `attn -I DIR` (docs/cli.md)."""
    text = str(source_or_path)
    if "\n" not in text and (text.endswith(".attn") or Path(text).exists()):
        return load(text, include)
    return load_source(text, "<input>", include=include)


def _program(source_or_path: str | Program, strict: bool = True) -> Program:
    """The program; strict: raise AttnError on what loading it found (syntax, `use`) before anything else."""
    prog = source_or_path if isinstance(source_or_path, Program) else load_program(source_or_path)
    if strict and has_errors(prog.diagnostics):
        raise AttnError([d for d in prog.diagnostics if d.severity == "error"])
    return prog


def check_program(source_or_path: str | Program, defines: Mapping | None = None,
                  kernels: list[str] | None = None) -> list:
    """Every diagnostic of `attn check` (errors and warnings), at the params' defaults unless defines
    say otherwise; kernels: only these. Returns them (it raises only for wrong arguments). (Not
    `check`: that is the checker's package, attnlang.check.)"""
    from .check import check as run_checks

    return run_checks(_program(source_or_path, strict=False), dict(defines or {}),
                      list(kernels) if kernels else None)


def explore(source_or_path: str | Program, kernels: list[str] | None = None, defines: Mapping | None = None,
            minimize: str = "latency", top: int = 10, workers: int = 1, progress=None, exhaustive: bool = False,
            rerank: int | None = None, cluster=None, cluster_timeout: float | None = None):
    """`attn explore`: every candidate of the kernels (default: every kernel of the file that shares one
    spec), ranked by minimize (latency, energy or edp). Returns an Exploration: best, top, pareto,
    candidates, feasible, evaluated, seconds, rate, pruned, notes; `to_json()` is `--json`'s object.

    The program is checked first: an error no candidate can escape (syntax, names, types, shapes,
    units, channel wiring) raises AttnError, as does a space with nothing feasible (E1402) or nothing
    in it (E1403). progress(done, total, seconds) is called as combinations finish.

    The search runs in two stages (docs/explore.md): closed-form costs over every candidate, then the
    detailed model over the best `rerank` of them (default 1024); exhaustive=True runs the detailed
    model over every candidate instead. cluster: a Dask scheduler's address (or a distributed.Client)
    to spread the search over instead of `workers` local processes (needs attnlang[cluster]); a
    scheduler that does not answer within cluster_timeout seconds (default 10) raises UsageError.
    """
    from .check import structural_errors
    from .explorer.search import explore as search

    prog = _program(source_or_path)
    defines = dict(defines or {})
    kernels = list(kernels) if kernels else None
    structural = structural_errors(prog, kernels, defines)
    if structural:
        raise AttnError(structural)
    return search(prog, kernels, defines, minimize, top, workers, progress, exhaustive, rerank, cluster,
                  cluster_timeout, simulate=run)


def validate(source_or_path: str | Program, candidates: list, progress=None) -> list[dict]:
    """`attn explore --validate`: run candidates (from explore's top or pareto) through the interpreter;
    each dict has the model's and the simulation's cycles and energy, the errors, and `verified`.
    progress(done, total, seconds), if given, is called before each run and after the last."""
    from .explorer.search import validate as check_candidates

    return check_candidates(_program(source_or_path), candidates, run, progress)


def estimate(source_or_path: str | Program, kernel: str | None = None, params: Mapping | None = None):
    """The analytical model for many candidates at once: params maps a dim or param to a number or a
    NumPy array (one entry per candidate, or open-grid arrays that broadcast). Returns an Estimate whose
    fields (cycles, energy_pj, read_bytes, write_bytes, peak_bytes, busy_cycles, ...) are arrays of the
    candidates' broadcast shape. Kernels with processes and channels raise AttnError E1401: `explore`
    simulates those."""
    from .model.analytic import estimate as model

    prog = _program(source_or_path)
    return model(prog, prog.kernel(kernel), params)


def bind_kernel(source_or_path: str | Program, kernel: str | None = None, defines: Mapping | None = None,
                check: bool = True) -> BoundKernel:
    """One kernel checked and bound at defines (its params' defaults for the rest): a BoundKernel with its
    env (every dim and param's value), elaborated hardware, the checker's types and shapes (shapes:
    (name, statement span) -> shape, dtype, memory of the value assigned there) and warnings. `run` takes
    it in place of a source, to run one checked kernel many times (other seeds, inputs, engines). Raises
    AttnError with the program's errors (only those of loading and binding with check=False)."""
    from .check import bind_kernel as bind

    prog = _program(source_or_path)
    return bind(prog, prog.kernel(kernel), dict(defines or {}), rules=check)


def run(source_or_path: str | Program | BoundKernel, kernel: str | None = None, defines: Mapping | None = None,
        inputs: Mapping[str, np.ndarray] | None = None, seed: int = 0, engine: str = "interp",
        trace: bool = False, max_cycles: float | None = None, timeout: float | None = None,
        check: bool = True, verify: str | None = None, max_steps: int | None = DEFAULT_MAX_STEPS):
    """Run a kernel on its modeled hardware and verify it against its spec.

    max_cycles stops the run (E1003) once its modeled time passes that many cycles; max_steps (E1002)
    once it has taken that many loop iterations, whether or not they advance modeled time (None: no
    limit); timeout (E1004) once the whole call has taken that many wall seconds.

    verify is `attn run --verify`: "auto" (the default: "full" while the spec is small, "rows=256"
    beyond), "full" (every element, the spec evaluated a block of rows at a time), "rows=K" (K rows
    drawn with seed, every element of each) or "off".
    source_or_path may be a BoundKernel (`bind_kernel`): it runs as it was bound (kernel and defines must
    then be left out; inputs must have its shapes).
    Returns a Result (attnlang.report.Result) with the fields of
    `attn run --json` plus `outputs`. Raises AttnError when the program is
    wrong (diagnostics attached) and UsageError when the arguments are.
    """
    from .wallclock import Deadline, time_limit

    t0 = time.perf_counter()
    deadline = Deadline(timeout)
    with time_limit(deadline):  # --timeout covers checking and compiling too, not the run alone
        result = _run(source_or_path, kernel, defines, inputs, seed, engine, trace, (max_cycles, max_steps),
                      deadline, check, verify)
    result.wall_seconds = time.perf_counter() - t0
    return result


def _run(source_or_path, kernel, defines, inputs, seed, engine, trace, limits, deadline, check, verify):
    from .check import bind_kernel
    from .interp import execute
    from .spec import parse_verify

    plan = parse_verify(verify, seed)
    inputs = dict(inputs or {})
    if isinstance(source_or_path, BoundKernel):
        if kernel is not None or defines:
            raise UsageError("run(bound_kernel, ...) runs the kernel as it was bound: leave kernel and defines "
                             "out (bind it again to change them)")
        bound = source_or_path
        if bound.errors or bound.hardware is None:  # a partial binding (check.bind_kernel(partial=True))
            raise AttnError(bound.errors)
        k = bound.kernel
        deadline.span = k.name_span
        _infer_dims(k, inputs)  # inputs the kernel does not have, or with the wrong number of axes
    else:
        prog = _program(source_or_path)  # syntax and `use` errors come before looking for the kernel
        k = prog.kernel(kernel)
        deadline.span, deadline.phase = k.name_span, "checking the program"
        bound = bind_kernel(prog, k, dict(defines or {}), _infer_dims(k, inputs), rules=check)
    env, hw, warnings = bound.env, bound.hardware, bound.warnings
    if bound.missing_dims:
        name = bound.missing_dims[0]
        raise UsageError(f"dimension {name} of kernel '{k.name}' has no value: give -D {name}=VALUE, "
                         f"an --input whose shape has it, or 'dim {name} = ...' in the kernel", DEFINE_ERROR)
    check_host_memory(k, env, hw, plan)  # E1013 before anything is made
    full_inputs = _make_inputs(k, env, inputs, seed)
    max_cycles, max_steps = limits
    deadline.phase = "compiling and running the kernel" if engine == "jit" else "running the kernel"
    if engine == "jit":
        from .jit import execute as jit_execute

        result = jit_execute(bound, full_inputs, trace=trace, max_cycles=max_cycles, timeout=deadline.left(),
                             verify=plan, max_steps=max_steps)
    elif engine == "interp":
        result = execute(bound, full_inputs, trace=trace, max_cycles=max_cycles, timeout=deadline.left(),
                         verify=plan, max_steps=max_steps)
    else:
        raise UsageError(f"unknown engine '{engine}' (interp or jit)")
    result.defines = {n: env[n] for n in _defined_names(k) if n in env}
    result.warnings = warnings + result.warnings
    return result


def _defined_names(k: ast.Kernel) -> list[str]:
    from .binding import static_decls

    names = signature_dims(k)
    names += [d.name for d in static_decls(k) if d.name not in names]
    return names


def _infer_dims(k: ast.Kernel, inputs: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Dimensions named in the signature, read off the shapes of the given inputs."""
    decls = {t.name: t for t in k.inputs}
    out: dict[str, int] = {}
    for name, arr in inputs.items():
        if name not in decls:
            raise UsageError(f"--input {name}: kernel '{k.name}' has no input '{name}' "
                             f"(inputs: {', '.join(decls) or 'none'})")
        t = decls[name]
        if np.ndim(arr) != len(t.dims):
            raise UsageError(f"--input {name}: expected {len(t.dims)} axes ({t.dtype}[...]), got shape "
                             f"{list(np.shape(arr))}")
        for d, size in zip(t.dims, np.shape(arr), strict=True):
            if isinstance(d, ast.Name):
                if d.id in out and out[d.id] != size:
                    raise UsageError(f"--input {name}: dimension {d.id} is {size} here but {out[d.id]} elsewhere")
                out[d.id] = int(size)
    return out


def _make_inputs(k: ast.Kernel, env: dict, given: Mapping[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    from .binding import tensor_shape
    from .dtypes import round_to

    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for t in k.inputs:
        shape = tensor_shape(t, env, "input")
        if t.name in given:
            arr = np.asarray(given[t.name])
            if arr.dtype.kind not in "fiu":
                raise UsageError(f"--input {t.name}: expected numbers for {t.dtype}, got dtype {arr.dtype}")
            if tuple(arr.shape) != shape:
                raise UsageError(f"--input {t.name}: expected shape {list(shape)}, got {list(arr.shape)}")
        else:
            arr = rng.standard_normal(shape)
        out[t.name] = round_to(np.asarray(arr, dtype=np.float64).astype(np.float32)
                               if t.dtype != "f64" else arr, t.dtype)
    return out


def load_npy(spec: str) -> tuple[str, np.ndarray]:
    """`NAME=FILE.npy` from --input."""
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise UsageError(f"--input expects NAME=FILE.npy, not '{spec}'")
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic != b"\x93NUMPY" and not magic.startswith(b"PK"):  # a .npy header, or a .npz (zip)
            raise UsageError(f"--input {name}: {path} is not a .npy file (it does not start with the .npy header)")
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"--input {name}: {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"--input {name}: {path}: is a directory") from None
    except (ValueError, OSError, EOFError) as exc:
        raise UsageError(f"--input {name}: {path} is not a valid .npy file ({exc})") from None
    if not isinstance(arr, np.ndarray):
        arr.close()  # an .npz archive: np.load left it open
        raise UsageError(f"--input {name}: {path} holds several arrays; give one .npy array")
    return name, arr


def save_atomic(path: str, write) -> None:
    """Write a file through a temporary in the same directory, fsync, and a rename: a reader sees the old
    file or the whole new one. The file's mode follows the umask, as a plain `open` would make it; the
    temporary is removed on an error, Ctrl-C or SIGTERM (not on SIGKILL: a `.NAME.*` file may stay)."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(f"{path}: directory {directory} does not exist")
    if target.is_dir():
        raise UsageError(f"{path}: is a directory; give a file name")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write here: {exc.strerror}") from None
    try:
        with _removed_on_sigterm(tmp), os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600 whatever the umask
            write(f)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, target)
        _fsync_dir(directory)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise UsageError(f"{path}: cannot write: {exc.strerror}") from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o077)  # reading the umask sets it: put it back at once
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _removed_on_sigterm(tmp: str):
    """While a temporary file is written, SIGTERM removes it and then ends the process as SIGTERM would
    (exit status 143 by SystemExit, so every `finally` runs). Only the main thread can set handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum, frame):
        raise SystemExit(128 + signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; a system that cannot open a folder for this (Windows) skips it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
