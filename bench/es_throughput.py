"""Elasticsearch throughput: the collector path against the same load bulk-loaded directly.

(a) simulated agents post gzip NDJSON batches to a real collector process
    (`canhgac collector run`, durable spool, fsync per commit) whose only output is
    Elasticsearch; the clock stops when every event is searchable in Elasticsearch.
(b) like for like: the same documents (enriched exactly as the collector enriches them) bulk-loaded
    with the client's ``async_streaming_bulk``, as many streams in parallel as the output's
    ``concurrency``, each with the output's ``batch_events`` / ``batch_bytes``, ``create`` with
    ``_id`` into the same data streams and templates, through the same client
    (``make_client``: transport settings and serializer); clock stopped the same way.

The headline is the ratio (a)/(b) (target >= 0.95). Each round runs both, in alternating order
(after two untimed warm-up loads, so neither side meets a cold JVM), each with fresh event ids,
its own namespace, and deletes its data streams afterwards; the headline is the median over the
rounds. Without ``--es-url`` the bench starts its own test node (deploy/elasticsearch/start.sh)
and stops it at the end.

    .venv/bin/python bench/es_throughput.py                       # own node
    .venv/bin/python bench/es_throughput.py --es-url http://127.0.0.1:19200 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from elasticsearch import AsyncElasticsearch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, proc_stats, start_collector
from canhgac.schema import new_event
from canhgac.tls import client_context
from collector.auth import AgentRecord, AuthStore
from collector.enrich import Enricher
from collector.inventory import InventoryHolder
from shipper.outputs.elasticsearch import make_client, templates
from shipper.outputs.elasticsearch.config import ElasticsearchConfig, load
from shipper.outputs.elasticsearch.encoder import encode

DATASETS = ("process", "host.metrics", "auth", "socket")
SYSTEM = "bench"


def make_events(n: int, agent: int) -> list[dict[str, Any]]:
    return [
        new_event(DATASETS[i % 4], action="bench", host={"name": f"bench-{agent}"},
                  message=f"Đăng nhập thất bại {i}" if i % 4 == 2 else None,
                  process={"pid": 1000 + i, "name": "sshd", "command_line": "/usr/sbin/sshd -D"},
                  user={"name": "root"}, source={"ip": "10.0.0.5", "port": 50000 + i % 1000})
        for i in range(n)
    ]


def output_config(es_url: str, ns: str) -> ElasticsearchConfig:
    """The output's configuration as the collector gets it (defaults but for the namespace)."""
    return load({"hosts": [es_url], "namespace": ns, "replicas": 0}, "bench")


async def wait_count(client: Any, index: str, n: int, timeout: float) -> float:
    """perf_counter() when ``n`` documents are searchable (polling with refresh)."""
    deadline = time.perf_counter() + timeout
    count = 0
    while time.perf_counter() < deadline:
        await client.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
        c = await client.count(index=index, ignore_unavailable=True, allow_no_indices=True)
        count = c["count"]
        if count >= n:
            return time.perf_counter()
        await asyncio.sleep(0.2)
    raise SystemExit(f"only {count} of {n} documents arrived within {timeout:.0f} s")


async def cleanup(client: Any, ns: str) -> None:
    await client.indices.delete_data_stream(name=f"logs-canhgac.*-{ns}*")
    await client.indices.delete_index_template(name=f"canhgac-*-{ns}*")


# -- (b) direct ------------------------------------------------------------------------------
def enriched(events: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The documents the collector would store for these agents' events (its own Enricher)."""
    enricher = Enricher(InventoryHolder())
    docs: list[dict[str, Any]] = []
    for a, evs in enumerate(events):
        agent = AgentRecord(agent_id=f"ag-{a:02d}-{secrets.token_hex(8)}", secret_hash="",
                            system_id=SYSTEM, hostname=f"b{a}", enrolled=time.time())
        batch = [orjson.loads(orjson.dumps(e)) for e in evs]
        enricher.apply(batch, agent)
        docs.extend(batch)
    return docs


async def direct(es_url: str, docs: list[dict[str, Any]],
                 stock_client: bool = False) -> tuple[float, float]:
    from elasticsearch.helpers import async_streaming_bulk

    ns = "bd" + secrets.token_hex(3)
    cfg = output_config(es_url, ns)
    client = AsyncElasticsearch(es_url) if stock_client else make_client(cfg)
    await templates.install(client, cfg)
    items = encode([orjson.dumps(d) for d in docs], cfg).items
    streams = cfg.concurrency

    def actions(part: int) -> Iterator[dict[str, Any]]:
        for k, (item, doc) in enumerate(zip(items, docs, strict=True)):
            if k % streams == part:
                yield {"_op_type": "create", "_index": item.stream, "_id": item.doc_id,
                       "_source": doc}

    failed = 0

    async def stream(part: int) -> None:
        nonlocal failed
        async for ok, _ in async_streaming_bulk(client, actions(part), chunk_size=cfg.batch_events,
                                                max_chunk_bytes=cfg.batch_bytes,
                                                raise_on_error=False):
            failed += not ok

    try:
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        await asyncio.gather(*(stream(p) for p in range(streams)))
        t1 = await wait_count(client, cfg.search_index, len(docs), 300)
        cpu = (time.process_time() - cpu0) / (t1 - t0)
    finally:
        await cleanup(client, ns)
        await client.close()
    if failed:
        print(f"  direct: {failed} items failed", file=sys.stderr)
    print(f"  direct: {len(docs):,} events in {t1 - t0:.2f} s, client CPU {cpu * 100:.0f} % of a "
          "core", file=sys.stderr)
    return len(docs) / (t1 - t0), cpu


# -- (a) through the collector ---------------------------------------------------------------
async def through_collector(es_url: str, events: list[list[dict[str, Any]]], batch: int,
                            components: list[str]) -> tuple[float, float, float]:
    ns = "bc" + secrets.token_hex(3)
    tmp = Path(tempfile.mkdtemp(prefix="canhgac-es-bench-"))
    proc, url, ca = start_collector(tmp, {
        "outputs": {"elasticsearch": {"hosts": [es_url], "namespace": ns, "replicas": 0}},
        "components": components})
    cfg = output_config(es_url, ns)
    client = make_client(cfg)
    try:
        auth = AuthStore(tmp / "collector" / "auth.db")
        ssl_ctx = client_context(ca)
        bodies: list[list[bytes]] = []
        tokens: list[str] = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_ctx)) as s:
            for a, evs in enumerate(events):
                tok = auth.create_enroll_token(SYSTEM)
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
        agents_cpu0 = time.process_time()
        t0 = time.perf_counter()
        await asyncio.gather(*(agent(t, b) for t, b in zip(tokens, bodies, strict=True)))
        acked = time.perf_counter()
        t1 = await wait_count(client, cfg.search_index, total, 600)
        _, cpu1 = proc_stats(proc.pid)
        agents_cpu = (time.process_time() - agents_cpu0) / (t1 - t0)
        print(f"  collector: {total:,} events acked after {acked - t0:.2f} s, all in "
              f"Elasticsearch after {t1 - t0:.2f} s, collector CPU "
              f"{(cpu1 - cpu0) / (t1 - t0) * 100:.0f} % of a core, simulated agents (this "
              f"process) {agents_cpu * 100:.0f} %", file=sys.stderr)
        return total / (t1 - t0), (cpu1 - cpu0) / (t1 - t0), agents_cpu
    finally:
        proc.terminate()
        proc.wait(10)
        await cleanup(client, ns)
        await client.close()
        shutil.rmtree(tmp, ignore_errors=True)


# -- the node --------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def es_node(given: str | None) -> AsyncIterator[tuple[str, str]]:
    """(url, description): the given node, or an own test node started and stopped here."""
    if given:
        yield given.rstrip("/"), "given (--es-url)"
        return
    es_dir = ROOT / "deploy" / "elasticsearch"
    home = Path(tempfile.mkdtemp(prefix="canhgac-es-bench-node-"))
    print(f"starting a test Elasticsearch node in {home} ...", file=sys.stderr)
    done = await asyncio.to_thread(
        subprocess.run, [str(es_dir / "start.sh"), "--port", str(_free_port()), "--data",
                         str(home), "--fresh"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        raise SystemExit(f"could not start the test Elasticsearch node:\n{done.stderr.strip()}")
    url = done.stdout.strip().splitlines()[-1]
    heap = os.environ.get("ES_JAVA_OPTS", "-Xms512m -Xmx1g")
    try:
        yield url, f"own test node (deploy/elasticsearch/start.sh, JVM {heap}), stopped at the end"
    finally:
        print("stopping the test Elasticsearch node ...", file=sys.stderr)
        await asyncio.to_thread(subprocess.run, [str(es_dir / "stop.sh"), "--data", str(home)],
                                capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


async def es_version(es_url: str) -> str:
    client = make_client(output_config(es_url, "x"))
    try:
        return str((await client.info())["version"]["number"])
    finally:
        await client.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--es-url", help="an Elasticsearch to use (default: start an own test node)")
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=1000, help="events per agent batch")
    ap.add_argument("--rounds", type=int, default=3, help="(a)+(b) pairs, alternating order")
    ap.add_argument("--direct-client", choices=("output", "stock"), default="output",
                    help="(b)'s client: the output's make_client (default) or a stock "
                         "AsyncElasticsearch (stdlib json serializer)")
    ap.add_argument("--components", nargs="*", default=[],
                    help="collector components to load (default none: the ingest->ES path)")
    args = ap.parse_args()
    per = args.events // args.agents
    total = per * args.agents
    async with es_node(args.es_url) as (es_url, node):
        cfg = output_config(es_url, "x")
        print(f"canhgac Elasticsearch throughput — {total:,} events, {args.agents} agents")
        print(f"  Elasticsearch {await es_version(es_url)} at {es_url}: {node}")
        print(f"  output: batch_events {cfg.batch_events}, batch_bytes {cfg.batch_bytes}, "
              f"concurrency {cfg.concurrency}; direct: {cfg.concurrency} async_streaming_bulk "
              f"streams, chunk_size {cfg.batch_events}, max_chunk_bytes {cfg.batch_bytes}; "
              + ("both through the output's make_client (same transport, orjson serializer)"
                 if args.direct_client == "output" else
                 "direct through a stock AsyncElasticsearch (stdlib json serializer)"))
        print(f"  agents: {args.agents} x {per:,} events in gzip batches of {args.batch_size}; "
              f"collector components: {', '.join(args.components) or 'none'}; "
              f"spool synchronous=FULL")
        print(f"  machine: {os.cpu_count()} CPUs, load average "
              f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}, Python "
              f"{platform.python_version()}")
        sys.stdout.flush()
        # a fresh node indexes at a fraction of its speed until its JIT has compiled the
        # indexing paths: two untimed loads of a round's size first
        for w in range(2):
            print(f"warm-up {w + 1} (untimed) ...", file=sys.stderr)
            await direct(es_url, enriched([make_events(per, a) for a in range(args.agents)]),
                         args.direct_client == "stock")
        ratios: list[float] = []
        rows: list[tuple[int, float, float, float, float, float]] = []
        for r in range(args.rounds):
            coll = dirr = cpu = acpu = dcpu = 0.0
            for side in (("a", "b") if r % 2 == 0 else ("b", "a")):
                events = [make_events(per, a) for a in range(args.agents)]  # fresh ids
                if side == "a":
                    print(f"round {r + 1}: (a) agents -> collector -> Elasticsearch ...",
                          file=sys.stderr)
                    coll, cpu, acpu = await through_collector(es_url, events, args.batch_size,
                                                        args.components)
                else:
                    print(f"round {r + 1}: (b) direct, same documents ...", file=sys.stderr)
                    dirr, dcpu = await direct(es_url, enriched(events),
                                              args.direct_client == "stock")
            rows.append((r + 1, coll, dirr, cpu, acpu, dcpu))
            ratios.append(coll / dirr)
        # CPU while the clock ran, in % of a core and in CPU-seconds for the whole load: the
        # collector process and the simulated agents (this process: TLS, HTTP) in (a), this
        # process's bulk client in (b). The cores are shared with Elasticsearch: CPU a client
        # uses is taken from it.
        print(f"\n  {'round':<6}{'(a) collector':>16}{'(b) direct':>14}{'(a)/(b)':>10}"
              f"{'(a) collector + agents CPU':>34}{'(b) client CPU':>20}")
        for r, coll, dirr, cpu, acpu, dcpu in rows:
            ta, tb = total / coll, total / dirr
            print(f"  {r:<6}{coll:>12,.0f} e/s{dirr:>10,.0f} e/s{coll / dirr:>10.2f}"
                  f"{cpu * 100:>10.0f} % ({cpu * ta:.2f} s) + {acpu * 100:.0f} %"
                  f"{dcpu * 100:>10.0f} % ({dcpu * tb:.2f} s)")
        print(f"\n  like for like (a)/(b), median of {len(ratios)}: "
              f"{statistics.median(ratios):.2f}   (target >= 0.95)")


if __name__ == "__main__":
    asyncio.run(main())
