"""How long a policy change takes to reach 1,000 agents (issue 14: ≤ 60 s).

A real collector process; 1,000 enrolled agents simulated by pollers that ask
``GET /v1/agent/policy`` with ``If-None-Match`` every heartbeat interval (30 s, the
default), each at a random phase, as real agents do. Once every poller holds version
0, a new version is stored (what `canhgac collector policy set` does) and the bench
measures, per agent, the time until it received the new version.

    python bench/policy_rollout.py [--agents 1000] [--interval 30]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import ssl
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import percentile, proc_stats, start_collector
from collector.auth import AuthStore
from collector.policy.store import PolicyStore


class Progress:
    """Counts pollers holding version 0, and the delay until each got version 1."""

    def __init__(self, agents: int) -> None:
        self.agents = agents
        self.ready = 0
        self.t0 = 0.0
        self.got: list[float] = []
        self.all_ready = asyncio.Event()
        self.all_got = asyncio.Event()

    def holds_version_0(self) -> None:
        self.ready += 1
        if self.ready == self.agents:
            self.all_ready.set()

    def received(self) -> None:
        self.got.append(time.monotonic() - self.t0)
        if len(self.got) == self.agents:
            self.all_got.set()


async def poller(session: aiohttp.ClientSession, url: str, token: str, interval: float,
                 progress: Progress, stop: asyncio.Event) -> None:
    etag = ""
    await asyncio.sleep(random.uniform(0, interval))
    while not stop.is_set():
        headers = {"Authorization": f"Bearer {token}"}
        if etag:
            headers["If-None-Match"] = etag
        async with session.get(f"{url}/v1/agent/policy", headers=headers) as r:
            if r.status == 200:
                etag = r.headers["ETag"]
                if (await r.json())["version"] == 1:
                    progress.received()
                    return
                progress.holds_version_0()
            else:
                assert r.status == 304, r.status
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=30.0, help="heartbeat interval (s)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="canhgac-policy-bench-"))
    inv = work / "inventory.yaml"
    inv.write_text(yaml.safe_dump({"systems": [
        {"id": f"sys-{i}", "name": f"Hệ thống {i}", "unit": f"Đơn vị {i % 20}", "level": 1 + i % 5}
        for i in range(100)]}, allow_unicode=True), encoding="utf-8")
    (work / "collector").mkdir(parents=True)
    auth = AuthStore(work / "collector" / "auth.db")
    tokens = []
    for i in range(args.agents):
        agent_id, secret, _ = auth.enroll(auth.create_enroll_token(f"sys-{i % 100}"), f"host-{i}")
        tokens.append(f"{agent_id}.{secret}")
    auth.close()
    proc, url, ca = start_collector(work, {"inventory": str(inv)})
    try:
        ctx = ssl.create_default_context(cafile=str(ca))
        progress = Progress(args.agents)
        stop = asyncio.Event()
        conn = aiohttp.TCPConnector(ssl=ctx, limit=200)
        async with aiohttp.ClientSession(connector=conn) as session:
            tasks = [asyncio.create_task(poller(session, url, t, args.interval, progress, stop))
                     for t in tokens]
            await progress.all_ready.wait()
            store = PolicyStore(work / "collector" / "policy.db")
            progress.t0 = time.monotonic()
            store.add({"defaults": {"probes": {"process": {"interval": "10s"}}}}, "bench")
            store.close()
            try:
                await asyncio.wait_for(progress.all_got.wait(), args.interval * 3 + 10)
            except TimeoutError:
                pass
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        got = progress.got
        rss, cpu = proc_stats(proc.pid)
        print(f"policy rollout: {len(got)}/{args.agents} agents got the new version "
              f"(heartbeat {args.interval:g}s)")
        print(f"  time to reach an agent: p50 {percentile(got, 50):.1f} s, p99 "
              f"{percentile(got, 99):.1f} s, last {max(got) if got else float('nan'):.1f} s "
              f"(target: all within 60 s)")
        print(f"  collector: cpu {cpu:.1f} s in all, rss {rss:.1f} MiB")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
