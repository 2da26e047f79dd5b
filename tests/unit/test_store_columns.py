"""The store's column shortcut for keyword equality (collector.query.to_sql.COLUMNS) gives
exactly the documents' answer: text columns answer, numbers, booleans and absent values fall
back to the JSON, and NOT of a missing field still matches (found by bench/console.py: every
scoped search parsed the JSON of every row in its time range, 4-5 s over 1,000,000 events)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from collector.search.model import Scope, SearchRequest
from collector.search.store import StoreBackend
from tests.unit.test_query_corpus import BASE, load_store


def _doc(eid: str, dataset: Any = None, system: Any = None, unit: Any = None) -> dict[str, Any]:
    from canhgac.timeutil import from_epoch

    event: dict[str, Any] = {"id": eid, "kind": "event"}
    if dataset is not None:
        event["dataset"] = dataset
    cg: dict[str, Any] = {}
    if system is not None:
        cg["system"] = {"id": system}
    if unit is not None:
        cg["unit"] = {"name": unit}
    return {"@timestamp": from_epoch(BASE - 60), "event": event, "canhgac": cg}


DOCS = [
    _doc("t1", "auth", "cong-ttdt", "Sở Y tế"),
    _doc("t2", "process", "mot-cua", "Sở Thông tin và Truyền thông"),
    _doc("n1", 5, 7),  # numbers: the TEXT columns hold "5", "7"
    _doc("f1", 2.5, 1),  # "2.5"; and "1", which a boolean would also give
    _doc("s1", "1", "0"),  # strings that read like booleans' columns
    _doc("b1", True, False),  # booleans: keyword "true" / "false", columns "1" / "0"
    _doc("m1"),  # nothing
]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> StoreBackend:
    path: Path = tmp_path_factory.mktemp("cols") / "events.db"
    load_store(path, DOCS)
    return StoreBackend(path)


@pytest.mark.parametrize("query,expected", [
    ("event.dataset:auth", {"t1"}),
    ("event.dataset:5", {"n1"}),
    ("event.dataset:true", {"b1"}),
    ("canhgac.system.id:false", {"b1"}),
    ("canhgac.system.id:7", {"n1"}),
    ("event.dataset:2.5", {"f1"}),
    ("canhgac.system.id:1", {"f1"}),
    ("event.dataset:1", {"s1"}),
    ("canhgac.system.id:0", {"s1"}),
    ('canhgac.unit.name:"Sở Y tế"', {"t1"}),
    ("NOT event.dataset:auth", {"t2", "n1", "f1", "s1", "b1", "m1"}),
    ("NOT canhgac.unit.name:x", {"t1", "t2", "n1", "f1", "s1", "b1", "m1"}),
    ("NOT event.dataset:true", {"t1", "t2", "n1", "f1", "s1", "m1"}),
    ("event.kind:event AND NOT event.dataset:5", {"t1", "t2", "f1", "s1", "b1", "m1"}),
])
def test_column_equality_is_the_documents_answer(store: StoreBackend, query: str,
                                                 expected: set[str]) -> None:
    from canhgac.timeutil import from_epoch

    req = SearchRequest.build(query, start=from_epoch(BASE - 3600), end=from_epoch(BASE), limit=100)
    res = store.search_sync(req, req.filter_ast(Scope.everything()))
    assert {h["event"]["id"] for h in res.hits} == expected and res.total == len(expected)


def test_a_unit_scope_through_the_column(store: StoreBackend) -> None:
    from canhgac.timeutil import from_epoch

    req = SearchRequest.build("*", start=from_epoch(BASE - 3600), end=from_epoch(BASE), limit=100)
    res = store.search_sync(req, req.filter_ast(Scope(units=("Sở Y tế",))))
    assert [h["event"]["id"] for h in res.hits] == ["t1"]


def test_many_matches_page_along_the_time_index_in_the_same_order(tmp_path: Path) -> None:
    """Past WALK_TIME_INDEX matches the newest page is read along events_ts: the same rows,
    in the same order (time, then id, newest first; ties in time included)."""
    from canhgac.timeutil import from_epoch
    from collector.search.store import WALK_TIME_INDEX

    docs = []
    for i in range(WALK_TIME_INDEX * 2):
        d = _doc(f"e{i:05d}", "auth" if i % 3 else "process", "cong-ttdt", "Sở Y tế")
        d["@timestamp"] = from_epoch(BASE - 3000 + i // 4)  # four events per second: ties
        docs.append(d)
    load_store(tmp_path / "events.db", docs)
    store = StoreBackend(tmp_path / "events.db")
    req = SearchRequest.build("event.dataset:auth", start=from_epoch(BASE - 3600),
                              end=from_epoch(BASE), limit=50)
    res = store.search_sync(req, req.filter_ast(Scope(units=("Sở Y tế",))))
    auth = [d for d in docs if d["event"]["dataset"] == "auth"]
    newest = sorted(auth, key=lambda d: (d["@timestamp"], d["event"]["id"]), reverse=True)[:50]
    assert res.total == len(auth) >= WALK_TIME_INDEX
    assert [h["event"]["id"] for h in res.hits] == [d["event"]["id"] for d in newest]


def test_the_total_with_a_histogram_is_the_count(store: StoreBackend) -> None:
    """With a histogram the total is the sum of its buckets (one pass): the same number."""
    from canhgac.timeutil import from_epoch

    for query in ("*", "event.dataset:auth", "NOT event.dataset:true", "event.dataset:nothing"):
        kw: dict[str, Any] = {"start": from_epoch(BASE - 3600), "end": from_epoch(BASE), "limit": 0}
        plain = SearchRequest.build(query, **kw)
        hist = SearchRequest.build(query, histogram="5m", **kw)
        a = store.search_sync(plain, plain.filter_ast(Scope.everything()))
        b = store.search_sync(hist, hist.filter_ast(Scope.everything()))
        assert a.histogram is None and b.histogram is not None
        assert a.total == b.total == sum(x.count for x in b.histogram)
