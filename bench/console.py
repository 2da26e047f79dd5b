"""Web console server time: the overview of a 500-system province, and the search page over
1,000,000 events in the embedded store.

A real collector process (all components, the embedded store) with a generated inventory
(``--systems`` systems in ``--units`` units, 3 hosts each, one agent enrolled per system)
and ``--events`` events spread over the last 24 h, written to events.db before it starts.
A client signs in to the console as an analyst (whole province) and as a viewer scoped to
one unit, then opens each page ``--rounds`` times, one request at a time. Server time is the
``Server-Timing: app;dur=`` the console sets (from the request reaching the page handler to
the rendered HTML, the access check included); the round trip over loopback TLS is shown too.
Targets (issue 11): overview p95 <= 100 ms; search page p95 <= 300 ms.

    flock -x /tmp/canhgac-cpu.lock .venv/bin/python bench/console.py
    .venv/bin/python bench/console.py --systems 500 --events 100000 --rounds 20   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import percentile, start_collector
from canhgac.timeutil import from_epoch
from canhgac.tls import client_context
from collector.auth import AuthStore
from collector.search.model import Scope
from collector.search.operators import DB_NAME, OperatorStore
from shipper.outputs.store.service import _row, open_store

DATASETS = ("auth", "process", "network", "host.metrics", "file", "session")


def inventory(path: Path, systems: int, units: int) -> list[tuple[str, str]]:
    names = [f"Sở Ban ngành số {u + 1}" for u in range(units)]
    out = []
    docs = []
    for i in range(systems):
        unit = names[i % units]
        sid = f"sys-{i:04d}"
        out.append((sid, unit))
        docs.append({
            "id": sid, "name": f"Hệ thống thông tin số {i + 1}", "unit": unit, "level": 1 + i % 4,
            "approval": {"approved": i % 3 != 0, "decision": f"{i}/QĐ-UBND", "date": "2024-08-15"},
            "plan": {"deployed": "2024-11-20"} if i % 4 else {},
            "hosts": [f"{sid}-app-{h}" for h in range(3)],
            "onsite": {"team": [{"name": "Nguyễn Văn An"}]} if i % 5 else {"team": []},
            "assessments": [{"date": "2026-06-01", "organisation": "Đơn vị đánh giá"}] if i % 2 else [],
            "national": {"enabled": i % 2 == 0},
        })
    path.write_text(yaml.safe_dump({"province": "Thừa Thiên Huế", "units": names, "systems": docs},
                                   allow_unicode=True), encoding="utf-8")
    return out


def events(path: Path, n: int, systems: list[tuple[str, str]]) -> None:
    """Rows as the store output writes them (``_row`` of the first one checks the shape)."""
    db = open_store(path, synchronous="OFF")  # a bench's load, not the collector's
    now = time.time()
    rng = random.Random(11)
    batch: list[tuple[Any, ...]] = []
    for i in range(n):
        sid, unit = systems[i % len(systems)]
        ds = DATASETS[i % len(DATASETS)]
        ts = now - rng.random() * 86000
        doc = {"@timestamp": from_epoch(ts),
               "event": {"id": f"{i:08d}-0000-7000-8000-{i:012d}", "dataset": ds, "kind": "event",
                         "module": "canhgac", "outcome": "failure" if i % 7 == 0 else "success"},
               "host": {"name": f"{sid}-app-{i % 3}"},
               "source": {"ip": f"10.{i % 250}.{(i // 250) % 250}.{i % 200}"},
               "message": f"sự kiện {ds} số {i}",
               "canhgac": {"system": {"id": sid, "level": 3}, "unit": {"name": unit}}}
        line = orjson.dumps(doc)
        row = (doc["event"]["id"], int(ts * 1000), ds, "event", sid, unit, line.decode())
        if i == 0:
            assert _row(line)[2:6] == row[2:6]
        batch.append(row)
        if len(batch) == 50_000:
            batch.sort(key=lambda r: r[1])
            db.executemany("INSERT INTO events(id, ts, dataset, kind, system_id, unit, doc) "
                           "VALUES(?,?,?,?,?,?,?)", batch)
            db.commit()
            batch.clear()
    if batch:
        db.executemany("INSERT INTO events(id, ts, dataset, kind, system_id, unit, doc) "
                       "VALUES(?,?,?,?,?,?,?)", batch)
        db.commit()
    db.close()


async def sign_in(http: aiohttp.ClientSession, url: str, token: str) -> None:
    async with http.get(f"{url}/ui/login") as r:
        nonce = re.search(r'name="login_csrf" value="([^"]+)"', await r.text()).group(1)  # type: ignore[union-attr]
    async with http.post(f"{url}/ui/login", data={"login_csrf": nonce, "token": token},
                         allow_redirects=False) as r:
        assert r.status == 303, await r.text()


async def measure(http: aiohttp.ClientSession, url: str, rounds: int) -> tuple[list[float], list[float], int]:
    server, trip = [], []
    size = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        async with http.get(url, allow_redirects=False) as r:
            body = await r.read()
            assert r.status == 200, (r.status, body[:300])
            trip.append((time.perf_counter() - t0) * 1000)
            server.append(float(r.headers["Server-Timing"].split("dur=")[1]))
            size = len(body)
    return server, trip, size


def line(name: str, server: list[float], trip: list[float], size: int) -> str:
    return (f"{name:<44} server p50 {percentile(server, 50):7.1f} ms  "
            f"p95 {percentile(server, 95):7.1f} ms  max {max(server):7.1f} ms | "
            f"round trip p95 {percentile(trip, 95):7.1f} ms | {size / 1024:6.0f} KiB")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--systems", type=int, default=500)
    ap.add_argument("--units", type=int, default=25)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--search-rounds", type=int, default=20,
                    help="rounds of the pages that search the store (slow over 1,000,000 events)")
    ap.add_argument("--state", type=Path, default=None,
                    help="keep the generated state here and reuse it on the next run (generating "
                    "1,000,000 events takes minutes: do it outside the exclusive lock)")
    ap.add_argument("--prepare-only", action="store_true")
    args = ap.parse_args()
    tmp = args.state or Path(tempfile.mkdtemp(prefix="canhgac-console-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    state = tmp / "collector"
    systems = inventory(tmp / "inventory.yaml", args.systems, args.units)
    if not (state / "events.db").exists():
        state.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        events(state / "events.db", args.events, systems)
        print(f"{args.events:,} events written in {time.perf_counter() - t:.0f} s")
        auth = AuthStore(state / "auth.db")
        for sid, _ in systems:
            auth.enroll(auth.create_enroll_token(sid), f"{sid}-app-0")
        auth.close()
    print(f"{args.systems} systems in {args.units} units; store {tmp}")
    if args.prepare_only:
        return
    ops = OperatorStore(state / DB_NAME)
    analyst = ops.create("bench-analyst", "analyst", Scope.everything())
    viewer = ops.create("bench-viewer", "viewer", Scope.parse(f"unit:{systems[0][1]}"))
    ops.close()
    proc, url, ca = start_collector(tmp, {"inventory": str(tmp / "inventory.yaml"),
                                          "outputs": {"store": {}}})
    pages = [
        ("overview (analyst, 500 systems)", "analyst", "/ui/overview"),
        ("overview (viewer, 1 unit)", "viewer", "/ui/overview"),
        ("system page", "analyst", f"/ui/systems/{systems[0][0]}"),
        ("system page: recent events (loaded after)", "analyst",
         f"/ui/systems/{systems[0][0]}/events"),
        ("alerts queue", "analyst", "/ui/alerts"),
        ("search event.dataset:auth, 24h", "analyst", "/ui/search?q=event.dataset%3Aauth&since=24h"),
        ("search * (every event), 24h", "analyst", "/ui/search?q=*&since=24h"),
        ("search one system, 24h", "analyst",
         f"/ui/search?q=event.outcome%3Afailure&since=24h&system={systems[7][0]}"),
        ("search source.ip CIDR, 1h", "analyst", "/ui/search?q=source.ip%3A10.1.0.0%2F16&since=1h"),
        ("search viewer (scope AND-ed), 24h", "viewer", "/ui/search?q=event.dataset%3Aauth&since=24h"),
    ]
    try:
        sessions = {}
        for who, token in (("analyst", analyst), ("viewer", viewer)):
            conn = aiohttp.TCPConnector(ssl=client_context(ca))
            http = aiohttp.ClientSession(connector=conn, cookie_jar=aiohttp.CookieJar(unsafe=True))
            await sign_in(http, url, token)
            sessions[who] = http
        for name, who, path in pages:
            searching = "/ui/search" in path or path.endswith("/events")
            rounds = args.search_rounds if searching else args.rounds
            # warm: caches, the first coverage report, SQLite's page cache
            await measure(sessions[who], url + path, 1 if searching else 2)
            server, trip, size = await measure(sessions[who], url + path, rounds)
            print(line(name, server, trip, size), flush=True)
        for http in sessions.values():
            await http.close()
    finally:
        proc.terminate()
        proc.wait(15)


if __name__ == "__main__":
    asyncio.run(main())
