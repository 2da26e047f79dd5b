"""Sigma values (after pySigma applied the modifiers) -> tests on one event value.

pySigma does the modifier work for us: ``contains`` turns ``x`` into ``*x*``,
``base64offset``/``windash`` expand into a :class:`SigmaExpansion`, ``cidr``
into a :class:`SigmaCIDRExpression`, ``re`` into a :class:`SigmaRegularExpression`
and so on. What is left here is to turn each resulting value type into a fast
Python test, once, at load time.

Matching semantics (Sigma spec): strings compare case-insensitively unless the
``cased`` modifier is used; ``*`` and ``?`` are wildcards; regular expressions are
case-sensitive, unanchored (``re.search``) unless flags say otherwise. Event values
that are not strings are compared by their text (``22`` matches ``'22'``), because
agents are not consistent about numbers in strings and a rule must not miss on it.
"""

from __future__ import annotations

import copy
import ipaddress
import operator
import re
from collections.abc import Callable
from typing import Any

from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExpansion,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

ScalarTest = Callable[[Any], bool]

_WILD = SpecialChars.WILDCARD_MULTI
_ONE = SpecialChars.WILDCARD_SINGLE


class UnsupportedValue(ValueError):
    """A Sigma value type this engine cannot evaluate in-stream."""


def _text(v: Any) -> str:
    if v.__class__ is str:
        return v
    if v is True:
        return "true"
    if v is False:
        return "false"
    return str(v)


def string_shape(value: SigmaString) -> tuple[str, str]:
    """Classify a Sigma string: ('eq'|'prefix'|'suffix'|'contains'|'regex', literal-or-regex).

    The four plain shapes cover nearly every real rule and are answered by str
    methods in C; only strings with inner wildcards fall back to a regex.
    """
    parts: list[str | SpecialChars] = []
    for p in value.s:  # typed by pySigma as a 1-tuple; it is any length
        if not isinstance(p, str | SpecialChars):
            raise UnsupportedValue(
                f"placeholder %{getattr(p, 'name', p)}% (the expand modifier) is not supported"
            )
        parts.append(p)
    if not parts:
        return "eq", ""
    lits = [p for p in parts if isinstance(p, str)]
    if _ONE not in parts:
        if len(parts) == 1 and lits:
            return "eq", lits[0]
        if len(parts) == 2 and parts[0] is _WILD and isinstance(parts[1], str):
            return "suffix", parts[1]
        if len(parts) == 2 and parts[1] is _WILD and isinstance(parts[0], str):
            return "prefix", parts[0]
        if len(parts) == 3 and parts[0] is _WILD and parts[2] is _WILD and isinstance(
            parts[1], str
        ):
            return "contains", parts[1]
        if all(p is _WILD for p in parts):
            return "contains", ""
    pattern = "".join(
        re.escape(p) if isinstance(p, str) else ".*" if p is _WILD else "." for p in parts
    )
    return "regex", pattern


class StringSet:
    """OR of many Sigma strings on one field, answered with few C calls.

    Rules list values (``CommandLine|contains: [a, b, c]``); testing each as its own
    closure would lower() the same event value once per item. Grouping them by
    shape lets one ``lower()`` feed a set lookup, a tuple ``startswith``, a tuple
    ``endswith``, a short ``in`` loop and at most one combined regex.
    """

    __slots__ = ("cased", "eq", "prefix", "suffix", "contains", "regex")

    def __init__(self, values: list[SigmaString]) -> None:
        self.cased = bool(values) and isinstance(values[0], SigmaCasedString)
        eq: set[str] = set()
        prefix: list[str] = []
        suffix: list[str] = []
        contains: list[str] = []
        regexes: list[str] = []
        for v in values:
            shape, lit = string_shape(v)
            if not self.cased and shape != "regex":
                lit = lit.lower()
            {"eq": eq.add, "prefix": prefix.append, "suffix": suffix.append,
             "contains": contains.append, "regex": regexes.append}[shape](lit)
        self.eq = frozenset(eq)
        self.prefix = tuple(prefix)
        self.suffix = tuple(suffix)
        self.contains = tuple(contains)
        flags = re.DOTALL | (0 if self.cased else re.IGNORECASE)
        self.regex = re.compile("|".join(f"(?:{r})" for r in regexes), flags) if regexes else None

    def test(self) -> ScalarTest:
        """The tightest closure for this set (most rules need one shape only)."""
        eq, prefix, suffix, contains, rx = self.eq, self.prefix, self.suffix, self.contains, self.regex
        cased = self.cased
        shapes = sum(1 for s in (eq, prefix, suffix, contains) if s) + (rx is not None)
        if shapes == 1 and not cased:
            if eq:
                if len(eq) == 1:
                    (only,) = eq
                    return lambda v: _text(v).lower() == only
                return lambda v: _text(v).lower() in eq
            if prefix:
                return lambda v: _text(v).lower().startswith(prefix)
            if suffix:
                return lambda v: _text(v).lower().endswith(suffix)
            if contains:
                if len(contains) == 1:
                    (needle,) = contains
                    return lambda v: needle in _text(v).lower()
                return lambda v: _any_in(contains, _text(v).lower())
        fullmatch = rx.fullmatch if rx is not None else None

        def test(v: Any) -> bool:
            s = _text(v)
            if not cased:
                s = s.lower()
            if s in eq:
                return True
            if prefix and s.startswith(prefix):
                return True
            if suffix and s.endswith(suffix):
                return True
            if contains and _any_in(contains, s):
                return True
            return fullmatch is not None and fullmatch(_text(v)) is not None

        return test


def widen_keyword(value: Any) -> Any:
    """A field-less Sigma keyword is a search anywhere in the line: ``*value*``.

    Only strings are widened, on the sides that do not already start or end with
    a ``*`` (``'wget * | sh'`` is searched as ``*wget * | sh*``).
    """
    if not isinstance(value, SigmaString) or not value.s:
        return value
    parts = list(value.s)
    if parts[0] is not _WILD:
        parts.insert(0, _WILD)
    if parts[-1] is not _WILD:
        parts.append(_WILD)
    widened = copy.copy(value)  # keeps the class: a cased keyword stays cased
    widened.s = tuple(parts)  # type: ignore[assignment]  # pySigma types it as a 1-tuple
    return widened


def _any_in(needles: tuple[str, ...], s: str) -> bool:
    for n in needles:
        if n in s:
            return True
    return False


def _number(v: Any) -> float | None:
    if v.__class__ is int or v.__class__ is float:
        return v
    if v.__class__ is str:
        try:
            return float(v)
        except ValueError:
            return None
    return None


_COMPARE = {
    SigmaCompareExpression.CompareOperators.LT: operator.lt,
    SigmaCompareExpression.CompareOperators.LTE: operator.le,
    SigmaCompareExpression.CompareOperators.GT: operator.gt,
    SigmaCompareExpression.CompareOperators.GTE: operator.ge,
}


def scalar_test(value: Any) -> ScalarTest:
    """A test for one Sigma value against one (non-null, non-list) event value."""
    if isinstance(value, SigmaString):
        return StringSet([value]).test()
    if isinstance(value, SigmaBool):
        want = bool(value.boolean)
        text = "true" if want else "false"
        return lambda v: v is want or (v.__class__ is str and v.lower() == text)
    if isinstance(value, SigmaNumber):
        n = value.number
        as_text = str(n)
        return lambda v: (
            v == n if (v.__class__ is int or v.__class__ is float) else _text(v) == as_text
        )
    if isinstance(value, SigmaRegularExpression):
        flags = 0
        for flag in value.flags:
            flags |= SigmaRegularExpression.sigma_to_python_flags[flag]
        search = re.compile(value.regexp, flags).search
        return lambda v: search(_text(v)) is not None
    if isinstance(value, SigmaCIDRExpression):
        net = value.network

        def in_net(v: Any) -> bool:
            try:
                return ipaddress.ip_address(_text(v)) in net
            except ValueError:
                return False

        return in_net
    if isinstance(value, SigmaCompareExpression):
        op = _COMPARE[value.op]
        ref = value.number.number

        def compare(v: Any) -> bool:
            n = _number(v)
            return n is not None and op(n, ref)

        return compare
    if isinstance(value, SigmaExpansion):
        return any_of([scalar_test(v) for v in value.values], value.values)
    raise UnsupportedValue(f"value type {type(value).__name__} is not supported in-stream")


def any_of(tests: list[ScalarTest], values: list[Any] | None = None) -> ScalarTest:
    """OR of scalar tests; plain strings of one casing are merged into a StringSet."""
    if values is not None and values and all(
        isinstance(v, SigmaString) and type(v) is type(values[0]) for v in values
    ):
        return StringSet(list(values)).test()
    if len(tests) == 1:
        return tests[0]
    tup = tuple(tests)

    def test(v: Any) -> bool:
        for t in tup:
            if t(v):
                return True
        return False

    return test
