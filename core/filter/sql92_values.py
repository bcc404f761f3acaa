"""Java's value rules for RocketMQ's SQL92 filter: how a string property meets a constant.

Every property is a ``str``; constants are ``str``, ``bool``, Java Integer (``int``), Java Long
(:class:`JLong`) or Double (``float``). Comparisons follow ``ComparisonExpression.__compare``
with string conversion on (as RocketMQ's parser sets it): the string side is parsed as the other
side's type with Java's own syntax (``Integer.valueOf``, ``Long.valueOf``, ``Double.valueOf``,
``Boolean.valueOf``), and a string that does not parse raises :class:`EvalError`, which drops
the message. Types that cannot meet compare as "less" (-1), so ``=`` is false for them.
"""

from __future__ import annotations

import re
from typing import Any

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1

_JAVA_TRIM = "".join(map(chr, range(33)))  # String.trim: every char up to the space
_JAVA_INT = re.compile(r"[+-]?\d+")
# FloatingDecimal.readJavaFormatString: decimal or hex significand, an optional f/d suffix
_JAVA_DOUBLE = re.compile(
    r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?"
    r"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+[fFdD]?)"
)


class EvalError(Exception):
    """An evaluation Java would end with an exception: the message is not delivered."""


class JLong(int):
    """A Java Long constant (an ``int`` is a Java Integer)."""


def parse_int(text: str, lo: int = INT_MIN, hi: int = INT_MAX) -> int:
    """``Integer.valueOf`` (or ``Long.valueOf`` with the Long bounds)."""
    if _JAVA_INT.fullmatch(text) is None:
        raise EvalError(f"For input string: {text!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise EvalError(f"For input string: {text!r}")
    return value


def parse_double(text: str) -> float:
    """``Double.valueOf``: Java's syntax (surrounding control characters and spaces trimmed)."""
    s = text.strip(_JAVA_TRIM)
    if _JAVA_DOUBLE.fullmatch(s) is None:
        raise EvalError(f"For input string: {text!r}")
    if s[-1] in "fFdD":  # a suffix only names the type; the value is read as a double
        s = s[:-1]
    return float.fromhex(s) if "x" in s or "X" in s else float(s)


def parse_bool(text: str) -> bool:
    """``Boolean.valueOf``: "true" in any case, anything else false."""
    return len(text) == 4 and text.lower() == "true"


def double_cmp(a: float, b: float) -> int:
    """``Double.compare``: NaN equals itself and is above everything; -0.0 is below 0.0."""
    if a < b:
        return -1
    if a > b:
        return 1
    a_nan, b_nan = a != a, b != b
    if a_nan or b_nan:
        return 0 if a_nan and b_nan else (1 if a_nan else -1)
    if a == 0.0 and b == 0.0:  # signs differ only in the sign bit
        sa, sb = str(a)[0] == "-", str(b)[0] == "-"
        return 0 if sa == sb else (-1 if sa else 1)
    return 0


def _num_cmp(a: int | float, b: int | float) -> int:
    if isinstance(a, float) or isinstance(b, float):
        return double_cmp(float(a), float(b))
    return (a > b) - (a < b)


def _from_string(text: str, like: Any) -> Any:
    """``text`` read as ``like``'s Java type."""
    if isinstance(like, bool):
        return parse_bool(text)
    if isinstance(like, JLong):
        return parse_int(text, LONG_MIN, LONG_MAX)
    if isinstance(like, int):
        return parse_int(text)
    if isinstance(like, float):
        return parse_double(text)
    raise TypeError(like)


def java_compare(lv: Any, rv: Any) -> int:
    """``__compare(lv, rv, convertStringExpressions=true)`` of two non-null values."""
    lt, rt = type(lv), type(rv)
    if lt is rt:
        if lt is float:
            return double_cmp(lv, rv)
        return (lv > rv) - (lv < rv)
    if lt is bool:
        if rt is str:  # Java casts the Boolean to String here: ClassCastException
            raise EvalError("Boolean cannot be cast to String")
        return -1
    if rt is bool:
        return _cmp_same(parse_bool(lv), rv) if lt is str else -1
    if lt is str:
        return _cmp_same(_from_string(lv, rv), rv)
    if rt is str:
        return _cmp_same(lv, _from_string(rv, lv))
    return _num_cmp(lv, rv)  # Integer, Long, Double: widened as Java widens them


def _cmp_same(a: Any, b: Any) -> int:
    if isinstance(a, float) or isinstance(b, float):
        return double_cmp(float(a), float(b))
    return (a > b) - (a < b)


def java_equals(lv: Any, rv: Any) -> bool:
    """``lv.equals(rv)``: same Java type and value (Double by bits, so NaN equals NaN)."""
    if type(lv) is not type(rv):
        return False
    if type(lv) is float:
        return double_cmp(lv, rv) == 0
    return bool(lv == rv)
