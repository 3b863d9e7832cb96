"""Where the code stands against the architecture's rules (docs: the layering in README's "What is here").

    python bench/architecture.py          # cycles, engine -> face imports, files over 600 lines
    python bench/architecture.py --json

Reads every module of the attnlang package with `ast` (nothing is imported) and builds the graph of
imports between files, counting imports inside functions too (not those under `if TYPE_CHECKING:`,
which never run). A module `a.b` imported as a package counts
as its `__init__.py`. Reports:
- import cycles: the strongly connected components of more than one file;
- engine packages (syntax, check, interp, jit, model) that import a face (api, cli, repl, lsp);
- files over 600 lines.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "attnlang"
ENGINES = ("syntax", "check", "interp", "jit", "model")
FACES = ("api", "cli", "repl", "lsp")
MAX_LINES = 600


def modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The attnlang modules `name` imports, anywhere in the file."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _type_checking(block.test)
                   for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` names a submodule where one exists
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _type_checking(test) -> bool:
    """`if TYPE_CHECKING:`: imports for annotations only, never run."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out, key=len, reverse=True)


def layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def report() -> dict:
    known = modules()
    graph = {n: imports(n, p, known) for n, p in known.items()}
    upward = sorted(f"{a} -> {b}" for a, bs in graph.items() for b in bs
                    if layer(a) in ENGINES and layer(b) in FACES)
    long = sorted(((str(p.relative_to(ROOT)), n) for p in known.values()
                   if (n := len(p.read_text().splitlines())) > MAX_LINES), key=lambda x: -x[1])
    return {"modules": len(known), "cycles": cycles(graph), "engine_imports_face": upward,
            "files_over_600_lines": [{"file": f, "lines": n} for f, n in long]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    r = report()
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"{r['modules']} modules")
    print(f"import cycles: {len(r['cycles'])}")
    for c in r["cycles"]:
        print(f"  {len(c)} files: {', '.join(c)}")
    print(f"engine modules importing a face: {len(r['engine_imports_face'])}")
    for e in r["engine_imports_face"]:
        print(f"  {e}")
    print(f"files over {MAX_LINES} lines: {len(r['files_over_600_lines'])}")
    for f in r["files_over_600_lines"]:
        print(f"  {f['file']}: {f['lines']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
