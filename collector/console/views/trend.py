"""The overview's trend: each layer's province and unit figure as the coverage history had it
30 days ago (or on the history's first day, when it is younger), next to today's.

The past report is rebuilt from the history's snapshots (``report_from``, the same rollup
as today's) and restricted with the principal's own scope function, so a unit viewer's
trend is over its systems only, as its totals are. A past day's snapshots never change,
so the rebuilt (unscoped) report is kept until the day moves on.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass

from collector.coverage.history import report_from
from collector.coverage.model import CoverageReport, Rollup
from collector.ports import CoverageHistory

DAYS = 30


@dataclass(frozen=True)
class Trend:
    day: dt.date  # the day compared with
    province: Rollup
    units: dict[str, Rollup]


class Baseline:
    """The history's report of one past day, computed once per day (the history's first
    day too: ``min(day)`` reads the whole table, a year is 186,000 rows). One per console
    (``Deps.baseline``), so one collector's history is never mistaken for another's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: dt.date | None = None
        self._report: CoverageReport | None = None
        self._first: tuple[dt.date, dt.date | None] | None = None

    def first_day(self, history: CoverageHistory, today: dt.date) -> dt.date | None:
        with self._lock:
            if self._first is None or self._first[0] != today:
                self._first = (today, history.first_day())
            return self._first[1]

    def report(self, history: CoverageHistory, day: dt.date, province: str,
               units: list[str]) -> CoverageReport | None:
        with self._lock:
            if self._key != day:
                snaps = history.at(day)
                self._report = report_from(snaps, province, units) if snaps else None
                self._key = day
            return self._report


def trend(history: CoverageHistory | None, baseline: Baseline, now: CoverageReport,
          allows: Callable[[str, str], bool] | None) -> Trend | None:
    """The figures to compare ``now`` with; None while the history has no earlier day."""
    if history is None:
        return None
    today = history.today()
    first = baseline.first_day(history, today)
    if first is None or first >= today:
        return None
    day = max(today - dt.timedelta(days=DAYS), first)
    then = baseline.report(history, day, now.province, [u.name for u in now.units])
    if then is None:
        return None
    if allows is not None:  # the viewer's scope, exactly as today's totals
        then = then.restricted(lambda s: allows(s.id, s.unit))
    return Trend(day, then.province_rollup, {u.name: u for u in then.units})
