"""Operator API for alerts: GET /v1/alerts, GET /v1/alerts/{id}, POST .../ack|resolve."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from canhgac.national.vocabulary import SEVERITY_NUMBER
from canhgac.timeutil import parse_duration
from collector.alerts.access import Access, operator_name
from collector.alerts.store import (
    MAX_NOTE,
    OUTCOMES,
    STATUSES,
    AlertRecord,
    AlertStore,
    TransitionError,
)
from collector.inventory import InventoryHolder

MAX_BODY = 16 * 1024


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


class AlertsAPI:
    def __init__(self, store: AlertStore, access: Access, inventory: InventoryHolder) -> None:
        self.store = store
        self.access = access
        self.inventory = inventory

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/alerts", self.list),
            web.get("/v1/alerts/{id}", self.show),
            web.post("/v1/alerts/{id}/ack", self.ack),
            web.post("/v1/alerts/{id}/resolve", self.resolve),
        ]

    async def list(self, request: web.Request) -> web.Response:
        who = await self.access.principal(request)
        q = request.query
        status = q.get("status") or None
        if status is not None and status not in STATUSES:
            return _error(400, f"status must be one of {', '.join(STATUSES)}")
        try:
            limit = int(q.get("limit", "100"))
            since = time.time() - float(q["since_seconds"]) if "since_seconds" in q else None
            if "since" in q:
                since = time.time() - parse_duration(q["since"])
        except ValueError:
            return _error(400, "limit must be a number; since a duration like 30m, 24h, 7d")
        severity = q.get("severity")
        min_severity = None
        if severity:
            # low 0-21, medium 22-47, high 48-73, critical 74-100 (canhgac.national.vocabulary)
            bounds = {"low": 0, "medium": 22, "high": 48, "critical": 74}
            if severity not in bounds:
                return _error(400, f"severity must be one of {', '.join(SEVERITY_NUMBER)}")
            min_severity = bounds[severity]
        system_ids: list[str] | None = None
        if q.get("system"):
            if self.inventory.has_systems() and self.inventory.system(q["system"]) is None:
                return _error(404, f"no system {q['system']!r} in the inventory")
            system_ids = [q["system"]]
        if who.scope is not None:
            allowed = [s.id for s in self.inventory.current.systems if who.allows(s.id, s.unit)]
            system_ids = allowed if system_ids is None else [s for s in system_ids if s in allowed]
        rows = self.store.list(status=status, system_ids=system_ids, since=since,
                               min_severity=min_severity, limit=limit)
        return _json({"alerts": [r.to_dict() for r in rows]})

    def _visible(self, who: Any, rec: AlertRecord | None) -> bool:
        # Out of scope looks exactly like absent: no probing for other units' alerts.
        return rec is not None and who.allows(rec.system_id, rec.unit)

    def _id(self, given: str) -> str | web.Response:
        """The full id for an id or a unique prefix, or the error response."""
        try:
            return self.store.resolve_id(given)
        except KeyError:
            return _error(404, "no such alert")
        except ValueError as exc:
            return _error(409, str(exc))

    async def show(self, request: web.Request) -> web.Response:
        who = await self.access.principal(request)
        alert_id = self._id(request.match_info["id"])
        if isinstance(alert_id, web.Response):
            return alert_id
        rec = self.store.get(alert_id)
        if not self._visible(who, rec):
            return _error(404, "no such alert")
        return _json(rec.to_dict(with_event=True))  # type: ignore[union-attr]

    async def _step(self, request: web.Request, action: str) -> web.Response:
        who = await self.access.principal(request)
        resolved_id = self._id(request.match_info["id"])
        if isinstance(resolved_id, web.Response):
            return resolved_id
        alert_id = resolved_id
        if not self._visible(who, self.store.get(alert_id)):
            return _error(404, "no such alert")
        if not who.can_write:
            return _error(403, f"role {who.role!r} may not change alerts")
        note = ""
        outcome = ""
        name = who.name
        if request.can_read_body:
            if request.content_length is not None and request.content_length > MAX_BODY:
                return _error(413, f"body larger than {MAX_BODY} bytes")
            raw = await request.content.read(MAX_BODY + 1)
            if len(raw) > MAX_BODY:
                return _error(413, f"body larger than {MAX_BODY} bytes")
            if raw.strip():
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    return _error(400, "body must be JSON: {\"note\": \"...\"}")
                if not isinstance(body, dict) or not isinstance(body.get("note", ""), str) \
                        or not isinstance(body.get("outcome", ""), str):
                    return _error(400, "body must be JSON: {\"note\": \"...\"}")
                note = body.get("note", "")
                outcome = body.get("outcome", "")
                if len(note) > MAX_NOTE:
                    return _error(400, f"note longer than {MAX_NOTE} characters")
                # Only the local admin says who acted; an operator is who they logged in as.
                if who.local_admin:
                    name = operator_name(body.get("operator")) or name
        try:
            if action == "ack":
                rec = self.store.acknowledge(alert_id, name, note)
            else:
                rec = self.store.resolve(alert_id, name, note, outcome)
        except KeyError:
            return _error(404, "no such alert")
        except TransitionError as exc:
            return _error(409, str(exc))
        except ValueError as exc:  # resolve without a note or an outcome
            return _error(400, f"{exc} (outcome: {', '.join(OUTCOMES)})")
        return _json(rec.to_dict())

    async def ack(self, request: web.Request) -> web.Response:
        return await self._step(request, "ack")

    async def resolve(self, request: web.Request) -> web.Response:
        return await self._step(request, "resolve")
