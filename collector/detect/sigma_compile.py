"""Sigma ``detection:`` blocks -> one Python predicate over an ECS event.

pySigma parses the block (selections, modifiers, the condition grammar with
``and``/``or``/``not``/``1 of x*``/``all of them``) into a condition tree; we walk
that tree once and build nested closures. Nothing from pySigma is touched per
event. The same compiler serves Sigma rules and the ``detection:`` parts of our
threshold and sequence rules, so there is one matching language to learn.

Errors are raised as :class:`RuleError` with the key path inside the rule
(``detection.selection.CommandLine|contians``) so a rule author is told where.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

from pyparsing import ParseResults
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionIdentifier,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionSelector,
    ConditionValueExpression,
    SigmaCondition,
)
from sigma.exceptions import SigmaConditionError, SigmaError
from sigma.modifiers import modifier_mapping
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaDetections
from sigma.types import SigmaExists, SigmaFieldReference, SigmaNull, SigmaString

from collector.detect.fields import KEYWORD_FIELDS, UnknownField, make_getter, to_ecs
from collector.detect.matchers import (
    ScalarTest,
    UnsupportedValue,
    any_of,
    scalar_test,
    widen_keyword,
)
from collector.detect.model import RuleError
from collector.detect.prefilter import Requirement, any_of_requirements, requirement

Predicate = Callable[[dict[str, Any]], bool]

# Modifiers that only make sense against a query backend's index, not a live event.
_UNSUPPORTED_MODIFIERS = frozenset({"minute", "hour", "day", "week", "month", "year", "expand"})


def _sigma_message(exc: Exception) -> str:
    """pySigma errors end with ' in <path>' when a source is known; we give our own path."""
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.rstrip(".")


def _check_keys(name: str, definition: Any, path: str) -> None:
    """Validate field names and modifiers ourselves, to point at the exact key."""
    if isinstance(definition, dict):
        for key in definition:
            key_text = "" if key is None else str(key)
            sub = f"{path}.{key_text}"
            field, *mods = key_text.split("|")
            for mod in mods:
                if mod not in modifier_mapping:
                    known = ", ".join(sorted(set(modifier_mapping) - _UNSUPPORTED_MODIFIERS))
                    raise RuleError(sub, f"unknown modifier {mod!r} (known: {known})")
                if mod in _UNSUPPORTED_MODIFIERS:
                    raise RuleError(sub, f"modifier {mod!r} is not supported by the in-stream engine")
            if field:
                try:
                    to_ecs(field)
                except UnknownField as exc:
                    raise RuleError(sub, str(exc)) from None
    elif isinstance(definition, list):
        for i, item in enumerate(definition):
            _check_keys(name, item, f"{path}[{i}]")
    elif definition is None:
        raise RuleError(path, "empty detection")


def parse_detections(block: Any, path: str = "detection") -> SigmaDetections:
    """Parse a Sigma detection mapping with pySigma, errors mapped to key paths."""
    if not isinstance(block, dict):
        raise RuleError(path, "expected a mapping of named selections and a condition")
    if "condition" not in block:
        raise RuleError(f"{path}.condition", "is required")
    named = {k: v for k, v in block.items() if k != "condition"}
    if not named:
        raise RuleError(path, "defines no selections")
    for name, definition in named.items():
        sub = f"{path}.{name}"
        _check_keys(str(name), definition, sub)
        try:
            SigmaDetection.from_definition(definition)
        except SigmaError as exc:
            raise RuleError(sub, _sigma_message(exc)) from None
    try:
        return SigmaDetections.from_dict(block)
    except SigmaError as exc:  # pragma: no cover - per-selection parse above catches these
        raise RuleError(path, _sigma_message(exc)) from None


class Compiled(NamedTuple):
    predicate: Predicate
    requirement: Requirement | None  # the literals it needs (prefilter.py)
    trees: list[Any]  # pySigma's condition trees, one per condition (reachability.py)


def compile_detections(block: Any, path: str = "detection") -> Predicate:
    """Compile a detection block into one predicate (several conditions are OR-ed)."""
    return compile_sigma(block, path).predicate


def compile_sigma(block: Any, path: str = "detection") -> Compiled:
    """The predicate, what it needs and the trees it was built from, from one parse."""
    detections = parse_detections(block, path)
    preds = []
    trees = []
    reqs: list[Requirement | None] = []
    for i, cond in enumerate(detections.parsed_condition):
        cpath = f"{path}.condition" + (f"[{i}]" if len(detections.parsed_condition) > 1 else "")
        try:
            tree = parse_condition(cond)
        except SigmaError as exc:
            raise RuleError(cpath, _sigma_message(exc)) from None
        try:
            preds.append(compile_node(tree))
            reqs.append(requirement(tree))
            trees.append(tree)
        except (UnsupportedValue, UnknownField) as exc:
            raise RuleError(cpath, str(exc)) from None
    need = any_of_requirements(reqs) if len(reqs) > 1 else reqs[0]
    return Compiled(_or(preds), need, trees)


def parse_condition(cond: SigmaCondition) -> Any:
    """pySigma's condition parse, robust to pyparsing 3.3.3.

    pyparsing 3.3.3 hands nested operands (``a and not b``) to the parse actions
    wrapped in a one-element ParseResults, which pySigma 0.11's postprocess does
    not expect (SigmaHQ/pySigma#548: "'str' object is not callable"). We parse
    without postprocessing, unwrap those, then let pySigma resolve the
    selections; with an older pyparsing the unwrap is a no-op.
    """
    with warnings.catch_warnings():  # pySigma calls pyparsing's deprecated camelCase API
        warnings.simplefilter("ignore", DeprecationWarning)
        raw = _unwrap(cond.parse(postprocess=False))
    return raw.postprocess(cond.detections, source=cond.source)


def _unwrap(node: Any) -> Any:
    while isinstance(node, ParseResults):
        if len(node) != 1:
            raise SigmaConditionError(f"cannot read condition part {node!r}")  # type: ignore[no-untyped-call]
        node = node[0]
    if isinstance(node, ConditionItem) and not isinstance(
        node, ConditionIdentifier | ConditionSelector
    ):
        node.args = [_unwrap(a) for a in node.args]
    return node


def compile_node(node: Any) -> Predicate:
    """One node of pySigma's postprocessed condition tree -> predicate."""
    if isinstance(node, ConditionAND):
        return _and([compile_node(a) for a in node.args])
    if isinstance(node, ConditionOR):
        return _compile_or(node.args)
    if isinstance(node, ConditionNOT):
        inner = compile_node(node.args[0])
        return lambda doc: not inner(doc)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _field_pred(node.field, [node.value])
    if isinstance(node, ConditionValueExpression):
        return _keyword_pred([node.value])
    if isinstance(node, SigmaDetectionItem | SigmaDetection):  # pragma: no cover - defensive
        raise UnsupportedValue(f"unexpected detection node {type(node).__name__}")
    raise UnsupportedValue(f"unsupported condition element {type(node).__name__}")


def _compile_or(args: list[Any]) -> Predicate:
    """OR, with same-field value lists merged so one lookup serves the whole list."""
    by_field: dict[str, list[Any]] = {}
    keywords: list[Any] = []
    others: list[Predicate] = []
    for a in args:
        if isinstance(a, ConditionFieldEqualsValueExpression) and _mergeable(a.value):
            by_field.setdefault(a.field, []).append(a.value)
        elif isinstance(a, ConditionValueExpression) and _mergeable(a.value):
            keywords.append(a.value)
        else:
            others.append(compile_node(a))
    preds = [_field_pred(f, vals) for f, vals in by_field.items()]
    if keywords:
        preds.append(_keyword_pred(keywords))
    return _or(preds + others)


def _mergeable(value: Any) -> bool:
    return not isinstance(value, SigmaNull | SigmaExists | SigmaFieldReference)


def _value_test(values: list[Any]) -> ScalarTest:
    strings = [v for v in values if isinstance(v, SigmaString)]
    rest = [v for v in values if not isinstance(v, SigmaString)]
    tests: list[ScalarTest] = []
    # One StringSet per casing so a 'cased' value is not lowered with the others.
    for cls in {type(s) for s in strings}:
        group = [s for s in strings if type(s) is cls]
        tests.append(any_of([], group))
    tests.extend(scalar_test(v) for v in rest)
    return any_of(tests)


def _field_pred(field: str, values: list[Any]) -> Predicate:
    path = to_ecs(field)
    get = make_getter(path)
    if len(values) == 1:
        value = values[0]
        if isinstance(value, SigmaNull):
            return lambda doc: get(doc) is None
        if isinstance(value, SigmaExists):
            want = bool(value.exists)
            return lambda doc: (get(doc) is not None) is want
        if isinstance(value, SigmaFieldReference):
            other = make_getter(to_ecs(value.field))

            def same(doc: dict[str, Any]) -> bool:
                v = get(doc)
                return v is not None and v == other(doc)

            return same
    test = _value_test(values)

    def pred(doc: dict[str, Any]) -> bool:
        v = get(doc)
        if v is None:
            return False
        if v.__class__ is list:
            for x in v:
                if x is not None and test(x):
                    return True
            return False
        return test(v)

    return pred


def _keyword_pred(values: list[Any]) -> Predicate:
    """Field-less Sigma keywords: searched in the raw line, as a contains match."""
    widened = [widen_keyword(v) for v in values]
    preds = [_field_pred(f, widened) for f in KEYWORD_FIELDS]
    return _or(preds)


def _and(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda doc: a(doc) and b(doc)
    if len(preds) == 3:
        a, b, c = preds
        return lambda doc: a(doc) and b(doc) and c(doc)
    tup = tuple(preds)

    def all_(doc: dict[str, Any]) -> bool:
        for p in tup:
            if not p(doc):
                return False
        return True

    return all_


def _or(preds: list[Predicate]) -> Predicate:
    if not preds:
        return lambda doc: False
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda doc: a(doc) or b(doc)
    tup = tuple(preds)

    def any_(doc: dict[str, Any]) -> bool:
        for p in tup:
            if p(doc):
                return True
        return False

    return any_
