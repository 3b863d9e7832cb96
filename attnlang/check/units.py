"""Operations and units: every operation has a unit that runs it, reading from its own memory.

The binding itself is attnlang/ops.py's (through scope.binding_for, which
adds the unit of the enclosing `process P on U`); this rule reports what
cannot be bound, units named but not declared, unit indices outside their
array, and operands that live in a memory the unit does not read.
"""

from __future__ import annotations

from typing import Mapping

from ..diagnostics import Diagnostic, error, warning
from ..hardware import Hardware
from ..program import Program
from ..static import Static
from ..syntax import ast
from . import scope
from .dims import show, try_int
from .shapes import analyze


def check_units(prog: Program, kernel: ast.Kernel, env: Mapping[str, Static], hw: Hardware) -> list[Diagnostic]:
    """Ops a unit cannot run, unknown units, operands in the wrong memory (E05xx)."""
    env = scope.full_env(kernel, env)
    diags: list[Diagnostic] = []
    seen_refs: set = set()

    def unit_ref(ref: ast.UnitRef) -> bool:
        """Report an unknown unit or a bad index once per reference; True when the unit exists."""
        if ref.span in seen_refs:
            return ref.name in hw.units
        seen_refs.add(ref.span)
        unit = hw.units.get(ref.name)
        if unit is None:
            diags.append(error("E0502", f"hardware '{hw.name}' has no unit '{ref.name}'"
                                        f"{scope.suggest(ref.name, hw.units)}", ref.span))
            return False
        if ref.index is not None:
            i = try_int(ref.index, env)
            if not unit.is_array:
                diags.append(error("E0505", f"unit {unit.name} is not an array; it takes no index", ref.span))
            elif i is not None and not 0 <= i < unit.count:
                diags.append(error("E0505", f"{unit.name}[{i}] is outside the array of {unit.count} units", ref.span))
        return True

    for s in scope.walk(kernel.body):
        if isinstance(s, ast.Process):
            unit_ref(s.unit)
        elif isinstance(s, ast.For):
            for a in scope.annotations(s, "parallel"):
                diags += _parallel(a, hw, unit_ref)

    a = analyze(kernel, env, hw)
    for rec in a.ops.values():
        if rec.quiet:
            continue
        ok = True
        for ref in (rec.explicit, rec.process_unit):
            if ref is not None:
                ok = unit_ref(ref) and ok
        if rec.op is None or not ok:
            continue
        explicit = rec.explicit.name if rec.explicit else None
        b = scope.binding_for(rec.op, hw, explicit, rec.process_unit.name if rec.process_unit else None)
        if isinstance(b, str):
            diags.append(error("E0501", b, rec.span))
            continue
        memory = b.unit.memory
        if memory is None:
            continue
        for node, ty in rec.operands:
            if ty.tensor and ty.memory is not None and ty.memory != memory:
                diags.append(_elsewhere(node, ty, b.unit.name, memory, rec.op, explicit is None))
    return diags


def _elsewhere(node, ty, unit: str, memory: str, op: str, implicit: bool) -> Diagnostic:
    text = show(node)
    base = node
    while isinstance(base, (ast.Attr, ast.Index)):
        base = base.base
    how = f"load it into {memory}"
    if isinstance(base, ast.Name):
        how = f"x = load {base.id}{'[...]' if base is not node else ''} -> {memory}"
    notes = [f"for example: {how}"]
    if implicit:
        notes.insert(0, f"{op} runs on unit {unit}, the first {scope.op_kind(op)} unit that has it")
    return error("E0503", f"{text} lives in {ty.memory} but unit {unit} reads from {memory}: load it first",
                 node.span, *notes)


def _parallel(a: ast.Annotation, hw: Hardware, unit_ref) -> list[Diagnostic]:
    if not a.args:
        return []
    if len(a.args) > 1 or not isinstance(a.args[0], ast.Name):
        return [error("E0506", "@parallel takes the name of the unit array it spreads over, as in @parallel(pe)",
                      a.span)]
    name = a.args[0]
    if not unit_ref(ast.UnitRef(name.id, None, name.span)):
        return []
    unit = hw.units[name.id]
    if not unit.is_array:
        return [warning("E0506", f"@parallel({unit.name}) spreads iterations over a unit array, but "
                                 f"{unit.name} is a single unit: the iterations run one after another", a.span)]
    return []
