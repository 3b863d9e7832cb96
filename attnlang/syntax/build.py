"""The Lark tree to AST pass: one method per grammar rule."""

from __future__ import annotations

from lark import Token, Transformer, v_args

from ..diagnostics import Diagnostic, Span, error
from . import ast
from .units import parse_quantity


class SyntaxProblem(Exception):
    """A construct that parses but is not valid syntax (raised inside the transformer)."""

    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic
        super().__init__(diagnostic.message)


class _Count:
    """An array size `[n]`, held until its parent rule takes it."""

    def __init__(self, expr: ast.Expr):
        self.expr = expr


class _Props(tuple):
    """A `{ prop; ... }` block."""


class _Domain:
    def __init__(self, values=None, rng=None):
        self.values = values
        self.rng = rng


class _Subscripts(tuple):
    pass


class _Range:
    def __init__(self, var: str, lo: ast.Expr, hi: ast.Expr):
        self.var, self.lo, self.hi = var, lo, hi


_BINARY = {
    "add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%", "floordiv": "//",
    "matmul": "@", "pow": "**", "or_": "or", "and_": "and",
}


def _exprs(children) -> list:
    return [c for c in children if not isinstance(c, Token)]


@v_args(meta=True)
class ToAst(Transformer):
    def __init__(self, file: str, line_offset: int = 0):
        super().__init__(visit_tokens=False)
        self.file = file
        self.off = line_offset

    # ---------------------------------------------------------- spans
    def _span(self, meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.file, 1 + self.off, 1, 1 + self.off, 1)
        return Span(self.file, meta.line + self.off, meta.column, meta.end_line + self.off, meta.end_column)

    def _tspan(self, tok: Token) -> Span:
        return Span(self.file, tok.line + self.off, tok.column, tok.end_line + self.off, tok.end_column)

    # ---------------------------------------------------------- top level
    def start(self, meta, children):
        return [c for c in children if c is not None and not isinstance(c, Token)]

    def use_module(self, meta, children):
        return ast.Use(".".join(str(t) for t in children), False, self._span(meta))

    def use_file(self, meta, children):
        return ast.Use(str(children[0])[1:-1], True, self._span(meta))

    # ---------------------------------------------------------- hardware
    def hardware(self, meta, children):
        name, *items = children
        pick = lambda cls: tuple(i for i in items if isinstance(i, cls))  # noqa: E731
        return ast.Hardware(str(name), pick(ast.Prop), pick(ast.MemoryDecl), pick(ast.UnitDecl),
                            pick(ast.HwChannel), pick(ast.LinkDecl), self._span(meta), self._tspan(name),
                            tuple(i for i in items if isinstance(i, (ast.Param, ast.Where))))

    def memory_decl(self, meta, children):
        name, *props = children
        return ast.MemoryDecl(str(name), tuple(props), self._span(meta), self._tspan(name))

    def array_size(self, meta, children):
        return _Count(children[0])

    def unit_decl(self, meta, children):
        name, *rest = children
        count = None
        if isinstance(rest[0], _Count):
            count = rest.pop(0).expr
        kind, *items = rest
        props = tuple(i for i in items if isinstance(i, ast.Prop))
        ops = tuple(i for i in items if isinstance(i, ast.OpDecl))
        return ast.UnitDecl(str(name), count, str(kind), props, ops, self._span(meta), self._tspan(name),
                            self._tspan(kind))

    def op_names(self, meta, children):
        return tuple(str(c) for c in children)

    def op_decl(self, meta, children):
        names, *props = children
        return ast.OpDecl(names, tuple(props), self._span(meta))

    def prop_block(self, meta, children):
        return _Props(children)

    def hw_channel(self, meta, children):
        name, *rest = children
        count = rest.pop(0).expr if isinstance(rest[0], _Count) else None
        src, _arrow, dst, *more = rest
        props = more[0] if more else _Props()
        return ast.HwChannel(str(name), count, src, dst, tuple(props), self._span(meta), self._tspan(name))

    def link_for(self, meta, children):
        var, lo, hi = children
        return _Range(str(var), lo, hi)

    def link_decl(self, meta, children):
        src, _arrow, dst, *more = children
        rng = next((m for m in more if isinstance(m, _Range)), None)
        props = next((m for m in more if isinstance(m, _Props)), _Props())
        return ast.LinkDecl(src, dst, rng.var if rng else None, rng.lo if rng else None,
                            rng.hi if rng else None, tuple(props), self._span(meta))

    def prop_name(self, meta, children):
        return children[0]

    def prop(self, meta, children):
        name, *values = children
        vals = []
        for v in values:
            if isinstance(v, Token) and v.type == "SHAPE2":
                rows, cols = (int(x) for x in str(v).split("x"))
                vals.append(ast.Shape2(rows, cols, self._tspan(v)))
            else:
                vals.append(v)
        return ast.Prop(str(name), tuple(vals), self._span(meta), self._tspan(name))

    def unit_ref(self, meta, children):
        name, *idx = children
        return ast.UnitRef(str(name), idx[0] if idx else None, self._span(meta))

    # ---------------------------------------------------------- kernels
    def kernel(self, meta, children):
        name, *rest = children
        arrow = next(i for i, c in enumerate(rest) if isinstance(c, Token) and c.type == "ARROW")
        inputs = rest[0] if arrow == 1 else ()
        after = rest[arrow + 1:]
        outputs = ()
        if after and isinstance(after[0], list):
            outputs = after.pop(0)
        body = after.pop()
        hw = [c for c in after if isinstance(c, tuple) and c and c[0] == "on"]
        specs = tuple(c for c in after if isinstance(c, ast.Spec))
        if len(hw) > 1:
            raise SyntaxProblem(error("E0004", "a kernel runs on one hardware; 'on' is given twice", hw[1][2]))
        return ast.Kernel(str(name), tuple(inputs), tuple(outputs), hw[0][1] if hw else None,
                          hw[0][2] if hw else None, specs, body, self._span(meta), self._tspan(name))

    def tensor_list(self, meta, children):
        return list(children)

    def tensor_decl(self, meta, children):
        name, dtype, *dims = children
        return ast.TensorDecl(str(name), str(dtype), tuple(dims[0]) if dims else (), self._span(meta),
                              self._tspan(dtype))

    def dim_list(self, meta, children):
        return list(children)

    def on_clause(self, meta, children):
        return ("on", str(children[0]), self._tspan(children[0]))

    def spec(self, meta, children):
        name, expr = children
        return ast.Spec(str(name), expr, self._span(meta))

    def block(self, meta, children):
        return tuple(c for c in children if c is not None and not isinstance(c, Token))

    def target(self, meta, children):
        name, *sub = children
        return ast.Target(str(name), tuple(sub[0]) if sub else None, self._span(meta))

    def assign(self, meta, children):
        target, expr = children
        return ast.Assign(target, "=", expr, self._span(meta))

    def aug_assign(self, meta, children):
        target, op, expr = children
        return ast.Assign(target, str(op), expr, self._span(meta))

    def load(self, meta, children):
        target, tensor, *rest = children
        index = tuple(rest.pop(0)) if isinstance(rest[0], _Subscripts) else None
        _arrow, memory = rest
        return ast.Load(target, str(tensor), index, str(memory), self._span(meta), self._tspan(tensor),
                        self._tspan(memory))

    def store(self, meta, children):
        expr, _arrow, tensor, *sub = children
        return ast.Store(expr, str(tensor), tuple(sub[0]) if sub else None, self._span(meta), self._tspan(tensor))

    def send(self, meta, children):
        ch, expr = children
        return ast.Send(ch, expr, self._span(meta))

    def recv(self, meta, children):
        target, ch = children
        return ast.Recv(target, ch, self._span(meta))

    def discard(self, meta, children):
        return ast.Discard(tuple(ast.Name(str(t), self._tspan(t)) for t in children), self._span(meta))

    def annotation(self, meta, children):
        tok, *args = children
        return ast.Annotation(str(tok)[1:], tuple(args), self._span(meta))

    def for_loop(self, meta, children):
        var, lo, hi, *rest = children
        body = rest.pop()
        anns = tuple(r for r in rest if isinstance(r, ast.Annotation))
        steps = [r for r in rest if not isinstance(r, ast.Annotation)]
        return ast.For(str(var), lo, hi, steps[0] if steps else None, anns, body, self._span(meta),
                       self._tspan(var))

    def if_stmt(self, meta, children):
        cond, then, *orelse = children
        other: tuple = ()
        if orelse:
            other = orelse[0] if isinstance(orelse[0], tuple) else (orelse[0],)
        return ast.If(cond, then, other, self._span(meta))

    def process_range(self, meta, children):
        var, lo, hi = children
        return _Range(str(var), lo, hi)

    def process(self, meta, children):
        name, *rest = children
        rng = rest.pop(0) if isinstance(rest[0], _Range) else None
        unit, body = rest
        return ast.Process(str(name), rng.var if rng else None, rng.lo if rng else None, rng.hi if rng else None,
                           unit, body, self._span(meta), self._tspan(name))

    def domain_set(self, meta, children):
        return _Domain(values=tuple(children))

    def domain_range(self, meta, children):
        lo, hi, *step = children
        return _Domain(rng=(lo, hi, step[0] if step else None))

    def param(self, meta, children):
        name, *rest = children
        domain = rest.pop(0) if rest and isinstance(rest[0], _Domain) else None
        default = rest[0] if rest else None
        return ast.Param(str(name), domain.values if domain else None, domain.rng if domain else None,
                         default, self._span(meta), self._tspan(name))

    def dim_binding(self, meta, children):
        name, value = children
        return ast.DimBinding(str(name), value, self._span(meta))

    def dim(self, meta, children):
        return ast.DimDecl(tuple(children), self._span(meta))

    def where_decl(self, meta, children):
        return ast.Where(tuple(children), self._span(meta))

    def channel_decl(self, meta, children):
        name, *rest = children
        count = rest.pop(0).expr if isinstance(rest[0], _Count) else None
        dtype, *props = rest
        return ast.ChannelDecl(str(name), count, str(dtype), tuple(props[0]) if props else (),
                               self._span(meta), self._tspan(name))

    # ---------------------------------------------------------- expressions
    def on_unit(self, meta, children):
        expr, unit = children
        return ast.OnUnit(expr, unit, self._span(meta))

    def __default__(self, data, children, meta):
        if data in _BINARY:
            left, right = _exprs(children)
            return ast.Binary(_BINARY[data], left, right, self._span(meta))
        raise NotImplementedError(data)  # every rule has a method; this is a bug

    def compare(self, meta, children):
        left, op, right = children
        return ast.Binary(str(op), left, right, self._span(meta))

    def not_(self, meta, children):
        return ast.Unary("not", children[0], self._span(meta))

    def neg(self, meta, children):
        return ast.Unary("-", children[0], self._span(meta))

    def pos(self, meta, children):
        return children[0]

    def call(self, meta, children):
        func, *args = children
        span = self._span(meta)
        if isinstance(func, ast.Name):
            return ast.Call(func.id, tuple(args[0]) if args else (), span, func.span)
        raise SyntaxProblem(error("E0005", "only builtin functions can be called", span))

    def where_fn(self, meta, children):
        return ast.Name("where", self._span(meta))

    def args(self, meta, children):
        return list(children)

    def index(self, meta, children):
        base, sub = children
        return ast.Index(base, tuple(sub), self._span(meta))

    def subscripts(self, meta, children):
        return _Subscripts(children)

    def slice(self, meta, children):
        colon = next(i for i, c in enumerate(children) if isinstance(c, Token) and c.type == "COLON")
        lo = children[colon - 1] if colon > 0 else None
        hi = children[colon + 1] if colon + 1 < len(children) else None
        return ast.Slice(lo, hi, self._span(meta))

    def attr(self, meta, children):
        base, name = children
        return ast.Attr(base, str(name), self._span(meta))

    def name(self, meta, children):
        return ast.Name(str(children[0]), self._span(meta))

    def number(self, meta, children):
        text = str(children[0])
        if len(text) > 300:  # int() refuses over 4300 digits; nothing real needs 300
            raise SyntaxProblem(error("E0006", f"number too long ({len(text)} characters)", self._span(meta)))
        is_int = text.isdigit()
        return ast.Num(int(text) if is_int else float(text), is_int, self._span(meta))

    def quantity(self, meta, children):
        tok = children[0]
        try:
            q = parse_quantity(str(tok))
        except ValueError as exc:
            raise SyntaxProblem(error("E0006", str(exc), self._tspan(tok))) from None
        return ast.QuantityLit(q, self._span(meta))

    def list(self, meta, children):
        return ast.ListLit(tuple(children[0]) if children else (), self._span(meta))
