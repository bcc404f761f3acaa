"""RocketMQ's SQL92 message filter: parse an expression once, evaluate it per message.

The grammar, literals and parse-time checks are those of RocketMQ's ``SelectorParser.jj`` (from
ActiveMQ's JMS selectors) and ``ComparisonExpression``; evaluation is Java's three-valued logic
over a message's properties (all strings; a missing one is null). A message is delivered only
when the expression is TRUE: null, FALSE or an evaluation error (a property that does not parse
as the number it is compared with) filter it out. See the README, "SQL92 filters".

:func:`compile_sql92` returns a predicate over a property dict; :func:`compiled` caches them by
expression (bounded), so a subscription is parsed once however often it is pulled.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, VisitError

from ferrymq.core.filter.sql92_values import (
    INT_MAX,
    INT_MIN,
    LONG_MAX,
    LONG_MIN,
    EvalError,
    JLong,
    double_cmp,
    java_compare,
    java_equals,
    parse_double,
    parse_int,
)

Props = Mapping[str, str]
Predicate = Callable[[Props], bool]
#: a compiled node: the value of an expression for one message's properties
Fn = Callable[[Props], Any]

# Keywords are case-insensitive; an identifier spelled like one is the keyword (the basic lexer
# re-types it), so ``andy`` is a property and ``and`` never is. A line comment needs its newline.
GRAMMAR = r"""
start: or_expr
?or_expr: and_expr | or_expr _OR and_expr -> or_
?and_expr: eq_expr | and_expr _AND eq_expr -> and_
?eq_expr: cmp_expr
    | eq_expr "=" cmp_expr -> eq
    | eq_expr "<>" cmp_expr -> ne
    | eq_expr _IS NULL -> is_null
    | eq_expr _IS _NOT NULL -> is_not_null
?cmp_expr: unary
    | cmp_expr ">" unary -> gt
    | cmp_expr ">=" unary -> ge
    | cmp_expr "<" unary -> lt
    | cmp_expr "<=" unary -> le
    | cmp_expr _CONTAINS STRING -> contains
    | cmp_expr _NOT _CONTAINS STRING -> not_contains
    | cmp_expr _STARTSWITH STRING -> startswith
    | cmp_expr _NOT _STARTSWITH STRING -> not_startswith
    | cmp_expr _ENDSWITH STRING -> endswith
    | cmp_expr _NOT _ENDSWITH STRING -> not_endswith
    | cmp_expr _BETWEEN unary _AND unary -> between
    | cmp_expr _NOT _BETWEEN unary _AND unary -> not_between
    | cmp_expr _IN "(" STRING ("," STRING)* ")" -> in_
    | cmp_expr _NOT _IN "(" STRING ("," STRING)* ")" -> not_in
?unary: "+" unary
    | "-" unary -> neg
    | _NOT unary -> not_
    | primary
?primary: STRING -> string
    | DECIMAL -> decimal
    | FLOAT -> float_
    | TRUE -> true
    | FALSE -> false
    | NULL -> null
    | ID -> prop
    | "(" or_expr ")"

_NOT: "NOT"i
_AND: "AND"i
_OR: "OR"i
_BETWEEN: "BETWEEN"i
_IN: "IN"i
_IS: "IS"i
_CONTAINS: "CONTAINS"i
_STARTSWITH: "STARTSWITH"i
_ENDSWITH: "ENDSWITH"i
TRUE: "TRUE"i
FALSE: "FALSE"i
NULL: "NULL"i
ID: /[a-z_$][a-z0-9_$]*/i
FLOAT.2: /([0-9]+\.[0-9]*([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)/
DECIMAL: /(0|[1-9][0-9]*[lL]?)/
STRING: /'([^']|'')*'/
LINE_COMMENT: /--[^\n\r]*(\r\n|\n|\r)/
BLOCK_COMMENT: /\/\*[^*]*\*+([^\/*][^*]*\*+)*\//
%ignore /[ \t\n\r\f]+/
%ignore LINE_COMMENT
%ignore BLOCK_COMMENT
"""


@functools.cache
def _parser() -> Lark:
    """Built on the first SQL92 subscription, not at import: most brokers never see one, and
    building the LALR tables was a tenth of a broker's start."""
    return Lark(GRAMMAR, parser="lalr", lexer="basic", maybe_placeholders=False)


class SqlSyntaxError(ValueError):
    """An expression RocketMQ's parser refuses; the message is the parser's."""


# ---- the tree, typed as RocketMQ's expression classes are ----------------------------------


@dataclass(slots=True, frozen=True)
class Node:
    """A compiled sub-expression and what the parse-time checks need to know of it."""

    fn: Fn
    kind: str  # "const" (ConstantExpression), "prop", "bool" (BooleanExpression), "value" (other)
    value: Any = None  # a constant's value
    text: str = ""  # for messages

    @property
    def is_boolean(self) -> bool:
        """A BooleanExpression: TRUE, FALSE and NULL are, other constants are not."""
        return self.kind == "bool" or (
            self.kind == "const" and (self.value is None or type(self.value) is bool)
        )


def _const(value: Any, text: str) -> Node:
    return Node(lambda _p: value, "const", value, text)


def _boolean(fn: Fn, text: str) -> Node:
    return Node(fn, "bool", text=text)


def _as_boolean(node: Node) -> Node:
    """``asBooleanExpression``: a property becomes a boolean cast (never TRUE for a string)."""
    if node.is_boolean:
        return node
    if node.kind == "prop":
        get = node.fn
        return _boolean(lambda p: None if get(p) is None else False, node.text)
    raise SqlSyntaxError(f"Expression will not result in a boolean value: {node.text}")


def _check_less_than_operand(node: Node) -> None:
    if node.kind == "const":
        if isinstance(node.value, (int, float)) and type(node.value) is not bool:
            return
        raise SqlSyntaxError(f"Value '{node.text}' cannot be compared.")
    if node.kind == "bool":
        raise SqlSyntaxError(f"Value '{node.text}' cannot be compared.")


def _check_equal_operand(node: Node) -> None:
    if node.kind == "const" and node.value is None:
        raise SqlSyntaxError(f"'{node.text}' cannot be compared.")


def _equal(left: Node, right: Node) -> Node:
    """``doCreateEqual``: null only when the left side is null and the right is not."""
    lf, rf = left.fn, right.fn
    if left.kind == "prop":  # a missing property against a constant: null either way
        fast = _prop_vs_number(left, right, lambda c: c == 0)
        if fast is not None:
            return _boolean(fast, f"({left.text} == {right.text})")

    def fn(p: Props) -> bool | None:
        lv, rv = lf(p), rf(p)
        if lv is None or rv is None:
            if lv is None and rv is None:
                return True
            return None if lv is None else False
        return java_equals(lv, rv) or java_compare(lv, rv) == 0

    return _boolean(fn, f"({left.text} == {right.text})")


def _not(node: Node) -> Node:
    f = node.fn

    def fn(p: Props) -> bool | None:
        v = f(p)
        return None if v is None else not v

    return _boolean(fn, f"NOT {node.text}")


_ORDER: dict[str, Callable[[int], bool]] = {
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
}


def _prop_vs_number(left: Node, right: Node, test: Callable[[int], bool]) -> Fn | None:
    """The common ``property <op> number`` (either way round) without the generic dispatch:
    the property's string is read as the constant's Java type, as ``java_compare`` would."""
    if left.kind == "prop" and right.kind == "const":
        prop, value, sign = left, right.value, 1
    elif left.kind == "const" and right.kind == "prop":
        prop, value, sign = right, left.value, -1
    else:
        return None
    if type(value) is bool or not isinstance(value, (int, float)):
        return None
    get = prop.fn
    if isinstance(value, float):
        c = value

        def fn(p: Props) -> bool | None:
            v = get(p)
            return None if v is None else test(sign * double_cmp(parse_double(v), c))

        return fn
    lo, hi = (LONG_MIN, LONG_MAX) if type(value) is JLong else (INT_MIN, INT_MAX)
    n = int(value)

    def fn_int(p: Props) -> bool | None:
        v = get(p)
        if v is None:
            return None
        x = parse_int(v, lo, hi)
        return test(sign * ((x > n) - (x < n)))

    return fn_int


def _order(op: str, left: Node, right: Node) -> Node:
    """``>``, ``>=``, ``<``, ``<=``: numbers only; two strings are both read as doubles."""
    _check_less_than_operand(left)
    _check_less_than_operand(right)
    lf, rf, test = left.fn, right.fn, _ORDER[op]
    fast = _prop_vs_number(left, right, test)
    if fast is not None:
        return _boolean(fast, f"({left.text} {op} {right.text})")

    def fn(p: Props) -> bool | None:
        lv = lf(p)
        if lv is None:
            return None
        rv = rf(p)
        if rv is None:
            return None
        if type(lv) is str and type(rv) is str:
            return test(java_compare(parse_double(lv), parse_double(rv)))
        return test(java_compare(lv, rv))

    return _boolean(fn, f"({left.text} {op} {right.text})")


def _logic(left: Node, right: Node, stop: bool) -> Node:
    """AND (``stop`` False) and OR (``stop`` True): a side equal to ``stop`` decides, left first;
    otherwise NULL if either side is NULL."""
    lf, rf = _as_boolean(left).fn, _as_boolean(right).fn

    def fn(p: Props) -> bool | None:
        lv = lf(p)
        if lv is stop:
            return stop
        rv = rf(p)
        if rv is stop:
            return stop
        return None if lv is None or rv is None else not stop

    return _boolean(fn, f"({left.text} {'OR' if stop else 'AND'} {right.text})")


def _and(left: Node, right: Node) -> Node:
    return _logic(left, right, False)


def _or(left: Node, right: Node) -> Node:
    return _logic(left, right, True)


def _string_test(node: Node, search: str, test: Callable[[str, str], bool], negate: bool, op: str) -> Node:
    """CONTAINS / STARTSWITH / ENDSWITH and their NOT forms: FALSE for a missing or non-string
    value and for an empty search string, never null."""
    f = node.fn

    def fn(p: Props) -> bool:
        v = f(p)
        if not search or type(v) is not str:
            return False
        return test(v, search) is not negate

    return _boolean(fn, f"{node.text} {op} '{search}'")


def _unquote(token: Token) -> str:
    return str(token)[1:-1].replace("''", "'")


def _negate(node: Node) -> Node:
    """Unary minus: a number negated, anything else (a property's string) null. Not a constant
    for the parse-time checks, as in RocketMQ."""
    f = node.fn

    def fn(p: Props) -> Any:
        v = f(p)
        if v is None or type(v) is bool or not isinstance(v, (int, float)):
            return None
        return JLong(-v) if type(v) is JLong else -v

    return Node(fn, "value", text=f"-{node.text}")


@v_args(inline=True)
class _Build(Transformer[Token, Node]):
    """Parse tree to compiled nodes, running RocketMQ's parse-time checks on the way."""

    def start(self, node: Node) -> Node:
        return _as_boolean(node)

    def or_(self, a: Node, b: Node) -> Node:
        return _or(a, b)

    def and_(self, a: Node, b: Node) -> Node:
        return _and(a, b)

    def eq(self, a: Node, b: Node) -> Node:
        _check_equal_operand(a)
        _check_equal_operand(b)
        if a.kind == "const" and b.kind == "const" and a.is_boolean and not b.is_boolean:
            raise SqlSyntaxError(f"'{a.text}' cannot be compared with '{b.text}'")
        return _equal(a, b)

    def ne(self, a: Node, b: Node) -> Node:
        return _not(self.eq(a, b))

    def is_null(self, a: Node, _null: Token) -> Node:
        return _equal(a, _const(None, "NULL"))

    def is_not_null(self, a: Node, _null: Token) -> Node:
        return _not(_equal(a, _const(None, "NULL")))

    def gt(self, a: Node, b: Node) -> Node:
        return _order(">", a, b)

    def ge(self, a: Node, b: Node) -> Node:
        return _order(">=", a, b)

    def lt(self, a: Node, b: Node) -> Node:
        return _order("<", a, b)

    def le(self, a: Node, b: Node) -> Node:
        return _order("<=", a, b)

    def contains(self, a: Node, s: Token) -> Node:
        return _string_test(a, _unquote(s), str.__contains__, False, "CONTAINS")

    def not_contains(self, a: Node, s: Token) -> Node:
        return _string_test(a, _unquote(s), str.__contains__, True, "NOT CONTAINS")

    def startswith(self, a: Node, s: Token) -> Node:
        return _string_test(a, _unquote(s), str.startswith, False, "STARTSWITH")

    def not_startswith(self, a: Node, s: Token) -> Node:
        return _string_test(a, _unquote(s), str.startswith, True, "NOT STARTSWITH")

    def endswith(self, a: Node, s: Token) -> Node:
        return _string_test(a, _unquote(s), str.endswith, False, "ENDSWITH")

    def not_endswith(self, a: Node, s: Token) -> Node:
        return _string_test(a, _unquote(s), str.endswith, True, "NOT ENDSWITH")

    def between(self, v: Node, low: Node, high: Node) -> Node:
        if low.kind == "const" and high.kind == "const":
            if low.value is None or high.value is None:
                raise SqlSyntaxError("Illegal values of between, values can not be null!")
            try:
                below = java_compare(high.value, low.value) < 0
            except EvalError as exc:
                raise SqlSyntaxError(str(exc)) from None
            if below:
                raise SqlSyntaxError(
                    f"Illegal values of between, left value({low.text}) must less than or equal to "
                    f"right value({high.text})"
                )
        return _and(_order(">=", v, low), _order("<=", v, high))

    def not_between(self, v: Node, low: Node, high: Node) -> Node:
        return _or(_order("<", v, low), _order(">", v, high))

    def _in(self, v: Node, items: tuple[Token, ...], negate: bool) -> Node:
        if v.kind != "prop":
            raise SqlSyntaxError(f"Expected a property for In expression, got: {v.text}")
        values, f = frozenset(_unquote(t) for t in items), v.fn

        def fn(p: Props) -> bool | None:
            x = f(p)
            if type(x) is not str:
                return None
            return (x in values) is not negate

        return _boolean(fn, f"{v.text} {'NOT IN' if negate else 'IN'} (...)")

    def in_(self, v: Node, *items: Token) -> Node:
        return self._in(v, items, False)

    def not_in(self, v: Node, *items: Token) -> Node:
        return self._in(v, items, True)

    def neg(self, a: Node) -> Node:
        return _negate(a)

    def not_(self, a: Node) -> Node:
        return _not(_as_boolean(a))

    def string(self, t: Token) -> Node:
        return _const(_unquote(t), str(t))

    def decimal(self, t: Token) -> Node:
        text = str(t).rstrip("lL")
        value = int(text)
        if value > LONG_MAX:
            raise SqlSyntaxError(f'For input string: "{text}"')
        return _const(value if INT_MIN <= value <= INT_MAX else JLong(value), str(t))

    def float_(self, t: Token) -> Node:
        value = float(str(t))
        if value == float("inf"):
            raise SqlSyntaxError(f"{t} is greater than 1.7976931348623157E308")
        if value < 5e-324:  # Double.MIN_VALUE, the smallest positive double: even 0.0 is refused
            raise SqlSyntaxError(f"{t} is less than 4.9E-324")
        return _const(value, str(t))

    def true(self, _t: Token) -> Node:
        return _const(True, "TRUE")

    def false(self, _t: Token) -> Node:
        return _const(False, "FALSE")

    def null(self, _t: Token) -> Node:
        return _const(None, "NULL")

    def prop(self, t: Token) -> Node:
        name = str(t)
        return Node(lambda p: p.get(name), "prop", text=name)


def compile_sql92(expression: str) -> Predicate:
    """The predicate of ``expression``: True when a message with these properties is delivered.

    SqlSyntaxError (with the parser's message) for what RocketMQ's parser refuses.
    """
    try:
        tree = _parser().parse(expression)
        node = _Build().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, SqlSyntaxError):
            raise exc.orig_exc from None
        raise SqlSyntaxError(str(exc.orig_exc)) from None
    except LarkError as exc:
        raise SqlSyntaxError(str(exc)) from None
    except RecursionError:  # thousands of chained operators: refused, never a crashed handler
        raise SqlSyntaxError("expression nested too deeply") from None
    fn = node.fn

    def matches(props: Props) -> bool:
        try:
            return fn(props) is True
        except (EvalError, OverflowError, RecursionError):
            return False

    return matches


#: compiled expressions kept (RocketMQ's broker caches 100 per filter factory)
CACHE_SIZE = 256
_cache: OrderedDict[str, Predicate | SqlSyntaxError] = OrderedDict()


def compiled(expression: str) -> Predicate:
    """:func:`compile_sql92` through a bounded LRU cache (refusals are cached too)."""
    hit = _cache.get(expression)
    if hit is None:
        try:
            hit = compile_sql92(expression)
        except SqlSyntaxError as exc:
            hit = exc
        _cache[expression] = hit
        if len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    else:
        _cache.move_to_end(expression)
    if isinstance(hit, SqlSyntaxError):
        raise hit
    return hit
