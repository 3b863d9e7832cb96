"""One native function for the instances of a process array.

`process pe[p in 0 .. m]` starts m instances of one body. Each is lowered
as today, with p a static value, to a function of its own; what differs
between those functions is, as a rule, only numbers: the slots of each
instance's frame and storage in the state arrays, its unit instance, its
channels' slots, the error sites, offsets computed from p. `share` checks
that the instances' functions are the same instruction for instruction,
block for block, but for integer and floating-point constants, and then
keeps the first one with each constant that differs replaced by a value of
the instance: the first instance's constant plus the instance's difference
from it, read from a table indexed by the function's instance argument
(constants that move together share one table). Every instance computes
exactly what its own function would have (an integer is the same number, a
float the same bits), and LLVM optimizes and compiles the body once instead
of m times.

Functions that differ in anything else (a shape or a branch that depends on
p at compile time, and so a different sequence of instructions) are not
shared: the array keeps one function per instance.
"""

from __future__ import annotations

import llvmlite.ir as ir

from .irkit import I64


def _operands(instr) -> list:
    return [v for v, _ in instr.incomings] if isinstance(instr, ir.PhiInstr) else list(instr.operands)


def _number(v) -> bool:
    """A literal integer or floating-point constant (not a constant expression, vector or aggregate)."""
    return (type(v) is ir.Constant and isinstance(v.type, (ir.IntType, ir.FloatType, ir.DoubleType))
            and isinstance(v.constant, (int, float)))


def _wrap(v: int, width: int) -> int:
    """v modulo 2^width, as the signed number LLVM reads back (0 or 1 for i1)."""
    v &= (1 << width) - 1
    return v - (1 << width) if width > 1 and v >> (width - 1) else v


def _set_operand(instr, k: int, value) -> None:
    ops = list(instr.operands)
    ops[k] = value
    instr.operands = tuple(ops) if isinstance(instr.operands, tuple) else ops
    if isinstance(instr, ir.GEPInstr):
        instr.pointer, instr.indices = ops[0], ops[1:]
    instr._clear_string_cache()


def _differing(funcs: list) -> list | None:
    """(block, position, operand) of each operand where the functions' constants differ, or None where they
    differ in anything else. Compares with the differing constants of all but the first function overwritten
    by the first's, and puts them back before returning: a function that is not shared is compiled as it was
    lowered (one left with another instance's slots runs on that instance's state: a deadlock)."""
    out: dict = {}
    undo: list = []
    try:
        for other in funcs[1:]:
            if not _same_but_constants(funcs[0], other, out, undo):
                return None
        return list(out)
    finally:
        for instr, k, value in reversed(undo):
            _set_operand(instr, k, value)


def _same_but_constants(first, other, out: dict, undo: list) -> bool:
    if len(first.blocks) != len(other.blocks):
        return False
    for bi, (ba, bb) in enumerate(zip(first.blocks, other.blocks, strict=True)):
        if ba.name != bb.name or len(ba.instructions) != len(bb.instructions):
            return False
        for ii, (a, b) in enumerate(zip(ba.instructions, bb.instructions, strict=True)):
            oa, ob = _operands(a), _operands(b)
            if type(a) is not type(b) or len(oa) != len(ob):
                return False
            for k, (x, y) in enumerate(zip(oa, ob, strict=True)):
                if _number(x) and _number(y) and x.type == y.type and str(x) != str(y):
                    if isinstance(a, (ir.PhiInstr, ir.SwitchInstr, ir.AllocaInstr)) or (
                            isinstance(a, ir.GEPInstr) and k == 0):
                        return False  # operands that must stay constants, or that this does not rewrite
                    out[bi, ii, k] = True
                    undo.append((b, k, y))
                    _set_operand(b, k, x)  # so that str() compares the rest of the instruction
            if str(a) != str(b):
                return False
    return True


def same_but_constants(funcs: list) -> list[list[int]]:
    """The functions in groups (positions into funcs, in order) whose members differ only in constants."""
    groups: list[list[int]] = []
    for k, f in enumerate(funcs):
        for g in groups:
            if _differing([funcs[g[0]], f]) is not None:
                g.append(k)
                break
        else:
            groups.append([k])
    return groups


def _collect(funcs: list) -> dict | None:
    """{(block, position, operand): [each function's constant there]} where only constants differ, or None."""
    originals = [[_operands(i) for blk in f.blocks for i in blk.instructions] for f in funcs]
    keys = _differing(funcs)
    if keys is None:
        return None
    offsets, n = [], 0
    for blk in funcs[0].blocks:
        offsets.append(n)
        n += len(blk.instructions)
    return {(bi, ii, k): [ops[offsets[bi] + ii][k] for ops in originals] for bi, ii, k in keys}


def share(module: ir.Module, funcs: list, name: str):
    """One function for the instances whose functions are `funcs` (in instance order), or None where they
    differ in more than constants. The functions take the instance's index as their last argument; the
    shared one is the first of them, the others are removed from the module."""
    constants = _collect(funcs)
    if constants is None:
        return None
    first = funcs[0]
    targets = {key: first.blocks[key[0]].instructions[key[1]] for key in constants}  # before anything is added
    entry = ir.IRBuilder(first.blocks[0])
    entry.position_at_start(first.blocks[0])
    tables: dict = {}  # (type, values per instance) -> the instance's value, loaded on entry
    uses = []
    for key, values in constants.items():
        ty = values[0].type
        if isinstance(ty, ir.IntType):  # the difference from the first instance's constant, modulo 2^width
            base = int(values[0].constant)
            table = tuple(_wrap(int(v.constant) - base, ty.width) for v in values)
        else:
            table = tuple(float(v.constant) for v in values)
        column = (str(ty), table)
        if column not in tables:
            arr = ir.ArrayType(ty, len(table))
            g = ir.GlobalVariable(module, arr, name=f"{name}.param.{len(tables)}")
            g.linkage, g.global_constant = "internal", True
            g.initializer = ir.Constant(arr, [ir.Constant(ty, v) for v in table])
            tables[column] = entry.load(entry.gep(g, [ir.Constant(I64, 0), first.args[-1]], inbounds=True))
        uses.append((targets[key], key[2], values[0], tables[column]))
    at = ir.IRBuilder(first.blocks[0])
    for instr, k, constant, value in uses:
        if isinstance(constant.type, ir.IntType):
            at.position_before(instr)
            value = at.add(constant, value)
        _set_operand(instr, k, value)
    for f in funcs[1:]:
        del module.globals[f.name]
    return first


__all__ = ["same_but_constants", "share"]
