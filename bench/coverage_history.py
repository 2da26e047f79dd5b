"""Coverage history: snapshot cost per computation, and 3 years of history on disk.

Prints figures; never passes or fails on time (targets from the issue: a coverage
computation *with* history snapshotting for 2,000 systems and 20,000 agents under 1 s;
3 years of daily snapshots of 2,000 systems under 200 MB).

    .venv/bin/python bench/coverage_history.py [--systems 2000] [--agents 20000] [--years 3]

Figures:
  compute          one coverage computation, no history (the reference);
  + history        the same with the history listener, ~1% of systems changing state
                   each time (change detection + the change rows written in the writer
                   thread, as the collector runs it);
  + daily          the computation that takes the day's full snapshot (every system),
                   written synchronously here: the worst case;
  3-year store     daily rows for every system over --years, plus ~2% of systems with a
                   change on any day, bulk inserted; the file size after a checkpoint;
  --at             CoverageReport for one day (the last snapshot on or before it, per system);
  --since 1y       one system's rows over a year.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics_scrape import Agents, build

from collector.coverage.config import CoverageConfig
from collector.coverage.history import (
    FLAGS,
    REASONS,
    SCALE,
    HistoryStore,
    report_from,
)
from collector.coverage.service import CoverageService
from collector.fleet import Presence


def fmt(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return f"median {statistics.median(ms):7.1f} ms  p95 {p95:7.1f} ms  max {ms[-1]:7.1f} ms"


def compute_figures(n_systems: int, n_agents: int, runs: int, tmp: Path) -> None:
    rng = random.Random(7)
    holder, agents = build(n_systems, n_agents, rng)
    cfg = CoverageConfig()
    cfg.cache_ttl = 0.0  # type: ignore[assignment]
    plain = CoverageService(holder, cfg, agents=Agents(agents), presence=Presence(90))
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        plain.report(0.0)
        times.append(time.perf_counter() - t)
    print(f"  compute            {fmt(times)}")

    service = CoverageService(holder, cfg, agents=Agents(agents), presence=Presence(90))
    store = HistoryStore(tmp / "history.db", cfg, report=lambda: service.report(0.0))
    service.listeners.append(store.on_report)
    t = time.perf_counter()
    service.report(0.0)  # today's first report: the full snapshot, written here
    daily = time.perf_counter() - t
    print(f"  + daily            {daily * 1000:7.1f} ms  (full snapshot of {n_systems} systems, "
          "written synchronously)")

    async def changing() -> list[float]:
        await store.start()  # the writer thread, as in the collector
        out = []
        by_system: dict[str, list[object]] = {}
        for a in agents:
            by_system.setdefault(a.system_id, []).append(a)
        ids = sorted(by_system)
        for _ in range(runs):
            # ~1% of systems change state: their first agent's probe stops or restarts
            for sid in rng.sample(ids, max(1, len(ids) // 100)):
                a = by_system[sid][0]
                p = a.probes["host_metrics"]  # type: ignore[attr-defined]
                p["running"] = not p["running"]
            t = time.perf_counter()
            await asyncio.to_thread(service.report, 0.0)
            out.append(time.perf_counter() - t)
        store.flush()
        await store.stop()
        return out

    before = store.snapshots_written
    times = asyncio.run(changing())
    print(f"  + history          {fmt(times)}  ({store.snapshots_written - before} change rows "
          f"over {runs} computations)")
    store.close()


def generate(path: Path, n_systems: int, years: int, rng: random.Random) -> tuple[int, float]:
    cfg = CoverageConfig()
    store = HistoryStore(path, cfg)
    db = store.db
    units = [store._label(f"Sở Ban ngành số {i} — Thừa Thiên Huế") for i in range(25)]
    operating = store._label("operating")
    sids = [store._system(f"sys-{i:04d}", f"Hệ thống thông tin số {i} của tỉnh")
            for i in range(n_systems)]
    start = dt.date(2025, 12, 1) - dt.timedelta(days=365 * years)
    days = (dt.date(2025, 12, 1) - start).days
    state = [[rng.choice((0, SCALE)), rng.randrange(SCALE + 1), rng.choice((0, SCALE)),
              rng.choice((0, SCALE)), rng.randrange(1 << len(FLAGS))] for _ in sids]
    daily, change = REASONS.index("daily"), REASONS.index("change")
    total = 0
    t0 = time.perf_counter()
    for d0 in range(0, days, 30):
        rows = []
        for d in range(d0, min(days, d0 + 30)):
            day = (start + dt.timedelta(days=d)).toordinal()
            at = int(time.mktime((start + dt.timedelta(days=d)).timetuple()))
            for i, sid in enumerate(sids):
                s = state[i]
                s[1] = min(SCALE, max(0, s[1] + rng.randrange(-300, 301)))  # ratio wobble
                rows.append((sid, day, 0, at, daily, units[i % 25], 1 + i % 5, operating, s[4],
                             s[0], s[1], s[2], s[3]))
                if rng.random() < 0.02:  # a change later that day
                    s[0] = SCALE - s[0]
                    s[4] ^= 1 << rng.randrange(len(FLAGS))
                    rows.append((sid, day, 1, at + 3600 * rng.randrange(1, 20), change,
                                 units[i % 25], 1 + i % 5, operating, s[4], s[0], s[1], s[2],
                                 s[3]))
            db.execute("INSERT INTO days VALUES (?, ?)", (day, at))
        db.execute("BEGIN")
        db.executemany("INSERT INTO snapshots VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        db.execute("COMMIT")
        total += len(rows)
    seconds = time.perf_counter() - t0
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return total, seconds


def storage_figures(n_systems: int, years: int, tmp: Path) -> None:
    rng = random.Random(11)
    path = tmp / "history-3y.db"
    rows, seconds = generate(path, n_systems, years, rng)
    size = sum(p.stat().st_size for p in tmp.glob("history-3y.db*"))
    print(f"  3-year store       {rows:,} rows ({n_systems} systems x {years} years daily + "
          f"changes) in {seconds:.0f} s; {size / 1e6:.1f} MB on disk, "
          f"{size / rows:.0f} bytes/row")
    store = HistoryStore(path, CoverageConfig(), clock=lambda: time.mktime((2025, 12, 1, 12, 0, 0,
                                                                            0, 0, -1)))
    at_times, since_times = [], []
    for _ in range(10):
        day = dt.date(2025, 12, 1) - dt.timedelta(days=rng.randrange(365 * years))
        t = time.perf_counter()
        snaps = store.at(day)
        report_from(snaps, "Thừa Thiên Huế", []).to_dict()
        at_times.append(time.perf_counter() - t)
        assert len(snaps) == n_systems
    for _ in range(10):
        system = f"sys-{rng.randrange(n_systems):04d}"
        t = time.perf_counter()
        trend = store.trend(system, dt.date(2024, 12, 1), dt.date(2025, 12, 1))
        since_times.append(time.perf_counter() - t)
    print(f"  --at DAY           {fmt(at_times)}  ({n_systems} systems, report built)")
    print(f"  --since 1y         {fmt(since_times)}  ({len(trend)} rows of one system)")
    t = time.perf_counter()
    pruned = store.prune(dt.date(2025, 12, 1) + dt.timedelta(days=30))
    print(f"  prune 30 days      {(time.perf_counter() - t) * 1000:7.1f} ms  ({pruned:,} rows, "
          f"chunks of 5,000)")
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--systems", type=int, default=2000)
    ap.add_argument("--agents", type=int, default=20000)
    ap.add_argument("--years", type=int, default=3)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    print(f"coverage history: {args.systems} systems, {args.agents} agents; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        compute_figures(args.systems, args.agents, args.runs, Path(tmp))
        storage_figures(args.systems, args.years, Path(tmp))


if __name__ == "__main__":
    main()
