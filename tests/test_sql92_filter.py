"""The SQL92 filter (core/filter/sql92.py): RocketMQ's own filter test cases (ParserTest and
ExpressionTest in apache/rocketmq filter/src/test, their facts restated: every property is a
string here, as on the broker), the missing-property and coercion rules of the reference, and
a hypothesis property test against a small independent evaluator, for the compiled predicate
and for the broker's filtered read of a store.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferrymq.core.broker.property_filter import get_matching
from ferrymq.core.filter import sql92
from ferrymq.core.filter.sql92 import SqlSyntaxError, compile_sql92, compiled
from ferrymq.core.remoting.message import decode_stored_messages
from tests.test_store_support import opened_store, put

AND_EXPR = "a=3 and b<>4 And c>5 AND d<=4"
OR_EXPR = "a=3 or b<>4 Or c>5 OR d<=4"

MATCHES = [
    # ExpressionTest: CONTAINS / STARTSWITH / ENDSWITH and their NOT forms
    ("value contains 'x'", {"value": "axb"}, True),
    ("value startswith 'ax'", {"value": "axb"}, True),
    ("value endswith 'xb'", {"value": "axb"}, True),
    ("value not contains 'x'", {"value": "axb"}, False),
    ("value not startswith 'ax'", {"value": "axb"}, False),
    ("value not endswith 'xb'", {"value": "axb"}, False),
    ("value contains 'x'", {"value": "abb"}, False),
    ("value not contains 'x'", {"value": "abb"}, True),
    ("value not startswith 'x'", {"value": "abb"}, True),
    ("value not endswith 'x'", {"value": "abb"}, True),
    ("value contains ''", {"value": "axb"}, False),
    ("value not contains ''", {"value": "axb"}, False),
    ("value not startswith ''", {"value": "axb"}, False),
    ("value contains 'x'", {}, False),
    ("value not contains 'x'", {}, False),
    ("value not endswith 'x'", {}, False),
    ("'axb' contains 'x'", {}, True),
    ("'axb' startswith 'ax'", {}, True),
    ("'axb' not endswith 'xb'", {}, False),
    ("'axb' not contains 'u'", {}, True),
    ("'axb' endswith ''", {}, False),
    ("' ' contains ' '", {}, True),
    ("' ' not startswith ' '", {}, False),
    ("'axb' contains '.'", {}, False),
    ("'axb' not endswith '.'", {}, True),
    ("'s' contains '\\'", {}, False),
    (
        "a not in ('4', '4', '5') and b between 3 and 10 and c not contains 'axbc'",
        {"a": "3", "b": "3", "c": "axbdc"},
        True,
    ),
    (
        "a not in ('4', '4', '5') and b between 3 and 10 and c not startswith 'axbc'",
        {"a": "3", "b": "3", "c": "axbdc"},
        True,
    ),
    ("TAGS is not null and TAGS='''''tag'''''", {"TAGS": "''tag''"}, True),
    # string comparisons: '<'-family reads strings as doubles, a failure drops the message
    ("a between up and low", {"a": "3.14"}, False),
    ("a between up and low", {"a": "3.14", "up": "up", "low": "low"}, False),
    ("key is not null and key between 0 and 100", {"key": "con"}, False),
    ("a between 0 and 100", {"a": "abc"}, False),
    ("a=b", {"a": "3.14", "b": "3.14"}, True),
    ("a<>b", {"a": "3.14", "b": "3.14"}, False),
    ("a<>b", {"a": "3.14", "b": "3.141"}, True),
    ("a > 3.1E10", {"a": str(3.1415 * 10**10)}, True),
    ("a > 3.14", {"a": "3.1415"}, True),
    ("a > b", {"a": "10", "b": "20"}, False),
    ("a > b", {"a": "20", "b": "10"}, True),
    ("a is null OR a='hello'", {}, True),
    ("a is null OR a='hello'", {"a": "hello"}, True),
    ("a is null OR a='hello'", {"a": "abc"}, False),
    ("a=TRUE OR b=FALSE", {"a": "true", "b": "false"}, True),
    ("a=TRUE OR b=FALSE", {"a": "false", "b": "true"}, False),
    ("a is not null and a='hello'", {"a": "hello"}, True),
    (AND_EXPR, {"a": "3", "b": "5", "c": "6", "d": "1"}, True),
    (AND_EXPR, {"a": "4", "b": "5", "c": "6", "d": "1"}, False),
    (OR_EXPR, {"a": "3"}, True),
    (OR_EXPR, {"a": "4", "b": "5"}, True),
    (OR_EXPR, {"a": "4", "b": "4", "c": "6"}, True),
    (OR_EXPR, {"a": "4", "b": "4", "c": "3", "d": "2"}, True),
    (OR_EXPR, {"a": "4", "b": "4", "c": "3", "d": "10"}, False),
    ("a in ('3', '4', '5')", {"a": "4"}, True),
    ("a in ('3', '4', '5')", {"a": "8"}, False),
    ("a not in ('3', '4', '5')", {"a": "8"}, True),
    ("a not in ('3', '4', '5')", {"a": "5"}, False),
    ("a between 2 and 10", {"a": "2"}, True),
    ("a between 2 and 10", {"a": "10"}, True),
    ("a between 2 and 10", {"a": "11"}, False),
    ("a not between 2 and 10", {"a": "1"}, True),
    ("a not between 2 and 10", {"a": "3"}, False),
    ("a is null", {"abc": "2"}, True),
    ("a is null", {"a": "2"}, False),
    ("a is not null", {"a": "2"}, True),
    ("a is not null", {"abc": "2"}, False),
    # the reference's missing-property rules (§3.4): comparisons with null are null
    ("a <> 5", {}, False),
    ("NOT (a > 5)", {}, False),
    ("a not in ('x')", {}, False),
    ("a > 2 OR b = 'x'", {"b": "x"}, True),
    ("a > 2 AND b = 'x'", {"b": "x"}, False),
    ("NOT (a > 2 AND b = 'x')", {"b": "y"}, True),
    # coercions: the property is read as the constant's type
    ("a > 3", {"a": "3.5"}, False),
    ("a = 10.0", {"a": "10"}, True),
    ("a = 10", {"a": "10.0"}, False),
    ("a = 3000000000", {"a": "3000000000"}, True),
    ("a = 3", {"a": "3000000000"}, False),
    ("a > 1.5", {"a": " 2 "}, True),
    ("a > 1", {"a": "+2"}, True),
    ("a = TRUE", {"a": "TrUe"}, True),
    ("a = FALSE", {"a": "yes"}, True),
    ("a", {"a": "true"}, False),
    ("NOT a", {"a": "x"}, True),
    ("TRUE", {}, True),
    ("NULL", {}, False),
    ("a > -1", {"a": "0"}, True),
    ("a = 5L", {"a": "5"}, True),
    ("a > .5", {"a": "0.75"}, True),
    ("a >= 5E1", {"a": "50"}, True),
    # keywords are case-insensitive, property names are not; comments are skipped
    ("A = '1'", {"a": "1"}, False),
    ("andy = 'x' AnD nullable IS NULL", {"andy": "x"}, True),
    ("/* c */ a = 'it''s' -- line\n", {"a": "it's"}, True),
    ("ORDER_ID = 1 And $x = 'y'", {"ORDER_ID": "1", "$x": "y"}, True),
]


@pytest.mark.parametrize(("expression", "props", "expected"), MATCHES)
def test_rocketmq_cases(expression: str, props: dict[str, str], expected: bool) -> None:
    assert compile_sql92(expression)(props) is expected


VALID = [
    AND_EXPR,
    "a=3  and    b<>4 And c>5 AND d<=4",
    OR_EXPR,
    "(a not in ('6', '4', '5')) or (b in ('3', '4', '5'))",
    "(a between 2 and 10) AND (b not between 6 and 9)",
    "a <= now",  # now is a property here
    "a=3 and b contains 'xxx' and c not contains 'xxx'",
    "NOT a = 1",
    "a BETWEEN -5 AND -10",  # not constants: no bound check
]

INVALID = [
    "a and between 2 and 10",
    "a > 100000000000000000000000",
    "a > 1" + "1" * 400 + "." + "1" * 400,
    " a between 10 and 0",
    "value contains x",
    "value not contains x",
    "value contains 123",
    "'axb' contains ",
    "a >",
    "NOT a > 1",
    "a = NULL",
    "a <> NULL",
    "NULL = a",
    "a BETWEEN NULL AND 1",
    "1 IN ('a')",
    "a IN (1)",
    "a IN ()",
    "1",
    "'x'",
    "a = and",
    "a > 0.0",
    "a > 'x'",
    "a > TRUE",
    "TRUE = 1",
    "a -- comment without a newline",
    "a > 1 > 2",
    "a LIKE 'x'",
    "a + 1 > 2",
    "a.b = 1",
    "a-b = 1",
    "007 = a",
    "a = 1 /* open",
    "",
]


@pytest.mark.parametrize("expression", VALID)
def test_valid_expressions_parse(expression: str) -> None:
    compile_sql92(expression)


@pytest.mark.parametrize("expression", INVALID)
def test_invalid_expressions_are_refused_with_a_message(expression: str) -> None:
    with pytest.raises(SqlSyntaxError) as info:
        compile_sql92(expression)
    assert str(info.value)


def test_an_expression_too_deep_for_the_stack_is_refused_not_crashed() -> None:
    with pytest.raises(SqlSyntaxError, match="too deeply"):
        compile_sql92(" AND ".join(["a > 1"] * 5000))
    assert compile_sql92("(" * 2000 + "a > 1" + ")" * 2000)({"a": "2"})


def test_the_cache_is_bounded_and_keeps_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql92, "CACHE_SIZE", 4)
    sql92._cache.clear()
    assert compiled("a > 1") is compiled("a > 1")
    for i in range(10):
        compiled(f"a > {i}")
    assert len(sql92._cache) == 4
    with pytest.raises(SqlSyntaxError):
        compiled("a >")
    assert isinstance(sql92._cache["a >"], SqlSyntaxError)


# ---- property test: the compiled predicate against an independent reference evaluator ----------

NAMES = ["a", "b", "c"]
VALUES = [None, "3", "-2", "10", "2.5", "abc", "", "1e2", " 7", "TRUE", "x y", "xabc"]
STRINGS = ["3", "abc", "x", "", "TRUE", "x y"]


class RefError(Exception):
    """What Java throws while evaluating: the message is dropped."""


def ref_int(s: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", s):
        raise RefError(s)
    return int(s)


def ref_float(s: str) -> float:
    try:
        return float(s.strip())
    except ValueError:
        raise RefError(s) from None


def ref_eval(node: tuple[Any, ...], props: dict[str, str]) -> bool | None:
    """Three-valued evaluation written from the reference's rules (§3.4), not from the filter."""
    kind = node[0]
    if kind in ("and", "or"):
        stop = kind == "or"  # OR stops at TRUE, AND at FALSE
        left = ref_eval(node[1], props)
        if left is stop:
            return stop
        right = ref_eval(node[2], props)
        if right is stop:
            return stop
        return None if left is None or right is None else not stop
    if kind == "not":
        v = ref_eval(node[1], props)
        return None if v is None else not v
    value = props.get(node[1])
    if kind == "null":
        return (value is None) is not node[2]
    if kind == "in":
        return None if value is None else (value in node[2]) is not node[3]
    if kind == "strop":
        _, _, op, lit, negate = node
        if value is None or not lit:
            return False
        hit = {
            "CONTAINS": lit in value,
            "STARTSWITH": value.startswith(lit),
            "ENDSWITH": value.endswith(lit),
        }[op]
        return hit is not negate
    if kind == "eqs":
        return None if value is None else value == node[2]
    if kind == "between":
        _, _, lo, hi, negate = node
        if value is None:
            return None
        x = ref_int(value)
        return (lo <= x <= hi) is not negate
    _, _, op, const = node  # "cmp": a property against a number
    if value is None:
        return None
    x: float = ref_float(value) if isinstance(const, float) else ref_int(value)
    return {
        "=": x == const,
        "<>": x != const,
        ">": x > const,
        ">=": x >= const,
        "<": x < const,
        "<=": x <= const,
    }[op]


def ref_matches(node: tuple[Any, ...], props: dict[str, str]) -> bool:
    try:
        return ref_eval(node, props) is True
    except RefError:
        return False


def kw(draw: st.DrawFn, word: str) -> str:
    return draw(st.sampled_from([word, word.lower(), word.capitalize()]))


def quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


@st.composite
def conditions(draw: st.DrawFn, depth: int = 0) -> tuple[tuple[Any, ...], str]:
    """A random expression: its tree for ref_eval and its text for the parser."""
    choice = draw(st.integers(0, 8 if depth < 3 else 5))
    name = draw(st.sampled_from(NAMES))
    if choice == 0:
        const: int | float = draw(st.one_of(st.integers(-5, 12), st.sampled_from([0.5, 2.5, 10.0, 100.0])))
        op = draw(st.sampled_from(["=", "<>", ">", ">=", "<", "<="]))
        return ("cmp", name, op, const), f"{name} {op} {const}"
    if choice == 1:
        s = draw(st.sampled_from(STRINGS))
        return ("eqs", name, s), f"{name} = {quote(s)}"
    if choice == 2:
        items = draw(st.lists(st.sampled_from(STRINGS), min_size=1, max_size=3))
        negate = draw(st.booleans())
        words = f"{kw(draw, 'NOT')} {kw(draw, 'IN')}" if negate else kw(draw, "IN")
        return ("in", name, frozenset(items), negate), f"{name} {words} ({', '.join(map(quote, items))})"
    if choice == 3:
        negate = draw(st.booleans())
        words = (
            f"{kw(draw, 'IS')} {kw(draw, 'NOT')} NULL" if negate else f"{kw(draw, 'IS')} {kw(draw, 'NULL')}"
        )
        return ("null", name, negate), f"{name} {words}"
    if choice == 4:
        lo = draw(st.integers(-3, 10))
        hi = draw(st.integers(lo, 12))
        negate = draw(st.booleans())
        words = f"{kw(draw, 'NOT')} BETWEEN" if negate else kw(draw, "BETWEEN")
        return ("between", name, lo, hi, negate), f"{name} {words} {lo} AND {hi}"
    if choice == 5:
        op = draw(st.sampled_from(["CONTAINS", "STARTSWITH", "ENDSWITH"]))
        lit = draw(st.sampled_from(["x", "ab", "", " "]))
        negate = draw(st.booleans())
        words = f"NOT {kw(draw, op)}" if negate else kw(draw, op)
        return ("strop", name, op, lit, negate), f"{name} {words} {quote(lit)}"
    if choice == 8:
        inner, text = draw(conditions(depth + 1))
        return ("not", inner), f"{kw(draw, 'NOT')} ({text})"
    left, ltext = draw(conditions(depth + 1))
    right, rtext = draw(conditions(depth + 1))
    kind = "and" if choice == 6 else "or"
    return (kind, left, right), f"({ltext}) {kw(draw, kind.upper())} ({rtext})"


properties = st.dictionaries(st.sampled_from(NAMES), st.sampled_from([v for v in VALUES if v is not None]))


@settings(max_examples=400, deadline=None)
@given(conditions(), st.lists(properties, min_size=1, max_size=8))
def test_compiled_predicate_equals_the_reference(
    cond: tuple[tuple[Any, ...], str], dicts: list[dict[str, str]]
) -> None:
    tree, text = cond
    predicate = compile_sql92(text)
    for props in dicts:
        assert predicate(props) is ref_matches(tree, props), (text, props)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(conditions(), st.lists(properties, min_size=1, max_size=40), st.integers(1, 7))
def test_the_brokers_filtered_read_equals_the_reference(
    tmp_path_factory: pytest.TempPathFactory,
    cond: tuple[tuple[Any, ...], str],
    dicts: list[dict[str, str]],
    max_nums: int,
) -> None:
    tree, text = cond
    root: Path = tmp_path_factory.mktemp("sqlstore")
    with opened_store(root) as store:
        for i, props in enumerate(dicts):
            put(store, "T", 0, b"%d" % i, extra=props)
        got: list[int] = []
        offset = 0
        while offset < len(dicts):
            result = get_matching(store, "T", 0, offset, max_nums, 1 << 20, compiled(text))
            assert result.message_count <= max_nums
            got += [m.queue_offset for m in decode_stored_messages(b"".join(result.buffers))]
            assert result.next_begin_offset > offset
            offset = result.next_begin_offset
    assert got == [i for i, props in enumerate(dicts) if ref_matches(tree, props)], text
