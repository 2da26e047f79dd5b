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


def test_integers_beyond_64_bits_are_found_exactly() -> None:
    from collector.canonical import oversized_integer

    assert oversized_integer(b'{"a": 18446744073709551615, "b": -9223372036854775808}') is None
    assert oversized_integer(b'{"a": 18446744073709551616}') == "18446744073709551616"
    assert oversized_integer(b'{"a": [1, {"b": -9223372036854775809}]}') == "-9223372036854775809"
    assert oversized_integer(b'{"s": "123456789012345678901234567890"}') is None  # a string
    assert oversized_integer(b'{"f": 123456789012345678901.5}') is None  # a float, as sent


@pytest.mark.parametrize("ts", ["20240815T101010Z", "2024-W33-4T10:10:10+00:00",
                                "2024-08-15T10:10:10+00", "2024-08-15 10:10:10Z",
                                "2024-08-15T10:10:10", "2024-08-15t10:10:10z",
                                "2024-08-15T10:10:10.Z", "2024-13-15T10:10:10Z"])
def test_only_rfc3339_timestamps_parse(ts: str) -> None:
    from canhgac.timeutil import parse_rfc3339_strict

    with pytest.raises(ValueError):
        parse_rfc3339_strict(ts)


def test_rfc3339_timestamps_parse() -> None:
    from canhgac.timeutil import parse_rfc3339_strict

    a = parse_rfc3339_strict("2024-08-15T10:10:10.123456789Z")
    b = parse_rfc3339_strict("2024-08-15T17:10:10.123456+07:00")
    assert a == b and a.microsecond == 123456
