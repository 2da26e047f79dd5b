"""Ingest throughput: N simulated agents posting 500-event gzip batches to a real collector.

The collector runs as its own process with durable commit (SQLite WAL,
synchronous=FULL: every ack follows an fsync). Batches are prepared before the
clock starts so the load generator measures the collector, not itself.

    .venv/bin/python bench/ingest.py --agents 8 --batches 400
Target (issue 2): >= 30,000 events/s sustained on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import percentile, proc_stats, start_collector
from canhgac.schema import new_event
from canhgac.tls import client_context
from collector.auth import AuthStore


def make_batch(n: int, host: int) -> bytes:
    lines = []
    for i in range(n):
        ds = ("process", "host.metrics", "auth", "socket")[i % 4]
        ev = new_event(ds, action="bench", host={"hostname": f"bench-{host}"},
                       process={"pid": 1000 + i, "name": "sshd", "command_line": "/usr/sbin/sshd -D"},
                       user={"name": "root"}, source={"ip": "10.0.0.5", "port": 50000 + i % 1000})
        lines.append(orjson.dumps(ev))
    return gzip.compress(b"\n".join(lines), compresslevel=1)


async def agent(url: str, ssl_ctx, token: str, batches: list[bytes], lat: list[float],
                codes: dict[int, int]) -> None:
    conn = aiohttp.TCPConnector(ssl=ssl_ctx, limit=1)
    async with aiohttp.ClientSession(connector=conn) as s:
        for i, body in enumerate(batches):
            while True:
                t0 = time.perf_counter()
                async with s.post(f"{url}/v1/events", data=body, headers={
                    "Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                    "X-Batch-Id": f"bench-{id(batches)}-{i}"}) as r:
                    await r.read()
                    codes[r.status] = codes.get(r.status, 0) + 1
                    if r.status == 200:
                        lat.append(time.perf_counter() - t0)
                        break
                    await asyncio.sleep(float(r.headers.get("Retry-After", "0.5")))


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=8)
    ap.add_argument("--batches", type=int, default=400, help="total batches across agents")
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--components", nargs="*", default=None,
                    help="collector components to load (default: all installed)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="canhgac-bench-"))
    proc, url, ca = start_collector(tmp, {"outputs": {"store": {}}, "components": args.components})
    try:
        auth = AuthStore(tmp / "collector" / "auth.db")
        ssl_ctx = client_context(ca)
        tokens = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_ctx)) as s:
            for a in range(args.agents):
                tok = auth.create_enroll_token("bench")
                async with s.post(f"{url}/v1/enroll", json={"token": tok, "hostname": f"b{a}"}) as r:
                    body = await r.json()
                tokens.append(f"{body['agent_id']}.{body['secret']}")
        print(f"preparing {args.batches} batches of {args.batch_size} events ...", file=sys.stderr)
        per_agent = [[make_batch(args.batch_size, a) for _ in range(args.batches // args.agents)]
                     for a in range(args.agents)]
        total = sum(len(b) for b in per_agent) * args.batch_size
        lat: list[float] = []
        codes: dict[int, int] = {}
        _, cpu0 = proc_stats(proc.pid)
        t0 = time.perf_counter()
        await asyncio.gather(*(agent(url, ssl_ctx, tokens[a], per_agent[a], lat, codes)
                               for a in range(args.agents)))
        wall = time.perf_counter() - t0
        rss, cpu1 = proc_stats(proc.pid)
        print(f"\ncanhgac ingest benchmark — {args.agents} agents, {args.batch_size}-event gzip batches, "
              f"fsync per commit")
        print(f"  events acked      {total:>10,}")
        print(f"  wall time         {wall:>10.2f} s")
        print(f"  throughput        {total / wall:>10,.0f} events/s   (target >= 30,000)")
        print(f"  ack latency p50   {percentile(lat, 50) * 1000:>10.1f} ms")
        print(f"  ack latency p99   {percentile(lat, 99) * 1000:>10.1f} ms")
        print(f"  collector CPU     {(cpu1 - cpu0) / wall * 100:>10.0f} % of one core")
        print(f"  collector RSS     {rss:>10.0f} MiB")
        print(f"  HTTP status       {dict(sorted(codes.items()))}")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
