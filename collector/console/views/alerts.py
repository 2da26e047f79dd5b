"""Cảnh báo / alerts: the live queue (htmx polls a fragment), one alert, ack and resolve.

Every read and step goes through the ``alert_desk`` port with the principal, i.e.
through the same scope, role and transition rules as ``/v1/alerts``; a refusal
comes back as the API's status and message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from canhgac.national.vocabulary import SEVERITY_NUMBER
from collector.alerts.api import SEVERITY_FLOOR, AlertStepError
from collector.alerts.store import OUTCOMES, STATUSES, AlertRecord
from collector.console.app import redirect
from collector.console.page import Page
from collector.ports import AlertDesk

FILTERS = ("severity", "unit", "system", "state")
QUEUE_LIMIT = 200


def severity_name(value: int | None) -> str:
    """low / medium / high / critical for a 0-100 severity (the API's bands)."""
    if value is None:
        return "low"
    name = "low"
    for key, floor in SEVERITY_FLOOR.items():
        if value >= floor:
            name = key
    return name


def _desk(page: Page) -> AlertDesk:
    if page.deps.alerts is None:
        raise web.HTTPNotFound(text="alerts are not enabled on this collector\n")
    return page.deps.alerts


def _filters(page: Page) -> dict[str, str]:
    q = page.request.query
    out = {k: q.get(k, "").strip() for k in FILTERS}
    if out["severity"] not in SEVERITY_FLOOR:
        out["severity"] = ""
    if out["state"] not in STATUSES:
        out["state"] = ""
    return out


def _rows(page: Page, f: dict[str, str]) -> tuple[Sequence[AlertRecord], str | None]:
    try:
        rows = _desk(page).query(page.who, status=f["state"] or None, system=f["system"] or None,
                                 unit=f["unit"], limit=QUEUE_LIMIT,
                                 min_severity=SEVERITY_FLOOR.get(f["severity"]))
        return rows, None
    except AlertStepError as exc:
        return [], exc.message


def _choices(page: Page) -> tuple[list[str], list[tuple[str, str]]]:
    """The units and systems the principal may filter on (no other unit's names)."""
    systems = [s for s in page.deps.inventory.current.systems if page.allows(s.id, s.unit)]
    units = list(dict.fromkeys(s.unit for s in systems))
    return units, [(s.id, s.name) for s in systems]


def _common(page: Page, f: dict[str, str]) -> dict[str, Any]:
    rows, error = _rows(page, f)
    return {"alerts": rows, "error": error, "filters": f, "severity_name": severity_name,
            "query": urlencode({k: v for k, v in f.items() if v})}


async def alerts_page(page: Page) -> tuple[str, dict[str, Any]]:
    f = _filters(page)
    units, systems = _choices(page)
    return "alerts.html", {**_common(page, f), "units": units, "systems": systems,
                           "severities": list(SEVERITY_NUMBER), "states": STATUSES,
                           "request_error": page.session.take_flash()}


async def alerts_queue(page: Page) -> tuple[str, dict[str, Any]]:
    """The rows alone, for htmx polling (does not hold the idle timeout off)."""
    return "alerts_rows.html", _common(page, _filters(page))


async def alert_detail(page: Page) -> tuple[str, dict[str, Any]]:
    try:
        rec = _desk(page).find(page.who, page.request.match_info["id"])
    except AlertStepError as exc:
        return "error.html", {"status": exc.status, "message": exc.message}
    ids = (rec.event.get("canhgac") or {}).get("alert", {}).get("source_event_ids") or []
    ids = [i for i in ids if isinstance(i, str)]
    evidence_query = "event.id:(" + " OR ".join(f'"{i}"' for i in ids) + ")" if ids else ""
    alert_query = f'event.id:"{rec.id}"'
    return "alert.html", {"alert": rec, "severity_name": severity_name, "outcomes": OUTCOMES,
                          "evidence_ids": ids, "evidence_query": evidence_query,
                          "alert_query": alert_query, "error": page.session.take_flash(),
                          "alert_json": orjson.dumps(rec.event, option=orjson.OPT_INDENT_2).decode()}


async def _step(page: Page, action: str) -> web.StreamResponse:
    alert_id = page.request.match_info["id"]
    form = page.form
    note = str(form.get("note") or "")
    outcome = str(form.get("outcome") or "")
    back = str(form.get("next") or "")
    if not back.startswith("/ui/alerts"):
        back = f"/ui/alerts/{alert_id}"
    try:
        _desk(page).step(page.who, alert_id, action, note, outcome)
    except AlertStepError as exc:
        if exc.status == 404:
            raise web.HTTPNotFound(text="no such alert\n") from None
        page.session.flash = exc.message
    return redirect(back)


async def ack(page: Page) -> web.StreamResponse:
    return await _step(page, "ack")


async def resolve(page: Page) -> web.StreamResponse:
    return await _step(page, "resolve")
