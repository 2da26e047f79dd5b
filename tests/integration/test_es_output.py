"""The Elasticsearch output against a real node: data streams, ECS types, retention by level,
dead-letter with reason, exact counters, search through the collector API."""

from __future__ import annotations

import asyncio
import gzip
import secrets
from pathlib import Path

import aiohttp
import orjson
import pytest
from elasticsearch import AsyncElasticsearch

from canhgac.schema import new_event
from canhgac.tls import client_context
from shipper.output import Batch
from shipper.outputs.elasticsearch import ElasticsearchOutput
from shipper.outputs.elasticsearch.config import load
from tests.fixtures.collector import start_collector, wait_for
from tests.fixtures.elasticsearch import searchable_count

pytestmark = [pytest.mark.integration, pytest.mark.elasticsearch]

INVENTORY = """
systems:
  - id: cong-ttdt
    name: "Cổng thông tin điện tử tỉnh"
    unit: "Sở Thông tin và Truyền thông"
    level: 3
    hosts: [portal-web-01]
  - id: hr-yte
    name: "Quản lý nhân sự ngành Y tế"
    unit: "Sở Y tế"
    level: 2
    hosts: [hr-db-01]
  - id: egov-xa
    name: "Một cửa điện tử cấp xã"
    unit: "UBND xã"
    level: 1
    hosts: [egov-01]
"""


def _metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + ("{" if labels else "")) and (not labels or all(
                f'{k}="{v}"' in line for k, v in labels.items())):
            total += float(line.rsplit(" ", 1)[1])
    assert want is not None
    return total


async def test_agent_events_land_in_level_streams_with_ecs_types(es_url: str, tmp_path: Path) -> None:
    ns = "it" + secrets.token_hex(3)
    inv = tmp_path / "inventory.yaml"
    inv.write_text(INVENTORY, encoding="utf-8")
    raw = {"inventory": str(inv),
           "outputs": {"store": {}, "elasticsearch": {"hosts": [es_url], "namespace": ns,
                                                      "batch_events": 200}},
           "search": {"backend": "elasticsearch"}}
    running, runner = await start_collector(tmp_path, raw, components=("collector.search",))
    es = AsyncElasticsearch(es_url)
    try:
        conn = aiohttp.TCPConnector(ssl=client_context(running.ca))
        async with aiohttp.ClientSession(connector=conn) as http:
            sent: dict[str, set[str]] = {}
            for system, host, n in (("cong-ttdt", "portal-web-01", 30), ("hr-yte", "hr-db-01", 20),
                                    ("egov-xa", "egov-01", 10)):
                cred = await running.enroll(http, system, host)
                events = []
                for i in range(n):
                    if i % 2:
                        e = new_event("auth", action="ssh_login", outcome="failure",
                                      message=f"Đăng nhập thất bại lần {i}",
                                      source={"ip": f"10.0.{i}.7", "port": 40000 + i},
                                      user={"name": "root"}, host={"name": host})
                    else:
                        e = new_event("host.metrics", kind="metric", host={
                            "name": host, "cpu": {"usage": 0.25}, "uptime": 1000 + i})
                    events.append(e)
                sent[system] = {e["event"]["id"] for e in events}
                async with http.post(f"{running.url}/v1/events",
                                     data=gzip.compress(b"\n".join(map(orjson.dumps, events))),
                                     headers={"Authorization": f"Bearer {cred}",
                                              "Content-Encoding": "gzip",
                                              "Content-Type": "application/x-ndjson",
                                              "X-Batch-Id": f"b-{system}"}) as r:
                    assert r.status == 200, await r.text()
                    assert (await r.json())["accepted"] == n

            async def arrived() -> bool:
                return await searchable_count(es, f"logs-canhgac.*-{ns}.*") == 60
            assert await wait_for(arrived, timeout=30)

            # streams: dataset x retention class, never per system
            streams = (await es.indices.get_data_stream(name=f"logs-canhgac.*-{ns}.*"))["data_streams"]
            by_name = {d["name"]: d for d in streams}
            assert set(by_name) == {f"logs-canhgac.{ds}-{ns}.{c}" for ds in ("auth", "host.metrics")
                                    for c in ("l1", "l2", "l3")}
            assert by_name[f"logs-canhgac.auth-{ns}.l3"]["lifecycle"]["data_retention"] == "90d"
            assert by_name[f"logs-canhgac.auth-{ns}.l2"]["lifecycle"]["data_retention"] == "30d"
            for system, cls in (("cong-ttdt", "l3"), ("hr-yte", "l2"), ("egov-xa", "l1")):
                resp = await es.search(index=f"logs-canhgac.*-{ns}.{cls}", size=100,
                                       query={"match_all": {}})
                ids = {h["_source"]["event"]["id"] for h in resp["hits"]["hits"]}
                assert ids == sent[system]
                assert all(h["_source"]["canhgac"]["system"]["id"] == system
                           for h in resp["hits"]["hits"])
            # ECS types as mapped, not guessed
            mapping = await es.indices.get_field_mapping(
                index=f"logs-canhgac.auth-{ns}.l3",
                fields=["@timestamp", "source.ip", "source.port", "event.id", "message",
                        "canhgac.system.level", "host.cpu.usage"])
            types = {}
            for idx in mapping.body.values():
                for field, m in idx["mappings"].items():
                    types[field] = next(iter(m["mapping"].values()))["type"]
            assert types == {"@timestamp": "date", "source.ip": "ip", "source.port": "long",
                             "event.id": "keyword", "message": "keyword",
                             "canhgac.system.level": "long", "host.cpu.usage": "double"}

            # exact counters on /metrics
            async with http.get(f"{running.url}/metrics", headers=running.metrics_headers) as r:
                text = await r.text()
            assert _metric(text, "canhgac_elasticsearch_events_total", outcome="delivered") == 60
            assert _metric(text, "canhgac_elasticsearch_events_total", outcome="delivered",
                           dataset="auth") == 30
            assert "canhgac_elasticsearch_lag_events" in text

            # search through the collector API, scoped, on Elasticsearch
            ops = running.ctx.ports.operators
            viewer = ops.create("viewer-yte", "viewer", __import__(
                "collector.search.model", fromlist=["Scope"]).Scope(units=("Sở Y tế",)))
            body = {"query": 'message:"Đăng nhập"', "since": "1h", "top": "canhgac.system.id",
                    "limit": 500}
            async with http.post(f"{running.url}/v1/search", json=body,
                                 headers={"Authorization": f"Bearer {viewer}"}) as r:
                assert r.status == 200, await r.text()
                res = await r.json()
            assert res["backend"] == "elasticsearch"
            assert res["total"] == 10
            assert {h["canhgac"]["unit"]["name"] for h in res["hits"]} == {"Sở Y tế"}
            assert res["top"]["buckets"] == [{"key": "hr-yte", "count": 10}]
    finally:
        await runner.cleanup()
        await es.indices.delete_data_stream(name=f"logs-canhgac.*-{ns}*")
        await es.indices.delete_index_template(name=f"canhgac-*-{ns}*")
        await es.close()


async def test_mapping_conflict_goes_to_deadletter_with_reason(es_url: str) -> None:
    ns = "dl" + secrets.token_hex(3)
    out = ElasticsearchOutput(load({"hosts": [es_url], "namespace": ns}, "test"))
    await out.start()
    try:
        good = new_event("socket", source={"ip": "10.0.0.1", "port": 80},
                         canhgac={"system": {"id": "s", "level": 3}, "unit": {"name": "Sở Y tế"}})
        bad = new_event("socket", source={"ip": "not-an-ip", "port": "x"},
                        canhgac={"system": {"id": "s", "level": 3}, "unit": {"name": "Sở Y tế"}})
        lines = [orjson.dumps(good), orjson.dumps(bad), b"{broken json"]
        result = await out.send(Batch("b", lines))
        assert result.retry == [] and result.dead == []
        # the delivery loop counts these two dead-lettered, not delivered
        assert sorted(result.dead_lettered) == [1, 2]
        assert out.health.counts["delivered"] == 1
        assert out.health.counts["dead_lettered"] == 2
        dl = out.config.deadletter_stream
        await out.client.indices.refresh(index=dl)
        hits = (await out.client.search(index=dl, size=10))["hits"]["hits"]
        by_id = {h["_id"]: h["_source"] for h in hits}
        rec = by_id[bad["event"]["id"]]
        assert rec["event"]["original"] == lines[1].decode()
        assert "failed to parse field [source.ip] of type [ip]" in rec["error"]["message"]
        assert rec["error"]["type"] == "document_parsing_exception"
        assert rec["http"]["response"]["status_code"] == 400
        assert rec["canhgac"]["deadletter"]["stream"] == f"logs-canhgac.socket-{ns}.l3"
        assert rec["canhgac"]["unit"]["name"] == "Sở Y tế"
        assert any("not valid JSON" in r["error"]["message"] for r in by_id.values())
        # the same batch again: nothing new, no duplicates anywhere
        again = await out.send(Batch("b", lines))
        assert again.retry == [] and again.dead == [] and sorted(again.dead_lettered) == [1, 2]
        assert out.health.counts["duplicate"] == 3
        assert (await out.client.count(index=dl))["count"] == 2
    finally:
        await out.client.indices.delete_data_stream(name=f"logs-canhgac.*-{ns}*")
        await out.client.indices.delete_index_template(name=f"canhgac-*-{ns}*")
        await out.close()


async def test_unreachable_cluster_is_transient_and_templates_are_idempotent(es_url: str) -> None:
    from shipper.output import TransientError
    from shipper.outputs.elasticsearch import templates

    down = ElasticsearchOutput(load({"hosts": ["http://127.0.0.1:9"], "request_timeout": 2}, "t"))
    with pytest.raises(TransientError):
        await down.start()
    with pytest.raises(TransientError):
        await down.send(Batch("b", [orjson.dumps(new_event("auth"))]))
    await down.close()
    out = ElasticsearchOutput(load({"hosts": [es_url]}, "test"))
    await out.start()
    assert await templates.install(out.client, out.config) == []  # second time: nothing to do
    await out.close()
    await asyncio.sleep(0)
