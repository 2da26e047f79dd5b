"""Property-based tests of the trust boundaries (issue 12, "Fuzzing and the suite").

Whatever arrives — a query, an inventory, a report to the national center, a signature
header — the code answers with its own clear error type, never with a crash, and the
query backends obey the laws of boolean algebra over the corpus events.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canhgac import signing
from canhgac.errors import ConfigError
from collector.inventory import parse_inventory
from collector.query.errors import QueryError
from collector.query.parser import parse
from collector.query.to_es import to_es
from collector.query.to_sql import to_sql
from collector.search.model import Scope
from collector.search.store import StoreBackend
from national_center.server import MAX_DECOMPRESSED, _decode, _parse_lines
from tests.fixtures.query_strategies import query
from tests.unit.test_query_corpus import ALL, load_store, request

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
QUERY_CHARS = st.lists(st.sampled_from(
    list('abcAB01:."*?()[]{}<>=-+!&|\\/ ~^') + ["AND", "OR", "NOT", " TO ", "đ", "\t", "\n",
                                             "source.ip", "message", "event.dataset",
                                             "@timestamp", "now-1h", "10.0.0.0/8"]),
    max_size=25).map("".join)


# -- the query language --------------------------------------------------------------
@SETTINGS
@given(st.one_of(QUERY_CHARS, st.text(max_size=60)))
def test_any_text_parses_or_is_a_query_error(text: str) -> None:
    try:
        node = parse(text)
    except QueryError as exc:
        assert exc.position >= 1
        return
    to_sql(node)
    to_es(node)


@pytest.fixture(scope="module")
def corpus_store(tmp_path_factory: pytest.TempPathFactory) -> StoreBackend:
    path = tmp_path_factory.mktemp("props") / "events.db"
    load_store(path)
    return StoreBackend(path)


def _ids(store: StoreBackend, q: str) -> set[str]:
    req = request(q)
    res = store.search_sync(req, req.filter_ast(Scope.everything()))
    return {h["event"]["id"] for h in res.hits}


@SETTINGS
@given(query, query)
def test_store_backend_obeys_boolean_laws(corpus_store: StoreBackend, a: str, b: str) -> None:
    ia, ib = _ids(corpus_store, a), _ids(corpus_store, b)
    assert _ids(corpus_store, f"NOT {a}") == ALL - ia
    assert _ids(corpus_store, f"{a} AND {b}") == ia & ib
    assert _ids(corpus_store, f"{a} OR {b}") == ia | ib


# -- the inventory ---------------------------------------------------------------------
_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.text(max_size=8),
              st.sampled_from(["cong-ttdt", "Sở Y tế", "2024-09-30", "15/08/2024", "3"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["systems", "province", "units", "id", "name", "unit",
                                         "level", "hosts", "approval", "plan", "status",
                                         "assessments", "date", "national", "x"]),
                        inner, max_size=6)),
    max_leaves=20)


@SETTINGS
@given(_json)
def test_any_inventory_loads_or_is_a_config_error(data: Any) -> None:
    try:
        parse_inventory(data, "inventory.yaml")
    except ConfigError as exc:
        assert exc.source == "inventory.yaml" and "inventory.yaml" in str(exc)


# -- the national center's API ---------------------------------------------------------
@SETTINGS
@given(st.binary(max_size=300))
def test_any_report_body_is_parsed_line_by_line(raw: bytes) -> None:
    lines, errors, total = _parse_lines(raw)
    assert len(lines) + len(errors) == total


@SETTINGS
@given(st.binary(max_size=200), st.sampled_from(["gzip", "", "identity", "br", "GZIP"]))
def test_any_body_encoding_decodes_or_is_a_value_error(wire: bytes, enc: str) -> None:
    try:
        out = _decode(wire, enc)
    except ValueError:
        return
    assert len(out) <= MAX_DECOMPRESSED


_header = st.one_of(st.text(max_size=70), st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
                    st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
                    st.integers(0, 2**40).map(str))


@SETTINGS
@given(st.dictionaries(st.sampled_from([signing.H_KEY_ID, signing.H_TIMESTAMP, signing.H_NONCE,
                                        signing.H_SIGNATURE, signing.H_BATCH_ID,
                                        signing.H_CONTENT_SHA256]), _header))
def test_any_signature_headers_verify_or_are_a_signature_error(headers: dict[str, str]) -> None:
    v = signing.Verifier({"vn-tth": b"k" * 32})
    with pytest.raises(signing.SignatureError):
        v.verify_headers("POST", "/v1/reports", headers)


def test_the_strategies_cover_the_corpus(tmp_path: Path) -> None:
    from tests.fixtures.query_strategies import ATOMS

    assert len(ATOMS) > 50


# -- the ingest validator ------------------------------------------------------------------
_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
                  st.text(max_size=12), st.sampled_from(["10.0.0.1", "::1", "999.1.1.1",
                                                         "2026-12-02T04:00:00Z", "auth"]))
_key = st.one_of(st.text(max_size=6), st.sampled_from(
    ["event", "event.id", "event.dataset", "@timestamp", "source", "source.ip", "source.port",
     "canhgac.system.id", "a..b", "destination.port", "id", "dataset", "ip", "port"]))
_doc = st.recursive(_leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(_key, inner, max_size=5)),
                    max_leaves=25)


@SETTINGS
@given(st.one_of(_doc, st.binary(max_size=200)))
def test_any_line_is_an_event_or_an_invalid_with_a_known_code(value: Any) -> None:
    import json

    from collector.validate import REJECT_CODES, Invalid, Limits, parse_line

    if isinstance(value, bytes):
        line = value
    else:
        try:
            line = json.dumps(value, allow_nan=False).encode()
        except ValueError:
            return
    try:
        doc = parse_line(line, Limits(262144, 12, 1e12, 1e12))
    except Invalid as exc:
        assert exc.code in REJECT_CODES and exc.reason
        return
    assert isinstance(doc["event"], dict) and not any("." in k for k in doc)
