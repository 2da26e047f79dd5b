"""Elasticsearch throughput: the collector's output against the same load bulk-loaded directly.

(a) like for like, the headline: the collector's Elasticsearch output (spool -> encoder -> bulk
    requests: shipper.queue, shipper.delivery, shipper.outputs.elasticsearch, with the
    configuration the collector gives them) delivers a spool that a real collector process
    filled. Off the clock, simulated agents post gzip NDJSON batches to ``canhgac collector
    run`` (TLS, validation, enrichment, durable spool, fsync per commit) while its output's
    node is unreachable, so the spool keeps every event, and the collector is stopped; on the
    clock, the output drains that spool in this process until every event is searchable.
(b) the same documents (enriched exactly as the collector enriches them, agent ids of the same
    form) bulk-loaded with the client's ``async_streaming_bulk``, as many streams in parallel as
    the output's ``concurrency``, each with the output's ``batch_events`` / ``batch_bytes``,
    ``create`` with ``_id`` into the same data streams and templates, through the same client
    (``make_client``: transport settings and serializer).
(e) end to end, for reference: agents -> collector -> Elasticsearch with the ingest on the
    clock (the output delivers while the collector receives). (b) has no counterpart of that
    ingest (its documents are enriched before its clock starts), so (e)/(b) also measures the
    collector's receiving, validation, enrichment and durable commit, on the cores the node
    needs: it is printed, not the headline.

Every clock stops the same way: once the client side is done ((a) and (e): the output's
cursor in the spool is durably past every event, i.e. the last bulk answered and its ack
fsync'd; (b): the last bulk answered), the node is refreshed and counted until every event is
searchable. Until commit 2236f7a, (a) and (e) polled refresh + count every 0.2 s while the
output drained: the node then cut a segment on every shard five times a second during those
sides only, and their end was seen up to 0.2 s late (docs/benchmarks.md has both figures).

Both (a) and (b) run in this process, templates installed before the clock, under the
collector's GC setting, and their CPU is this process's CPU while the clock runs. The headline
is the ratio (a)/(b) (target >= 0.95). Each round runs every side, in rotating order (after
two untimed warm-up loads, so no side meets a cold JVM), each with fresh event ids, its own
namespace, and deletes its data streams afterwards; the headline is the median over the
rounds. Without ``--es-url`` the bench starts its own test node (deploy/elasticsearch/start.sh)
and stops it at the end.

    .venv/bin/python bench/es_throughput.py                       # own node
    .venv/bin/python bench/es_throughput.py --es-url http://127.0.0.1:19200 --rounds 7
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import os
import platform
import secrets
import shutil
import socket
import sqlite3
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
from canhgac.ids import uuid7
from canhgac.schema import new_event
from canhgac.tls import client_context
from collector.auth import AgentRecord, AuthStore
from collector.enrich import Enricher
from collector.inventory import InventoryHolder
from shipper.delivery import DeliveryConfig, DeliveryLoop
from shipper.outputs.elasticsearch import ElasticsearchOutput, make_client, templates
from shipper.outputs.elasticsearch.config import ElasticsearchConfig, load
from shipper.outputs.elasticsearch.encoder import encode
from shipper.queue import DurableQueue

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
        # an id of the collector's own form (uuid7, 36 characters): the documents must be as
        # large as the ones the collector stores
        agent = AgentRecord(agent_id=uuid7(), secret_hash="",
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


# -- the simulated agents ------------------------------------------------------------------
async def enroll_and_pack(url: str, ca: Path, state: Path, events: list[list[dict[str, Any]]],
                          batch: int) -> tuple[list[str], list[list[bytes]]]:
    """Enroll one agent per event list; its events as gzip batches (prepared off the clock)."""
    auth = AuthStore(state / "collector" / "auth.db")
    bodies: list[list[bytes]] = []
    tokens: list[str] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context(ca))) as s:
        for a, evs in enumerate(events):
            tok = auth.create_enroll_token(SYSTEM)
            async with s.post(f"{url}/v1/enroll", json={"token": tok, "hostname": f"b{a}"}) as r:
                body = await r.json()
            tokens.append(f"{body['agent_id']}.{body['secret']}")
            bodies.append([gzip.compress(b"\n".join(orjson.dumps(e) for e in evs[i:i + batch]),
                                         compresslevel=1) for i in range(0, len(evs), batch)])
    return tokens, bodies


async def post_all(url: str, ca: Path, tokens: list[str], batches: list[list[bytes]]) -> None:
    """Every agent posts its batches in order, one at a time, as the agent does."""
    ssl_ctx = client_context(ca)

    async def agent(token: str, bodies: list[bytes]) -> None:
        conn = aiohttp.TCPConnector(ssl=ssl_ctx, limit=1)
        async with aiohttp.ClientSession(connector=conn) as s:
            for i, b in enumerate(bodies):
                while True:
                    async with s.post(f"{url}/v1/events", data=b, headers={
                            "Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                            "X-Batch-Id": f"es-bench-{i}"}) as r:
                        await r.read()
                        if r.status == 200:
                            break
                        await asyncio.sleep(float(r.headers.get("Retry-After", "0.5")))

    await asyncio.gather(*(agent(t, b) for t, b in zip(tokens, batches, strict=True)))


def stop_collector(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- (a) the output draining a spool the collector filled -------------------------------------
async def output_drain(es_url: str, events: list[list[dict[str, Any]]], batch: int,
                       components: list[str]) -> tuple[float, float]:
    ns = "ba" + secrets.token_hex(3)
    tmp = Path(tempfile.mkdtemp(prefix="canhgac-es-bench-"))
    # off the clock: the collector ingests the load; its output points at a port where
    # nothing listens, so the spool keeps every event for it (a backlog, as after an outage)
    proc, url, ca = start_collector(tmp, {
        "outputs": {"elasticsearch": {"hosts": [f"http://127.0.0.1:{_free_port()}"],
                                      "namespace": ns, "replicas": 0}},
        "components": components})
    cfg = output_config(es_url, ns)
    client = make_client(cfg)
    try:
        tokens, bodies = await enroll_and_pack(url, ca, tmp, events, batch)
        await post_all(url, ca, tokens, bodies)
        stop_collector(proc)
        total = sum(len(e) for e in events)
        # the output as the collector wires it (collector/app.py, collector/outputs.py)
        queue = DurableQueue(tmp / "collector" / "spool.db", outputs=("elasticsearch",))
        await queue.open()
        output = ElasticsearchOutput(cfg)
        loop = DeliveryLoop(queue, output, DeliveryConfig(**output.delivery_config))
        try:
            pending = (await queue.stats())["elasticsearch"].pending_events
            if pending != total:
                raise SystemExit(f"the collector's spool holds {pending} events, expected {total}")
            await output.start()  # client and templates before the clock, as in (b)
            cpu0 = time.process_time()
            t0 = time.perf_counter()
            await loop.start()
            # as in (b): the node is asked (refresh, count) once the client side is done,
            # here when the last ack is durable (the spool's cursor past every event), not
            # polled with refreshes while it indexes (that cost fell on this side only)
            if not await loop.flush(300):
                raise SystemExit("the output did not drain the spool within 300 s")
            t1 = await wait_count(client, cfg.search_index, total, 300)
            cpu = (time.process_time() - cpu0) / (t1 - t0)
        finally:
            await loop.stop()
            await queue.close()
        print(f"  output: {total:,} events from the collector's spool in {t1 - t0:.2f} s, CPU "
              f"{cpu * 100:.0f} % of a core", file=sys.stderr)
        return total / (t1 - t0), cpu
    finally:
        if proc.poll() is None:
            stop_collector(proc)
        await cleanup(client, ns)
        await client.close()
        shutil.rmtree(tmp, ignore_errors=True)


def wait_drained(spool: Path, output: str, timeout: float) -> None:
    """Return once ``output``'s durable cursor in another process's spool is past every chunk.

    Read-only, every 5 ms: the spool keeps the chunks an output has not acked, and the
    cursor row is written in the same transaction as the ack (shipper.queue).
    """
    deadline = time.perf_counter() + timeout
    db = sqlite3.connect(f"file:{spool}?mode=ro", uri=True)
    try:
        while True:
            (pending,) = db.execute(
                "SELECT COALESCE(SUM(n), 0) FROM chunks WHERE seq > "
                "(SELECT acked FROM cursors WHERE output = ?)", (output,)).fetchone()
            if pending == 0:
                return
            if time.perf_counter() > deadline:
                raise SystemExit(f"the collector's output left {pending} events in its spool")
            time.sleep(0.005)
    finally:
        db.close()


# -- (e) end to end: agents -> collector -> Elasticsearch, ingest on the clock -----------------
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
        tokens, bodies = await enroll_and_pack(url, ca, tmp, events, batch)
        total = sum(len(e) for e in events)
        _, cpu0 = proc_stats(proc.pid)
        agents_cpu0 = time.process_time()
        t0 = time.perf_counter()
        await post_all(url, ca, tokens, bodies)
        acked = time.perf_counter()
        # as in (a) and (b): the node is asked once the collector's output is done (its cursor
        # durably past every event, read from its spool), not polled with refreshes meanwhile
        await asyncio.to_thread(wait_drained, tmp / "collector" / "spool.db", "elasticsearch",
                                600)
        t1 = await wait_count(client, cfg.search_index, total, 600)
        _, cpu1 = proc_stats(proc.pid)
        agents_cpu = (time.process_time() - agents_cpu0) / (t1 - t0)
        print(f"  end to end: {total:,} events acked after {acked - t0:.2f} s, all in "
              f"Elasticsearch after {t1 - t0:.2f} s, collector CPU "
              f"{(cpu1 - cpu0) / (t1 - t0) * 100:.0f} % of a core (main process), simulated "
              f"agents (this process) {agents_cpu * 100:.0f} %", file=sys.stderr)
        return total / (t1 - t0), (cpu1 - cpu0) / (t1 - t0), agents_cpu
    finally:
        stop_collector(proc)
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
    ap.add_argument("--rounds", type=int, default=7,
                    help="rounds of (a), (b) and (e), in rotating order")
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
        print(f"  (a) and (e): {args.agents} agents x {per:,} events in gzip batches of "
              f"{args.batch_size} to a real collector; "
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
        # (a) runs the output in this process: with the cyclic GC set as the collector sets it
        # (collector/app.py _tune_gc: what is alive frozen, first threshold 50,000), not
        # Python's default (700), which walks the events a lease decodes several times per
        # batch. (b) runs under the same setting, so the yardstick gains as much from it.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, *gc.get_threshold()[1:])
        sides = ("a", "b", "e")
        rows: list[dict[str, tuple[float, float]]] = []
        for r in range(args.rounds):
            row: dict[str, tuple[float, float]] = {}
            for side in sides[r % 3:] + sides[:r % 3]:  # rotating order
                events = [make_events(per, a) for a in range(args.agents)]  # fresh ids
                if side == "a":
                    print(f"round {r + 1}: (a) the output drains the collector's spool ...",
                          file=sys.stderr)
                    row["a"] = await output_drain(es_url, events, args.batch_size,
                                                  args.components)
                elif side == "b":
                    print(f"round {r + 1}: (b) direct, same documents ...", file=sys.stderr)
                    row["b"] = await direct(es_url, enriched(events),
                                            args.direct_client == "stock")
                else:
                    print(f"round {r + 1}: (e) agents -> collector -> Elasticsearch ...",
                          file=sys.stderr)
                    rate, cpu, _agents = await through_collector(es_url, events,
                                                                 args.batch_size, args.components)
                    row["e"] = (rate, cpu)
            rows.append(row)
        # CPU while the clock ran, in % of a core and in CPU-seconds for the whole load: this
        # process in (a) (the output) and (b) (the bulk client); the collector's main process in
        # (e) (its ingest workers not included). The cores are shared with Elasticsearch: CPU a
        # client uses is taken from it.
        print(f"\n  {'round':<6}{'(a) output':>14}{'(b) direct':>14}{'(a)/(b)':>9}"
              f"{'(a) CPU':>18}{'(b) CPU':>18}{'(e) end to end':>18}{'(e)/(b)':>9}")

        def cpu(rate: float, share: float) -> str:
            return f"{share * 100:.0f} % ({share * total / rate:.2f} s)"

        for r, row in enumerate(rows, 1):
            (ra, ca), (rb, cb), (re, _) = row["a"], row["b"], row["e"]
            print(f"  {r:<6}{ra:>10,.0f} e/s{rb:>10,.0f} e/s{ra / rb:>9.2f}{cpu(ra, ca):>18}"
                  f"{cpu(rb, cb):>18}{re:>14,.0f} e/s{re / rb:>9.2f}")
        like = [row["a"][0] / row["b"][0] for row in rows]
        e2e = [row["e"][0] / row["b"][0] for row in rows]
        print(f"\n  like for like (a)/(b), median of {len(like)}: {statistics.median(like):.2f} "
              f"(range {min(like):.2f}-{max(like):.2f})   (target >= 0.95)")
        print(f"  end to end (e)/(b), ingest on the clock, median of {len(e2e)}: "
              f"{statistics.median(e2e):.2f} (range {min(e2e):.2f}-{max(e2e):.2f})")

if __name__ == "__main__":
    asyncio.run(main())
