"""Tổng quan / overview: province -> units -> systems, the four layers with the reason for every gap.

The report is the coverage service's, restricted to the principal's scope by the
service itself (``report_for``), so a unit viewer's totals are over its systems only;
the trend beside each province and unit figure is the coverage history's, restricted
with the same scope function (``views/trend.py``).
"""

from __future__ import annotations

from typing import Any

from collector.console.page import Page
from collector.console.views.trend import trend
from collector.coverage.model import LAYERS, SystemCoverage


def state_of(ratio: float) -> str:
    """CSS class of a coverage cell."""
    return "ok" if ratio >= 1 else "warn" if ratio >= 0.5 else "bad"


def approval_key(s: SystemCoverage) -> str:
    if s.approved:
        return "ok" if s.approved_on_time else "late"
    return "overdue" if s.approval_overdue else "not_yet"


def plan_key(s: SystemCoverage) -> str:
    if s.plan_deployed:
        return "ok"
    return "overdue" if s.plan_overdue else "not_yet"


async def overview(page: Page) -> tuple[str, dict[str, Any]]:
    coverage = page.deps.coverage
    if coverage is None:
        return "overview.html", {"report": None, "groups": [], "layers": LAYERS, "trend": None}
    report = coverage.report_for(page.allows_fn)
    by_unit: dict[str, list[SystemCoverage]] = {}
    for s in report.systems:
        by_unit.setdefault(s.unit, []).append(s)
    groups = [(u, by_unit.get(u.name, [])) for u in report.units if by_unit.get(u.name)]
    return "overview.html", {"report": report, "groups": groups, "layers": LAYERS,
                             "state_of": state_of, "approval_key": approval_key,
                             "plan_key": plan_key,
                             "trend": trend(page.deps.history, page.deps.baseline, report,
                                            page.allows_fn),
                             "delta": delta}


def delta(now: float, then: float) -> tuple[str, int]:
    """The change in percentage points, as (CSS class, rounded points)."""
    points = round((now - then) * 100)
    return ("up" if points > 0 else "down" if points < 0 else "flat"), points
