"""The test Elasticsearch node does what canhgac's Elasticsearch output relies on.

Templates (component + composable with `data_stream: {}` and a lifecycle), data streams
auto-created by bulk `create` with `_id`, the standard field types, search, 409 on a duplicate
`create`, per-item 429 when the write queue is full, and the data stream read/delete API.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch, NotFoundError

from tests.fixtures.elasticsearch import EsNode

pytestmark = [pytest.mark.integration, pytest.mark.elasticsearch]

MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "@timestamp": {"type": "date"},
        "message": {"type": "text"},
        "event": {"properties": {"id": {"type": "keyword"}, "severity": {"type": "long"}}},
        "source": {"properties": {"ip": {"type": "ip"}}},
        "risk": {"type": "double"},
        "blocked": {"type": "boolean"},
        "labels": {"type": "flattened"},
        "canhgac": {"type": "object", "properties": {"level": {"type": "keyword"}}},
    },
}


def event(n: int, ip: str = "10.1.2.3") -> dict[str, Any]:
    return {
        "@timestamp": f"2026-11-23T10:00:{n % 60:02d}Z",
        "message": f"Failed password for root from {ip} port 22 ssh2 #{n}",
        "event": {"id": f"ev-{n}", "severity": n % 5},
        "source": {"ip": ip},
        "risk": n / 10,
        "blocked": n % 2 == 0,
        "labels": {"host": f"web-{n % 3}", "zone": "dmz"},
        "canhgac": {"level": "3"},
    }


def create_ops(index: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    for doc in docs:
        ops.append({"create": {"_index": index, "_id": doc["event"]["id"]}})
        ops.append(doc)
    return ops


async def put_templates(es: AsyncElasticsearch, name: str, shards: int = 1) -> None:
    await es.cluster.put_component_template(name=f"{name}-mappings", template={"mappings": MAPPINGS})
    await es.indices.put_index_template(
        name=name,
        index_patterns=[f"logs-canhgac.{name}-*"],
        data_stream={},
        priority=500,
        composed_of=[f"{name}-mappings"],
        template={
            "settings": {"number_of_shards": shards, "number_of_replicas": 0},
            "lifecycle": {"data_retention": "90d"},
        },
    )


async def drop_templates(es: AsyncElasticsearch, name: str) -> None:
    await es.options(ignore_status=404).indices.delete_data_stream(name=f"logs-canhgac.{name}-*")
    await es.options(ignore_status=404).indices.delete_index_template(name=name)
    await es.options(ignore_status=404).cluster.delete_component_template(name=f"{name}-mappings")


@pytest.fixture
async def es(es_url: str) -> AsyncIterator[AsyncElasticsearch]:
    client = AsyncElasticsearch(es_url, request_timeout=30)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def name() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


async def test_info_and_ping(es: AsyncElasticsearch, es_url: str) -> None:
    assert es_url.startswith("http://127.0.0.1:")
    info = await es.info()
    assert info["version"]["number"].startswith("8.")
    assert info["tagline"] == "You Know, for Search"
    assert await es.ping()
    health = await es.cluster.health()
    assert health["number_of_nodes"] == 1
    assert health["status"] in ("green", "yellow")


async def test_data_stream_from_template_bulk_search_and_conflict(es: AsyncElasticsearch, name: str) -> None:
    stream = f"logs-canhgac.{name}-default"
    await put_templates(es, name)
    try:
        docs = [event(n, ip="10.1.2.3" if n < 3 else "192.0.2.7") for n in range(5)]
        resp = await es.bulk(operations=create_ops(stream, docs), refresh="wait_for")
        assert resp["errors"] is False
        statuses = [item["create"]["status"] for item in resp["items"]]
        assert statuses == [201] * 5
        assert all(item["create"]["_index"].startswith(f".ds-{stream}-") for item in resp["items"])
        assert [item["create"]["_id"] for item in resp["items"]] == [f"ev-{n}" for n in range(5)]

        # the data stream was auto-created from the template, lifecycle included
        ds = (await es.indices.get_data_stream(name=stream))["data_streams"]
        assert [d["name"] for d in ds] == [stream]
        assert ds[0]["template"] == name
        assert ds[0]["lifecycle"]["data_retention"] == "90d"
        assert ds[0]["status"] == "GREEN"
        lifecycle = await es.indices.get_data_lifecycle(name=stream)
        assert lifecycle["data_streams"] == [
            {"name": stream, "lifecycle": {"enabled": True, "data_retention": "90d"}}
        ]

        # mappings of every standard type as declared
        backing = ds[0]["indices"][0]["index_name"]
        props = (await es.indices.get_mapping(index=stream))[backing]["mappings"]["properties"]
        assert props["source"]["properties"]["ip"]["type"] == "ip"
        assert props["labels"]["type"] == "flattened"
        assert props["event"]["properties"]["severity"]["type"] == "long"
        assert props["risk"]["type"] == "double"
        assert props["blocked"]["type"] == "boolean"
        assert props["message"]["type"] == "text"

        # search: ip CIDR term, flattened key, full text, keyword, numeric range
        found = await es.search(index=stream, query={"term": {"source.ip": "10.0.0.0/8"}}, size=10)
        assert found["hits"]["total"]["value"] == 3
        found = await es.search(index=stream, query={"term": {"labels.host": "web-1"}})
        assert {h["_id"] for h in found["hits"]["hits"]} == {"ev-1", "ev-4"}
        found = await es.search(index=stream, query={"match": {"message": "password root"}})
        assert found["hits"]["total"]["value"] == 5
        found = await es.search(
            index=stream,
            query={"bool": {"filter": [{"term": {"canhgac.level": "3"}}, {"range": {"risk": {"gte": 0.3}}}]}},
        )
        assert {h["_id"] for h in found["hits"]["hits"]} == {"ev-3", "ev-4"}
        counted = await es.count(index=stream, query={"term": {"blocked": True}})
        assert counted["count"] == 3

        # a duplicate create with the same _id is a per-item 409; a new one still goes in
        again = await es.bulk(operations=create_ops(stream, [event(0), event(9)]), refresh="wait_for")
        assert again["errors"] is True
        first, second = (item["create"] for item in again["items"])
        assert first["status"] == 409
        assert first["error"]["type"] == "version_conflict_engine_exception"
        assert second["status"] == 201
        assert (await es.count(index=stream))["count"] == 6

        # strict mapping rejects an unknown field: a per-item 400
        bad = {**event(20), "unexpected": 1}
        rejected = await es.bulk(operations=create_ops(stream, [bad]))
        assert rejected["items"][0]["create"]["status"] == 400
        assert rejected["items"][0]["create"]["error"]["type"] == "strict_dynamic_mapping_exception"
    finally:
        await drop_templates(es, name)
    with pytest.raises(NotFoundError):
        await es.indices.get_data_stream(name=stream)


async def test_rollover_keeps_stream_writable(es: AsyncElasticsearch, name: str) -> None:
    stream = f"logs-canhgac.{name}-ops"
    await put_templates(es, name)
    try:
        await es.bulk(operations=create_ops(stream, [event(1)]), refresh="wait_for")
        rolled = await es.indices.rollover(alias=stream)
        assert rolled["rolled_over"] is True
        await es.bulk(operations=create_ops(stream, [event(2)]), refresh="wait_for")
        ds = (await es.indices.get_data_stream(name=stream))["data_streams"][0]
        assert ds["generation"] == 2
        assert len(ds["indices"]) == 2
        assert (await es.count(index=stream))["count"] == 2
    finally:
        await drop_templates(es, name)


async def test_full_write_queue_gives_per_item_429(es_node_factory: Callable[..., EsNode], name: str) -> None:
    # one write thread and a queue of one: a single bulk spread over 16 shards makes more
    # shard-level write requests than the node accepts at once, so some items come back 429
    # while the rest are created. (Concurrent bulks to such a node are instead rejected whole,
    # with an HTTP 429 for the request: the coordinating step runs on the same write pool.)
    node = es_node_factory("-Ethread_pool.write.size=1", "-Ethread_pool.write.queue_size=1")
    stream = f"logs-canhgac.{name}-default"
    async with AsyncElasticsearch(node.url, request_timeout=60, max_retries=0, retry_on_status=()) as es:
        await put_templates(es, name, shards=16)
        items: list[dict[str, Any]] = []
        for attempt in range(10):
            docs = [event(attempt * 1000 + n) for n in range(400)]
            resp = await es.bulk(operations=create_ops(stream, docs))
            items = [item["create"] for item in resp["items"]]
            if any(i["status"] == 429 for i in items) and any(i["status"] == 201 for i in items):
                break
        statuses = [i["status"] for i in items]
        assert 429 in statuses, f"no 429 among {len(statuses)} items: {sorted(set(statuses))}"
        assert 201 in statuses
        assert set(statuses) <= {201, 429}
        rejected = next(i for i in items if i["status"] == 429)
        assert rejected["error"]["type"] == "es_rejected_execution_exception"
        # the rejected items were not written: retrying exactly those succeeds (201, never 409)
        retry = [d for d, i in zip(docs, items, strict=True) if i["status"] == 429]
        for _ in range(20):
            resp = await es.bulk(operations=create_ops(stream, retry[:1]))
            if resp["items"][0]["create"]["status"] != 429:
                break
        assert resp["items"][0]["create"]["status"] == 201
