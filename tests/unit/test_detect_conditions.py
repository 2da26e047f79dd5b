"""Sigma conditions: and/or/not precedence, parentheses, `1 of`, `all of`, `them`.

Every condition is checked against a Python boolean expression over all 16
combinations of four selections being true or false, so precedence mistakes
(or the pyparsing 3.3.3 nesting bug, SigmaHQ/pySigma#548) cannot hide.
"""

from __future__ import annotations

import itertools

import pytest

from collector.detect.model import RuleError
from collector.detect.sigma_compile import compile_detections

DETECTIONS = {
    "sel_a": {"t.a": "1"},
    "sel_b": {"t.b": "1"},
    "filter_c": {"t.c": "1"},
    "filter_d": {"t.d": "1"},
}

CONDITIONS = [
    ("sel_a", lambda a, b, c, d: a),
    ("not sel_a", lambda a, b, c, d: not a),
    ("sel_a and sel_b", lambda a, b, c, d: a and b),
    ("sel_a or sel_b", lambda a, b, c, d: a or b),
    ("sel_a and not filter_c", lambda a, b, c, d: a and not c),
    ("sel_a or sel_b and filter_c", lambda a, b, c, d: a or (b and c)),
    ("sel_a and sel_b or filter_c", lambda a, b, c, d: (a and b) or c),
    ("not sel_a and not sel_b or filter_c", lambda a, b, c, d: ((not a) and (not b)) or c),
    ("(sel_a or sel_b) and not (filter_c or filter_d)", lambda a, b, c, d: (a or b) and not (c or d)),
    ("not (sel_a and sel_b)", lambda a, b, c, d: not (a and b)),
    ("not not sel_a", lambda a, b, c, d: a),
    ("sel_a and sel_b and filter_c and filter_d", lambda a, b, c, d: a and b and c and d),
    ("sel_a or sel_b or filter_c or filter_d", lambda a, b, c, d: a or b or c or d),
    ("1 of sel_*", lambda a, b, c, d: a or b),
    ("any of sel_*", lambda a, b, c, d: a or b),
    ("all of sel_*", lambda a, b, c, d: a and b),
    ("1 of sel_* and not 1 of filter_*", lambda a, b, c, d: (a or b) and not (c or d)),
    ("all of sel_* or all of filter_*", lambda a, b, c, d: (a and b) or (c and d)),
    ("1 of them", lambda a, b, c, d: a or b or c or d),
    ("all of them", lambda a, b, c, d: a and b and c and d),
    ("sel_a and (sel_b or (filter_c and not filter_d))", lambda a, b, c, d: a and (b or (c and not d))),
]


def _doc(a: bool, b: bool, c: bool, d: bool) -> dict:
    return {"t": {k: "1" if v else "0" for k, v in zip("abcd", (a, b, c, d), strict=True)}}


@pytest.mark.parametrize(("condition", "oracle"), CONDITIONS)
def test_condition_truth_table(condition: str, oracle) -> None:
    pred = compile_detections({**DETECTIONS, "condition": condition})
    for a, b, c, d in itertools.product((False, True), repeat=4):
        want = bool(oracle(a, b, c, d))
        assert pred(_doc(a, b, c, d)) is want, (condition, a, b, c, d)


def test_items_in_one_selection_are_and_ed() -> None:
    pred = compile_detections({"sel": {"t.a": "1", "t.b": "1"}, "condition": "sel"})
    assert pred(_doc(True, True, False, False))
    assert not pred(_doc(True, False, False, False))


def test_several_conditions_are_or_ed() -> None:
    pred = compile_detections({**DETECTIONS, "condition": ["sel_a and sel_b", "filter_c"]})
    assert pred(_doc(True, True, False, False))
    assert pred(_doc(False, False, True, False))
    assert not pred(_doc(True, False, False, False))


@pytest.mark.parametrize(("block", "path", "problem"), [
    ({"sel": {"t.a": 1}}, "detection.condition", "is required"),
    ({"condition": "sel"}, "detection", "no selections"),
    ({"sel": {"t.a": 1}, "condition": "sel and missing"}, "detection.condition", "'missing'"),
    ({"sel": {"t.a": 1}, "condition": "sel and"}, "detection.condition", "Expected"),
    ({"sel": {"t.a": 1}, "condition": "sel | count() > 5"}, "detection.condition", "pipe"),
    ({"sel": None, "condition": "sel"}, "detection.sel", "empty"),
    ("nope", "detection", "mapping"),
])
def test_condition_errors_name_the_path(block, path: str, problem: str) -> None:
    with pytest.raises(RuleError) as exc:
        compile_detections(block)
    assert exc.value.path == path
    assert problem in exc.value.problem
