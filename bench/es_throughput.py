"""Elasticsearch throughput: (a) through the collector vs (b) bulk-loaded directly.

(a) simulated agents post gzip NDJSON batches to a real collector process
    (`canhgac collector run`, durable spool, fsync per commit) whose only output is
    Elasticsearch; the clock stops when every event is searchable in Elasticsearch.
(b) the same documents bulk-loaded with the client's ``async_streaming_bulk``
    (``create`` with ``_id``, same data streams and templates), clock stopped the same way;
    (b') the same with as many parallel streams as the output's ``concurrency``, for a
    like-for-like comparison.

Prints both rates and their ratio (target: (a) >= 0.85 x (b)). Each run uses its own
namespace and deletes its data streams afterwards.

    .venv/bin/python bench/es_throughput.py --es-url http://127.0.0.1:19200 --events 60000
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
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import proc_stats, start_collector
from canhgac.schema import new_event
from canhgac.tls import client_context
from collector.auth import AuthStore
from shipper.outputs.elasticsearch import make_client, templates
from shipper.outputs.elasticsearch.config import load
from shipper.outputs.elasticsearch.encoder import encode

DATASETS = ("process", "host.metrics", "auth", "socket")


def make_events(n: int, agent: int) -> list[dict[str, Any]]:
    return [
        new_event(DATASETS[i % 4], action="bench", host={"name": f"bench-{agent}"},
                  message=f"Đăng nhập thất bại {i}" if i % 4 == 2 else None,
                  process={"pid": 1000 + i, "name": "sshd", "command_line": "/usr/sbin/sshd -D"},
                  user={"name": "root"}, source={"ip": "10.0.0.5", "port": 50000 + i % 1000})
        for i in range(n)
    ]


async def wait_count(client: Any, index: str, n: int, timeout: float) -> float:
    """Seconds until ``n`` documents are searchable (polling with refresh)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        await client.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
        c = await client.count(index=index, ignore_unavailable=True, allow_no_indices=True)
        if c["count"] >= n:
            return time.perf_counter()
        await asyncio.sleep(0.2)
    raise SystemExit(f"only {c['count']} of {n} documents arrived within {timeout:.0f} s")


async def direct(es_url: str, events: list[list[dict[str, Any]]], chunk: int,
                 streams: int = 1) -> float:
    from elasticsearch.helpers import async_streaming_bulk

    ns = "bd" + secrets.token_hex(3)
    cfg = load({"hosts": [es_url], "namespace": ns, "replicas": 0}, "bench")
    client = make_client(cfg)
    await templates.install(client, cfg)
    docs = []
    for a, evs in enumerate(events):
        for e in evs:
            e = {**e, "canhgac": {"system": {"id": "bench", "level": 3}, "agent": {"id": f"a{a}"}}}
            docs.append(e)
    lines = [orjson.dumps(d) for d in docs]
    items = encode(lines, cfg).items

    def actions(part: int):  # type: ignore[no-untyped-def]
        for k, (item, doc) in enumerate(zip(items, docs, strict=True)):
            if k % streams == part:
                yield {"_op_type": "create", "_index": item.stream, "_id": item.doc_id,
                       "_source": doc}

    failed = 0

    async def stream(part: int) -> None:
        nonlocal failed
        async for ok, _ in async_streaming_bulk(client, actions(part), chunk_size=chunk,
                                                max_chunk_bytes=8 * 2**20, raise_on_error=False):
            failed += not ok

    t0 = time.perf_counter()
    await asyncio.gather(*(stream(p) for p in range(streams)))
    t1 = await wait_count(client, cfg.search_index, len(docs), 300)
    await client.indices.delete_data_stream(name=f"logs-canhgac.*-{ns}*")
    await client.indices.delete_index_template(name=f"canhgac-*-{ns}*")
    await client.close()
    if failed:
        print(f"  direct path: {failed} items failed", file=sys.stderr)
    return len(docs) / (t1 - t0)


async def through_collector(es_url: str, events: list[list[dict[str, Any]]], batch: int,
                            components: list[str]) -> tuple[float, float]:
    ns = "bc" + secrets.token_hex(3)
    tmp = Path(tempfile.mkdtemp(prefix="canhgac-es-bench-"))
    proc, url, ca = start_collector(tmp, {
        "outputs": {"elasticsearch": {"hosts": [es_url], "namespace": ns, "replicas": 0}},
        "components": components})
    cfg = load({"hosts": [es_url], "namespace": ns}, "bench")
    client = make_client(cfg)
    try:
        auth = AuthStore(tmp / "collector" / "auth.db")
        ssl_ctx = client_context(ca)
        bodies: list[list[bytes]] = []
        tokens: list[str] = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_ctx)) as s:
            for a, evs in enumerate(events):
                tok = auth.create_enroll_token("bench")
                async with s.post(f"{url}/v1/enroll", json={"token": tok, "hostname": f"b{a}"}) as r:
                    body = await r.json()
                tokens.append(f"{body['agent_id']}.{body['secret']}")
                bodies.append([gzip.compress(b"\n".join(orjson.dumps(e) for e in evs[i:i + batch]),
                                             compresslevel=1) for i in range(0, len(evs), batch)])
        total = sum(len(e) for e in events)

        async def agent(token: str, batches: list[bytes]) -> None:
            conn = aiohttp.TCPConnector(ssl=ssl_ctx, limit=1)
            async with aiohttp.ClientSession(connector=conn) as s:
                for i, b in enumerate(batches):
                    while True:
                        async with s.post(f"{url}/v1/events", data=b, headers={
                                "Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                                "X-Batch-Id": f"es-bench-{i}"}) as r:
                            await r.read()
                            if r.status == 200:
                                break
                            await asyncio.sleep(float(r.headers.get("Retry-After", "0.5")))

        _, cpu0 = proc_stats(proc.pid)
        t0 = time.perf_counter()
        await asyncio.gather(*(agent(t, b) for t, b in zip(tokens, bodies, strict=True)))
        acked = time.perf_counter()
        t1 = await wait_count(client, cfg.search_index, total, 600)
        _, cpu1 = proc_stats(proc.pid)
        print(f"  collector path: all acked after {acked - t0:.2f} s, all in Elasticsearch after "
              f"{t1 - t0:.2f} s, collector CPU {(cpu1 - cpu0) / (t1 - t0) * 100:.0f} % of a core",
              file=sys.stderr)
        return total / (t1 - t0), (cpu1 - cpu0) / (t1 - t0)
    finally:
        proc.terminate()
        proc.wait(10)
        await client.indices.delete_data_stream(name=f"logs-canhgac.*-{ns}*")
        await client.indices.delete_index_template(name=f"canhgac-*-{ns}*")
        await client.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--es-url", default=os.environ.get("CANHGAC_TEST_ES_URL",
                                                       "http://127.0.0.1:19200"))
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=1000, help="events per agent batch")
    ap.add_argument("--chunk", type=int, default=2000,
                    help="direct path chunk size (= the output's default batch_events)")
    ap.add_argument("--concurrency", type=int, default=2,
                    help="parallel bulk streams in (b') (= the output's default concurrency)")
    ap.add_argument("--components", nargs="*", default=[],
                    help="collector components to load (default none: the ingest->ES path)")
    args = ap.parse_args()
    per = args.events // args.agents
    print(f"generating {per * args.agents} events ...", file=sys.stderr)
    events = [make_events(per, a) for a in range(args.agents)]
    print("(b) direct async_streaming_bulk ...", file=sys.stderr)
    direct_rate = await direct(args.es_url, events, args.chunk)
    print(f"(b') direct, {args.concurrency} async_streaming_bulk in parallel ...", file=sys.stderr)
    events = [make_events(per, a) for a in range(args.agents)]  # fresh ids
    direct_par = await direct(args.es_url, events, args.chunk, args.concurrency)
    print("(a) agents -> collector -> Elasticsearch ...", file=sys.stderr)
    events = [make_events(per, a) for a in range(args.agents)]  # fresh ids
    collector_rate, cpu = await through_collector(args.es_url, events, args.batch_size,
                                                  args.components)
    print(f"\ncanhgac Elasticsearch throughput — {per * args.agents:,} events, {args.agents} agents, "
          f"ES {args.es_url}")
    print(f"  (a) through the collector  {collector_rate:>10,.0f} events/s")
    print(f"  (b) direct streaming_bulk  {direct_rate:>10,.0f} events/s   (one stream, as the helper is)")
    print(f"  (b') direct, {args.concurrency} streams     {direct_par:>10,.0f} events/s   "
          "(same parallelism as the output)")
    print(f"  ratio (a)/(b)              {collector_rate / direct_rate:>10.2f}   (target >= 0.85)")
    print(f"  ratio (a)/(b')             {collector_rate / direct_par:>10.2f}")


if __name__ == "__main__":
    asyncio.run(main())
