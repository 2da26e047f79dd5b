"""Notification latency: 10,000 alerts in one minute through routing to a webhook sink.

A real collector process (durable spool and outbox, synchronous=FULL) receives alert
events over HTTPS from one simulated agent, 50 per batch, paced to 10,000 in 60 s; its
single route sends each to a webhook receiver in this process. Measured: from the
moment a batch is posted to the moment the receiver has each of its alerts (p50, p99,
max), and after the run whether every alert arrived (lost) and whether any arrived
under two keys or twice under one (doubled; a receiver drops repeats of a key, so
``unique_after_dedup`` is what a receiver keeps). With ``--kill9 S`` the collector is
killed with SIGKILL S seconds into the run and restarted at once: the agent re-posts
the batch that failed, as a real agent does.

    flock -x /tmp/canhgac-cpu.lock .venv/bin/python bench/notify.py
    flock -x /tmp/canhgac-cpu.lock .venv/bin/python bench/notify.py --kill9 20
    flock -x /tmp/canhgac-cpu.lock .venv/bin/python bench/notify.py --storm-limit 20  # digests
Target (issue 10): p99 alert -> delivery <= 2 s, none lost or doubled.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import orjson
import yaml
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import percentile, start_collector
from canhgac.schema import new_event
from canhgac.tls import client_context
from collector.auth import AuthStore

INVENTORY = {"systems": [{
    "id": "cong-ttdt", "name": "Cổng thông tin điện tử tỉnh", "unit": "Sở Thông tin và Truyền thông",
    "level": 3, "hosts": ["bench-01"],
    "onsite": {"team": [{"name": "Nguyễn Văn An", "email": "an@stttt.example.vn"}]}}]}


def make_alert(i: int) -> dict:
    doc = new_event("alert", kind="alert", rule={"id": f"bench-{i % 20}", "name": "Bench rule"},
                    message="Bench rule (user.name=backup2)", host={"hostname": "bench-01"})
    doc["event"]["severity"] = 73
    doc["canhgac"] = {"alert": {"severity": "high"}}
    doc["source"] = {"ip": "203.0.113.7"}
    return doc


class Receiver:
    def __init__(self) -> None:
        self.first: dict[str, float] = {}  # alert id -> first arrival
        self.keys: Counter[str] = Counter()
        self.alert_keys: dict[str, set[str]] = {}
        self.digests: list[dict] = []
        self.waiting_for: set[str] | None = None  # set at the end of the load
        self.done = asyncio.Event()

    def _arrived(self, aid: str, now: float) -> None:
        self.first.setdefault(aid, now)
        if self.waiting_for is not None:
            self.waiting_for.discard(aid)
            if not self.waiting_for:
                self.done.set()

    def expect(self, ids: set[str]) -> None:
        self.waiting_for = ids - set(self.first)
        if not self.waiting_for:
            self.done.set()

    async def handle(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        now = time.time()
        key = request.headers.get("X-Canhgac-Idempotency-Key", "")
        self.keys[key] += 1
        if body.get("kind") == "digest":
            if self.keys[key] == 1:
                self.digests.append(body)
                for aid in body["alerts"]:
                    self._arrived(aid, now)
                    self.alert_keys.setdefault(aid, set()).add(key)
        else:
            aid = body["alert"]["id"]
            self._arrived(aid, now)
            self.alert_keys.setdefault(aid, set()).add(key)
        return web.Response(status=200)


async def run(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="canhgac-bench-notify-"))
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/hook", recv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    inv = tmp / "inventory.yaml"
    inv.write_text(yaml.safe_dump(INVENTORY, allow_unicode=True), encoding="utf-8")
    extra = {"inventory": str(inv), "outputs": {"store": {}}, "notifications": {
        "channels": {"sink": {"type": "webhook", "url": f"http://127.0.0.1:{port}/hook",
                              "secret": "bench"}},
        "storm_limit": args.storm_limit, "retry": {"initial": "100ms", "maximum": "2s"}}}
    loop = asyncio.get_running_loop()
    proc, url, ca = await loop.run_in_executor(None, start_collector, tmp, extra)
    auth = AuthStore(tmp / "collector" / "auth.db")
    enroll = auth.create_enroll_token("cong-ttdt")
    auth.close()
    ssl_ctx = client_context(ca)
    conn = aiohttp.TCPConnector(ssl=ssl_ctx, limit=1)
    posted: dict[str, float] = {}
    retries = 0
    killed_at = None
    current = {"proc": proc, "url": url}

    async def killer(start: float) -> None:
        """SIGKILL at ``--kill9`` s, whatever is in flight, and restart on the same state."""
        nonlocal killed_at
        await asyncio.sleep(max(0.0, start + args.kill9 - time.monotonic()))
        current["proc"].send_signal(signal.SIGKILL)
        await loop.run_in_executor(None, current["proc"].wait)
        killed_at = time.monotonic() - start
        p, u, _ = await loop.run_in_executor(None, start_collector, tmp, extra)
        current["proc"], current["url"] = p, u

    async with aiohttp.ClientSession(connector=conn) as s:
        async with s.post(f"{url}/v1/enroll", json={"token": enroll, "hostname": "bench-01"}) as r:
            body = await r.json()
        token = f"{body['agent_id']}.{body['secret']}"
        batches = args.alerts // args.batch
        interval = args.seconds / batches
        start = time.monotonic()
        kill_task = asyncio.create_task(killer(start)) if args.kill9 else None
        for b in range(batches):
            due = start + b * interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            alerts = [make_alert(b * args.batch + i) for i in range(args.batch)]
            data = gzip.compress(b"\n".join(orjson.dumps(a) for a in alerts), compresslevel=1)
            t0 = time.time()
            while True:
                try:
                    async with s.post(f"{current['url']}/v1/events", data=data, headers={
                            "Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                            "X-Batch-Id": f"notify-{b}"}) as r:
                        await r.read()
                        if r.status == 200:
                            break
                except (aiohttp.ClientError, OSError):
                    pass
                retries += 1
                await asyncio.sleep(0.2)
            for a in alerts:
                posted.setdefault(a["event"]["id"], t0)
        load_seconds = time.monotonic() - start
        if kill_task is not None:
            await kill_task
        want = set(posted)
        recv.expect(want)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(args.drain):
                await recv.done.wait()
    current["proc"].send_signal(signal.SIGTERM)
    current["proc"].wait(30)
    await runner.cleanup()
    individual = {aid: t for aid, t in recv.first.items() if aid in posted}
    lat = [individual[a] - posted[a] for a in individual]
    lost = len(want - set(recv.first))
    repeats = sum(n - 1 for n in recv.keys.values() if n > 1)
    two_keys = sum(1 for ks in recv.alert_keys.values() if len(ks) > 1)
    return {
        "alerts": len(posted), "seconds": round(load_seconds, 1), "kill9_at_s": killed_at,
        "post_retries": retries, "delivered_alerts": len(individual), "lost": lost,
        "alerts_under_two_keys": two_keys, "repeated_deliveries_of_a_key": repeats,
        "unique_after_dedup": len(recv.keys), "digests": len(recv.digests),
        "p50_s": round(percentile(lat, 50), 3), "p99_s": round(percentile(lat, 99), 3),
        "max_s": round(max(lat, default=0.0), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alerts", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--storm-limit", type=int, default=1_000_000,
                    help="per route per minute (default: high, so every alert goes out alone)")
    ap.add_argument("--kill9", type=float, default=0.0, help="SIGKILL the collector at this second")
    ap.add_argument("--drain", type=float, default=120.0, help="seconds to wait for the last ones")
    print(json.dumps(asyncio.run(run(ap.parse_args())), indent=2))


if __name__ == "__main__":
    main()
