"""A real collector whose state directory is on a small tmpfs that fills up.

While the disk is full: ingest answers 503 + Retry-After (the spool raises StorageFull,
a QueueFull), the store output's writes fail and show on /metrics (up 0, errors
counted), nothing crashes. Once the filler is deleted: delivery resumes by itself (no
restart), the refused batch is accepted on retry, and every event accepted is in the
store exactly once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from canhgac.schema import new_event
from canhgac.tls import client_context
from shipper.delivery import DeliveryConfig, DeliveryLoop
from tests.fixtures.collector import RunningCollector, gz_ndjson, start_collector, wait_for
from tests.fixtures.smallfs import fill, small_tmpfs

pytestmark = pytest.mark.integration


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path) as mnt:
        yield mnt


async def _metrics(s: aiohttp.ClientSession, running: RunningCollector) -> dict[str, float]:
    async with s.get(f"{running.url}/metrics", headers=running.metrics_headers) as r:
        assert r.status == 200
        text = await r.text()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            if sample.labels.get("output") == "store":
                out[sample.name] = sample.value
    return out


def _batch(tag: str, n: int) -> list[dict]:
    return [new_event("auth", message=f"{tag} {i}", labels={"tag": tag}) for i in range(n)]


async def test_full_state_disk_loses_nothing_and_delivery_resumes(small_fs: Path) -> None:
    running, runner = await start_collector(small_fs)
    try:
        store_loop = running.ctx.deliveries["store"]
        await store_loop.stop()  # hold what ingest accepts in the spool until the disk is full
        conn = aiohttp.TCPConnector(ssl=client_context(running.ca))
        async with aiohttp.ClientSession(connector=conn) as s:
            token = await running.enroll(s)
            hdr = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"}
            accepted: set[str] = set()
            first = _batch("before", 200)
            async with s.post(f"{running.url}/v1/events", data=gz_ndjson(first),
                              headers={**hdr, "X-Batch-Id": "before"}) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["accepted"] == 200
            accepted |= {e["event"]["id"] for e in first}

            filler = fill(small_fs)
            refused = _batch("during", 100)
            async with s.post(f"{running.url}/v1/events", data=gz_ndjson(refused),
                              headers={**hdr, "X-Batch-Id": "during"}) as r:
                assert r.status == 503, await r.text()
                assert int(r.headers["Retry-After"]) > 0
            spool = running.ctx.spool
            assert spool is not None and not spool.writable() and spool.storage_full

            # the output comes back while the disk is still full: its writes fail, it says so
            loop = DeliveryLoop(spool, store_loop.output,
                                DeliveryConfig(backoff_initial=0.05, probe_interval=0.2))
            running.ctx.deliveries["store"] = loop
            await loop.start()
            assert await wait_for(lambda: loop.stats.send_errors >= 2, 20)
            m = await _metrics(s, running)
            assert m["canhgac_output_up"] == 0
            assert m["canhgac_output_send_errors_total"] >= 2
            assert "canhgac_output_spool_errors_total" in m
            assert all(not t.done() for t in loop._tasks)

            filler.unlink()
            store = running.ctx.outputs.store
            assert store is not None
            assert await wait_for(lambda: store.stored >= len(accepted), 30), \
                "delivery did not resume after space came back"
            assert await wait_for(spool.writable, 10)
            # the agent retries the refused batch: accepted now, and delivered
            async with s.post(f"{running.url}/v1/events", data=gz_ndjson(refused),
                              headers={**hdr, "X-Batch-Id": "during"}) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["accepted"] == 100
            accepted |= {e["event"]["id"] for e in refused}
            assert await loop.flush(timeout=30)
            assert await wait_for(lambda: store.stored >= len(accepted), 30)
            m = await _metrics(s, running)
            assert m["canhgac_output_up"] == 1
            assert m["canhgac_output_events_delivered_total"] == len(accepted)
        assert store.duplicates == 0, "an event was delivered twice"
        db = sqlite3.connect(running.state_dir / "events.db")
        try:
            stored = [r[0] for r in db.execute(
                "SELECT json_extract(doc, '$.event.id') FROM events WHERE dataset='auth'")]
        finally:
            db.close()
        assert len(stored) == len(set(stored)) and set(stored) == accepted
    finally:
        await runner.cleanup()


async def test_readyz_is_503_while_the_spool_cannot_be_written(small_fs: Path) -> None:
    running, runner = await start_collector(small_fs)
    try:
        conn = aiohttp.TCPConnector(ssl=client_context(running.ca))
        async with aiohttp.ClientSession(connector=conn) as s:
            token = await running.enroll(s)
            hdr = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"}
            filler = fill(small_fs)
            async with s.post(f"{running.url}/v1/events", data=gz_ndjson(_batch("x", 10)),
                              headers=hdr) as r:
                assert r.status == 503 and int(r.headers["Retry-After"]) > 0
            async with s.get(f"{running.url}/readyz") as r:
                assert r.status == 503
            filler.unlink()
            spool = running.ctx.spool
            assert spool is not None
            assert await wait_for(spool.writable, 10)  # the spool's own probe write
            async with s.get(f"{running.url}/readyz") as r:
                assert r.status == 200
    finally:
        await runner.cleanup()


async def test_an_io_error_on_the_spool_is_a_503_not_a_500(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 12 finding: a spool write failure surfaced as 500 with a traceback."""
    from shipper.queue import StorageError

    running, runner = await start_collector(tmp_path)
    try:
        assert running.ctx.spool is not None

        async def broken(*_a: object, **_k: object) -> None:
            raise StorageError(5, "simulated I/O error writing spool.db")

        monkeypatch.setattr(running.ctx.spool, "append", broken)
        conn = aiohttp.TCPConnector(ssl=client_context(running.ca))
        async with aiohttp.ClientSession(connector=conn) as s:
            token = await running.enroll(s)
            async with s.post(f"{running.url}/v1/events", data=gz_ndjson([new_event("auth")]),
                              headers={"Authorization": f"Bearer {token}",
                                       "Content-Encoding": "gzip", "X-Batch-Id": "io-1"}) as r:
                assert r.status == 503 and r.headers["Retry-After"] == "10"
                assert "cannot be written" in (await r.json())["error"]
    finally:
        await runner.cleanup()
