"""Hover text for a name: its kind and its type, shape, dtype and memory, in markdown.

Values are typed by the checker at the kernel's defaults (the shapes a bound
kernel carries: check.bind_kernel); hardware is described from the elaborated
model, as `:hw` prints it in the REPL.
"""

from __future__ import annotations

from .. import ops
from ..cost import DTYPE_BYTES
from ..display import hardware_lines, memory_line, unit_line
from ..hardware import elaborate
from ..static import StaticError, static_eval
from ..syntax import ast, vocab
from .analysis import Analysis, Symbol, Token, kernel_bound, kernel_hardware


def describe(a: Analysis, pos, tok: Token, sym: Symbol | None) -> list[str]:
    """Markdown paragraphs about the token under the cursor (none for punctuation and keywords)."""
    if sym is None:
        return [_word(tok.text)] if tok.type == "NAME" else []
    fn = _KINDS.get(sym.kind)
    return [fn(a, sym, pos)] if fn else [f"{sym.kind} `{sym.name}`"]


def _word(name: str) -> str:
    if name in vocab.DTYPES:
        return f"element type `{name}`: {DTYPE_BYTES.get(name, '?')} bytes"
    if name in vocab.BUILTINS:
        if name in ops.FREE_FUNCS:
            return f"builtin `{name}`: allocates or relabels data; no unit runs it"
        op = ops.unit_op_of("call", name, 1)
        where = "a matrix unit" if op == "matmul" else "a vector unit"
        return f"builtin `{name}`: runs on {where}" + (f" as op `{op}`" if op and op != "matmul" else "")
    if name in vocab.CONSTANTS:
        return f"constant `{name}`"
    if name in vocab.UNIT_KINDS:
        return f"unit kind `{name}`"
    return ""


def _defaults(env: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in env.items() if not isinstance(v, str) or k != v)


def _eval(expr, env):
    try:
        return static_eval(expr, env)
    except StaticError:
        return None


def _tensor(a: Analysis, sym: Symbol, pos) -> str:
    t: ast.TensorDecl = sym.node
    dims = ", ".join(a.span_text(d.span) or "?" for d in t.dims)
    line = f"{sym.kind} `{t.name}: {t.dtype}[{dims}]`"
    bound = kernel_bound(a, sym.owner)
    env, hw = bound.env, bound.hardware
    values = [_eval(d, env) for d in t.dims]
    where = f" in `{hw.root_memory().name}`" if hw is not None else ""
    if all(isinstance(v, (int, float)) for v in values):
        line += f"  \n= `{t.dtype}[{', '.join(str(int(v)) for v in values)}]`{where} at the defaults"
    else:
        line += f"{where}  \n(its size depends on a dimension with no default)"
    return line


def _value(a: Analysis, sym: Symbol, pos) -> str:
    bound = kernel_bound(a, sym.owner)
    env = bound.env
    head = f"value `{sym.name}`"
    types = {key: vt for key, vt in bound.shapes.items() if key[0] == sym.name}
    if not types:
        return head + "  \n(its type could not be inferred: see the diagnostics)"
    here = [key for key in types if (key[1].line, key[1].column) <= pos <= (key[1].end_line, key[1].end_column)]
    before = [key for key in types if (key[1].line, key[1].column) <= pos]
    key = (here or before or list(types))[-1]
    vt = types[key]
    shape = "?" if vt.shape is None else ", ".join(map(str, vt.shape))
    text = f"{head}: `{vt.dtype or 'f32'}[{shape}]`" + (f" in `{vt.memory}`" if vt.memory else "")
    at = f", at the defaults ({_defaults(env)})" if _defaults(env) else ""
    return f"{text}  \nas assigned on line {key[1].line}{at}"


def _dim(a: Analysis, sym: Symbol, pos) -> str:
    env = kernel_bound(a, sym.owner).env
    if isinstance(sym.node, ast.DimBinding):
        return f"dim `{sym.name} = {a.span_text(sym.node.value.span)}`" + \
            (f" = {env[sym.name]}" if sym.name in env and a.span_text(sym.node.value.span) != str(env[sym.name])
             else "")
    if sym.name in env:
        return f"dimension `{sym.name}` = {env[sym.name]}"
    return f"dimension `{sym.name}` of the signature: no default (give `-D {sym.name}=...` or `dim {sym.name} = ...`)"


def _param(a: Analysis, sym: Symbol, pos) -> str:
    p: ast.Param = sym.node
    if p.domain is not None:
        domain = " in {" + ", ".join(a.span_text(v.span) for v in p.domain) + "}"
    elif p.domain_range is not None:
        lo, hi, step = p.domain_range
        domain = f" in {a.span_text(lo.span)} .. {a.span_text(hi.span)}" + \
            (f" by {a.span_text(step.span)}" if step is not None else "")
    else:
        domain = ""
    default = f" = {a.span_text(p.default.span)}" if p.default is not None else ""
    env = kernel_bound(a, sym.owner).env
    now = f"  \ndefault value: {env[p.name]}" if p.name in env and not default else ""
    return f"param `{p.name}{domain}{default}`{now}  \n(set it with `-D {p.name}=...`; `attn explore` searches it)"


def _index(a: Analysis, sym: Symbol, pos) -> str:
    s = sym.node
    if isinstance(s, ast.Process):
        return f"process index `{s.var}` in {a.span_text(s.lo.span)} .. {a.span_text(s.hi.span)}"
    text = f"loop index `{s.var} in {a.span_text(s.lo.span)} .. {a.span_text(s.hi.span)}`"
    if s.step is not None:
        text = text[:-1] + f" by {a.span_text(s.step.span)}`"
    if s.annotations:
        text += " " + " ".join(f"`{a.span_text(x.span)}`" for x in s.annotations)
    env = kernel_bound(a, sym.owner).env
    lo, hi = _eval(s.lo, env), _eval(s.hi, env)
    step = _eval(s.step, env) if s.step is not None else 1
    if all(isinstance(v, (int, float)) for v in (lo, hi, step)) and step > 0:
        text += f"  \n{max(0, -(-(int(hi) - int(lo)) // int(step)))} iterations at the defaults"
    return text


def _hardware_of(a: Analysis, sym: Symbol):
    block = sym.node if isinstance(sym.node, ast.Hardware) else sym.owner
    hw, _ = elaborate(block, {})
    return hw


def _memory(a: Analysis, sym: Symbol, pos) -> str:
    hw = _hardware_of(a, sym)
    m = hw.memories.get(sym.name) if hw else None
    return f"`{memory_line(m, hw.clock_hz)}`" if m else f"memory `{sym.name}`"


def _unit(a: Analysis, sym: Symbol, pos) -> str:
    hw = _hardware_of(a, sym)
    u = hw.units.get(sym.name) if hw else None
    return f"`{unit_line(u)}`" if u else f"unit `{sym.name}`"


def _hardware(a: Analysis, sym: Symbol, pos) -> str:
    hw = _hardware_of(a, sym)
    if hw is None:
        return f"hardware `{sym.name}` (it has errors)"
    lines = hardware_lines(hw)
    return f"**{lines[0]}**\n\n" + "\n".join(f"- {line.strip()}" for line in lines[1:])


def _kernel(a: Analysis, sym: Symbol, pos) -> str:
    k: ast.Kernel = sym.node

    def sig(ts):
        return ", ".join(f"{t.name}: {t.dtype}[{', '.join(a.span_text(d.span) for d in t.dims)}]" for t in ts)

    text = f"kernel `{k.name}({sig(k.inputs)}) -> ({sig(k.outputs)})`"
    if k.hardware:
        text += f" on `{k.hardware}`"
    hw = kernel_hardware(a, k)
    if k.hardware is None and hw is not None:
        text += f" (on `{hw.name}`, the only hardware in scope)"
    for s in k.specs:
        text += f"  \nspec `{a.span_text(s.span)}`"
    return text


def _channel(a: Analysis, sym: Symbol, pos) -> str:
    c = sym.node
    props = "; ".join(a.span_text(p.span) for p in c.props)
    if isinstance(c, ast.ChannelDecl):
        return f"channel `{c.name}: {c.dtype}`" + (f" {{ {props} }}" if props else "")
    return f"hardware channel `{c.name}: {a.span_text(c.src.span)} -> {a.span_text(c.dst.span)}`" + \
        (f" {{ {props} }}" if props else "")


def _process(a: Analysis, sym: Symbol, pos) -> str:
    p: ast.Process = sym.node
    return f"process `{p.name}` on `{a.span_text(p.unit.span)}`"


_KINDS = {"input": _tensor, "output": _tensor, "value": _value, "dim": _dim, "param": _param, "index": _index,
          "memory": _memory, "unit": _unit, "hardware": _hardware, "kernel": _kernel, "channel": _channel,
          "process": _process}
