"""/metrics scrape time and size with a province-sized inventory.

500 systems (levels 1-5, 25 units), 5,000 agents (10 hosts per system, 5% offline,
some missing probes), 20,000 alerts in the layer-1 window. Prints figures; never
passes or fails on time (target from the issue: a scrape under 100 ms).

    .venv/bin/python bench/metrics_scrape.py [--systems 500] [--agents 5000] [--scrapes 30]

Three figures:
  compute   one coverage computation (what the background refresher does every
            cache_ttl, off the scrape path);
  cold      a scrape that has to compute first (cache_ttl 0: the worst case);
  served    scrapes over HTTP of a collector as deployed: the refresher running in
            the same process (it competes for the GIL), scrapes only format.
The machine's load is printed too: shared machines make single runs noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from canhgac.schema import new_event
from canhgac.timeutil import from_epoch
from collector.alerts.store import AlertStore
from collector.coverage.config import CoverageConfig
from collector.coverage.metrics import CoverageCollector
from collector.coverage.service import CoverageService
from collector.fleet import Presence
from collector.inventory import InventoryHolder, parse_inventory

PROBES = ("host_metrics", "session", "auth_log", "file_integrity", "network_sensor")


@dataclass
class Agent:
    agent_id: str
    system_id: str
    hostname: str
    last_seen: float
    probes: dict[str, Any] = field(default_factory=dict)
    revoked: float | None = None


class Agents:
    def __init__(self, agents: list[Agent]) -> None:
        self._agents = agents

    def agents(self) -> list[Agent]:
        return self._agents


def build(n_systems: int, n_agents: int, rng: random.Random) -> tuple[InventoryHolder, list[Agent]]:
    per = max(1, n_agents // n_systems)
    units = [f"Sở Ban ngành số {i} — Thừa Thiên Huế" for i in range(25)]
    systems = []
    for i in range(n_systems):
        systems.append({
            "id": f"sys-{i:04d}", "name": f"Hệ thống thông tin số {i} của tỉnh",
            "unit": units[i % len(units)], "level": 1 + i % 5,
            "hosts": [f"h{i:04d}-{j:02d}" for j in range(per)],
            "approval": {"approved": i % 3 != 0, "date": "2024-08-01"},
            "plan": {"deployed": "2024-12-01"} if i % 4 else {},
            "onsite": {"team": [{"name": "Nguyễn Văn An"}]} if i % 7 else {},
            "assessments": [{"date": f"202{4 + i % 2}-0{1 + i % 9}-15", "organisation": "X",
                             "independent": True}],
            "national": {"enabled": i % 2 == 0},
        })
    holder = InventoryHolder(parse_inventory({"province": "Thừa Thiên Huế", "systems": systems},
                                             "bench"))
    now = time.time()
    agents = []
    for i in range(n_agents):
        s = i // per % n_systems
        probes = {p: {"running": rng.random() > 0.03, "datasets": []} for p in PROBES}
        seen = now - (600 if rng.random() < 0.05 else rng.random() * 20)
        agents.append(Agent(f"agent-{i:05d}", f"sys-{s:04d}", f"h{s:04d}-{i % per:02d}", seen,
                            probes))
    return holder, agents


def fill_alerts(store: AlertStore, n: int, n_systems: int, rng: random.Random) -> None:
    now = time.time()
    docs = []
    for _ in range(n):
        doc = new_event("alert", kind="alert", timestamp=from_epoch(now - rng.random() * 29 * 86400))
        doc["canhgac"] = {"system": {"id": f"sys-{rng.randrange(n_systems):04d}"}}
        docs.append(doc)
    store.register(docs)
    for rec in store.list(limit=n // 2):
        store.acknowledge(rec.id, "bench", now=rec.created + rng.random() * 8 * 3600)


async def scrape_over_http(registry: CollectorRegistry, n: int,
                           service: CoverageService | None = None
                           ) -> tuple[list[float], list[float], int]:
    cpu: list[float] = []

    def render() -> bytes:
        t = time.thread_time()  # CPU of this scrape alone: robust against a loaded machine
        body = generate_latest(registry)
        cpu.append(time.thread_time() - t)
        return body

    async def metrics(_request: web.Request) -> web.Response:
        body = await asyncio.get_running_loop().run_in_executor(None, render)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/metrics"
    if service is not None:
        await service.start()

    # The scraper is another process, as Prometheus is: its reads do not compete for
    # this process's GIL. It prints one "seconds size" line per scrape.
    script = (
        "import sys, time, urllib.request\n"
        "for _ in range(int(sys.argv[2])):\n"
        "    t = time.perf_counter()\n"
        "    with urllib.request.urlopen(sys.argv[1], timeout=30) as r:\n"
        "        n = len(r.read())\n"
        "    print(time.perf_counter() - t, n, flush=True)\n"
        "    time.sleep(0.3)\n"
    )
    times: list[float] = []
    size = 0
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, url, str(n), stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        for line in out.decode().splitlines():
            seconds, nbytes = line.split()
            times.append(float(seconds))
            size = int(nbytes)
    finally:
        if service is not None:
            await service.stop()
        await runner.cleanup()
    return times, cpu, size


def fmt(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return f"median {statistics.median(ms):6.1f} ms  p95 {p95:6.1f} ms  max {ms[-1]:6.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--systems", type=int, default=500)
    ap.add_argument("--agents", type=int, default=5000)
    ap.add_argument("--alerts", type=int, default=20_000)
    ap.add_argument("--scrapes", type=int, default=30)
    args = ap.parse_args()
    rng = random.Random(7)
    holder, agents = build(args.systems, args.agents, rng)
    with tempfile.TemporaryDirectory() as tmp:
        store = AlertStore(Path(tmp) / "alerts.db")
        fill_alerts(store, args.alerts, args.systems, rng)
        print(f"inventory: {args.systems} systems, {args.agents} agents, {args.alerts} alerts "
              f"in the 30-day window; load average {os.getloadavg()[0]:.2f} on "
              f"{os.cpu_count()} CPUs")
        cfg = CoverageConfig()
        cfg.cache_ttl = 0.0  # type: ignore[assignment]
        service = CoverageService(holder, cfg, agents=Agents(agents), alerts=store,
                                  presence=Presence(90))
        computes, computes_cpu = [], []
        for _ in range(10):
            t, c = time.perf_counter(), time.thread_time()
            service.report(0)
            computes.append(time.perf_counter() - t)
            computes_cpu.append(time.thread_time() - c)
        print(f"  compute: wall {fmt(computes)}")
        print(f"  compute: CPU  {fmt(computes_cpu)}")
        registry = CollectorRegistry()
        registry.register(CoverageCollector(service, holder))
        times, cpu, size = asyncio.run(scrape_over_http(registry, max(5, args.scrapes // 3)))
        print(f"     cold: HTTP scrape wall {fmt(times)}")
        print(f"     cold: server CPU      {fmt(cpu)}")

        cfg = CoverageConfig()  # default cache_ttl (5 s) with the background refresher
        service = CoverageService(holder, cfg, agents=Agents(agents), alerts=store,
                                  presence=Presence(90))
        registry = CollectorRegistry()
        registry.register(CoverageCollector(service, holder))
        generate_latest(registry)
        body = generate_latest(registry)
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        times, cpu, size = asyncio.run(scrape_over_http(registry, args.scrapes, service))
        print(f"   served: HTTP scrape wall {fmt(times)}")
        print(f"   served: server CPU      {fmt(cpu)}")
        print(f"     size: {size / 1024:.0f} KiB, {series} series")
        store.close()


if __name__ == "__main__":
    main()
