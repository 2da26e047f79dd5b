"""Can a rule ever fire on the events of its datasets?

A Sigma rule written for fields our telemetry never carries (a file rule that
needs the writing process's ``Image``, a connection rule that needs a
destination we do not report) would load, run on every event and never fire:
a silent gap in coverage. This module evaluates the condition tree with the
fields a dataset never carries taken as absent, in three values (surely true,
surely false, either); a rule whose every condition is surely false on every
one of its datasets is refused as ``never_fires``.

Absent fields behave as the matchers make them: a value test is false, ``null``
and ``|exists: false`` are true, ``|exists: true`` and a field reference false.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import SigmaExists, SigmaNull

from collector.detect.fields import KEYWORD_FIELDS, to_ecs

# (may be true, may be false)
Possible = tuple[bool, bool]
_EITHER: Possible = (True, True)
_TRUE: Possible = (True, False)
_FALSE: Possible = (False, True)


def possible(node: Any, absent: Callable[[str], bool]) -> Possible:
    """What ``node`` can evaluate to when the fields ``absent`` names are missing."""
    if isinstance(node, ConditionAND):
        parts = [possible(a, absent) for a in node.args]
        return all(t for t, _ in parts), any(f for _, f in parts)
    if isinstance(node, ConditionOR):
        parts = [possible(a, absent) for a in node.args]
        return any(t for t, _ in parts), all(f for _, f in parts)
    if isinstance(node, ConditionNOT):
        t, f = possible(node.args[0], absent)
        return f, t
    if isinstance(node, ConditionFieldEqualsValueExpression):
        if not absent(to_ecs(node.field)):
            return _EITHER
        value = node.value
        if isinstance(value, SigmaNull):
            return _TRUE
        if isinstance(value, SigmaExists):
            return _FALSE if value.exists else _TRUE
        return _FALSE
    if isinstance(node, ConditionValueExpression):
        return _FALSE if all(absent(f) for f in KEYWORD_FIELDS) else _EITHER
    return _EITHER


def absent_fields(node: Any, absent: Callable[[str], bool]) -> set[str]:
    """The fields of ``node`` that ``absent`` names (for the refusal message)."""
    if isinstance(node, ConditionAND | ConditionOR | ConditionNOT):
        return set().union(*(absent_fields(a, absent) for a in node.args))
    if isinstance(node, ConditionFieldEqualsValueExpression):
        path = to_ecs(node.field)
        return {path} if absent(path) else set()
    return set()
