"""The annual report for a province of 500 systems, in each format (issue 9 target: ≤ 10 s).

Prints figures; never passes or fails on time.

    flock -x /tmp/canhgac-cpu.lock .venv/bin/python bench/report.py [--systems 500]
        [--alerts 20000] [--runs 3]

Set-up (not timed): the inventory of bench/metrics_scrape.py (25 units, levels 1–5), a
year of history as bench/coverage_history.py writes it (a daily row per system and ~2 %
of systems changing state on any day), and --alerts alerts spread over the year, half
acknowledged. Figures:
  gather        reading the year's history of every system and the alerts, building the
                typed report (what GET /v1/reports/annual does before rendering);
  <format>      gather + render, end to end, as the API answers it; the file's size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from coverage_history import generate
from metrics_scrape import build

from collector.alerts.store import AlertStore
from collector.coverage.config import CoverageConfig
from collector.coverage.history import HistoryStore
from collector.report.api import gather
from collector.report.render import render

ICT = dt.timezone(dt.timedelta(hours=7))
YEAR = 2025
NOW = dt.datetime(YEAR, 12, 20, 9, 0, tzinfo=ICT).timestamp()


def fill_alerts(store: AlertStore, n: int, n_systems: int, rng: random.Random) -> None:
    start = dt.datetime(YEAR, 1, 1, tzinfo=ICT).timestamp()
    docs = []
    for i in range(n):
        at = start + rng.random() * (NOW - start)
        iso = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        docs.append({"@timestamp": iso, "event": {"kind": "alert", "id": f"b-{i:06d}",
                                                  "severity": rng.choice((21, 47, 73, 99))},
                     "canhgac": {"system": {"id": f"sys-{rng.randrange(n_systems):04d}"}}})
    store.register(docs)
    db = store._db  # acknowledgements in bulk: the API path is not what is measured here
    rows = db.execute("SELECT id, created FROM alerts").fetchall()
    db.execute("BEGIN")
    db.executemany("UPDATE alerts SET status='acknowledged', acked_by='bench', acked_at=? "
                   "WHERE id=?", [(c + rng.random() * 8 * 3600, i) for i, c in rows[::2]])
    db.execute("COMMIT")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--systems", type=int, default=500)
    ap.add_argument("--alerts", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(5)
    cfg = CoverageConfig()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        holder, _agents = build(args.systems, args.systems, rng)
        t = time.perf_counter()
        rows, _ = generate(tmp / "history.db", args.systems, 1, rng)
        history = HistoryStore(tmp / "history.db", cfg, clock=lambda: NOW)
        alerts = AlertStore(tmp / "alerts.db")
        fill_alerts(alerts, args.alerts, args.systems, rng)
        print(f"annual report {YEAR}: {args.systems} systems, {rows:,} history rows, "
              f"{args.alerts:,} alerts (set-up {time.perf_counter() - t:.0f} s)")
        inv = holder.current

        def once() -> object:
            return gather(inv, cfg, YEAR, NOW, history=history, alerts=alerts)

        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            report = once()
            times.append(time.perf_counter() - t)
        print(f"  gather   median {statistics.median(times):6.2f} s  max {max(times):6.2f} s")
        for fmt in ("md", "docx", "xlsx", "pdf"):
            times = []
            size = 0
            for _ in range(args.runs):
                t = time.perf_counter()
                size = len(render(once(), fmt, "vi"))  # type: ignore[arg-type]
                times.append(time.perf_counter() - t)
            print(f"  {fmt:<7}  median {statistics.median(times):6.2f} s  max {max(times):6.2f} s"
                  f"  ({size / 1e3:,.0f} kB, gather included)")
        history.close()
        alerts.close()
        del report


if __name__ == "__main__":
    main()
