"""A faster road from tokens to AST: Lark's LALR tables, driven here, building AST nodes as rules reduce.

Lark's own road is three passes: the parser builds a tree of `Tree` nodes,
propagating positions through every reduction (the expression grammar has
ten precedence levels, so every atom is reduced ten times), and `ToAst`
then walks that tree. This module runs the same LALR table (the one Lark
built, or loaded from its cache) and calls the same `ToAst` methods at each
reduction, with the same `meta` positions Lark would have given them: the
result is the same AST, in a third of the time.

It shapes children the way Lark's parse tree builder does (anonymous tokens
dropped, `_rules` spliced into their parent, `?rules` with one child passed
through) and computes positions the way `propagate_positions` does: a node
spans from its first child with a position to its last, where a child
passed through a `?rule` spans what that rule consumed (the parentheses of
`(a + b)` belong to it).

Tokens come from `_Lexer`: Lark's basic lexer as one loop over the
scanner Lark compiled (one regex with a named group per terminal), with
keywords told from names by a dict instead of Lark's per-token callback,
and the same positions. It is built from Lark's lexer, so the grammar stays
the one definition of the tokens, and `tests/syntax/test_lalr.py` compares
the two token by token.

Only the good road is fast: on any syntax error (an unexpected character
included), any problem a `ToAst` method raises, or a grammar with options
this module does not know, `run` raises `NotHere` and the caller parses with
Lark, whose messages and order of reporting stay the one source of
diagnostics.
"""

from __future__ import annotations

from functools import lru_cache

from lark import Lark, Token
from lark.lexer import UnlessCallback

from .build import ToAst

_SHIFT, _REDUCE = 0, 1
# What a reduction makes: a node, its one child, children for the parent, its only symbol unchanged.
_NODE, _PASS, _SPLICE, _UNIT = 0, 1, 2, 3
#: Trees deeper than this go to Lark, whose recursive transformer decides whether they are too deep
#: (E0003) under the recursion limit of the day; real programs nest a few dozen levels.
MAX_DEPTH = 100


class NotHere(Exception):
    """The fast road cannot parse this text; parse it with Lark."""


class _Meta:
    """What ToAst reads of Lark's `Meta`: the span of the rule's text, or empty."""

    __slots__ = ("empty", "line", "column", "end_line", "end_column")

    def __init__(self, start, end):
        self.empty = start is None
        if start is not None:
            self.line, self.column = start
            self.end_line, self.end_column = end


class _Tables:
    """Lark's parse table with each rule turned into what a reduction does."""

    def __init__(self, parser: Lark):
        opts = parser.options
        if opts.parser != "lalr" or opts.lexer != "basic" or opts.postlex is not None \
                or opts.maybe_placeholders or not opts.propagate_positions or opts.transformer is not None:
            raise NotHere("parser options")
        table = parser.parser.parser._parse_table
        (start,) = opts.start
        self.start, self.end = table.start_states[start], table.end_states[start]
        self.lexer = _Lexer(parser.parser.lexer)
        rules: dict = {}
        self.reductions: list[tuple] = []
        self.states: dict[int, dict[str, tuple[int, object]]] = {}
        self.gotos: dict[int, dict[str, int]] = {}
        for state, actions in table.states.items():
            acts, gotos = {}, {}
            for symbol, (action, arg) in actions.items():
                if action.name != "Shift":
                    if arg not in rules:
                        rules[arg] = len(self.reductions)
                        self.reductions.append(_reduction(arg))
                    acts[symbol] = (_REDUCE, rules[arg])
                elif symbol.isupper():  # a terminal (Lark's own test)
                    acts[symbol] = (_SHIFT, arg)
                else:  # a nonterminal: where to go after reducing to it
                    gotos[symbol] = arg
            self.states[state], self.gotos[state] = acts, gotos


class _Lexer:
    """Lark's BasicLexer (lexer="basic"), as one loop: the same tokens, types and positions."""

    def __init__(self, lexer):
        scanner = lexer.scanner  # builds lexer.callback too
        if len(scanner._mres) != 1 or lexer.user_callbacks or lexer.use_bytes:
            raise NotHere("lexer options")
        self.match = scanner._mres[0].match
        self.ignore = lexer.ignore_types
        self.newlines = lexer.newline_types
        # A terminal whose matches may be keywords (NAME): Lark's UnlessCallback full-matches the
        # keywords' literal strings, in order; a dict of the strings says the same.
        self.keywords: dict[str, dict[str, str]] = {}
        for type_, callback in lexer.callback.items():
            if not isinstance(callback, UnlessCallback) or type_ in self.ignore:
                raise NotHere("lexer callbacks")
            words: dict[str, str] = {}
            for term in callback.scanner.terminals:
                if term.pattern.type != "str" or term.pattern.flags:
                    raise NotHere("keyword options")
                words.setdefault(term.pattern.value, term.name)
            self.keywords[type_] = words
        self.token = getattr(Token, "_future_new", Token)  # Token() less its keyword-argument checks

    def tokens(self, text: str) -> list:
        """Every token of text but the ignored ones; NotHere where Lark's lexer raises."""
        match, ignore, newlines, keywords, token = self.match, self.ignore, self.newlines, self.keywords, self.token
        out = []
        pos, line, line_start, size = 0, 1, 0, len(text)
        while pos < size:
            m = match(text, pos)
            if m is None:
                raise NotHere("unexpected character")
            value, type_, end = m.group(), m.lastgroup, m.end()
            if end == pos:  # Lark refuses empty terminals; never loop on one
                raise NotHere("empty token")
            start_line, column = line, pos - line_start + 1
            if type_ in newlines:
                count = value.count("\n")
                if count:
                    line += count
                    line_start = pos + value.rindex("\n") + 1
            if type_ not in ignore:
                words = keywords.get(type_)
                if words is not None:
                    type_ = words.get(value, type_)
                out.append(token(type_, value, pos, start_line, column, line, end - line_start + 1, end))
            pos = end
        return out


def _reduction(rule) -> tuple:
    """(how many symbols, the nonterminal, what it makes, [(index, splice?)] of kept children, method name)."""
    o = rule.options
    if o.template_source is not None or o.empty_indices or (o.expand1 and rule.origin.name.startswith("_")):
        raise NotHere("rule options")
    keep = [(i, not sym.is_term and sym.name.startswith("_")) for i, sym in enumerate(rule.expansion)
            if o.keep_all_tokens or not (sym.is_term and sym.filter_out)]
    name = rule.alias or rule.origin.name
    if rule.origin.name.startswith("_") and not rule.alias:
        kind = _SPLICE
    elif o.expand1 and not rule.alias:
        kind = _UNIT if len(rule.expansion) == 1 and len(keep) == 1 and not keep[0][1] else _PASS
    else:
        kind = _NODE
    return len(rule.expansion), rule.origin.name, kind, keep, name


@lru_cache(maxsize=4)
def _tables(parser: Lark) -> _Tables:
    return _Tables(parser)


@lru_cache(maxsize=1)
def _methods() -> dict:
    """ToAst's methods as plain functions (self, meta, children), by rule name."""
    out = {}
    for name in dir(ToAst):
        attr = ToAst.__dict__.get(name)
        func = getattr(attr, "base_func", None)  # v_args(meta=True) wraps each method
        if func is not None:
            out[name] = func
    return out


def run(parser: Lark, text: str, builder: ToAst):
    """The value of ToAst(...).transform(parser.parse(text)), or NotHere."""
    try:
        t = _tables(parser)
    except NotHere:
        raise
    except Exception as exc:  # a Lark version whose insides differ: use Lark itself
        raise NotHere("tables") from exc
    try:
        return _parse(t, text, builder)
    except Exception as exc:  # a syntax error, a SyntaxProblem, a RecursionError: Lark's road says which
        raise NotHere(type(exc).__name__) from exc


def _parse(t: _Tables, text: str, builder: ToAst):
    states, gotos, reductions, methods, default = t.states, t.gotos, t.reductions, _methods(), builder.__default__
    state_stack = [t.start]
    values: list = []
    starts: list = []  # per value: (line, column) where its text starts, None for no text
    ends: list = []
    depths: list = []  # per value: how deep Lark's tree below it would be
    token = None
    tokens = iter(t.lexer.tokens(text))
    while True:
        nxt = next(tokens, None)
        if nxt is not None:
            token = nxt
        else:  # the end, where Lark puts it
            token = Token.new_borrow_pos("$END", "", token) if token is not None else Token("$END", "", 0, 1, 1)
        ttype = token.type
        while True:
            action, arg = states[state_stack[-1]][ttype]  # KeyError: a syntax error
            if action == _SHIFT:
                state_stack.append(arg)
                values.append(token)
                starts.append((token.line, token.column))
                ends.append((token.end_line, token.end_column))
                depths.append(0)
                break
            size, origin, kind, keep, name = reductions[arg]
            if kind == _UNIT:  # `?rule: one_symbol`: the value and its text stay as they are
                state_stack[-1] = gotos[state_stack[-2]][origin]
                if ttype == "$END" and state_stack[-1] == t.end:
                    return values[-1]
                continue
            if size:
                vals, s, e, depth = values[-size:], starts[-size:], ends[-size:], max(depths[-size:])
                del state_stack[-size:], values[-size:], starts[-size:], ends[-size:], depths[-size:]
            else:
                vals, s, e, depth = [], [], [], 0
            first = last = None
            for x in s:
                if x is not None:
                    first = x
                    break
            for x in reversed(e):
                if x is not None:
                    last = x
                    break
            children: list = []
            for i, splice in keep:
                if splice:
                    children += vals[i]
                else:
                    children.append(vals[i])
            if kind == _SPLICE:
                value = children
            elif kind == _PASS and len(children) == 1:
                value = children[0]
                if isinstance(value, Token):  # a token keeps its own position (Lark cannot widen it)
                    first, last = (value.line, value.column), (value.end_line, value.end_column)
            else:
                depth += 1
                if depth > MAX_DEPTH:
                    raise NotHere("deep")
                method = methods.get(name)
                meta = _Meta(first, last)
                value = method(builder, meta, children) if method else default(name, children, meta)
            state_stack.append(gotos[state_stack[-1]][origin])
            values.append(value)
            starts.append(first)
            ends.append(last)
            depths.append(depth)
            if ttype == "$END" and state_stack[-1] == t.end:
                return value
