"""Routing: which routes take an alert, who is told, and who next when nobody acts.

A route matches by unit, system, level, severity and rule (collector/notify/config.py);
every matching route sends the alert to each of its channels. Recipients are the
route's own list, else the system's on-site team (layer 1) from the inventory, in
the order the inventory lists them: the first contact is told first; if the alert
is not acknowledged within the deadline for the system's level, the next contact,
one deadline later the next, and after the last contact the head of the unit.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from canhgac.schema import get_path
from collector.inventory import Contact, InventoryHolder
from collector.notify.config import Notifications, Route, severity_label
from collector.notify.outbox import WINDOW, Candidate, Message
from collector.notify.render import render_alert, render_digest, summarize


def _contact(c: Contact) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(c).items() if v}


def _duration_text(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


class Router:
    def __init__(self, notif: Notifications, inventory: InventoryHolder,
                 deadlines: dict[int, float], clock: Callable[[], float] = time.time) -> None:
        self.notif = notif
        self.cfg = notif.config
        self.inventory = inventory
        self.deadlines = deadlines
        self.clock = clock
        self.routes = {r.name: r for r in notif.routes}

    # -- routing ---------------------------------------------------------------------------

    def candidates(self, events: list[dict[str, Any]]) -> list[Candidate]:
        """Alerts in ``events`` (not throttle updates) matched to every route that takes them."""
        out: list[Candidate] = []
        now = self.clock()
        for doc in events:
            if get_path(doc, "event.kind") != "alert" or not get_path(doc, "event.id"):
                continue
            if get_path(doc, "canhgac.alert.update_of"):
                continue  # folded into the alert it updates (collector/alerts/store.py)
            system_id = str(get_path(doc, "canhgac.system.id") or "")
            system = self.inventory.system(system_id) if system_id else None
            level = system.level if system else None
            severity = severity_label(get_path(doc, "canhgac.alert.severity"),
                                      get_path(doc, "event.severity"))
            unit = str(get_path(doc, "canhgac.unit.name") or (system.unit if system else ""))
            rule = str(get_path(doc, "rule.id") or "")
            rule_name = str(get_path(doc, "rule.name") or "")
            summary: dict[str, Any] | None = None
            for route in self.notif.routes:
                if not route.match.takes(unit, system_id, level, severity, rule, rule_name):
                    continue
                if summary is None:
                    summary = summarize(doc, system_name=system.name if system else "",
                                        level=level, severity=severity,
                                        console_url=self.cfg.console_url)
                    if unit and not summary["unit"]:
                        summary["unit"] = unit
                out.append(Candidate(
                    alert_id=summary["id"], route=route.name,
                    limit=route.storm_limit or self.cfg.storm_limit, created=now,
                    summary=summary, escalate_at=self._first_escalation(route, summary, now)))
        return out

    def contacts(self, route: Route, summary: dict[str, Any]) -> list[dict[str, Any]]:
        """Who is told, in escalation order: the route's list, else the system's on-site team."""
        if route.recipients:
            return [_contact(c) for c in route.recipients]
        system = self.inventory.system(summary.get("system_id") or "")
        return [_contact(c) for c in system.onsite.team] if system else []

    def escalation_chain(self, route: Route, summary: dict[str, Any]) -> list[dict[str, Any]]:
        """Step 1, 2, ...: the contacts after the first, then the unit's head."""
        chain = self.contacts(route, summary)[1:]
        head = self.cfg.escalation.unit_heads.get(summary.get("unit") or "")
        if head is not None:
            chain.append(_contact(head))
        return chain

    def deadline(self, summary: dict[str, Any]) -> float | None:
        level = summary.get("level")
        return self.deadlines.get(level) if isinstance(level, int) else None

    def _first_escalation(self, route: Route, summary: dict[str, Any], now: float) -> float | None:
        if not (route.escalate and self.cfg.escalation.enabled):
            return None
        deadline = self.deadline(summary)
        if deadline is None or not self.escalation_chain(route, summary):
            return None
        return now + deadline

    # -- messages --------------------------------------------------------------------------

    def _payloads(self, route: Route, kind: str, alert_id: str, base: dict[str, Any],
                  suffix: str) -> list[Message]:
        out = []
        for channel in route.channels:
            key = f"{kind}:{alert_id}:{route.name}:{channel}{suffix}"
            out.append(Message(key=key, channel=channel, route=route.name, kind=kind,
                               alert_id=alert_id if kind != "digest" else "",
                               payload={**base, "key": key, "kind": kind, "route": route.name,
                                        "channel": channel}))
        return out

    def render(self, c: Candidate) -> list[Message]:
        route = self.routes[c.route]
        recipients = self.contacts(route, c.summary)[:1]
        subject, text = render_alert(c.summary, route.language, recipients)
        base = {"language": route.language, "subject": subject, "text": text,
                "alert": c.summary, "recipients": recipients}
        return self._payloads(route, "alert", c.alert_id, base, "")

    def render_digest(self, route_name: str, window: int,
                      summaries: list[dict[str, Any]]) -> list[Message]:
        route = self.routes.get(route_name)
        if route is None:  # the route was removed from the config: nobody to send it to
            return []
        subject, text = render_digest(route_name, summaries, route.language, window * WINDOW)
        recipients = self.contacts(route, summaries[0])[:1] if summaries else []
        severity = max((s["severity"] for s in summaries), default="medium",
                       key=lambda s: ("low", "medium", "high", "critical").index(s))
        base = {"language": route.language, "subject": subject, "text": text, "alert": None,
                "alerts": [s["id"] for s in summaries], "count": len(summaries),
                "severity": severity, "recipients": recipients}
        return self._payloads(route, "digest", f"{route_name}-{window}", base, "")

    def render_escalation(self, route_name: str, summary: dict[str, Any],
                          step: int) -> tuple[list[Message], float | None]:
        """Messages of escalation step ``step`` and when the next step is due (None: last)."""
        route = self.routes.get(route_name)
        chain = self.escalation_chain(route, summary) if route else []
        deadline = self.deadline(summary)
        if route is None or step > len(chain) or deadline is None:
            return [], None
        recipients = [chain[step - 1]]
        subject, text = render_alert(summary, route.language, recipients, step,
                                     _duration_text(deadline * step))
        base = {"language": route.language, "subject": subject, "text": text, "alert": summary,
                "recipients": recipients, "escalation_step": step}
        messages = self._payloads(route, "escalation", summary["id"], base, f":{step}")
        next_due = self.clock() + deadline if step < len(chain) else None
        return messages, next_due
