"""What an agent sends cannot choose its system, hide a field from the checks, or make the
collector do unbounded work (issue 12, trust boundary 2, 4, 6 and 7). Real collector over
TLS; for the Elasticsearch test, the real test node too."""

from __future__ import annotations

import gzip
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from elasticsearch import AsyncElasticsearch

from canhgac.schema import new_event
from canhgac.tls import client_context
from tests.fixtures.collector import RunningCollector, start_collector, wait_for
from tests.fixtures.elasticsearch import search_when_ready

pytestmark = pytest.mark.integration

INVENTORY = """
systems:
  - {id: sys-a, name: "Hệ thống A", unit: "Sở A", level: 3}
  - {id: sys-b, name: "Hệ thống B", unit: "Sở B", level: 2}
"""


def _flat_claim() -> dict[str, Any]:
    """An event of system A's agent claiming, with flat dotted keys, to be system B's."""
    ev = new_event("auth", action="ssh_login", outcome="failure", host={"name": "web-a"})
    ev["canhgac.system.id"] = "sys-b"
    ev["canhgac.unit.name"] = "Sở B"
    ev["canhgac.system.level"] = 5
    return ev


async def _post(http: aiohttp.ClientSession, running: RunningCollector, cred: str, body: bytes,
                batch: str, gz: bool = True) -> aiohttp.ClientResponse:
    headers = {"Authorization": f"Bearer {cred}", "X-Batch-Id": batch,
               "Content-Type": "application/x-ndjson"}
    if gz:
        headers["Content-Encoding"] = "gzip"
    return await http.post(f"{running.url}/v1/events", data=body, headers=headers)


async def _setup(tmp_path: Path, **raw: Any) -> tuple[RunningCollector, Any]:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(INVENTORY, encoding="utf-8")
    return await start_collector(tmp_path, {"inventory": str(inv), **raw},
                                 components=("collector.detect", "collector.alerts"))


async def test_flat_dotted_keys_cannot_choose_the_system(tmp_path: Path) -> None:
    running, runner = await _setup(tmp_path)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                ssl=client_context(running.ca))) as http:
            cred = await running.enroll(http, "sys-a", "web-a")
            claim = _flat_claim()
            bad_ip = new_event("socket", host={"name": "web-a"})
            bad_ip["source.ip"] = "999.1.1.1"  # flat: used to slip past the IP check
            bad_port = new_event("socket", host={"name": "web-a"})
            bad_port["destination.port"] = 99999
            body = gzip.compress(b"\n".join(orjson.dumps(e) for e in (claim, bad_ip, bad_port)))
            async with await _post(http, running, cred, body, "flat-1") as r:
                ack = await r.json()
            assert r.status == 200 and ack["accepted"] == 1, ack
            assert [(e["line"], e["code"]) for e in ack["errors"]] == [(1, "field_type"),
                                                                       (2, "field_type")]
        store = running.ctx.outputs.store
        assert store is not None
        assert await wait_for(lambda: store.stored >= 1, timeout=30)
        import sqlite3

        con = sqlite3.connect(store.path)
        (doc,) = [orjson.loads(r[0]) for r in con.execute("SELECT doc FROM events")]
        con.close()
        assert doc["canhgac"]["system"]["id"] == "sys-a"
        assert doc["canhgac"]["unit"]["name"] == "Sở A" and doc["canhgac"]["system"]["level"] == 3
        assert not any("." in k for k in doc)  # one form: nested only
    finally:
        await runner.cleanup()


@pytest.mark.elasticsearch
async def test_flat_dotted_keys_cannot_choose_the_system_in_elasticsearch(
        es_url: str, tmp_path: Path) -> None:
    ns = "tb" + secrets.token_hex(3)
    running, runner = await _setup(tmp_path, outputs={
        "store": {}, "elasticsearch": {"hosts": [es_url], "namespace": ns}})
    es = AsyncElasticsearch(es_url)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                ssl=client_context(running.ca))) as http:
            cred = await running.enroll(http, "sys-a", "web-a")
            claim = _flat_claim()
            async with await _post(http, running, cred, gzip.compress(orjson.dumps(claim)),
                                   "flat-es") as r:
                assert r.status == 200 and (await r.json())["accepted"] == 1

        async def arrived() -> list[dict[str, Any]]:
            resp = await search_when_ready(es, f"logs-canhgac.*-{ns}.*",
                                           query={"term": {"event.id": claim["event"]["id"]}})
            return [] if resp is None else [h["_source"] for h in resp["hits"]["hits"]]

        assert await wait_for(arrived, timeout=30)
        (source,) = await arrived()
        assert source["canhgac"]["system"]["id"] == "sys-a"
        # Elasticsearch expands dotted names too: a query by the claimed system finds nothing.
        resp = await es.count(index=f"logs-canhgac.*-{ns}.*",
                              query={"term": {"canhgac.system.id": "sys-b"}})
        assert resp["count"] == 0
    finally:
        await es.close()
        await runner.cleanup()


async def test_gzip_members_trailing_bytes_and_newline_bombs(tmp_path: Path) -> None:
    running, runner = await _setup(tmp_path)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                ssl=client_context(running.ca))) as http:
            cred = await running.enroll(http, "sys-a", "web-a")
            a, b = (new_event("auth", host={"name": "web-a"}) for _ in range(2))
            # Two gzip members: both are read (before: the second was silently dropped).
            two = gzip.compress(orjson.dumps(a) + b"\n") + gzip.compress(orjson.dumps(b))
            async with await _post(http, running, cred, two, "members") as r:
                assert r.status == 200 and (await r.json())["accepted"] == 2
            # Garbage after the gzip body: refused, not ignored.
            async with await _post(http, running, cred, gzip.compress(orjson.dumps(a)) + b"junk",
                                   "trailing") as r:
                assert r.status == 400 and "trailing" in (await r.json())["error"]
            # 62 KiB of gzip inflating to 63 MiB of newlines: refused by counting, not splitting.
            bomb = gzip.compress(b"\n" * (63 * 1024 * 1024), 9)
            assert len(bomb) < 100_000
            async with await _post(http, running, cred, bomb, "bomb") as r:
                assert r.status == 413 and "lines in one batch" in (await r.json())["error"]
            async with http.get(f"{running.url}/healthz") as r:
                assert r.status == 200
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("ts", ["20240815T101010Z", "2024-W33-4T10:10:10+00:00",
                                "2024-08-15T10:10:10+00", "2024-08-15 10:10:10Z"])
def test_only_the_documented_timestamp_form_is_accepted(ts: str) -> None:
    """Issue 12 finding 7: validation accepted forms docs/protocol.md says it refuses."""
    from collector.validate import Invalid, Limits, parse_line

    ev = new_event("auth")
    ev["@timestamp"] = ts
    with pytest.raises(Invalid) as exc:
        parse_line(orjson.dumps(ev), Limits(262144, 12, 1e12, 1e12))
    assert exc.value.code == "timestamp"


def test_integers_beyond_64_bits_are_refused_not_turned_into_floats() -> None:
    from collector.validate import Invalid, Limits, parse_line

    line = orjson.dumps(new_event("auth"))[:-1] + b',"x":{"n":18446744073709551616}}'
    with pytest.raises(Invalid) as exc:
        parse_line(line, Limits(262144, 12, 1e12, 1e12))
    assert exc.value.code == "field_type" and "64 bits" in exc.value.reason
