"""Above the spool's high-water mark the collector answers 503 + Retry-After, and
everything it had acknowledged is still delivered once the output catches up."""

from __future__ import annotations

import aiohttp

from canhgac.schema import new_event
from canhgac.tls import client_context
from tests.fixtures.collector import gz_ndjson, start_collector, wait_for


async def test_spool_high_water_gives_503_and_loses_nothing(tmp_path):
    running, runner = await start_collector(
        tmp_path, {"limits": {"spool_max_bytes": 1024 * 1024, "high_water": 0.5}})
    try:
        store_loop = running.ctx.deliveries["store"]
        await store_loop.stop()  # the output stalls: the spool can only grow
        conn = aiohttp.TCPConnector(ssl=client_context(running.ca))
        async with aiohttp.ClientSession(connector=conn) as s:
            token = await running.enroll(s)
            hdr = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"}
            acked: set[str] = set()
            statuses = []
            for i in range(200):
                events = [new_event("process", message="x" * 400, labels={"i": str(i)})
                          for _ in range(50)]
                async with s.post(f"{running.url}/v1/events", data=gz_ndjson(events),
                                  headers={**hdr, "X-Batch-Id": f"b{i}"}) as r:
                    statuses.append(r.status)
                    if r.status == 200:
                        acked |= {e["event"]["id"] for e in events}
                    else:
                        assert r.status == 503
                        assert int(r.headers["Retry-After"]) > 0
                        break
            assert statuses[-1] == 503, "spool never pushed back"
            async with s.get(f"{running.url}/readyz") as r:
                assert r.status == 503
            # The output comes back: the backlog drains, readiness returns.
            from shipper.delivery import DeliveryLoop

            loop = DeliveryLoop(running.ctx.spool, store_loop.output)
            running.ctx.deliveries["store"] = loop
            await loop.start()
            store = running.ctx.outputs.store
            assert await wait_for(lambda: store.stored >= len(acked), 30)
            async with s.get(f"{running.url}/readyz") as r:
                assert r.status == 200
        import sqlite3

        db = sqlite3.connect(running.state_dir / "events.db")
        stored = {r[0] for r in db.execute(
            "SELECT json_extract(doc, '$.event.id') FROM events WHERE dataset='process'")}
        assert stored == acked
    finally:
        await runner.cleanup()
