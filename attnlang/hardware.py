"""The elaborated hardware model: the one description every engine reads.

`elaborate` turns a `hardware` block into validated objects with every
quantity in canonical units (cycles, bytes, pJ, Hz). Unit-array sizes and
link ranges may name kernel params and dimensions, so elaboration takes the
static environment of the kernel it serves.
"""

from __future__ import annotations

from typing import Mapping

from .cost import DATAFLOWS, FILLS
from .diagnostics import Diagnostic, Span, did_you_mean, error
from .limits import MAX_QUANTITY, MAX_UNITS, integer_problem, quantity_problem
from .static import Static, StaticError, static_eval, static_int
from .syntax import ast
from .syntax import units as U
from .syntax.nodes import node


@node
class Memory:
    name: str
    capacity_bytes: float | None  # None: unbounded (off-chip)
    bandwidth_bytes_per_cycle: float
    read_pj_per_byte: float
    write_pj_per_byte: float
    latency_cycles: float
    parent: str | None
    policy: str  # "strict" | "spill"
    span: Span


@node
class OpCost:
    interval: float  # cycles between the issues of two lane groups
    latency: float  # cycles from a lane group's issue to its result
    energy_pj: float  # per element


@node
class Unit:
    name: str
    kind: str  # "matrix" | "vector"
    count: int  # instances (1 unless declared as an array)
    rows: int  # matrix: array rows; vector: 1
    cols: int  # matrix: array columns; vector: lanes
    mac_pj: float
    ops: Mapping[str, OpCost]
    memory: str | None
    span: Span
    is_array: bool = False
    dataflow: str = "os"  # matrix: what stays in the array (cost.DATAFLOWS)
    fill: str = "each"  # matrix: fill and drain on each fold or once per operation (cost.FILLS)

    @property
    def lanes(self) -> int:
        return self.cols

    def has_op(self, op: str) -> bool:
        return op == "matmul" if self.kind == "matrix" else op in self.ops


@node
class Link:
    src: str
    src_index: int
    dst: str
    dst_index: int
    latency_cycles: float
    bytes_per_cycle: float | None
    pj_per_byte: float
    span: Span


@node
class HwChannel:
    name: str
    src: str
    dst: str
    depth: int
    latency_cycles: float
    span: Span


@node
class Hardware:
    name: str
    clock_hz: float
    leakage_pj_per_cycle: float
    memories: Mapping[str, Memory]
    units: Mapping[str, Unit]
    links: tuple[Link, ...]
    channels: Mapping[str, HwChannel]
    span: Span
    word_bytes: int = 2

    def path_to_root(self, memory: str) -> list[Memory]:
        """The memory and its parents, innermost first."""
        out, seen = [], set()
        m = self.memories.get(memory)
        while m is not None and m.name not in seen:
            out.append(m)
            seen.add(m.name)
            m = self.memories.get(m.parent) if m.parent else None
        return out

    def transfer_path(self, src: str, dst: str) -> list[Memory]:
        """The memories a transfer from src to dst crosses, both ends included."""
        up_src = self.path_to_root(src)
        up_dst = self.path_to_root(dst)
        names_dst = [m.name for m in up_dst]
        out: list[Memory] = []
        for m in up_src:
            out.append(m)
            if m.name in names_dst:
                i = names_dst.index(m.name)
                return out + list(reversed(up_dst[:i]))
        return up_src + list(reversed(up_dst))

    def transfer_route(self, src: str, dst: str) -> tuple[list[Memory], float, float]:
        """(the memories crossed, bytes per cycle, latency in cycles) of a transfer from src to dst: it moves
        at the narrowest bandwidth on the path and pays every memory's latency (cost.transfer_cycles)."""
        mems = self.transfer_path(src, dst)
        return mems, min(m.bandwidth_bytes_per_cycle for m in mems), sum(m.latency_cycles for m in mems)

    def root_memory(self) -> Memory:
        """The outermost memory (where kernel inputs and outputs live)."""
        roots = [m for m in self.memories.values() if m.parent is None]
        return max(roots, key=lambda m: m.capacity_bytes is None)

    def default_unit(self, kind: str) -> Unit | None:
        return next((u for u in self.units.values() if u.kind == kind), None)


# ---------------------------------------------------------------- properties

_NAME = "name"
_INT = "int"
#: The largest machine word, in bytes (a word is a tensor element's size on the hardware).
_WORD_LIMIT = 1024.0
# property -> accepted dimensions (or _NAME / _INT / "shape")
_SCHEMA: dict[str, dict[str, tuple]] = {
    "hardware": {"clock": (U.FREQUENCY,), "leakage": (U.POWER,), "word": (U.BYTES,)},
    "memory": {
        "capacity": (U.BYTES,), "bandwidth": (U.BANDWIDTH, U.BYTES_PER_CYCLE),
        "read": (U.ENERGY_PER_BYTE,), "write": (U.ENERGY_PER_BYTE,), "parent": (_NAME,),
        "policy": (_NAME,), "latency": (U.CYCLES, U.TIME, U.NONE),
    },
    "matrix": {"size": ("shape",), "mac": (U.ENERGY,), "memory": (_NAME,), "dataflow": (_NAME,),
               "fill": (_NAME,)},
    "vector": {"lanes": (_INT,), "memory": (_NAME,)},
    "op": {"cycles": (U.CYCLES, U.NONE), "interval": (U.CYCLES, U.NONE), "latency": (U.CYCLES, U.NONE),
           "energy": (U.ENERGY,)},
    "link": {"latency": (U.CYCLES, U.TIME, U.NONE), "bandwidth": (U.BANDWIDTH, U.BYTES_PER_CYCLE),
             "energy": (U.ENERGY_PER_BYTE,)},
    "channel": {"depth": (_INT,), "latency": (U.CYCLES, U.TIME, U.NONE)},
}
_EXAMPLE = {
    U.FREQUENCY: "940 MHz", U.POWER: "50 mW", U.BYTES: "512 KiB", U.BANDWIDTH: "50 GiB/s",
    U.BYTES_PER_CYCLE: "256 B/cycle", U.ENERGY_PER_BYTE: "1.5 pJ/B", U.ENERGY: "0.3 pJ",
    U.CYCLES: "4 cycles", U.TIME: "10 ns",
}
_POLICIES = ("strict", "spill")


class _Props:
    """Reads the properties of one block, checking names and dimensions."""

    def __init__(self, block: str, props: tuple[ast.Prop, ...], env: Mapping[str, Static],
                 diags: list[Diagnostic], clock_hz: float | None):
        self.block, self.env, self.diags, self.clock_hz = block, env, diags, clock_hz
        self.props: dict[str, ast.Prop] = {}
        self.given = {p.name for p in props}  # including those rejected below: no "needs X" on top
        schema = _SCHEMA[block]
        for p in props:
            if p.name not in schema:
                more = did_you_mean(p.name, schema) or f" (known: {', '.join(schema)})"
                diags.append(error("E0201", f"unknown {block} property '{p.name}'{more}", p.name_span))
            elif p.name in self.props:
                diags.append(error("E0207", f"{block} property '{p.name}' is given twice", p.name_span))
            elif len(p.values) != 1 and not (p.name == "size" and len(p.values) == 2):
                diags.append(error("E0205", f"'{p.name}' takes one value", p.span))
            else:
                self.props[p.name] = p

    def has(self, name: str) -> bool:
        return name in self.given

    def name(self, key: str, default: str | None = None) -> str | None:
        p = self.props.get(key)
        if p is None:
            return default
        v = p.values[0]
        if isinstance(v, ast.Name):  # a symbolic param (`dataflow DF`, DF a param in {os, ws, is}) gives its value
            got = self.env.get(v.id)
            return got if isinstance(got, str) and got != v.id else v.id
        self.diags.append(error("E0205", f"'{key}' takes a name", p.values[0].span))
        return default

    def shape(self, key: str) -> tuple[int, int] | None:
        p = self.props.get(key)
        if p is None:
            return None
        v = p.values[0]
        if isinstance(v, ast.Shape2):
            return v.rows, v.cols
        if len(p.values) == 2:  # `size R, C`: whole numbers, which may name params (a hardware param)
            try:
                rows, cols = (static_int(x, self.env, f"the {w} of '{key}'")
                              for x, w in zip(p.values, ("rows", "columns"), strict=True))
                return rows, cols
            except StaticError as exc:
                self.diags.append(exc.diagnostic)
                return None
        self.diags.append(error("E0205", f"'{key}' takes an array shape such as 32 x 32 (or R, C)", v.span))
        return None

    def number(self, key: str, default: float | None) -> float | None:
        """A quantity in canonical units; cycles and times both come back in cycles."""
        p = self.props.get(key)
        if p is None:
            return default
        v = p.values[0]
        accepted = _SCHEMA[self.block][key]
        if isinstance(v, ast.Shape2):
            self.diags.append(error("E0205", f"'{key}' does not take an array shape", v.span))
            return default
        dim = _dim_of(v)
        try:
            value = static_eval(v, self.env)
        except StaticError as exc:
            self.diags.append(exc.diagnostic)
            return default
        if isinstance(value, (str, bool)):
            self.diags.append(error("E0205", f"'{key}' takes a number, not {value!r}", v.span))
            return default
        if _INT in accepted:
            problem = integer_problem(value)
            if problem:
                self.diags.append(error("E0302", f"'{key}' is out of range: {problem}", v.span))
                return default
            if dim != U.NONE or not float(value).is_integer() or value < 0:
                self.diags.append(error("E0202", f"'{key}' takes a whole number, not {_show(v, value)}", v.span))
                return default
            return int(value)
        if dim not in accepted:
            want = " or ".join(U.describe(d) for d in accepted if d != U.NONE)
            example = next((_EXAMPLE[d] for d in accepted if d in _EXAMPLE), "")
            got = "a plain number" if dim == U.NONE else "a product of quantities" if dim is None else U.describe(dim)
            self.diags.append(error("E0202", f"{self.block} property '{key}' must be {want} "
                                             f"(such as {example}), but {_show(v, value)} is {got}", v.span))
            return default
        if value < 0:
            self.diags.append(error("E0205", f"'{key}' cannot be negative", v.span))
            return default
        if dim == U.TIME:
            value = value * (self.clock_hz or 1.0)
        elif dim == U.BANDWIDTH:
            value = value / (self.clock_hz or 1.0)
        problem = quantity_problem(float(value), _WORD_LIMIT if key == "word" else MAX_QUANTITY)
        if problem:
            self.diags.append(error("E0302", f"'{key}' is out of range: {problem}", v.span))
            return default
        return float(value)


def _dim_of(v: ast.Expr) -> U.Dim | None:
    """The unit dimension of a property value: `-1 GHz` is a frequency, like `1 GHz`; a quantity times or
    over a plain number keeps its unit (`m * 8 MiB`: a size that grows with a unit array of m)."""
    while isinstance(v, ast.Unary) and v.op in ("-", "+"):
        v = v.operand
    if isinstance(v, ast.Binary) and v.op in ("*", "/"):
        left, right = _dim_of(v.left), _dim_of(v.right)
        if right == U.NONE:
            return left
        if v.op == "*" and left == U.NONE:
            return right
        return None  # a product or ratio of two quantities: no property takes one
    return v.quantity.dim if isinstance(v, ast.QuantityLit) else U.NONE


def _show(v: ast.Value, value) -> str:
    return f"'{v.quantity.text}'" if isinstance(v, ast.QuantityLit) else f"'{value}'"


def elaborate(hw: ast.Hardware, env: Mapping[str, Static] | None = None) -> tuple[Hardware | None, list[Diagnostic]]:
    """Validate a hardware block and convert it to canonical units."""
    env = env or {}
    diags: list[Diagnostic] = []
    top = _Props("hardware", hw.props, env, diags, None)
    clock = top.number("clock", None)
    if clock is None and not top.has("clock"):
        diags.append(error("E0203", f"hardware '{hw.name}' needs a clock (such as 'clock 940 MHz')", hw.name_span))
    if clock is not None and clock <= 0:
        diags.append(error("E0205", "the clock must be positive", top.props["clock"].span))
        clock = None
    clock = clock or 1e9
    top.clock_hz = clock
    leakage = (top.number("leakage", 0.0) or 0.0) / clock
    word = int(top.number("word", 2) or 2)

    seen: dict[str, Span] = {}

    def declare(name: str, span: Span) -> None:
        if name in seen:
            diags.append(error("E0207", f"'{name}' is declared twice in hardware '{hw.name}' "
                                        f"(first at {seen[name].line}:{seen[name].column})", span))
        seen[name] = span

    memories: dict[str, Memory] = {}
    for m in hw.memories:
        declare(m.name, m.name_span)
        p = _Props("memory", m.props, env, diags, clock)
        bw = p.number("bandwidth", None)
        if bw is None and not p.has("bandwidth"):
            diags.append(error("E0203", f"memory '{m.name}' needs a bandwidth (such as 'bandwidth 256 B/cycle')",
                               m.name_span))
        if bw is not None and bw <= 0:
            diags.append(error("E0205", f"memory '{m.name}' needs a positive bandwidth", p.props["bandwidth"].span))
            bw = None
        policy = p.name("policy", "strict")
        if policy not in _POLICIES:
            diags.append(error("E0205", f"policy must be strict or spill, not '{policy}'", p.props["policy"].span))
            policy = "strict"
        memories[m.name] = Memory(m.name, p.number("capacity", None), bw or 1.0, p.number("read", 0.0),
                                  p.number("write", 0.0), p.number("latency", 0.0), p.name("parent"),
                                  policy, m.span)
    for m in hw.memories:
        mem = memories[m.name]
        if mem.parent is not None and mem.parent not in memories:
            prop = next(p for p in m.props if p.name == "parent")
            diags.append(error("E0204", f"memory '{m.name}' names parent '{mem.parent}', which is not a memory of "
                                        f"'{hw.name}'", prop.values[0].span))
    _check_parent_cycles(hw, memories, diags)

    units: dict[str, Unit] = {}
    for u in hw.units:
        declare(u.name, u.name_span)
        unit = _elaborate_unit(u, env, diags, clock, memories)
        if unit is not None:
            units[u.name] = unit

    # Units whose array size names a kernel param that has no value here are left out
    # quietly from the links and channels that name them (the size error says why).
    unsized = {u.name for u in hw.units if u.name not in units}
    links = _elaborate_links(hw, env, diags, clock, units, unsized)
    channels: dict[str, HwChannel] = {}
    for c in hw.channels:
        declare(c.name, c.name_span)
        p = _Props("channel", c.props, env, diags, clock)
        for ref in (c.src, c.dst):
            if ref.name not in units and ref.name not in unsized:
                diags.append(error("E0204", f"channel '{c.name}' names '{ref.name}', which is not a unit", ref.span))
        channels[c.name] = HwChannel(c.name, c.src.name, c.dst.name, int(p.number("depth", 1)),
                                     p.number("latency", 0.0), c.span)
    if any(d.severity == "error" for d in diags):
        return None, diags
    return Hardware(hw.name, clock, leakage, memories, units, tuple(links), channels, hw.span, word), diags


def _check_parent_cycles(hw: ast.Hardware, memories: dict[str, Memory], diags: list[Diagnostic]) -> None:
    for name, mem in memories.items():
        seen = {name}
        cur = mem
        while cur.parent and cur.parent in memories:
            if cur.parent in seen:
                diags.append(error("E0206", f"memory '{name}' is its own ancestor through 'parent'", mem.span))
                break
            seen.add(cur.parent)
            cur = memories[cur.parent]


def _elaborate_unit(u: ast.UnitDecl, env, diags, clock, memories) -> Unit | None:
    if u.kind not in ("matrix", "vector"):
        diags.append(error("E0208", f"unit kind must be matrix or vector, not '{u.kind}'", u.kind_span))
        return None
    count = 1
    if u.count is not None:
        try:
            count = static_int(u.count, env, f"the size of unit array '{u.name}'")
        except StaticError as exc:
            diags.append(exc.diagnostic)
            return None
        if count < 1:
            diags.append(error("E0205", f"unit array '{u.name}' needs at least one unit", u.count.span))
            return None
        if count > MAX_UNITS:
            diags.append(error("E0302", f"unit array '{u.name}' is out of range: {count} units exceed "
                                        f"{MAX_UNITS}, the most one array may have", u.count.span))
            return None
    p = _Props(u.kind, u.props, env, diags, clock)
    memory = p.name("memory")
    if memory is not None and memory not in memories:
        diags.append(error("E0204", f"unit '{u.name}' names memory '{memory}', which is not declared",
                           p.props["memory"].values[0].span))
    ops: dict[str, OpCost] = {}
    for op in u.ops:
        if u.kind == "matrix":
            diags.append(error("E0201", "a matrix unit has no op table; it runs matmul", op.span))
            continue
        cost = _op_cost(_Props("op", op.props, env, diags, clock), diags)
        for name in op.ops:
            ops[name] = cost
    if u.kind == "matrix":
        shape = p.shape("size")
        if shape is None:
            if not p.has("size"):
                diags.append(error("E0203", f"matrix unit '{u.name}' needs a size (such as 'size 32 x 32')",
                                   u.name_span))
            shape = (1, 1)
        if shape[0] < 1 or shape[1] < 1:
            diags.append(error("E0205", "a matrix unit needs at least one row and one column", u.span))
        dataflow = _choice(p, "dataflow", DATAFLOWS, diags)
        fill = _choice(p, "fill", FILLS, diags)
        return Unit(u.name, "matrix", count, shape[0], shape[1], p.number("mac", 0.0), {}, memory, u.span,
                    u.count is not None, dataflow, fill)
    lanes = p.number("lanes", None)
    if lanes is None:
        if not p.has("lanes"):
            diags.append(error("E0203", f"vector unit '{u.name}' needs lanes (such as 'lanes 32')", u.name_span))
        lanes = 1
    if lanes < 1:
        diags.append(error("E0205", "a vector unit needs at least one lane", p.props["lanes"].span))
    return Unit(u.name, "vector", count, 1, int(lanes), 0.0, ops, memory, u.span, u.count is not None)


def _choice(p: _Props, key: str, choices: tuple[str, ...], diags) -> str:
    """A name property that takes one of `choices`; the first is the default."""
    value = p.name(key, choices[0])
    if value not in choices:
        more = did_you_mean(value, choices)
        listed = ", ".join(choices[:-1]) + f" or {choices[-1]}"
        diags.append(error("E0205", f"'{key}' must be {listed}, not '{value}'{more}",
                           p.props[key].values[0].span))
        return choices[0]
    return value


def _op_cost(q: _Props, diags) -> OpCost:
    """An op's issue interval and latency: `cycles c` is an op that is not pipelined (interval and latency c);
    `interval` alone keeps latency equal to it, `latency` alone issues every cycle."""
    energy = q.number("energy", 0.0)
    if q.has("cycles"):
        both = [k for k in ("interval", "latency") if k in q.props]
        if both:
            diags.append(error("E0207", f"an op takes 'cycles' (not pipelined) or 'interval' and 'latency', "
                                        f"not both: drop '{both[0]}' or 'cycles'", q.props[both[0]].name_span))
        c = q.number("cycles", 1.0)
        return OpCost(c, c, energy)
    interval = q.number("interval", None)
    latency = q.number("latency", None)
    if interval is not None and interval <= 0:
        diags.append(error("E0205", "an op's 'interval' must be positive (cycles between two issues)",
                           q.props["interval"].values[0].span))
        interval = 1.0
    if interval is None:
        interval = 1.0
    return OpCost(interval, interval if latency is None else latency, energy)


def _elaborate_links(hw, env, diags, clock, units, unsized=frozenset()) -> list[Link]:
    links: list[Link] = []
    for ln in hw.links:
        p = _Props("link", ln.props, env, diags, clock)
        latency, bw, pj = p.number("latency", 0.0), p.number("bandwidth", None), p.number("energy", 0.0)
        ok = True
        for ref in (ln.src, ln.dst):
            if ref.name in unsized:
                ok = False
                continue
            if ref.name not in units:
                diags.append(error("E0204", f"link names '{ref.name}', which is not a unit", ref.span))
                ok = False
        if not ok:
            continue
        values = [None]
        if ln.var is not None:
            try:
                lo = static_int(ln.lo, env, "a link range bound")
                hi = static_int(ln.hi, env, "a link range bound")
            except StaticError as exc:
                diags.append(exc.diagnostic)
                continue
            if hi - lo > MAX_UNITS:
                diags.append(error("E0302", f"the link range is out of range: {hi - lo} links exceed {MAX_UNITS}",
                                   ln.hi.span))
                continue
            values = range(lo, hi)
        for v in values:
            scope = dict(env) if v is None else {**env, ln.var: v}
            try:
                si = static_int(ln.src.index, scope, "a unit index") if ln.src.index is not None else 0
                di = static_int(ln.dst.index, scope, "a unit index") if ln.dst.index is not None else 0
            except StaticError as exc:
                diags.append(exc.diagnostic)
                break
            for ref, i in ((ln.src, si), (ln.dst, di)):
                if not 0 <= i < units[ref.name].count:
                    diags.append(error("E0205", f"link endpoint {ref.name}[{i}] is outside the array of "
                                                f"{units[ref.name].count}", ref.span))
                    return links
            links.append(Link(ln.src.name, si, ln.dst.name, di, latency, bw, pj, ln.span))
    return links


__all__ = ["Hardware", "HwChannel", "Link", "Memory", "OpCost", "Unit", "elaborate"]
