"""Prometheus Alertmanager, API v2: ``POST {url}/api/v2/alerts`` with a list of alerts.

Sites that already route with Alertmanager (email, chat, on-call) reuse it: each
canhgac message becomes one Alertmanager alert whose labels carry what routing
there needs (severity, system, unit, level, rule, route) and whose annotations
carry the text and the ack command. ``canhgac_key`` (the idempotency key) is a
label, so a repeated send updates the same Alertmanager alert instead of adding
one. No ``endsAt``: Alertmanager resolves it after its ``resolve_timeout``.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from collector.notify.channels.http import HttpClient
from collector.notify.config import AlertmanagerChannel

_LABEL_VALUE_MAX = 512


def _clean(value: object) -> str:
    return re.sub(r"\s+", " ", str(value if value is not None else ""))[:_LABEL_VALUE_MAX]


def to_alertmanager(payload: dict[str, Any]) -> dict[str, Any]:
    """The Alertmanager v2 ``postableAlert`` for one rendered message."""
    alert = payload.get("alert") or {}
    kind = str(payload.get("kind", "alert"))
    labels = {
        "alertname": _clean(alert.get("rule_id") or ("canhgac_digest" if kind == "digest"
                                                     else "canhgac")),
        "kind": kind,
        "route": _clean(payload.get("route")),
        "severity": _clean(alert.get("severity") or payload.get("severity") or "medium"),
        "canhgac_key": _clean(payload.get("key")),
    }
    for name in ("system_id", "unit", "level", "alert_id"):
        value = alert.get(name if name != "alert_id" else "id")
        if value not in (None, ""):
            labels[name.replace("_id", "") if name == "system_id" else name] = _clean(value)
    if payload.get("escalation_step"):
        labels["escalation_step"] = str(payload["escalation_step"])
    annotations = {
        "summary": _clean(payload.get("subject")),
        "description": str(payload.get("text", ""))[:8000],
    }
    if alert.get("ack_command"):
        annotations["ack_command"] = str(alert["ack_command"])
    recipients = payload.get("recipients") or []
    if recipients:
        annotations["recipients"] = ", ".join(
            f"{r.get('name', '')} <{r['email']}>" if r.get("email") else str(r.get("name", ""))
            for r in recipients)
    body: dict[str, Any] = {"labels": labels, "annotations": annotations}
    if alert.get("timestamp"):
        body["startsAt"] = alert["timestamp"]
    if alert.get("link"):
        body["generatorURL"] = alert["link"]
    return body


class Alertmanager:
    kind = "alertmanager"

    def __init__(self, name: str, cfg: AlertmanagerChannel) -> None:
        self.name = name
        self.cfg = cfg
        self.http = HttpClient(float(cfg.timeout), cfg.ca)
        self.url = cfg.url.rstrip("/") + "/api/v2/alerts"

    async def send(self, payload: dict[str, Any]) -> str:
        auth = (aiohttp.BasicAuth(self.cfg.username, str(self.cfg.password))
                if self.cfg.username and self.cfg.password is not None else None)
        return await self.http.post(self.url, json=[to_alertmanager(payload)], auth=auth)

    async def close(self) -> None:
        await self.http.close()
