"""Operator API for alerts: GET /v1/alerts, GET /v1/alerts/{id}, POST .../ack|resolve."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import web

from canhgac.national.vocabulary import SEVERITY_NUMBER
from canhgac.timeutil import parse_duration
from collector.alerts.access import Access, Principal, operator_name
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
# ?severity=NAME is a minimum: low 0-21, medium 22-47, high 48-73, critical 74-100
# (canhgac.national.vocabulary)
SEVERITY_FLOOR = {"low": 0, "medium": 22, "high": 48, "critical": 74}


class AlertStepError(Exception):
    """What the API answers (status, one line) when a query or a step is refused."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
            if severity not in SEVERITY_FLOOR:
                return _error(400, f"severity must be one of {', '.join(SEVERITY_NUMBER)}")
            min_severity = SEVERITY_FLOOR[severity]
        try:
            rows = self.query(who, status=status, system=q.get("system") or None, since=since,
                              min_severity=min_severity, limit=limit)
        except AlertStepError as exc:
            return _error(exc.status, exc.message)
        return _json({"alerts": [r.to_dict() for r in rows]})

    def query(self, who: Principal, *, status: str | None = None, system: str | None = None,
              since: float | None = None, min_severity: int | None = None, unit: str = "",
              limit: int = 100) -> Sequence[AlertRecord]:
        """The alerts ``who`` may see, newest first: the one place the list's scope is applied.

        Used by ``GET /v1/alerts`` and by the web console (the ``alert_desk`` port).
        """
        system_ids: list[str] | None = None
        if system:
            if self.inventory.has_systems() and self.inventory.system(system) is None:
                raise AlertStepError(404, f"no system {system!r} in the inventory")
            system_ids = [system]
        if who.scope is not None or unit:
            allowed = [s.id for s in self.inventory.current.systems
                       if who.allows(s.id, s.unit) and (not unit or s.unit == unit)]
            system_ids = allowed if system_ids is None else [s for s in system_ids if s in allowed]
        return self.store.list(status=status, system_ids=system_ids, since=since,
                               min_severity=min_severity, limit=limit)

    def find(self, who: Principal, given: str) -> AlertRecord:
        """One alert by id or unique prefix; out of scope raises exactly as absent (404)."""
        rec = self.store.get(self._id(given))
        if rec is None or not self._visible(who, rec):
            raise AlertStepError(404, "no such alert")
        return rec

    def step(self, who: Principal, given: str, action: str, note: str = "", outcome: str = "",
             name: str | None = None) -> AlertRecord:
        """Acknowledge or resolve as ``who``: scope, role and transition checked here only."""
        rec = self.find(who, given)
        if not who.can_write:
            raise AlertStepError(403, f"role {who.role!r} may not change alerts")
        if len(note) > MAX_NOTE:
            raise AlertStepError(400, f"note longer than {MAX_NOTE} characters")
        name = name or who.name
        try:
            if action == "ack":
                return self.store.acknowledge(rec.id, name, note)
            return self.store.resolve(rec.id, name, note, outcome)
        except KeyError:
            raise AlertStepError(404, "no such alert") from None
        except TransitionError as exc:
            raise AlertStepError(409, str(exc)) from None
        except ValueError as exc:  # resolve without a note or an outcome
            raise AlertStepError(400, f"{exc} (outcome: {', '.join(OUTCOMES)})") from None

    def _visible(self, who: Any, rec: AlertRecord | None) -> bool:
        # Out of scope looks exactly like absent: no probing for other units' alerts.
        return rec is not None and who.allows(rec.system_id, rec.unit)

    def _id(self, given: str) -> str:
        """The full id for an id or a unique prefix."""
        try:
            return self.store.resolve_id(given)
        except KeyError:
            raise AlertStepError(404, "no such alert") from None
        except ValueError as exc:
            raise AlertStepError(409, str(exc)) from None

    async def show(self, request: web.Request) -> web.Response:
        who = await self.access.principal(request)
        try:
            rec = self.find(who, request.match_info["id"])
        except AlertStepError as exc:
            return _error(exc.status, exc.message)
        return _json(rec.to_dict(with_event=True))

    async def _step(self, request: web.Request, action: str) -> web.Response:
        who = await self.access.principal(request)
        try:
            self.find(who, request.match_info["id"])
        except AlertStepError as exc:
            return _error(exc.status, exc.message)
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
                # Only the local admin says who acted; an operator is who they logged in as.
                if who.local_admin:
                    name = operator_name(body.get("operator")) or name
        try:
            rec = self.step(who, request.match_info["id"], action, note, outcome, name)
        except AlertStepError as exc:
            return _error(exc.status, exc.message)
        return _json(rec.to_dict())

    async def ack(self, request: web.Request) -> web.Response:
        return await self._step(request, "ack")

    async def resolve(self, request: web.Request) -> web.Response:
        return await self._step(request, "resolve")
