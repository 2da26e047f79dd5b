"""Coverage history through the real collector app: snapshot at start, a change snapshot when
an agent starts covering a system, the API and the CLI; and the Elasticsearch copy on the
real node (data stream, template with a 3-year lifecycle, idempotent ids)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from elasticsearch import AsyncElasticsearch

from canhgac.tls import client_context
from collector.alerts.access import read_token
from collector.coverage.history import HistoryStore
from tests.fixtures.collector import RunningCollector, gz_ndjson, start_collector, wait_for
from tests.fixtures.elasticsearch import searchable_count

pytestmark = [pytest.mark.integration]

ALL_PROBES = ("host_metrics", "session", "auth_log", "file_integrity", "network_sensor")
INVENTORY = """
province: "Thừa Thiên Huế"
systems:
  - id: cong-ttdt
    name: "Cổng thông tin điện tử tỉnh"
    unit: "Sở Thông tin và Truyền thông"
    level: 3
    hosts: [portal-web-01]
    approval: {approved: true, date: 2024-08-15}
    plan: {deployed: 2024-11-20}
  - id: his
    name: "Quản lý bệnh viện"
    unit: "Sở Y tế"
    level: 2
    hosts: [his-01]
"""


def _heartbeat() -> dict[str, Any]:
    from agent.health import heartbeat_event

    return heartbeat_event({"probes": {n: {"state": "running", "restarts": 0, "events": 1}
                                       for n in ALL_PROBES}})


def _history(running: RunningCollector) -> HistoryStore:
    [store] = [o for o in _lifespan_objects(running) if isinstance(o, HistoryStore)]
    return store


async def _start(tmp_path: Path, extra: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    inv = tmp_path / "inventory.yaml"
    inv.write_text(INVENTORY, encoding="utf-8")
    raw = {"inventory": str(inv), "heartbeat_interval": 1, "offline_after": "30s",
           "coverage": {"cache_ttl": "0.2s"}, **(extra or {})}
    return await start_collector(tmp_path, raw, components=(
        "collector.search", "collector.alerts", "collector.coverage"))


async def run_cli(*argv: str) -> int:
    from canhgac.cli import main

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return await asyncio.to_thread(main, list(argv))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


async def test_history_through_the_collector_api_and_cli(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    running, runner = await _start(tmp_path)
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date().isoformat()
    try:
        assert (running.state_dir / "history.db").exists()
        store = _history(running)
        assert {s.system for s in store.at(dt.date.fromisoformat(today))} == {"cong-ttdt", "his"}
        token = read_token(running.state_dir / "admin.token")
        auth = {"Authorization": f"Bearer {token}"}
        conn = aiohttp.TCPConnector(ssl=client_context(running.ca))
        async with aiohttp.ClientSession(connector=conn) as http:
            cred = await running.enroll(http, "cong-ttdt", "portal-web-01")

            async def monitored() -> bool:
                async with http.post(f"{running.url}/v1/events", data=gz_ndjson([_heartbeat()]),
                                     headers={"Authorization": f"Bearer {cred}",
                                              "Content-Encoding": "gzip"}) as r:
                    assert r.status == 200, await r.text()
                async with http.get(f"{running.url}/v1/coverage/history",
                                    params={"system": "cong-ttdt", "since": "30d"},
                                    headers=auth) as r:
                    assert r.status == 200, await r.text()
                    entries = (await r.json())["entries"]
                return bool(entries) and entries[-1]["states"]["monitoring"] == "full"

            assert await wait_for(monitored, timeout=20, interval=0.3)
            async with http.get(f"{running.url}/v1/coverage/history",
                                params={"system": "cong-ttdt", "since": "30d"}, headers=auth) as r:
                entries = (await r.json())["entries"]
            assert entries[0]["reason"] == "start" and entries[0]["states"]["monitoring"] == "none"
            assert entries[-1]["reason"] == "change" and "monitoring" in entries[-1]["changed"]

            async with http.get(f"{running.url}/v1/coverage", params={"at": today},
                                headers=auth) as r:
                body = await r.json()
            assert r.status == 200 and body["at"] == today
            cong = next(s for s in body["systems"] if s["id"] == "cong-ttdt")
            assert cong["layers"]["monitoring"]["ratio"] == 1.0
            async with http.get(f"{running.url}/v1/coverage", params={"at": "31/02/2025"},
                                headers=auth) as r:
                assert r.status == 400 and "not a date" in (await r.json())["error"]

        # the CLI, as a person types it
        cfg = tmp_path / "collector.yaml"
        cfg.write_text(orjson.dumps({"state_dir": str(running.state_dir)}).decode(),
                       encoding="utf-8")
        common = ("--config", str(cfg), "--url", running.url, "--ca", str(running.ca))
        capsys.readouterr()
        assert await run_cli("coverage", "--system", "cong-ttdt", "--since", "1y", "--color",
                             "never", *common) == 0
        out = capsys.readouterr().out
        assert "Cổng thông tin điện tử tỉnh" in out and "monitoring" in out and today in out
        assert await run_cli("coverage", "--at", today, "--format", "json", *common) == 0
        assert orjson.loads(capsys.readouterr().out)["at"] == today
        assert await run_cli("coverage", "--at", "2999-01-01", *common) == 2
        assert "is in the future" in capsys.readouterr().err
        assert await run_cli("coverage", "--system", "khong-co", "--since", "1y", *common) == 2
        assert "unknown system 'khong-co'" in capsys.readouterr().err
    finally:
        await runner.cleanup()


@pytest.mark.elasticsearch
async def test_history_goes_to_its_own_data_stream(es_url: str, tmp_path: Path) -> None:
    ns = "hist" + secrets.token_hex(3)
    running, runner = await _start(tmp_path, {"outputs": {"store": {}, "elasticsearch": {
        "hosts": [es_url], "namespace": ns, "replicas": 0}}})
    stream = f"canhgac-coverage-history-{ns}"
    es = AsyncElasticsearch(es_url)
    try:
        store = _history(running)

        async def delivered() -> bool:
            return await searchable_count(es, stream) == 2 and store.es_backlog() == 0

        assert await wait_for(delivered, timeout=30, interval=0.3)
        ds = (await es.indices.get_data_stream(name=stream))["data_streams"][0]
        assert ds["template"] == stream
        tpl = (await es.indices.get_index_template(name=stream))["index_templates"][0]
        assert tpl["index_template"]["template"]["lifecycle"]["data_retention"] == "1096d"
        life = await es.indices.get_data_lifecycle(name=stream)
        assert life["data_streams"][0]["lifecycle"]["data_retention"] == "1096d"
        hits = (await es.search(index=stream, query={"term": {"canhgac.system.id": "his"}}))
        [doc] = hits["hits"]["hits"]
        assert doc["_id"].startswith("his.") and doc["_id"].endswith(".0")
        src = doc["_source"]["canhgac"]
        assert src["unit"]["name"] == "Sở Y tế" and src["system"]["name"] == "Quản lý bệnh viện"
        assert src["coverage"]["layers"]["monitoring"]["state"] == "none"

        # a retry of what is already there (a lost answer) writes nothing twice
        store.db.execute("INSERT INTO es_pending SELECT sys, day, seq FROM snapshots")
        es_history = next(o for o in _lifespan_objects(running) if hasattr(o, "push_once"))
        assert await es_history.push_once() == 2
        await es.indices.refresh(index=stream)
        assert int((await es.count(index=stream))["count"]) == 2
        assert store.es_backlog() == 0
    finally:
        await runner.cleanup()
        await es.options(ignore_status=404).indices.delete_data_stream(name=stream)
        await es.options(ignore_status=404).indices.delete_index_template(name=stream)
        await es.close()


def _lifespan_objects(running: RunningCollector) -> list[Any]:
    """The objects behind ``ctx.add_startable`` lifespans (their closures hold them)."""
    out = []
    for lifespan in running.ctx.lifespans:
        for cell in lifespan.__closure__ or ():
            obj = cell.cell_contents
            out.append(getattr(obj, "__self__", obj))  # a bound method's object
    return list({id(o): o for o in out}.values())
