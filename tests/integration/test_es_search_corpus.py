"""The same corpus of queries on a real Elasticsearch and on the embedded store: same ids.

Events go into Elasticsearch through the real output (templates, data streams,
bulk create), into the store through the store's own row writer.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from collector.search.es import ElasticsearchBackend
from collector.search.model import Scope
from collector.search.store import StoreBackend
from shipper.output import Batch
from shipper.outputs.elasticsearch import ElasticsearchOutput
from shipper.outputs.elasticsearch.config import load
from tests.unit.test_query_corpus import CORPUS, EVENTS, load_store, request, time_queries

pytestmark = [pytest.mark.integration, pytest.mark.elasticsearch]


@pytest.fixture
async def backends(es_url: str, tmp_path) -> AsyncIterator[tuple[ElasticsearchBackend, StoreBackend]]:
    ns = "corpus" + secrets.token_hex(3)
    config = load({"hosts": [es_url], "namespace": ns}, "test")
    out = ElasticsearchOutput(config)
    await out.start()
    result = await out.send(Batch("corpus", [orjson.dumps(e) for e in EVENTS]))
    assert result.retry == [] and result.dead == []
    assert out.health.counts["delivered"] == len(EVENTS)
    await out.client.indices.refresh(index=config.search_index)
    path = tmp_path / "events.db"
    load_store(path)
    store = StoreBackend(path)
    try:
        yield ElasticsearchBackend(out.client, config.search_index), store
    finally:
        await store.close()
        await out.client.indices.delete_data_stream(name=f"logs-canhgac.*-{ns}*")
        await out.client.indices.delete_index_template(name=f"canhgac-*-{ns}*")
        await out.close()


async def _both(backends: Any, query: str, scope: Scope | None = None,
                **kw: Any) -> tuple[Any, Any]:
    es, store = backends
    req = request(query, **kw)
    node = req.filter_ast(scope or Scope.everything())
    return await es.search(req, node), await store.search(req, node)


def _ids(result: Any) -> set[str]:
    return {h["event"]["id"] for h in result.hits}


async def test_same_results_on_elasticsearch_and_store(backends) -> None:
    mismatches = []
    queries: dict[str, set[str] | None] = {**CORPUS, **time_queries()}
    for query, expected in queries.items():
        es_res, store_res = await _both(backends, query)
        if _ids(es_res) != _ids(store_res) or es_res.total != store_res.total:
            mismatches.append((query, sorted(_ids(es_res)), sorted(_ids(store_res))))
        elif expected is not None and _ids(es_res) != expected:
            mismatches.append((query, "expected", sorted(expected), sorted(_ids(es_res))))
    assert not mismatches, "\n".join(map(str, mismatches))


async def test_hits_order_top_and_histogram_agree(backends) -> None:
    for query, top in (("", "host.name"), ("event.dataset:auth", "source.ip"),
                       ("*", "event.dataset"), ("*", "source.port"), ("*", "canhgac.unit.name")):
        es_res, store_res = await _both(backends, query, top=top, top_size=5, histogram="10m")
        assert [h["event"]["id"] for h in es_res.hits] == [h["event"]["id"] for h in store_res.hits]
        assert [(b.key, b.count) for b in es_res.top] == [(b.key, b.count) for b in store_res.top], top
        assert [(b.key, b.count) for b in es_res.histogram] == \
            [(b.key, b.count) for b in store_res.histogram]
    # documents come back intact (diacritics included)
    es_res, _ = await _both(backends, 'user.name:"Trần Thị Bình"')
    assert es_res.hits[0]["canhgac"]["unit"]["name"] == "Sở Thông tin và Truyền thông"


async def test_scope_cannot_be_escaped_on_either_backend(backends) -> None:
    scope = Scope(units=("Sở Y tế",))
    visible = {e["event"]["id"] for e in EVENTS if e["canhgac"]["unit"]["name"] == "Sở Y tế"}
    for query in ("*", "NOT canhgac.unit.name:\"Sở Y tế\"", "canhgac.unit.name:*",
                  "canhgac.unit.name:Sở* OR NOT canhgac.unit.name:x",
                  "canhgac.system.id:hue-portal", "(event.dataset:auth OR NOT event.dataset:auth)",
                  "canhgac.unit.name:[* TO *]", "_exists_:canhgac"):
        for res in await _both(backends, query, scope=scope, top="canhgac.unit.name",
                               histogram="1h"):
            assert _ids(res) <= visible, (query, res.backend)
            assert {b.key for b in res.top} <= {"Sở Y tế"}, (query, res.backend)
            assert sum(b.count for b in res.histogram) == res.total


async def test_generated_queries_obey_boolean_laws_and_agree(backends) -> None:
    """Property-based (issue 12): random combinations of corpus queries on both backends."""
    import asyncio

    from hypothesis import given, settings

    from tests.fixtures.query_strategies import query
    from tests.unit.test_query_corpus import ALL

    loop = asyncio.get_running_loop()

    def ids(q: str) -> tuple[set[str], set[str]]:
        es_res, store_res = asyncio.run_coroutine_threadsafe(_both(backends, q), loop).result(60)
        return _ids(es_res), _ids(store_res)

    @settings(max_examples=30, deadline=None)
    @given(query, query)
    def check(a: str, b: str) -> None:
        (ea, sa), (eb, sb) = ids(a), ids(b)
        assert ea == sa and eb == sb, (a, b)
        assert ids(f"NOT {a}") == (ALL - ea, ALL - ea)
        assert ids(f"{a} AND {b}") == (ea & eb, ea & eb)
        assert ids(f"{a} OR {b}") == (ea | eb, ea | eb)

    await asyncio.to_thread(check)
