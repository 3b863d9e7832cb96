"""Typing of tensor expressions: broadcasting, matmul, builtins, subscripts.

A mixin of the Typer (typer.py): every method returns a Ty and records the
operations and slices it meets. A broken operand makes the result poison,
so one mistake is reported once.
"""

from __future__ import annotations

from .. import ops
from ..static import free_names
from ..syntax import ast
from ..syntax.vocab import BUILTINS, ELEMENTWISE, STATIC_FUNCS, arity_message
from . import scope
from .dims import Dim, dim_of, same, show, try_value, value_of
from .types import POISON, STATIC, OpRec, SliceRec, Ty, broadcast, is_one, promote, show_shape

_COMPARE = ("==", "!=", "<", "<=", ">", ">=")


def unit_op(kind: str, name: str, nargs: int = 2) -> str:
    """The unit op of an operator or builtin (attnlang/ops.py); comparisons run as `cmp`."""
    if kind == "binary" and name in _COMPARE:
        return "cmp"  # ops.py names no op for comparisons; the interpreter charges `cmp`
    return ops.unit_op_of(kind, name, nargs) or name


class ExprTyper:
    """Expression typing; the Typer provides env, vals, hw, report(), quiet and the records."""

    def expr(self, e) -> Ty:
        ty = self.EXPRS.get(type(e), ExprTyper.e_other)(self, e)
        self.a.types[id(e)] = ty
        return ty

    def differ(self, a: Dim, b: Dim) -> bool:
        return same(a, b, self.env) is False

    # ---------------------------------------------------------- leaves
    def e_static(self, e) -> Ty:
        return STATIC

    def e_name(self, e: ast.Name) -> Ty:
        if e.id in self.vals:
            return self.vals[e.id]
        if e.id in self.tensor_ty:
            return self.tensor_ty[e.id]
        if self.is_static_name(e.id):
            return STATIC
        return POISON  # names.py reports it

    def e_other(self, e) -> Ty:
        if isinstance(e, ast.ListLit):
            self.report("E0416", "a list is only a shape, as in zeros([Br, d])", e.span)
        return POISON

    def e_on(self, e: ast.OnUnit) -> Ty:
        self.explicit.append(e.unit)
        try:
            return self.expr(e.expr)
        finally:
            self.explicit.pop()

    # ---------------------------------------------------------- operators
    def op_result(self, op: str | None, node, operands, shape, dtype) -> Ty:
        memory = None
        if self.hw is not None and not self.in_spec:
            explicit = self.explicit[-1] if self.explicit else None
            pu = self.process_unit.name if self.process_unit else None
            if op is None:
                memory = scope.alloc_memory(self.hw, explicit.name if explicit else None, pu)
            else:
                b = scope.binding_for(op, self.hw, explicit.name if explicit else None, pu)
                memory = None if isinstance(b, str) else scope.unit_memory(b.unit, self.hw)
        ty = Ty(tuple(shape), dtype or "f32", memory)
        if not self.in_spec:
            self.a.ops[id(node)] = OpRec(node, op, node.span, self.explicit[-1] if self.explicit else None,
                                         self.process_unit, tuple(operands), ty, bool(self.quiet))
        return ty

    def e_unary(self, e: ast.Unary) -> Ty:
        t = self.expr(e.operand)
        if t.poison or t.static:
            return t
        if e.op == "not":
            self.report("E0415", "'not' needs a static condition, not a tensor", e.span)
            return POISON
        if e.op == "+":
            return t
        return self.op_result(unit_op("unary", e.op), e, [(e.operand, t)], t.shape, t.dtype)

    def e_binary(self, e: ast.Binary) -> Ty:
        lt, rt = self.expr(e.left), self.expr(e.right)
        if lt.poison or rt.poison:
            return POISON
        if lt.static and rt.static:
            return STATIC
        if e.op in ("and", "or"):
            self.report("E0415", f"'{e.op}' needs static conditions, not tensors", e.span)
            return POISON
        if e.op == "@":
            return self.matmul(e, (e.left, lt), (e.right, rt))
        return self.arith(e.op, e, (e.left, lt), (e.right, rt))

    def arith(self, op: str, node, *operands) -> Ty:
        """An elementwise operation (operator or builtin) with NumPy broadcasting."""
        tys = [t for _, t in operands]
        if any(t.poison for t in tys):
            return POISON
        tensors = [(n, t) for n, t in operands if t.tensor]
        if not tensors:
            return STATIC
        shape, clash = broadcast([t.shape for _, t in tensors], self.env)
        if clash is not None:
            if isinstance(node, ast.Call):
                text = f"{op}({', '.join(str(t) for t in tys)})"
            else:
                text = f" {op} ".join(str(t) for t in tys)
            notes = self._row_hint(op, tensors)
            self.report("E0401", f"cannot broadcast {text}: dimensions {clash[0]} and {clash[1]} differ",
                        node.span, *notes)
            return POISON
        if op in _COMPARE:
            return self.op_result("cmp", node, operands, shape, "i8")
        dtype = None
        for t in tys[-2:] if op == "where" else tys:
            dtype = promote(dtype, t.dtype)
        kind = "binary" if len(op) <= 2 else "call"
        return self.op_result(unit_op(kind, op, len(operands)), node, operands, shape, dtype)

    def _row_hint(self, op: str, tensors) -> list[str]:
        if len(tensors) != 2:
            return []
        (_, a), (bn, b) = tensors
        lead = zip(a.shape, b.shape, strict=False)
        if len(b.shape) + 1 == len(a.shape) and all(same(x, y, self.env) for x, y in lead):
            return [f"to apply {show(bn)} to each row, write {show(bn, 9)}[:, None]"]
        return []

    def matmul(self, node, a, b) -> Ty:
        (_, at), (_, bt) = a, b
        if at.poison or bt.poison:
            return POISON
        if at.static or bt.static or not at.shape or not bt.shape:
            self.report("E0403", f"cannot multiply {at} @ {bt}: '@' needs two tensors with at least one axis",
                        node.span)
            return POISON
        A, B = at.shape, bt.shape
        k1, k2 = A[-1], (B[-2] if len(B) >= 2 else B[0])
        if self.differ(k1, k2):
            self.report("E0402", f"cannot multiply {at} @ {bt}: inner dimensions {k1} and {k2} differ", node.span)
            return POISON
        batch, clash = broadcast([A[:-2], B[:-2]], self.env) if len(A) > 2 or len(B) > 2 else ((), None)
        if clash is not None:
            self.report("E0402", f"cannot multiply {at} @ {bt}: batch dimensions {clash[0]} and {clash[1]} "
                                 "differ", node.span)
            return POISON
        shape = tuple(batch) + ((A[-2],) if len(A) >= 2 else ()) + ((B[-1],) if len(B) >= 2 else ())
        return self.op_result("matmul", node, [a, b], shape, promote(at.dtype, bt.dtype))

    # ---------------------------------------------------------- builtins
    def e_call(self, e: ast.Call) -> Ty:
        f = e.func
        if f in ("full", "zeros", "ones"):
            return self.alloc(e)
        tys = [self.expr(a) for a in e.args]
        if f not in BUILTINS:
            return POISON  # names.py reports the unknown function
        wrong = arity_message(f, len(tys))
        if wrong:
            self.report("E0406", wrong, e.span)
            return POISON
        if any(t.poison for t in tys):
            return POISON
        if not any(t.tensor for t in tys):
            if f in STATIC_FUNCS:
                return STATIC
            self.report("E0419", f"{f}() needs a tensor argument", e.span)
            return POISON
        args = list(zip(e.args, tys, strict=True))
        x = tys[0]
        if f in ELEMENTWISE:
            return self.op_result(unit_op("call", f, 1), e, args, x.shape, x.dtype)
        if f in ("max", "min", "where") and len(tys) > 1:
            return self.arith(f, e, *args)
        if f == "dot":
            return self.matmul(e, args[0], args[1])
        if f == "transpose":
            return x.with_shape(x.shape[:-2] + x.shape[-2:][::-1]) if x.tensor else x
        need = 2 if f == "causal" else 1
        if not x.tensor or len(x.shape) < need:
            self.report("E0405", f"{f}() needs a tensor with at least {'two axes' if need == 2 else 'one axis'}, "
                                 f"not {x}", e.span)
            return POISON
        if f in ("rowmax", "rowmin", "rowsum"):
            shape = x.shape[:-1]
        elif f in ("sum", "mean", "max", "min"):
            shape = ()
        else:  # softmax, causal
            shape = x.shape
        return self.op_result(unit_op("call", f, 1), e, args[:1], shape, x.dtype)

    def alloc(self, e: ast.Call) -> Ty:
        """full(shape, value[, dtype]), zeros(shape[, dtype]), ones(shape[, dtype])."""
        a = ops.alloc_args(e)
        if isinstance(a, str):
            self.report("E0406", a, e.span)
            return POISON
        if a.value is not None and not self.expr(a.value).static:
            if not any(n in self.vals or n in self.tensor_ty for n in free_names(a.value)):
                self.report("E0412", "full() fills with a number known before the kernel runs", a.value.span)
            return POISON  # names.py reports the tensor it names
        for i in a.shape:
            v = try_value(i, self.env)
            if v is not None and (isinstance(v, (bool, str)) or not float(v).is_integer() or v < 0):
                self.report("E0421", f"a shape is whole numbers, not {show(i)} = {v}", i.span)
                return POISON
        return self.op_result(None, e, [], tuple(dim_of(i) for i in a.shape), a.dtype)

    # ---------------------------------------------------------- subscripts and views
    def e_index(self, e: ast.Index) -> Ty:
        base = self.expr(e.base)
        name = e.base.id if isinstance(e.base, ast.Name) else ""
        return self.subscript(base, e.items, e.span, "index", name, e)

    def subscript(self, base: Ty, items, span, kind: str, name: str, node) -> Ty:
        if base.poison:
            return POISON
        if base.static:
            self.report("E0420", f"only tensors can be subscripted; '{name or show(node)}' is a number", span)
            return POISON
        if items is None:
            items = ()
        rank = len(base.shape)
        n = sum(1 for it in items if not (isinstance(it, ast.Name) and it.id == "None"))
        if n > rank:
            label = name or "the value"
            self.report("E0404", f"{label} is {base} ({rank} axes) but is given {n} subscripts", span)
            return POISON
        out: list[Dim] = []
        axis, reversed_ = 0, False
        for it in items:
            if isinstance(it, ast.Name) and it.id == "None":
                out.append(Dim.const(1))
                continue
            if isinstance(it, ast.Slice):
                d = base.shape[axis]
                hi = dim_of(it.hi) if it.hi is not None else d
                lo = dim_of(it.lo) if it.lo is not None else Dim.const(0)
                extent = value_of(hi - lo, self.first)
                reversed_ = reversed_ or (extent is not None and extent < 0)
                out.append(hi - lo)
            axis += 1
        out += base.shape[axis:]
        if not self.in_spec and (items or kind in ("load", "store")):
            self.a.slices[id(node)] = SliceRec(kind, name, base.shape, tuple(items), span, tuple(self.loops),
                                               tuple(self.guards), node, bool(self.quiet))
        if reversed_:
            return POISON  # bounds.py reports the reversed slice
        return base.with_shape(tuple(out))

    def e_attr(self, e: ast.Attr) -> Ty:
        base = self.expr(e.base)
        if e.name != "T":
            self.report("E0408", f"unknown attribute '.{e.name}' ('.T' transposes a tensor)", e.span)
            return POISON
        if base.poison or base.static:
            return base
        if len(base.shape) < 2:
            self.warn("E0407", f"'.T' of {base}, which has fewer than two axes, changes nothing", e.span)
            return base
        return base.with_shape(base.shape[:-2] + (base.shape[-1], base.shape[-2]))

    def check_fits(self, ty: Ty, part: Ty, target: str, span, code: str) -> None:
        """A value written into part of a tensor must broadcast to that part's shape."""
        if ty.poison or part.poison or ty.static:
            return
        src, dst = ty.shape, part.shape
        bad = len(src) > len(dst) or any(not is_one(a, self.env) and self.differ(a, b)
                                         for a, b in zip(reversed(src), reversed(dst), strict=False))
        if bad:
            verb = "store" if code == "E0409" else "assign"
            into = "into" if code == "E0409" else "to"
            self.report(code, f"cannot {verb} {ty} {into} {target}, which is {part.dtype}{show_shape(dst)}", span)

    EXPRS = {
        ast.Num: e_static, ast.QuantityLit: e_static, ast.Name: e_name, ast.Unary: e_unary,
        ast.Binary: e_binary, ast.Call: e_call, ast.Index: e_index, ast.Attr: e_attr, ast.OnUnit: e_on,
    }

