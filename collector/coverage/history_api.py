"""``GET /v1/coverage?at=DAY`` and ``GET /v1/coverage/history?system=S&since=1y``.

Same access rule as the live ``/v1/coverage``: an operator scoped to a unit sees
only its systems, and totals over those alone; a system out of scope answers
exactly as an unknown one. Bad input: 400 with ``{"error": "..."}``, one line.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import orjson
from aiohttp import web

from canhgac.text import nfc
from collector.coverage.history import HistoryStore, Snapshot, parse_since, report_from
from collector.inventory import InventoryHolder, parse_date
from collector.ports import PrincipalResolver

EVERY = ("change", "day")


class BadRequest(ValueError):
    pass


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def error(message: str) -> web.Response:
    return _json({"error": message}, 400)


def parse_day(key: str, text: str, today: dt.date) -> dt.date:
    try:
        day = parse_date(text)
    except ValueError:
        raise BadRequest(f"{key}: not a date: {text!r} (use YYYY-MM-DD or dd/mm/yyyy, e.g. "
                         "2025-06-30 or 30/06/2025)") from None
    if day > today:
        raise BadRequest(f"{key}: {day.isoformat()} is in the future (today is "
                         f"{today.isoformat()} in the province)")
    return day


def changes_only(snaps: list[Snapshot]) -> list[dict[str, Any]]:
    """The first entry, each entry whose state differs from the one before, and the last."""
    out: list[dict[str, Any]] = []
    prev: Snapshot | None = None
    for i, s in enumerate(snaps):
        changed = [] if prev is None else _changed(prev, s)
        if prev is None or changed or i == len(snaps) - 1:
            out.append({**s.to_dict(), "changed": changed})
        prev = s
    return out


def every_entry(snaps: list[Snapshot]) -> list[dict[str, Any]]:
    out = []
    prev: Snapshot | None = None
    for s in snaps:
        out.append({**s.to_dict(), "changed": [] if prev is None else _changed(prev, s)})
        prev = s
    return out


def _changed(a: Snapshot, b: Snapshot) -> list[str]:
    da, db = a.to_dict(), b.to_dict()
    out = [k for k in ("unit", "level", "status", "approved", "approved_on_time",
                       "approval_overdue", "plan_deployed", "plan_overdue") if da[k] != db[k]]
    out += [layer for layer in da["states"] if da["states"][layer] != db["states"][layer]]
    return out


class HistoryAPI:
    def __init__(self, store: HistoryStore, inventory: InventoryHolder,
                 access: PrincipalResolver | None) -> None:
        self.store = store
        self.inventory = inventory
        self.access = access

    async def _who(self, request: web.Request) -> Any:
        if self.access is None:
            raise web.HTTPForbidden(text="coverage API needs collector.alerts for access control\n")
        return await self.access.principal(request)

    async def at(self, request: web.Request, text: str) -> web.Response:
        """The report as history knew it at the end of a day (the live handler calls this)."""
        who = await self._who(request)
        try:
            day = parse_day("at", text, self.store.today())
        except BadRequest as exc:
            return error(str(exc))
        unit = nfc(request.query.get("unit") or "")
        system = request.query.get("system") or ""
        snaps = await asyncio.to_thread(self.store.at, day)
        snaps = [s for s in snaps if who.allows(s.system, s.unit)
                 and (not unit or s.unit == unit) and (not system or s.system == system)]
        inv = self.inventory.current
        report = report_from(snaps, inv.province, inv.unit_names())
        first = await asyncio.to_thread(self.store.first_day)
        body = report.to_dict()
        body["at"] = day.isoformat()
        body["history_from"] = first.isoformat() if first else None
        body["snapshots"] = {s.system: {"day": s.day.isoformat(), "seq": s.seq,
                                        "taken_at": s.taken_at, "reason": s.reason}
                             for s in snaps}
        return _json(body)

    async def history(self, request: web.Request) -> web.Response:
        who = await self._who(request)
        q = request.query
        system = (q.get("system") or "").strip()
        if not system:
            return error("system: required (an inventory id, e.g. ?system=cong-ttdt)")
        today = self.store.today()
        try:
            since = parse_since(q.get("since") or "1y", today)
            if since > today:
                raise BadRequest(f"since: {since.isoformat()} is in the future (today is "
                                 f"{today.isoformat()} in the province)")
            until = parse_day("until", q["until"], today) if q.get("until") else today
        except ValueError as exc:
            return error(str(exc))
        every = q.get("every") or "change"
        if every not in EVERY:
            return error(f"every: one of {', '.join(EVERY)}")
        snaps = await asyncio.to_thread(self.store.trend, system, since, until)
        live = next((s for s in self.inventory.current.systems if s.id == system), None)
        unit = snaps[-1].unit if snaps else live.unit if live else ""
        known = bool(snaps) or live is not None or await asyncio.to_thread(self.store.knows,
                                                                           system)
        # Out of scope answers exactly as unknown: no probing for other units' systems.
        if not known or not who.allows(system, unit):
            return error(f"unknown system {system!r} (see canhgac inventory show)")
        entries = changes_only(snaps) if every == "change" else every_entry(snaps)
        latest = snaps[-1] if snaps else None
        return _json({
            "system": {"id": system,
                       "name": live.name if live else latest.name if latest else system,
                       "unit": live.unit if live else unit,
                       "level": live.level if live else latest.level if latest else None},
            "since": since.isoformat(), "until": until.isoformat(), "every": every,
            "entries": entries,
        })
