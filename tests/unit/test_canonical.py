"""Dotted keys are expanded to one form (issue 12, trust boundary 2)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.canonical import Conflict, expand, may_have_dotted_keys


def test_flat_and_nested_mean_the_same() -> None:
    doc = {"canhgac.system.id": "sys-b", "source.ip": "10.0.0.1", "event": {"id": "x"},
           "a": {"b.c": [{"d.e": 1}]}}
    assert expand(doc) == {"canhgac": {"system": {"id": "sys-b"}}, "source": {"ip": "10.0.0.1"},
                           "event": {"id": "x"}, "a": {"b": {"c": [{"d": {"e": 1}}]}}}


def test_flat_and_nested_merge_or_conflict() -> None:
    assert expand({"source": {"port": 1}, "source.ip": "10.0.0.1"}) == {
        "source": {"port": 1, "ip": "10.0.0.1"}}
    assert expand({"a.b": 1, "a": {"b": 1}}) == {"a": {"b": 1}}
    with pytest.raises(Conflict, match="given twice"):
        expand({"a.b": 1, "a": {"b": 2}})
    with pytest.raises(Conflict, match="both a value and an object"):
        expand({"a": 1, "a.b": 2})
    for bad in ("a..b", ".a", "a."):
        with pytest.raises(Conflict, match="empty part"):
            expand({bad: 1})


_key = st.text(alphabet="ab.\"\\:", min_size=1, max_size=5)
_doc = st.recursive(st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(alphabet="ab.\"\\:,}", max_size=5),
                              st.floats(allow_nan=False)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.dictionaries(_key, inner, max_size=3)),
                    max_leaves=10)


def _keys(v: object) -> list[str]:
    if isinstance(v, dict):
        return [k for k in v] + [k2 for x in v.values() for k2 in _keys(x)]
    if isinstance(v, list):
        return [k for x in v for k in _keys(x)]
    return []


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(_key, _doc, max_size=4))
def test_the_fast_filter_never_misses_a_dotted_key(doc: dict) -> None:
    line = orjson.dumps(doc)
    if any("." in k for k in _keys(doc)):
        assert may_have_dotted_keys(line), line
        spaced = line.replace(b'":', b'" :')
        assert may_have_dotted_keys(spaced)
