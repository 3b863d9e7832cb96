"""A spec's value in float64, a block of rows at a time.

The spec `softmax(Q @ K.T / sqrt(d)) @ V` names an N x N score matrix, but
every row of its value needs only one row of the scores. `SpecEval.rows(e,
rows)` evaluates an expression on some rows of its row axis (the one before
last) and asks each operand for just the rows it needs: the elementwise
operations, `softmax`, `causal` and the left side of `@` keep the rows; the
right side of `@`, a transpose and the reductions over whole tensors take
their operand whole, and their value is worked out once (reductions a block
of rows at a time). So a verification in blocks of B rows holds
O(B * N + N * d) numbers, never N x N, for every spec whose N x N parts sit
on the left of a matmul, inside softmax/causal/elementwise operations or
under a reduction. Anything else (a transpose of an N x N value, say) is
still right: it is evaluated whole and its rows are taken.

Shapes are worked out first, without numbers (`shape`), so a block knows
which operands broadcast over rows and which of them it must slice.

Speed, with every number still float64: `softmax(x) @ y` is worked out as
`(exp(x - rowmax x) @ y) / rowsum(exp(x - rowmax x))`, so the division is on
the N x d product rather than on the N-wide block, and an elementwise result
is written over an operand's block when that block was made for this one use
(not a tensor, a view, or a value kept whole), which saves a fresh N-wide
allocation and its page faults per operation. At N = 4096 that took the
check of flash from about 0.3 s to 0.15 s in process.
"""

from __future__ import annotations

import math

import numpy as np

from ..diagnostics import AttnError, error
from ..limits import integer_problem
from ..syntax import ast

Rows = slice | np.ndarray  # rows of the row axis: a slice for a block, sorted indices for sampled rows

_BINARY = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "**": np.power,
           "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
           "!=": np.not_equal}
_UNARY = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs}
_ROW_REDUCE = {"rowmax": np.max, "rowmin": np.min, "rowsum": np.sum}

#: Bytes of float64 a block of one intermediate may take; the block's rows follow from the widest row.
#: 16 MiB is 512 rows of N = 4096 and 64 of N = 32768: fewer, longer BLAS calls than 8 MiB took (on a
#: busy 2-core box, N = 16384: 7.4 s against 7.9-8.6 s single-threaded, and far steadier with BLAS
#: threads), and still a fixed few blocks of memory whatever N is (docs/performance.md).
BLOCK_BYTES = 16 << 20


def fail(message: str, e) -> AttnError:
    return AttnError(error("E1020", message, e.span))


def _matmul_shape(a: tuple, b: tuple, e) -> tuple:
    if not a or not b:
        raise fail(f"the spec's shapes do not fit for '@': {a} and {b}", e)
    a2 = a if len(a) >= 2 else (1,) + a
    b2 = b if len(b) >= 2 else b + (1,)
    try:
        if a2[-1] != b2[-2]:
            raise ValueError
        batch = np.broadcast_shapes(a2[:-2], b2[:-2])
    except ValueError:
        raise fail(f"the spec's shapes do not fit for '@': {a} and {b}", e) from None
    return batch + (a2[-2],) * (len(a) >= 2) + (b2[-1],) * (len(b) >= 2)


def _broadcast(shapes: list[tuple], e, op: str) -> tuple:
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise fail(f"the spec's shapes do not fit for '{op}': {' and '.join(map(str, shapes))}", e) from None


def _swap(x):
    x = np.asarray(x)
    return np.swapaxes(x, -1, -2) if x.ndim >= 2 else x


class SpecEval:
    """One spec over one set of inputs: shapes, whole values (kept), and values on rows."""

    def __init__(self, tensors: dict[str, np.ndarray], env: dict, block_rows: int | None = None):
        self.t, self.env = tensors, env
        self._shapes: dict[int, tuple] = {}
        self._whole: dict[int, object] = {}
        self._block_rows = block_rows

    # -- shapes ------------------------------------------------------------------------------------
    def shape(self, e) -> tuple:
        key = id(e)
        if key not in self._shapes:
            self._shapes[key] = self._shape(e)
        return self._shapes[key]

    def _shape(self, e) -> tuple:
        if isinstance(e, (ast.Num, ast.QuantityLit)):
            return ()
        if isinstance(e, ast.Name):
            if e.id in self.t:
                return tuple(np.shape(self.t[e.id]))
            if (e.id in self.env and not isinstance(self.env[e.id], str)) or e.id == "inf":
                return ()
            raise fail(f"the spec names '{e.id}', which is not an input, a dimension or a param", e)
        if isinstance(e, ast.Unary):
            if e.op != "-":
                raise fail(f"'{e.op}' is not allowed in a spec", e)
            return self.shape(e.operand)
        if isinstance(e, ast.Binary):
            a, b = self.shape(e.left), self.shape(e.right)
            if e.op == "@":
                return _matmul_shape(a, b, e)
            if e.op not in _BINARY:
                raise fail(f"'{e.op}' is not allowed in a spec", e)
            return _broadcast([a, b], e, e.op)
        if isinstance(e, ast.Attr) and e.name == "T":
            s = self.shape(e.base)
            return s[:-2] + (s[-1], s[-2]) if len(s) >= 2 else s
        if isinstance(e, ast.Index):
            raise fail("indexing is not allowed in a spec; write it with whole tensors", e)
        if isinstance(e, ast.Call):
            return self._call_shape(e)
        raise fail("this is not allowed in a spec", e)

    def _call_shape(self, e: ast.Call) -> tuple:
        f = e.func
        known = {"causal", "softmax", "max", "min", "sum", "mean", "where", "dot", "transpose", *_UNARY,
                 *_ROW_REDUCE}
        if f not in known or not e.args:
            raise fail(f"{f}() is not allowed in a spec", e)
        shapes = [self.shape(a) for a in e.args]
        if f in ("softmax", *_ROW_REDUCE) and not shapes[0]:
            raise fail(f"{f}() in the spec needs a tensor, not a number", e)
        if f in ("causal", "softmax", *_UNARY):
            return shapes[0]
        if f in ("max", "min") and len(shapes) == 2:
            return _broadcast(shapes, e, f)
        if f in ("max", "min", "sum", "mean"):
            return ()
        if f in _ROW_REDUCE:
            return shapes[0][:-1]
        if f == "where":
            return _broadcast(shapes, e, f)
        if f == "dot":
            return _matmul_shape(shapes[0], shapes[1], e)
        s = shapes[0]  # transpose
        return s[:-2] + (s[-1], s[-2]) if len(s) >= 2 else s

    def row_elements(self, e) -> int:
        """The most numbers one row of any part of e holds (what a block's size is chosen by)."""
        s = self.shape(e)
        here = math.prod(s) // s[-2] if len(s) >= 2 and s[-2] else max(math.prod(s), 1)
        kids = _children(e)
        return max([here] + [self.row_elements(k) for k in kids])

    def parts(self, e, whole: bool = False):
        """(each part of e, whether its evaluation takes it whole) in the order _rows meets them: the
        right side of a matrix product, the operand of a transpose, both sides of a product with a
        vector, and a row reduction's result are whole; the rest goes a block of rows at a time."""
        if isinstance(e, ast.Call) and e.func in _ROW_REDUCE:
            whole = True
        yield e, whole
        pair = (e.left, e.right) if isinstance(e, ast.Binary) and e.op == "@" else \
            tuple(e.args[:2]) if isinstance(e, ast.Call) and e.func == "dot" and len(e.args) >= 2 else None
        if pair is not None:
            both = len(self.shape(pair[0])) >= 2 and len(self.shape(pair[1])) >= 2
            yield from self.parts(pair[0], not both)
            yield from self.parts(pair[1], True)
        elif isinstance(e, ast.Attr) or (isinstance(e, ast.Call) and e.func == "transpose"):
            for k in _children(e):
                yield from self.parts(k, True)
        else:
            for k in _children(e):
                yield from self.parts(k)

    def block_rows(self, e) -> int:
        if self._block_rows is None:
            self._block_rows = max(1, BLOCK_BYTES // (8 * max(self.row_elements(e), 1)))
        return self._block_rows

    # -- values ------------------------------------------------------------------------------------
    def whole(self, e):
        """e's whole value (kept: an operand taken whole is worked out once)."""
        key = id(e)
        if key not in self._whole:
            s = self.shape(e)
            if len(s) >= 2 and s[-2] > 1 and not isinstance(e, ast.Name):
                step = self.block_rows(e)
                parts = [self._rows(e, slice(i, i + step)) for i in range(0, s[-2], step)]
                self._whole[key] = np.concatenate(parts, axis=-2) if parts else self._rows(e, slice(0, 0))
            else:
                self._whole[key] = self._rows(e, slice(None))
        return self._whole[key]

    def rows(self, e, rows: Rows):
        """e on these rows of its row axis; its whole value where it has no row axis to take them from
        (fewer than two axes, or one row that broadcasts)."""
        s = self.shape(e)
        if len(s) < 2 or s[-2] == 1:
            return self.whole(e)
        return self._rows(e, rows)

    def _rows(self, e, r: Rows):
        if isinstance(e, ast.Num):
            return float(e.value)
        if isinstance(e, ast.QuantityLit):
            return e.quantity.value
        if isinstance(e, ast.Name):
            if e.id in self.t:
                x = self.t[e.id]
                return (x[..., r, :] if x.ndim >= 2 and x.shape[-2] > 1 else x).astype(np.float64)
            if e.id in self.env and not isinstance(self.env[e.id], str):
                return float(self.env[e.id])
            return math.inf
        if isinstance(e, ast.Unary):
            x = self.rows(e.operand, r)
            return np.negative(x, out=self._into(x))
        if isinstance(e, ast.Binary):
            if e.op == "@":
                return self._matmul(e, e.left, e.right, r)
            a, b = self.rows(e.left, r), self.rows(e.right, r)
            with np.errstate(all="ignore"):
                # a comparison is 0 or 1, as in a kernel; into an operand's own block where it is one
                return np.asarray(_BINARY[e.op](a, b, out=self._into(a, b)), dtype=np.float64)
        if isinstance(e, ast.Attr):  # .T: the rows of a transpose are columns of its operand
            return self._take(_swap(self.whole(e.base)), r)
        return self._call(e, r)

    def _offset(self, e) -> int:
        """A causal() offset: a whole number in range (NumPy's int64 would wrap a larger one)."""
        v = self.whole(e)
        if np.ndim(v) != 0:
            raise fail("a causal() offset in the spec must be a number, not a tensor", e)
        v = float(v)
        problem = integer_problem(v)
        if problem:
            raise fail(f"a causal() offset in the spec is out of range: {problem}", e)
        if not v.is_integer():
            raise fail(f"a causal() offset in the spec must be a whole number, not {v}", e)
        return int(v)

    def _take(self, x, r: Rows):
        x = np.asarray(x)
        return x[..., r, :] if x.ndim >= 2 and x.shape[-2] > 1 else x

    def _owned(self, x) -> bool:
        """x is a block of float64 this evaluation made for one use (not a tensor, a view of one, a
        kept whole value or a number): an operation on it may write its result over it."""
        return isinstance(x, np.ndarray) and x.dtype == np.float64 and x.base is None and x.flags.writeable \
            and x.ndim > 0 and not any(x is w for w in self._whole.values())

    def _into(self, a, b=None):
        """The operand block an elementwise result may be written into (None: a new array). Reusing the
        block saves a fresh N-wide allocation, and its page faults, per operation."""
        shape = np.shape(a) if b is None else np.broadcast_shapes(np.shape(a), np.shape(b))
        for x in (a, b):
            if x is not None and self._owned(x) and x.shape == shape:
                return x
        return None

    def _matmul(self, e, left, right, r: Rows):
        with np.errstate(all="ignore"):  # inf and NaN are the spec's values (as in a kernel), not warnings
            return self._product(e, left, right, r)

    def _product(self, e, left, right, r: Rows):
        if len(self.shape(left)) >= 2 and len(self.shape(right)) >= 2:
            if isinstance(left, ast.Call) and left.func == "softmax" and math.prod(self.shape(left.args[0])):
                # softmax(x) @ y = (exp(x - rowmax x) @ y) / rowsum(exp(x - rowmax x)): the division is
                # on the product's N x d block, not on the N-wide one (float64 all along, as written)
                p = self._exp_shifted(left, r)
                total = np.sum(p, axis=-1, keepdims=True)
                out = np.matmul(p, self.whole(right))
                return np.divide(out, total, out=self._into(out, total))
            return np.matmul(self.rows(left, r), self.whole(right))
        # a vector on either side: the result's rows are not the left operand's
        return self._take(np.matmul(self.whole(left), self.whole(right)), r)

    def _call(self, e: ast.Call, r: Rows):
        f, args = e.func, e.args
        with np.errstate(all="ignore"):
            if f == "causal":
                x = self.rows(args[0], r)
                i = self._offset(args[1]) if len(args) > 1 else 0
                j = self._offset(args[2]) if len(args) > 2 else 0
                s = self.shape(args[0])
                row_ids = np.arange(s[-2]) if len(s) >= 2 else np.arange(1)
                if len(s) >= 2 and s[-2] > 1:
                    row_ids = row_ids[r]
                cols = np.arange(s[-1] if s else 1)[None, :]
                return np.where(j + cols > i + row_ids[:, None], -np.inf, x)
            if f == "softmax":
                return self._softmax(e, r)
            if f in _UNARY:
                x = self.rows(args[0], r)
                return _UNARY[f](x, out=self._into(x))
            if f in ("max", "min") and len(args) == 2:
                return (np.maximum if f == "max" else np.minimum)(self.rows(args[0], r), self.rows(args[1], r))
            if f in ("max", "min", "sum", "mean"):
                return self._reduce_all(e)
            if f in _ROW_REDUCE:
                return self._take(self._row_reduce(e), r)
            if f == "where":
                c, a, b = (self.rows(x, r) for x in args)
                return np.where(np.asarray(c).astype(bool), a, b)
            if f == "dot":
                return self._matmul(e, args[0], args[1], r)
            return self._take(_swap(self.whole(args[0])), r)  # transpose

    def _softmax(self, e: ast.Call, r: Rows):
        s = self.shape(e.args[0])
        if math.prod(s) == 0:  # no rows (N = 0) normalize to nothing; rows of nothing have no softmax
            if not s or math.prod(s[:-1]) > 0:
                raise fail(f"softmax() in the spec is taken over empty rows (shape {list(s)})", e)
            return np.zeros(s)
        ex = self._exp_shifted(e, r)
        return np.divide(ex, np.sum(ex, axis=-1, keepdims=True), out=ex)

    def _exp_shifted(self, e: ast.Call, r: Rows) -> np.ndarray:
        """exp(x - rowmax(x)) for softmax(x) on rows r, in a block of its own (x's, where x's is one)."""
        x = self.rows(e.args[0], r)
        x = x if self._owned(x) else np.array(x, dtype=np.float64)
        with np.errstate(all="ignore"):
            np.subtract(x, np.max(x, axis=-1, keepdims=True), out=x)
            return np.exp(x, out=x)

    def _blocks(self, x):
        """x's value a block of rows at a time (all of it when it has no rows)."""
        s = self.shape(x)
        if len(s) < 2 or s[-2] <= 1:
            yield self.whole(x)
            return
        step = self.block_rows(x)
        for i in range(0, s[-2], step):
            yield self._rows(x, slice(i, i + step))

    def _reduce_all(self, e: ast.Call):
        f, x = e.func, e.args[0]
        s = self.shape(x)
        if f in ("max", "min") and math.prod(s) == 0:
            raise fail(f"{f}() in the spec is taken over an empty tensor (shape {list(s)})", e)
        fn = {"max": np.max, "min": np.min, "sum": np.sum, "mean": np.sum}[f]
        parts = [fn(b) for b in self._blocks(x) if np.size(b)]
        total = fn(np.asarray(parts)) if parts else 0.0
        return total / math.prod(s) if f == "mean" else total

    def _row_reduce(self, e: ast.Call):
        """rowmax/rowmin/rowsum: the last axis of the result is the operand's row axis."""
        f, x = e.func, e.args[0]
        s = self.shape(x)
        if f != "rowsum" and math.prod(s) == 0:
            raise fail(f"{f}() in the spec is taken over an empty tensor (shape {list(s)})", e)
        if len(s) < 2:
            return _ROW_REDUCE[f](self.whole(x), axis=-1)
        parts = [_ROW_REDUCE[f](np.broadcast_to(b, s[:-2] + np.shape(b)[-2:]), axis=-1) for b in self._blocks(x)]
        return np.concatenate(parts, axis=-1)


#: `--verify auto` (the default) checks every element of an output while its rows times the spec's widest
#: row (N x N for attention) is at most AUTO_FULL_NUMBERS, and AUTO_ROWS drawn rows beyond, where a full
#: float64 check would cost more than the run itself (docs/cli.md, "Verification").
AUTO_FULL_NUMBERS = 2048 * 2048
AUTO_ROWS = 256


def auto_mode(n_rows: int, row_elements: int) -> tuple[str, int]:
    """What `--verify auto` does for an output of n_rows rows whose spec's widest row has row_elements:
    ("full", 0) or ("rows", AUTO_ROWS)."""
    return ("full", 0) if n_rows * row_elements <= AUTO_FULL_NUMBERS else ("rows", AUTO_ROWS)


#: Float64 copies of the compared elements spec.py's check_output holds at once: the spec's value and
#: its blocks, the output's numbers, their differences (twice) and the bound.
COMPARE_COPIES = 6


class _Shaped:
    """A tensor's stand-in for shapes only (np.shape reads .shape): the guard sizes a spec before any
    input is made."""

    def __init__(self, shape: tuple):
        self.shape, self.ndim = shape, len(shape)


def working_bytes(expr, shapes: dict[str, tuple], env: dict, plan) -> float | None:
    """An upper bound on the bytes check_output (spec.py) holds to verify one output under plan: a
    block of every part of the spec, every part taken whole twice (its blocks and their join), and
    COMPARE_COPIES float64 copies of the elements compared. None when the spec's shapes are wrong (the
    verification itself says how). The host-memory guard (attnlang/hostmem.py) adds it up."""
    ev = SpecEval({name: _Shaped(tuple(shape)) for name, shape in shapes.items()}, env)
    try:
        shape = ev.shape(expr)
        n_rows = shape[-2] if len(shape) >= 2 else 0
        mode, rows = plan.mode, plan.rows
        if mode == "auto":
            mode, rows = auto_mode(n_rows, ev.row_elements(expr))
        compared = math.prod(shape)
        if mode == "rows" and n_rows:
            compared = compared // n_rows * min(rows, n_rows)
        total = COMPARE_COPIES * 8 * compared
        step = ev.block_rows(expr)
        for node, whole in ev.parts(expr):
            s = ev.shape(node)
            n = math.prod(s)
            if whole or len(s) < 2 or s[-2] <= 1:
                total += 2 * 8 * n
            else:
                total += 8 * (n // s[-2]) * min(step, s[-2])
    except AttnError:
        return None
    return float(total)


def _children(e) -> list:
    if isinstance(e, ast.Unary):
        return [e.operand]
    if isinstance(e, ast.Binary):
        return [e.left, e.right]
    if isinstance(e, ast.Attr):
        return [e.base]
    if isinstance(e, ast.Call):
        return list(e.args)
    return []
