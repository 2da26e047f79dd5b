"""Ingest with worker processes: same contract, and workers never outlive the collector."""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
import sqlite3

import aiohttp
import orjson
import psutil
import pytest

from canhgac.schema import new_event
from canhgac.tls import client_context
from collector.app import INGEST_KEY
from tests.fixtures.collector import gz_ndjson, start_collector, wait_for
from tests.fixtures.common import free_port
from tests.fixtures.procs import CollectorProc, wait_until

pytestmark = pytest.mark.integration


def headers(token: str, batch: str | None = None) -> dict[str, str]:
    h = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"}
    if batch:
        h["X-Batch-Id"] = batch
    return h


def stored_docs(state_dir) -> list[dict]:
    path = state_dir / "events.db"
    if not path.exists():
        return []
    db = sqlite3.connect(path)
    try:
        return [orjson.loads(r[0]) for r in db.execute("SELECT doc FROM events")]
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def worker_pids(pid: int) -> set[int]:
    try:
        kids = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return set()
    out = set()
    for k in kids:
        try:
            if "spawn_main" in " ".join(k.cmdline()):
                out.add(k.pid)
        except psutil.Error:
            pass
    return out


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
async def pooled(tmp_path):
    running, runner = await start_collector(
        tmp_path, {"ingest_workers": 2, "limits": {"max_events_per_batch": 300}})
    ingest = running.ctx.app[INGEST_KEY]
    ingest.workers.inline_below = 0  # every batch goes to a worker, however small
    assert ingest.workers.ready == 0  # none started before a batch needs one
    ingest.workers.spawn()
    assert await wait_for(lambda: ingest.workers.ready == 2, timeout=60)
    conn = aiohttp.TCPConnector(ssl=client_context(running.ca))
    async with aiohttp.ClientSession(connector=conn) as session:
        yield running, session, ingest
    await runner.cleanup()
    assert ingest.workers.ready == 0


async def test_workers_keep_the_ingest_contract(pooled):
    collector, session, ingest = pooled
    assert set(ingest.workers.pids) <= worker_pids(os.getpid())
    token = await collector.enroll(session)
    url = f"{collector.url}/v1/events"
    good = [new_event("process", action="start", process={"pid": i}) for i in range(5)]
    good[0]["canhgac"] = {"system": {"id": "someone-else"}, "scan": {"ports": 9}}
    lines = [orjson.dumps(e) for e in good] + [b"{bad", orjson.dumps(new_event("nope"))]
    async with session.post(url, data=gzip.compress(b"\n".join(lines)),
                            headers=headers(token, "w-1")) as r:
        assert r.status == 200
        ack = await r.json()
    assert ack == {"batch_id": "w-1", "accepted": 5, "duplicate": 0, "rejected": 2, "errors": [
        {"line": 5, "code": "json", "reason": ack["errors"][0]["reason"]},
        {"line": 6, "code": "schema", "reason": ack["errors"][1]["reason"]}]}
    assert ingest.workers.stats.batches == 1 and ingest.workers.stats.inline == 0
    assert ingest.enricher.overrides == 1
    # The same batch id again: nothing stored twice, the original counts as duplicates.
    async with session.post(url, data=gzip.compress(b"\n".join(lines)),
                            headers=headers(token, "w-1")) as r:
        assert (await r.json())["duplicate"] == 5
    assert await wait_for(lambda: len(stored_docs(collector.state_dir)) == 5)
    docs = {d["event"]["id"]: d for d in stored_docs(collector.state_dir)}
    first = docs[good[0]["event"]["id"]]
    assert first["canhgac"]["system"] == {"id": "sys-1"} and first["canhgac"]["scan"] == {"ports": 9}
    # Whole-request refusals come back from the worker with the same statuses.
    async with session.post(url, data=b"plain", headers=headers(token)) as r:
        assert r.status == 400
    async with session.post(url, data=gzip.compress(b"0" * (80 * 1024 * 1024)),
                            headers=headers(token)) as r:
        assert r.status == 413
    async with session.post(url, data=gz_ndjson([new_event("auth")] * 301),
                            headers=headers(token)) as r:
        assert r.status == 413 and "301 events" in (await r.json())["error"]
    async with session.get(f"{collector.url}/metrics", headers=collector.metrics_headers) as r:
        text = await r.text()
    assert "canhgac_ingest_workers 2.0" in text
    # Counted per line received: the retried batch's lines were rejected again.
    assert 'canhgac_ingest_events_rejected_total{reason="json"} 2.0' in text
    assert 'canhgac_ingest_events_rejected_total{reason="schema"} 2.0' in text
    assert "canhgac_ingest_payload_overrides_total 2.0" in text


async def test_a_killed_worker_loses_nothing_and_is_restarted(pooled):
    collector, session, ingest = pooled
    token = await collector.enroll(session)
    url = f"{collector.url}/v1/events"
    batches = [[new_event("auth", outcome="failure", message="x" * 200) for _ in range(300)]
               for _ in range(12)]

    async def send(i: int, events: list[dict]) -> int:
        async with session.post(url, data=gz_ndjson(events), headers=headers(token, f"k-{i}")) as r:
            await r.read()
            return r.status

    victim = ingest.workers.pids[0]
    sends = [asyncio.create_task(send(i, b)) for i, b in enumerate(batches)]
    await asyncio.sleep(0)  # let the first requests reach the workers
    os.kill(victim, signal.SIGKILL)
    assert await asyncio.gather(*sends) == [200] * len(batches)
    ids = {e["event"]["id"] for b in batches for e in b}
    assert await wait_for(lambda: {d["event"]["id"] for d in stored_docs(collector.state_dir)} == ids,
                          timeout=30)
    # Started again (after a delay), with a new pid; the restart is counted.
    assert await wait_for(lambda: ingest.workers.ready == 2 and victim not in ingest.workers.pids,
                          timeout=60)
    assert ingest.workers.stats.restarts == 1
    async with session.get(f"{collector.url}/metrics", headers=collector.metrics_headers) as r:
        assert "canhgac_ingest_worker_restarts_total 1.0" in await r.text()


async def post_a_large_batch(collector: CollectorProc) -> None:
    """Enroll an agent and send one batch big enough to be sent to a worker."""
    conn = aiohttp.TCPConnector(ssl=client_context(collector.ca))
    async with aiohttp.ClientSession(connector=conn) as s:
        async with s.post(f"{collector.url}/v1/enroll",
                          json={"token": collector.token(), "hostname": "h"}) as r:
            body = await r.json()
        token = f"{body['agent_id']}.{body['secret']}"
        events = [new_event("auth", message=f"try {i}") for i in range(300)]
        async with s.post(f"{collector.url}/v1/events", data=gz_ndjson(events),
                          headers=headers(token)) as r:
            assert r.status == 200 and (await r.json())["accepted"] == 300


def test_workers_die_with_the_collector_on_sigterm_and_kill9(tmp_path):
    collector = CollectorProc(tmp_path, free_port(), extra={"ingest_workers": 2})
    for how in ("sigterm", "kill9"):
        collector.start()
        assert collector.proc is not None
        pid = collector.proc.pid
        assert worker_pids(pid) == set()  # started by the first batch that needs one
        asyncio.run(post_a_large_batch(collector))
        assert wait_until(lambda pid=pid: len(worker_pids(pid)) == 2, 60), "workers did not start"
        pids = worker_pids(pid)
        if how == "kill9":
            collector.kill9()
        else:
            collector.proc.send_signal(signal.SIGTERM)
            assert collector.proc.wait(30) == 0
        assert wait_until(lambda pids=pids: all(gone(p) for p in pids), 30), f"orphans ({how}): {pids}"


async def test_stopping_while_workers_start_leaves_no_process(tmp_path):
    before = worker_pids(os.getpid())
    running, runner = await start_collector(tmp_path, {"ingest_workers": 2})
    ingest = running.ctx.app[INGEST_KEY]
    ingest.workers.spawn()
    assert await wait_for(lambda: len(worker_pids(os.getpid()) - before) == 2, timeout=60)
    started = worker_pids(os.getpid()) - before
    await runner.cleanup()  # most likely before the workers said hello
    assert all(gone(p) for p in started)


async def test_the_loop_prepares_a_batch_itself_only_when_every_worker_is_full():
    """``depth`` batches wait at a worker; the next one is prepared on the event loop.

    Default 8 (DEFAULT_DEPTH): 8 batches at once all go to the one worker, a 9th is
    prepared in-process. Each request that goes to a worker takes its slot before it
    first waits, so which ones overflow does not depend on timing.
    """
    from collector.auth import AgentRecord
    from collector.enrich import Enricher
    from collector.ingest_workers import DEFAULT_DEPTH, BatchJob, IngestWorkers, Prepared
    from collector.inventory import Inventory, InventoryHolder
    from collector.validate import Limits

    job = BatchJob(Limits(65536, 12, 300.0, 86400.0), 1 << 20, 1000,
                   AgentRecord("agent-1", "hash", "sys-1", "web-01", 0.0), None)
    body = gzip.compress(b"\n".join(orjson.dumps(new_event("process", process={"pid": i}))
                                    for i in range(20)))
    enricher = Enricher(InventoryHolder(Inventory()))
    workers = IngestWorkers(1)
    assert workers.depth == DEFAULT_DEPTH == 8
    await workers.start()
    workers.inline_below = 0
    workers.spawn()
    try:
        assert await wait_for(lambda: workers.ready == 1, timeout=60)
        for n, to_worker, in_loop in ((8, 8, 0), (9, 8, 1)):
            before = (workers.stats.batches, workers.stats.busy)
            results = await asyncio.gather(*(workers.prepare(body, True, job, enricher)
                                             for _ in range(n)))
            assert all(isinstance(r, Prepared) and len(r.events) == 20 for r in results)
            assert (workers.stats.batches - before[0], workers.stats.busy - before[1]) == (
                to_worker, in_loop)
        workers.depth = 1  # e.g. a busier setting: the rest of a burst goes to the loop
        before = (workers.stats.batches, workers.stats.busy)
        await asyncio.gather(*(workers.prepare(body, True, job, enricher) for _ in range(3)))
        assert (workers.stats.batches - before[0], workers.stats.busy - before[1]) == (1, 2)
    finally:
        await workers.stop()
