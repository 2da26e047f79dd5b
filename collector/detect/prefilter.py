"""Literal prefilter: which rules an event can possibly match, from one scan per field.

Most Sigma rules can only match when some literal text occurs in some field:
``CommandLine|contains: ' -i '`` needs `` -i `` in ``process.command_line``;
``Image|endswith: [/nc, /ncat]`` needs ``/nc`` or ``/ncat`` in ``process.executable``.
At load time :func:`requirement` reads that *necessary* condition off the rule's
condition tree; at install time :class:`DatasetIndex` builds, per field, one
Aho-Corasick automaton over every rule's literals. Per event the engine scans
each such field once (lowered) and evaluates only the rules whose literals
occurred, plus the rules with no requirement. A rule skipped this way could not
have matched, so the alerts are exactly those of evaluating every rule; the
property tests (tests/unit/test_detect_prefilter.py) check that on random events.

Soundness, in detail. The requirement of a node is a set of (field, literal)
alternatives, one of which must occur when the node is true:

* a field test on a Sigma string needs the longest literal run between its
  wildcards (lowered); lists and expansions (``windash``, ``base64offset``) need
  one of their values' literals; any other value type (regex, number, CIDR, null,
  exists, field reference) gives no requirement;
* ``and`` needs the requirement of any one operand (the most selective is kept);
  ``or`` needs one of its operands' (none if one operand has none); ``not`` none;
* keywords need their literal in ``message`` or ``event.original``.

The scanned text is what the matchers test: ``str(value).lower()``, list elements
joined by a newline (a literal found across two elements only admits a rule that
is then evaluated, never loses one). Plain shapes (equals, prefix, suffix,
contains, case-insensitive) compare ``lower()`` to ``lower()`` exactly as scanned.
Wildcard and ``cased`` strings are matched by ``re`` case folding or case
exactly, which agrees with ``lower()`` on ASCII only; their literals are kept only
when ASCII and they are trusted only on ASCII text: a non-ASCII value admits
every such rule of that field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parser  # type: ignore[attr-defined]
from typing import Any

import ahocorasick
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    SigmaCasedString,
    SigmaExpansion,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

from collector.detect.fields import KEYWORD_FIELDS, Getter, make_getter, to_ecs
from collector.detect.matchers import string_shape, widen_keyword

# One clause: ECS path -> alternatives (lowered literal, exact); one of them must occur.
# ``exact``: found by lower() whenever the matcher matches; otherwise only on ASCII text.
Clause = dict[str, frozenset[tuple[str, bool]]]
# A rule's requirement: every clause must hold (at most MAX_CLAUSES kept, the most selective).
Requirement = tuple[Clause, ...]
MAX_CLAUSES = 2


def requirement(node: Any) -> Requirement | None:
    """A necessary condition for ``node`` (pySigma's postprocessed tree), or None."""
    clauses = _clauses(node)
    if not clauses:
        return None
    return tuple(sorted(clauses, key=_selectivity, reverse=True)[:MAX_CLAUSES])


def any_of_requirements(reqs: list[Requirement | None]) -> Requirement | None:
    """The requirement of an OR of parts (several conditions of one rule)."""
    if any(r is None for r in reqs) or not reqs:
        return None
    return (_merge([max(r, key=_selectivity) for r in reqs if r is not None]),)


def _clauses(node: Any) -> list[Clause]:
    if isinstance(node, ConditionAND):
        return [c for a in node.args for c in _clauses(a)]
    if isinstance(node, ConditionOR):
        best: list[Clause] = []
        for a in node.args:
            sub = _clauses(a)
            if not sub:
                return []
            best.append(max(sub, key=_selectivity))
        return [_merge(best)]
    if isinstance(node, ConditionFieldEqualsValueExpression):
        lits = _value_literals(node.value)
        return [{to_ecs(node.field): lits}] if lits is not None else []
    if isinstance(node, ConditionValueExpression):
        lits = _value_literals(widen_keyword(node.value))
        return [dict.fromkeys(KEYWORD_FIELDS, lits)] if lits is not None else []
    return []  # NOT, and anything unknown: no requirement


def _merge(clauses: list[Clause]) -> Clause:
    merged: Clause = {}
    for c in clauses:
        for f, lits in c.items():
            merged[f] = merged.get(f, frozenset()) | lits
    return merged


def _selectivity(clause: Clause) -> tuple[int, int]:
    """Rank of a clause: longest shortest-literal first, then fewest alternatives."""
    lits = [lit for alts in clause.values() for lit, _ in alts]
    return (min(len(lit) for lit in lits), -len(lits))


def _value_literals(value: Any) -> frozenset[tuple[str, bool]] | None:
    if isinstance(value, SigmaExpansion):
        out: set[tuple[str, bool]] = set()
        for v in value.values:
            lits = _value_literals(v)
            if lits is None:
                return None
            out |= lits
        return frozenset(out)
    if isinstance(value, SigmaRegularExpression):
        return _regex_literals(value.regexp)
    if isinstance(value, SigmaString):
        lit = _string_literal(value)
        return frozenset({lit}) if lit is not None else None
    return None


def _string_literal(value: SigmaString) -> tuple[str, bool] | None:
    runs: list[str] = []
    current = ""
    for part in value.s:
        if isinstance(part, str):
            current += part
        elif isinstance(part, SpecialChars):
            runs.append(current)
            current = ""
        else:
            return None  # a placeholder: not compiled anyway
    runs.append(current)
    longest = max(runs, key=len)
    if not longest:
        return None
    cased = isinstance(value, SigmaCasedString)
    exact = not cased and string_shape(value)[0] != "regex"
    if not exact and not longest.isascii():
        return None
    return longest.lower(), exact


def _regex_literals(pattern: str) -> frozenset[tuple[str, bool]] | None:
    """A run of fixed text every match of a regex (``re.search``) contains.

    Only the top level of the pattern is read: consecutive items that match one
    of a few fixed strings (a character, a small class such as ``[Ww]``, a group of
    alternatives such as ``(W|R)``, a fixed repeat) form a run, whose expansions
    are the alternatives; anything variable ends the run. Of the runs, the one
    whose shortest expansion is longest is kept. The text is lowered and trusted
    on ASCII text only (the pattern's case flags then do not matter).
    """
    try:
        parsed = sre_parser.parse(pattern, 0)
    except Exception:  # the matcher compiled it; if this parser cannot, no requirement
        return None
    best: set[str] = set()
    run: set[str] = {""}
    for item in list(parsed.data) + [(None, None)]:
        alts = _fixed(item) if item[0] is not None else None
        if alts is not None and len(run) * len(alts) <= _MAX_ALTERNATIVES:
            run = {a + b for a in run for b in alts}
            continue
        if min(map(len, run)) > min(map(len, best), default=0):
            best = run
        run = {""} if alts is None else set(alts)
    if not best or not all(a.isascii() for a in best):
        return None
    return frozenset((a.lower(), False) for a in best)


_MAX_ALTERNATIVES = 16


def _fixed(item: tuple[Any, Any]) -> set[str] | None:
    """The few strings a top-level regex item can match, or None when it varies."""
    op, arg = item
    if op is sre_constants.LITERAL:
        return {chr(arg)}
    if op is sre_constants.IN:
        chars: set[str] = set()
        for sub_op, sub_arg in arg:
            if sub_op is sre_constants.LITERAL:
                chars.add(chr(sub_arg))
            elif sub_op is sre_constants.RANGE and sub_arg[1] - sub_arg[0] < 4:
                chars.update(chr(c) for c in range(sub_arg[0], sub_arg[1] + 1))
            else:
                return None
        return chars if 0 < len(chars) <= _MAX_ALTERNATIVES else None
    if op is sre_constants.SUBPATTERN:
        return _fixed_sequence(list(arg[-1].data))
    if op is sre_constants.BRANCH:
        out: set[str] = set()
        for branch in arg[1]:
            alts = _fixed_sequence(list(branch.data))
            if alts is None:
                return None
            out |= alts
        return out if len(out) <= _MAX_ALTERNATIVES else None
    if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
        low, high, sub = arg
        if low != high or low > 4:
            return None
        alts = _fixed_sequence(list(sub.data))
        if alts is None or len(alts) ** low > _MAX_ALTERNATIVES:
            return None
        out = {""}
        for _ in range(low):
            out = {a + b for a in out for b in alts}
        return out
    return None


def _fixed_sequence(items: list[Any]) -> set[str] | None:
    out = {""}
    for item in items:
        alts = _fixed(item)
        if alts is None or len(out) * len(alts) > _MAX_ALTERNATIVES:
            return None
        out = {a + b for a in out for b in alts}
    return out


# --- install time and per event ---------------------------------------------------


def scan_text(value: Any) -> str:
    """The text a field's literals are searched in (see the module docstring)."""
    if value.__class__ is str:
        return value.lower()
    if value.__class__ is list:
        return "\n".join(scan_text(v) for v in value if v is not None)
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value).lower()


class _FieldScan:
    """One field's automaton: literal -> (mask of rules whose 1st clause it meets, 2nd)."""

    __slots__ = ("get", "iter", "loose1", "loose2")

    def __init__(self, path: str, literals: dict[tuple[str, bool], tuple[int, int]]) -> None:
        self.get: Getter = make_getter(path)
        masks: dict[str, tuple[int, int]] = {}
        self.loose1 = self.loose2 = 0  # rules with literals trusted on ASCII text only
        for (lit, exact), (m1, m2) in literals.items():
            old1, old2 = masks.get(lit, (0, 0))
            masks[lit] = (old1 | m1, old2 | m2)
            if not exact:
                self.loose1 |= m1
                self.loose2 |= m2
        automaton = ahocorasick.Automaton()
        for lit, pair in masks.items():
            automaton.add_word(lit, pair)
        automaton.make_automaton()
        self.iter: Callable[[str], Iterable[tuple[int, tuple[int, int]]]] = automaton.iter


Handler = Callable[[dict[str, Any], float], Any]


class DatasetIndex:
    """The handlers of one dataset, with the prefilter of those that have a requirement.

    Rule ``i`` is bit ``i``. A rule with no requirement is in ``always``; otherwise
    it is a candidate when its first clause met a literal (``m1``) and its second
    did too, or it has only one (``single``). Handlers keep their install order;
    ``candidates`` gives the ones an event can match, in that order.
    """

    __slots__ = ("handlers", "always", "single", "scans", "_all")

    scans: tuple[tuple[Getter, Callable[[str], Iterable[tuple[int, tuple[int, int]]]], int, int],
                 ...]

    def __init__(self, entries: list[tuple[Handler, Requirement | None]]) -> None:
        self.handlers = tuple(h for h, _ in entries)
        self._all = (1 << len(entries)) - 1
        self.always = 0
        self.single = 0
        per_field: dict[str, dict[tuple[str, bool], tuple[int, int]]] = {}
        for i, (_, req) in enumerate(entries):
            bit = 1 << i
            if not req:
                self.always |= bit
                continue
            if len(req) == 1:
                self.single |= bit
            for n, clause in enumerate(req[:MAX_CLAUSES]):
                add = (bit, 0) if n == 0 else (0, bit)
                for path, lits in clause.items():
                    table = per_field.setdefault(path, {})
                    for lit in lits:
                        old = table.get(lit, (0, 0))
                        table[lit] = (old[0] | add[0], old[1] | add[1])
        scans = [_FieldScan(p, lits) for p, lits in per_field.items()]
        self.scans = tuple((sc.get, sc.iter, sc.loose1, sc.loose2) for sc in scans)

    def candidates(self, doc: dict[str, Any]) -> tuple[Handler, ...] | list[Handler]:
        if not self.scans:
            return self.handlers
        m1 = m2 = 0
        for get, scan, loose1, loose2 in self.scans:
            value = get(doc)
            if value is None:
                continue
            text = value.lower() if value.__class__ is str else scan_text(value)
            if not text.isascii():
                m1 |= loose1
                m2 |= loose2
            for _, (a, b) in scan(text):
                m1 |= a
                m2 |= b
        mask = self.always | (m1 & (m2 | self.single))
        if mask == self._all:
            return self.handlers
        handlers = self.handlers
        out = []
        while mask:
            low = mask & -mask
            out.append(handlers[low.bit_length() - 1])
            mask ^= low
        return out
