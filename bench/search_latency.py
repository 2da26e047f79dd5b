"""Ingest-to-searchable latency: an event born at an agent -> visible to an operator's search.

A real collector process (durable spool, default flush settings) with its search API; an
agent posts one small batch every ``1/rate`` seconds for ``--seconds``; a poller asks
``POST /v1/search`` every ``--poll`` seconds for every event not yet seen (one query:
``event.id:(a OR b ...)``). Latency = first time the search returns it - the event's birth
(just before it was posted). Prints p50/p95/max (target p95 <= 5 s).

    .venv/bin/python bench/search_latency.py --es-url http://127.0.0.1:19200
    .venv/bin/python bench/search_latency.py --backend store
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import percentile, start_collector
from canhgac.schema import new_event
from canhgac.tls import client_context
from collector.auth import AuthStore
from collector.search.model import Scope
from collector.search.operators import DB_NAME, OperatorStore


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--es-url", default=os.environ.get("CANHGAC_TEST_ES_URL",
                                                       "http://127.0.0.1:19200"))
    ap.add_argument("--backend", choices=["elasticsearch", "store"], default="elasticsearch")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--rate", type=float, default=5, help="batches per second")
    ap.add_argument("--batch-size", type=int, default=20)
    ap.add_argument("--poll", type=float, default=0.1, help="seconds between searches")
    args = ap.parse_args()

    ns = "lat" + secrets.token_hex(3)
    tmp = Path(tempfile.mkdtemp(prefix="canhgac-latency-"))
    outputs = ({"elasticsearch": {"hosts": [args.es_url], "namespace": ns, "replicas": 0}}
               if args.backend == "elasticsearch" else {"store": {}})
    proc, url, ca = start_collector(tmp, {"outputs": outputs, "components": ["search"],
                                          "search": {"backend": args.backend}})
    try:
        state = tmp / "collector"
        auth = AuthStore(state / "auth.db")
        ops = OperatorStore(state / DB_NAME)
        op_token = ops.create("bench", "viewer", Scope.everything())
        ssl_ctx = client_context(ca)
        born: dict[str, float] = {}
        seen: dict[str, float] = {}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_ctx)) as s:
            tok = auth.create_enroll_token("bench")
            async with s.post(f"{url}/v1/enroll", json={"token": tok, "hostname": "lat-1"}) as r:
                body = await r.json()
            agent_token = f"{body['agent_id']}.{body['secret']}"
            done = asyncio.Event()

            async def produce() -> None:
                end = time.monotonic() + args.seconds
                i = 0
                while time.monotonic() < end:
                    evs = [new_event("auth", action="ssh_login", outcome="failure",
                                     message="Failed password", host={"name": "lat-1"})
                           for _ in range(args.batch_size)]
                    t = time.time()
                    for e in evs:
                        born[e["event"]["id"]] = t
                    data = gzip.compress(b"\n".join(orjson.dumps(e) for e in evs))
                    async with s.post(f"{url}/v1/events", data=data, headers={
                            "Authorization": f"Bearer {agent_token}", "Content-Encoding": "gzip",
                            "X-Batch-Id": f"lat-{i}"}) as r:
                        assert r.status == 200, await r.text()
                    i += 1
                    await asyncio.sleep(1 / args.rate)
                done.set()

            async def poll() -> None:
                deadline = None
                while True:
                    pending = [k for k in born if k not in seen]
                    if done.is_set():
                        if not pending:
                            return
                        deadline = deadline or time.monotonic() + 60
                        if time.monotonic() > deadline:
                            print(f"{len(pending)} events never became searchable", file=sys.stderr)
                            return
                    for k in range(0, min(len(pending), 450), 90):  # queries <= 4096 chars
                        q = "event.id:(" + " OR ".join(pending[k:k + 90]) + ")"
                        async with s.post(f"{url}/v1/search", json={
                                "query": q, "since": "1h", "limit": 1000}, headers={
                                "Authorization": f"Bearer {op_token}"}) as r:
                            res = await r.json()
                            assert r.status == 200, res
                        now = time.time()
                        for h in res["hits"]:
                            seen.setdefault(h["event"]["id"], now)
                    await asyncio.sleep(args.poll)

            await asyncio.gather(produce(), poll())
        lat = [seen[k] - born[k] for k in seen]
        print(f"\ncanhgac ingest-to-searchable latency — backend {args.backend}, "
              f"{len(born)} events, {args.rate:g} batches/s of {args.batch_size}, poll {args.poll}s")
        print(f"  searchable   {len(seen):>8} of {len(born)}")
        print(f"  p50          {percentile(lat, 50):>8.2f} s")
        print(f"  p95          {percentile(lat, 95):>8.2f} s   (target <= 5 s)")
        print(f"  max          {max(lat, default=0):>8.2f} s")
    finally:
        proc.terminate()
        proc.wait(10)
        if args.backend == "elasticsearch":
            from elasticsearch import AsyncElasticsearch

            es = AsyncElasticsearch(args.es_url)
            await es.options(ignore_status=404).indices.delete_data_stream(
                name=f"logs-canhgac.*-{ns}*")
            await es.options(ignore_status=404).indices.delete_index_template(
                name=f"canhgac-*-{ns}*")
            await es.close()


if __name__ == "__main__":
    asyncio.run(main())
