"""Hệ thống / system: one information system, if and only if the principal's scope allows it.

Unknown and out of scope answer the same 404 page, as the API does, so a unit
viewer cannot learn by URL which other systems exist.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from collector.alerts.api import AlertStepError
from collector.console.page import Page
from collector.console.views.alerts import severity_name
from collector.console.views.overview import approval_key, plan_key, state_of
from collector.coverage.history_api import changes_only
from collector.coverage.model import LAYERS, agents_of
from collector.search.model import SearchRequest

log = logging.getLogger(__name__)

HISTORY_ROWS = 30  # changes shown, newest first (the CLI and API give the whole year)


def _probe_state(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("state") or ("running" if value.get("running") else "unknown"))
    return "running" if value is True else "unknown"


def agent_rows(page: Page, system: Any) -> list[dict[str, Any]]:
    now = time.time()
    presence = page.deps.presence
    rows = []
    for a in sorted(agents_of(system, page.deps.agents.agents()), key=lambda a: a.hostname):
        hb = a.heartbeat if isinstance(a.heartbeat, dict) else {}  # the last agent.health body
        probes = a.probes if isinstance(a.probes, dict) else {}
        rows.append({
            "hostname": a.hostname, "id": a.agent_id, "state": presence.state(a, now),
            "last_seen": a.last_seen, "version": str(hb.get("version") or "–"),
            "probes": sorted((name, _probe_state(v)) for name, v in probes.items()),
        })
    return rows


async def system_page(page: Page) -> tuple[str, dict[str, Any]]:
    system_id = page.request.match_info["id"]
    coverage = page.deps.coverage
    live = page.deps.inventory.system(system_id)
    if live is None or not page.allows(live.id, live.unit) or coverage is None:
        raise web.HTTPNotFound()
    report = coverage.report_for(page.allows_fn, system=system_id)
    if not report.systems:
        raise web.HTTPNotFound()
    cov = report.systems[0]
    alerts: Sequence[Any] = []
    if page.deps.alerts is not None:
        try:
            alerts = page.deps.alerts.query(page.who, system=system_id, limit=10)
        except AlertStepError:
            alerts = []
    history: list[dict[str, Any]] | None = None
    if page.deps.history is not None:
        today = page.deps.history.today()
        snaps = await asyncio.to_thread(page.deps.history.trend, system_id,
                                        today - dt.timedelta(days=365), today)
        history = changes_only(snaps)[-HISTORY_ROWS:][::-1]  # newest first
    return "system.html", {
        "system": live, "cov": cov, "layers": LAYERS, "state_of": state_of,
        "approval_key": approval_key(cov), "plan_key": plan_key(cov),
        "agents": agent_rows(page, live), "alerts": alerts, "severity_name": severity_name,
        "last_assessment": live.last_assessment(), "history": history,
    }


async def system_events(page: Page) -> tuple[str, dict[str, Any]]:
    """The system's recent events, loaded by the page after it shows (``hx-trigger="load"``):
    a search over a large store must not hold up the rest of the page."""
    system_id = page.request.match_info["id"]
    live = page.deps.inventory.system(system_id)
    if live is None or not page.allows(live.id, live.unit):
        raise web.HTTPNotFound()
    events: list[dict[str, Any]] = []
    error = None
    if page.deps.search is not None:
        try:
            req = SearchRequest.build("", since="24h", system=system_id, limit=20)
            events = (await page.deps.search.search(req, page.search_scope())).hits
        except Exception as exc:
            log.warning("console: recent events of %s: %s", system_id, exc)
            error = page.t("search.unavailable")
    return "system_events.html", {"system": live, "events": events, "events_error": error}
