"""Availability of the national link over time (layer 4 "over the period", not "now").

Each minute the link's state is sampled and kept as one row per minute in
``<state_dir>/national/availability.db``: availability over a period is the share
of its *observed* minutes the link was up. A minute the collector was not running
is not observed: it is neither up nor down, and ``observed`` says how much of the
period is known. Three years of minutes are ~1.6 M rows of two integers (~30 MB),
pruned beyond ``RETENTION``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from canhgac.sqlite import connect

MINUTE = 60
RETENTION = 1096 * 86400  # 3 years (a leap day included), as coverage history

SCHEMA = """
CREATE TABLE IF NOT EXISTS link_minutes (
    minute INTEGER PRIMARY KEY,  -- Unix time // 60
    up INTEGER NOT NULL          -- 1 if the link was up at the sample
);
"""


@dataclass(frozen=True, slots=True)
class Availability:
    up_minutes: int
    observed_minutes: int
    period_minutes: int

    @property
    def ratio(self) -> float | None:
        return self.up_minutes / self.observed_minutes if self.observed_minutes else None

    @property
    def observed(self) -> float:
        return self.observed_minutes / self.period_minutes if self.period_minutes else 0.0


class AvailabilityLog:
    """Minute samples of the link state. Thread-safe; every call is one short statement."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._last_prune = 0.0

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = connect(self.path, synchronous="NORMAL")  # a lost minute is harmless
            self._db.executescript(SCHEMA)
        return self._db

    def record(self, up: bool, now: float | None = None) -> None:
        """The link's state at ``now``: the minute is down if any sample in it was down."""
        t = time.time() if now is None else now
        with self._lock:
            db = self._conn()
            db.execute("INSERT INTO link_minutes(minute, up) VALUES(?, ?) ON CONFLICT(minute) "
                       "DO UPDATE SET up = MIN(up, excluded.up)", (int(t // MINUTE), int(up)))
            if t - self._last_prune > 3600:
                db.execute("DELETE FROM link_minutes WHERE minute < ?",
                           (int((t - RETENTION) // MINUTE),))
                self._last_prune = t

    def over(self, since: float, until: float) -> Availability:
        lo, hi = int(since // MINUTE), int(until // MINUTE)
        with self._lock:
            row = self._conn().execute(
                "SELECT COALESCE(SUM(up), 0), COUNT(*) FROM link_minutes "
                "WHERE minute BETWEEN ? AND ?", (lo, hi)).fetchone()
        return Availability(int(row[0]), int(row[1]), hi - lo + 1)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
