"""No loss, no duplicates: per-item 429s from a tiny write queue, and the node stopped and
restarted in the middle of a stream. Uses its own node (deploy/elasticsearch/start.sh)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from canhgac.schema import PRIORITY_SECURITY, new_event
from shipper.delivery import DeliveryConfig, DeliveryLoop
from shipper.outputs.elasticsearch import ElasticsearchOutput
from shipper.outputs.elasticsearch.config import load
from shipper.queue import DurableQueue
from tests.fixtures.collector import wait_for
from tests.fixtures.elasticsearch import START, STOP

pytestmark = [pytest.mark.integration, pytest.mark.elasticsearch]

DATASETS = ("auth", "process", "socket", "file")
SETTINGS = ("-Ethread_pool.write.size=1", "-Ethread_pool.write.queue_size=1")


def _events(n: int, start: int) -> list[dict]:
    return [
        new_event(DATASETS[i % len(DATASETS)], message=f"sự kiện {start + i}",
                  source={"ip": f"10.0.{i % 250}.1", "port": 1000 + i % 5000},
                  canhgac={"system": {"id": f"s{i % 3}", "level": 1 + i % 3},
                           "unit": {"name": "Sở Y tế"}})
        for i in range(n)
    ]


async def _run(*cmd: str, busy_retry: float = 0) -> None:
    """Run a start/stop script; with busy_retry, wait out a port still held after a stop
    (the stopped node's server-side connections sit in TIME_WAIT for up to a minute)."""
    deadline = time.monotonic() + busy_retry
    while True:
        proc = await asyncio.to_thread(subprocess.run, list(cmd), capture_output=True, text=True,
                                       timeout=300, check=False)
        if proc.returncode == 0 or "already in use" not in proc.stderr \
                or time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    assert proc.returncode == 0, proc.stderr[-2000:]


async def _all_ids(output: ElasticsearchOutput) -> list[str]:
    client = output.client
    index = output.config.search_index
    await client.indices.refresh(index=index)
    ids: list[str] = []
    after = None
    while True:
        kw = {"search_after": after} if after else {}
        resp = await client.search(index=index, size=5000, source=False,
                                   sort=[{"event.id": "asc"}], **kw)
        hits = resp["hits"]["hits"]
        if not hits:
            return ids
        ids.extend(h["_id"] for h in hits)
        after = hits[-1]["sort"]


async def test_per_item_429s_and_node_restart_lose_and_duplicate_nothing(
    es_node_factory, tmp_path: Path
) -> None:
    node = es_node_factory(*SETTINGS)
    port = node.url.rsplit(":", 1)[1]
    queue = DurableQueue(tmp_path / "spool.db", outputs=("elasticsearch",), synchronous="NORMAL")
    await queue.open()
    # six bulk requests in flight against a write pool of one: per-item 429s
    output = ElasticsearchOutput(load({"hosts": [node.url], "request_timeout": 10,
                                       "concurrency": 6}, "test"))
    loop = DeliveryLoop(queue, output, DeliveryConfig(batch_events=100, concurrency=6,
                                                      backoff_initial=0.05, backoff_max=1.0))
    generated: set[str] = set()

    async def produce(n: int, start: int) -> None:
        for k in range(0, n, 100):
            events = _events(100, start + k)
            generated.update(e["event"]["id"] for e in events)
            await queue.append([orjson.dumps(e) for e in events], PRIORITY_SECURITY)

    await loop.start()
    try:
        await produce(3000, 0)
        # wait until part of the stream is in, then take the node away mid-stream
        assert await wait_for(lambda: output.health.counts["delivered"] >= 500, timeout=60)
        await _run(str(STOP), "--data", str(node.home))
        await produce(3000, 3000)  # the collector keeps accepting while the node is down
        await asyncio.sleep(2)
        pending = (await queue.stats())["elasticsearch"]
        assert pending.pending_events > 0 and pending.oldest_pending_age_seconds > 1
        assert not output.health.up
        # same data directory, same port: the node comes back with what it had
        await _run(str(START), "--port", port, "--data", str(node.home), "--wait-for-status",
                   "yellow", *SETTINGS, busy_retry=120)
        assert await loop.flush(timeout=180), "the backlog did not drain after the restart"
        ids = await _all_ids(output)
    finally:
        await loop.stop()
        await queue.close()
    assert len(ids) == len(set(ids)), "duplicates in Elasticsearch"
    assert set(ids) == generated
    counts = output.health.counts
    assert counts["retried"] > 0, "the tiny write queue should have answered per-item 429s"
    assert counts["dead_lettered"] == counts["dead_letter_failed"] == 0
    assert counts["delivered"] + counts["duplicate"] >= len(generated)
    assert counts["delivered"] <= len(generated)


async def test_delivery_resumes_when_the_node_is_back_not_when_its_timer_ends(
    es_node_factory, tmp_path: Path
) -> None:
    """The node stops and comes back; the loop's backoff is far longer than the deadline:
    only the output's probe (cluster health during the backoff) can make the drain finish."""
    node = es_node_factory()
    port = node.url.rsplit(":", 1)[1]
    queue = DurableQueue(tmp_path / "spool.db", outputs=("elasticsearch",), synchronous="NORMAL")
    await queue.open()
    output = ElasticsearchOutput(load({"hosts": [node.url], "request_timeout": 10}, "test"))
    loop = DeliveryLoop(queue, output, DeliveryConfig(batch_events=100, concurrency=2,
                                                      backoff_initial=1800, backoff_max=3600,
                                                      probe_interval=1.0))
    generated: set[str] = set()

    async def produce(n: int, start: int) -> None:
        for k in range(0, n, 100):
            events = _events(100, start + k)
            generated.update(e["event"]["id"] for e in events)
            await queue.append([orjson.dumps(e) for e in events], PRIORITY_SECURITY)

    await loop.start()
    try:
        await produce(500, 0)
        assert await loop.flush(timeout=120)
        await _run(str(STOP), "--data", str(node.home))
        await produce(1000, 500)
        # a send failed: the loop now sleeps its backoff (at least 900 s)
        assert await wait_for(lambda: loop.stats.send_errors > 0, timeout=60)
        assert not loop.stats.up
        await _run(str(START), "--port", port, "--data", str(node.home), "--wait-for-status",
                   "yellow", busy_retry=120)
        assert await loop.flush(timeout=120), "delivery waited out its timer"
        assert loop.stats.up
        ids = await _all_ids(output)
    finally:
        await loop.stop()
        await queue.close()
    assert len(ids) == len(set(ids)), "duplicates in Elasticsearch"
    assert set(ids) == generated
