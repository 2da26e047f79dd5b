"""Ingest throughput: N simulated agents posting 500-event gzip batches to a real collector.

The collector runs as its own process with durable commit (SQLite WAL,
synchronous=FULL: every ack follows an fsync). Batches are prepared before the
clock starts so the load generator measures the collector, not itself. The
collector's CPU is summed over its ingest worker processes too.

    .venv/bin/python bench/ingest.py --agents 8 --batches 400
    .venv/bin/python bench/ingest.py --workers 0          # ingest on the event loop only
    .venv/bin/python bench/ingest.py --profile /tmp/c.prof  # cProfile of the collector's main thread
Target (issue 13): >= 55,000 events/s sustained on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import re
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


async def store_catch_up(url: str, ssl_ctx, token: str, t0: float,
                         deadline: float = 300.0) -> tuple[int, float]:
    """Events the embedded store had not written at the last ack, and when it had them all.

    A short run can end with the store behind (it writes on a thread of the collector,
    after the ack): work the ack clock does not see. The second figure times it.
    """
    headers = {"Authorization": f"Bearer {token}"}
    first: int | None = None
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_ctx)) as s:
        end = time.perf_counter() + deadline
        while time.perf_counter() < end:
            async with s.get(f"{url}/metrics", headers=headers) as r:
                text = await r.text()
            m = _STORE_LAG.search(text)
            if m is None:
                raise SystemExit("/metrics has no canhgac_output_lag_events for the store output")
            lag = int(float(m.group(1)))
            first = lag if first is None else first
            if lag == 0:
                return first, time.perf_counter() - t0
            await asyncio.sleep(0.05)
    raise SystemExit(f"the embedded store did not catch up within {deadline:.0f} s")


_STORE_LAG = re.compile(r'^canhgac_output_lag_events\{output="store"\} (\S+)$', re.M)


def cpu_tree(pid: int) -> tuple[float, float, dict[int, float], int]:
    """RSS MiB and CPU s of the collector, {pid: CPU s} of its children, ingest workers seen.

    The entry -1 of the children's map is the collector's main (event loop) thread.

    The children are the ingest workers (multiprocessing spawn) and multiprocessing's
    resource tracker (idle); all their CPU counts as the collector's.
    """
    import psutil

    p = psutil.Process(pid)
    t = p.cpu_times()
    kids: dict[int, float] = {-1: next((th.user_time + th.system_time for th in p.threads()
                                        if th.id == pid), 0.0)}  # -1: the event loop's thread
    workers = 0
    for c in p.children(recursive=True):
        try:
            ct = c.cpu_times()
            workers += "spawn_main" in " ".join(c.cmdline())
        except psutil.NoSuchProcess:
            continue
        kids[c.pid] = ct.user + ct.system
    return p.memory_info().rss / 2**20, t.user + t.system, kids, workers


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=8)
    ap.add_argument("--batches", type=int, default=400, help="total batches across agents")
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--components", nargs="*", default=None,
                    help="collector components to load (default: all installed)")
    ap.add_argument("--workers", type=int, default=None,
                    help="ingest_workers for the collector (default: the collector's own default)")
    ap.add_argument("--profile", default=None, metavar="FILE",
                    help="run the collector under cProfile, stats written to FILE")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="canhgac-bench-"))
    extra: dict = {"outputs": {"store": {}}, "components": args.components}
    if args.workers is not None:
        extra["ingest_workers"] = args.workers
    proc, url, ca = start_collector(tmp, extra, profile=args.profile)
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
        metrics_token = (tmp / "collector" / "metrics.token").read_text().strip()
        lat: list[float] = []
        codes: dict[int, int] = {}
        _, main0, kids0, _ = cpu_tree(proc.pid)
        gen0 = time.process_time()
        t0 = time.perf_counter()
        await asyncio.gather(*(agent(url, ssl_ctx, tokens[a], per_agent[a], lat, codes)
                               for a in range(args.agents)))
        wall = time.perf_counter() - t0
        rss, main1, kids1, nworkers = cpu_tree(proc.pid)
        lag_at_ack, stored_wall = await store_catch_up(url, ssl_ctx, metrics_token, t0)
        gen_cpu = (time.process_time() - gen0) / wall
        main_cpu = (main1 - main0) / wall
        # Workers started after the first snapshot (lazily) count from 0.
        loop_cpu = (kids1.pop(-1) - kids0.pop(-1)) / wall
        kids_cpu = sum(v - kids0.get(k, 0.0) for k, v in kids1.items()) / wall
        us = 1e6 * wall / total  # CPU fraction -> microseconds per event
        print(f"\ncanhgac ingest benchmark — {args.agents} agents, {args.batch_size}-event gzip batches, "
              f"fsync per commit")
        print(f"  events acked      {total:>10,}")
        print(f"  wall time         {wall:>10.2f} s")
        print(f"  throughput        {total / wall:>10,.0f} events/s   (target >= 55,000)")
        print(f"  stored            {total / stored_wall:>10,.0f} events/s   (until the embedded store had "
              f"written all: {stored_wall:.2f} s; {lag_at_ack:,} not yet written at the last ack)")
        print(f"  ack latency p50   {percentile(lat, 50) * 1000:>10.1f} ms")
        print(f"  ack latency p99   {percentile(lat, 99) * 1000:>10.1f} ms")
        print(f"  ingest workers    {nworkers:>10}   (worker processes of the collector at the end)")
        print(f"  collector CPU     {(main_cpu + kids_cpu) * 100:>10.0f} % of one core  "
              f"= {(main_cpu + kids_cpu):.2f} cores (main {main_cpu * 100:.0f} %, "
              f"workers {kids_cpu * 100:.0f} %)")
        print(f"  CPU per event     {(main_cpu + kids_cpu) * us:>10.1f} us  (event loop thread "
              f"{loop_cpu * us:.1f}, other threads {(main_cpu - loop_cpu) * us:.1f}, "
              f"workers {kids_cpu * us:.1f})")
        print(f"  collector RSS     {rss:>10.0f} MiB   (main process)")
        print(f"  load generator    {gen_cpu * 100:>10.0f} % of one core (same machine)")
        print(f"  HTTP status       {dict(sorted(codes.items()))}")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
