"""Where the Elasticsearch output's time goes while it drains a backlog: a timeline per drain.

bench/es_throughput.py says how fast the output drains a spool; this says why. The spool is
filled off the clock (directly, with the documents the collector would store, in chunks of
``--chunk`` lines as agents' batches land), then the output drains it as the collector wires
it (shipper.delivery + shipper.outputs.elasticsearch, the output's default configuration)
while every bulk request's start and end, every spool read (lease), every encode and every
ack is recorded. Printed per drain:

- how long 0, 1 and 2 or more bulk requests were in flight between the clock's start and the
  last answer: with ``concurrency`` 2, time with fewer than two is a slot standing idle;
- the gap between a request's answer and the next request's start, the first request's start
  and how long the last one ran alone;
- mean and max of the lease, encode and ack times (the ack is written in the background, the
  lease and encode by the worker that reads ahead: neither should show up as idle slots).

The wrappers add a few µs per call; the drain is timed as in es_throughput (a).

    .venv/bin/python bench/es_drain_trace.py --es-url http://127.0.0.1:19200 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.es_throughput import cleanup, enriched, es_node, make_events, output_config, wait_count
from canhgac.schema import PRIORITY_SECURITY
from shipper.delivery import DeliveryConfig, DeliveryLoop
from shipper.outputs.elasticsearch import ElasticsearchOutput, make_client
from shipper.outputs.elasticsearch import service as es_service
from shipper.queue import DurableQueue

Span = tuple[str, float, float]


def _timed(spans: list[Span], kind: str,
           fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            spans.append((kind, t0, time.perf_counter()))
    return wrapper


def occupancy(requests: list[tuple[float, float]]) -> dict[int, float]:
    """Seconds with 0, 1 and 2+ requests in flight, from 0 to the last answer."""
    edges = sorted([(a, 1) for a, _ in requests] + [(b, -1) for _, b in requests])
    busy = {0: 0.0, 1: 0.0, 2: 0.0}
    n, prev = 0, 0.0
    for t, step in edges:
        busy[min(n, 2)] += t - prev
        prev, n = t, n + step
    return busy


async def drain(es_url: str, docs: list[dict[str, Any]], chunk: int) -> None:
    ns = "bt" + secrets.token_hex(3)
    tmp = Path(tempfile.mkdtemp(prefix="canhgac-es-trace-"))
    cfg = output_config(es_url, ns)
    client = make_client(cfg)
    spans: list[Span] = []
    encode = es_service.encode
    try:
        queue = DurableQueue(tmp / "spool.db", outputs=("elasticsearch",))
        await queue.open()
        lines = [orjson.dumps(d) for d in docs]
        for i in range(0, len(lines), chunk):
            await queue.append(lines[i:i + chunk], PRIORITY_SECURITY)
        output = ElasticsearchOutput(cfg)
        loop = DeliveryLoop(queue, output, DeliveryConfig(**output.delivery_config))
        # instance attributes shadow the methods the loop and the output call
        queue.lease = _timed(spans, "lease", queue.lease)  # type: ignore[method-assign]
        queue.ack = _timed(spans, "ack", queue.ack)  # type: ignore[method-assign]
        output._request_now = _timed(  # type: ignore[method-assign]
            spans, "request", output._request_now)

        def timed_encode(*args: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return encode(*args)
            finally:
                spans.append(("encode", t0, time.perf_counter()))

        es_service.encode = timed_encode  # type: ignore[assignment]
        try:
            await output.start()
            t0 = time.perf_counter()
            await loop.start()
            if not await loop.flush(300):
                raise SystemExit("the output did not drain the spool within 300 s")
            t_acked = time.perf_counter()
            t1 = await wait_count(client, cfg.search_index, len(docs), 300)
        finally:
            es_service.encode = encode
            await loop.stop()
            await queue.close()
    finally:
        await cleanup(client, ns)
        await client.close()
        shutil.rmtree(tmp, ignore_errors=True)
    reqs = sorted((a - t0, b - t0) for kind, a, b in spans if kind == "request" and a >= t0)
    last = max(b for _, b in reqs)
    busy = occupancy(reqs)
    ends = sorted(b for _, b in reqs)
    starts = sorted(a for a, _ in reqs)
    # the i-th answer frees the slot the (i + concurrency)-th request takes
    gaps = [s - e for e, s in zip(ends, starts[cfg.concurrency:], strict=False)]
    tail = last - (ends[-2] if len(ends) > 1 else 0.0)
    mean = statistics.mean(b - a for a, b in reqs)
    print(f"  {len(docs):,} events: {len(reqs)} bulk requests, mean {mean * 1000:.0f} ms; "
          f"last answer {last:.2f} s, last ack durable {t_acked - t0:.2f} s, searchable "
          f"{t1 - t0:.2f} s ({len(docs) / (t1 - t0):,.0f} events/s)")
    print(f"    in flight: 2+ for {busy[2]:.2f} s ({busy[2] / last * 100:.0f} %), 1 for "
          f"{busy[1]:.2f} s, 0 for {busy[0]:.2f} s; first start {starts[0] * 1000:.0f} ms, "
          f"second {starts[1] * 1000:.0f} ms; answer -> next start median "
          f"{statistics.median(gaps) * 1000:.1f} ms, max {max(gaps) * 1000:.1f} ms; "
          f"the last ran alone {tail * 1000:.0f} ms")
    parts = []
    for kind in ("lease", "encode", "ack"):
        d = [b - a for k, a, b in spans if k == kind and a >= t0]
        if d:
            parts.append(f"{kind} n={len(d)} mean {statistics.mean(d) * 1000:.1f} ms, "
                         f"max {max(d) * 1000:.1f}")
    print("    " + "; ".join(parts))
    sys.stdout.flush()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--es-url", help="an Elasticsearch to use (default: start an own test node)")
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--chunk", type=int, default=1000, help="lines per spool chunk")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    per = args.events // args.agents
    async with es_node(args.es_url) as (es_url, node):
        cfg = output_config(es_url, "x")
        print(f"canhgac Elasticsearch output drain trace — {per * args.agents:,} events, "
              f"spool chunks of {args.chunk}; batch_events {cfg.batch_events}, batch_bytes "
              f"{cfg.batch_bytes}, concurrency {cfg.concurrency}; node: {node}")
        # as in es_throughput: the collector's GC setting, one untimed warm-up drain
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, *gc.get_threshold()[1:])
        print("warm-up (untimed):")
        await drain(es_url, enriched([make_events(per, a) for a in range(args.agents)]),
                    args.chunk)
        for r in range(args.rounds):
            print(f"round {r + 1}:")
            await drain(es_url, enriched([make_events(per, a) for a in range(args.agents)]),
                        args.chunk)


if __name__ == "__main__":
    asyncio.run(main())
