"""Hourly per-system summaries for the national center.

A stage counts every event that passes (cheap: a few dict increments per
event); a timer closes the period and injects one summary event per system
through ``ctx.inject``, so summaries are spooled and delivered like alerts, with
the same at-least-once guarantee. Systems in the inventory that sent nothing
get a summary too: silence is information for layer 4.
"""

from __future__ import annotations

import fnmatch
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from canhgac.national.vocabulary import SUMMARY_DATASET, severity_label
from canhgac.schema import get_path, new_event
from canhgac.timeutil import from_epoch
from collector.inventory import InventoryHolder, System

UNKNOWN = "(unassigned)"


@dataclass
class _SystemCounts:
    events: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    agents: set[str] = field(default_factory=set)
    hosts: set[str] = field(default_factory=set)
    name: str = ""
    level: int | None = None
    unit: str = ""


class SummaryStage:
    name = "national.summary"

    def __init__(self, inventory: InventoryHolder | None = None, now: float | None = None) -> None:
        self.inventory = inventory
        self.period_start = time.time() if now is None else now
        self._counts: dict[str, _SystemCounts] = {}
        self.emitted = 0

    def process(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        counts = self._counts
        for ev in events:
            meta = ev.get("event")
            if not isinstance(meta, dict):
                continue
            dataset = meta.get("dataset")
            if dataset == SUMMARY_DATASET:
                continue
            system = get_path(ev, "canhgac.system")
            sid = system.get("id") if isinstance(system, dict) else None
            sid = sid if isinstance(sid, str) and sid else UNKNOWN
            c = counts.get(sid)
            if c is None:
                c = counts[sid] = _SystemCounts()
                if isinstance(system, dict):
                    c.name = str(system.get("name", ""))
                    lvl = system.get("level")
                    c.level = lvl if isinstance(lvl, int) else None
                    c.unit = str(get_path(ev, "canhgac.unit.name") or "")
            c.events[str(dataset or "unknown").replace(".", "_")] += 1
            if meta.get("kind") == "alert":
                c.alerts[severity_label(ev)] += 1
            agent = get_path(ev, "agent.id")
            if isinstance(agent, str):
                c.agents.add(agent)
            # Hosts are compared case-insensitively, as everywhere else in canhgac.
            for field_name in ("host.hostname", "host.name"):
                host = get_path(ev, field_name)
                if isinstance(host, str) and host:
                    c.hosts.add(host.lower())
        return []

    def tick(self, now: float) -> list[dict[str, Any]]:
        return []

    def flush(self, now: float | None = None) -> list[dict[str, Any]]:
        """Close the period [period_start, now) and return its summaries."""
        end = time.time() if now is None else now
        counts, self._counts = self._counts, {}
        start, self.period_start = self.period_start, end
        systems: dict[str, System] = {}
        if self.inventory is not None:
            for known in self.inventory.current.systems:
                systems[known.id] = known
                counts.setdefault(known.id, _SystemCounts())
        out = []
        for sid, c in sorted(counts.items()):
            s = systems.get(sid)
            name = (s.name if s else "") or c.name
            level = (s.level if s else None) or c.level
            unit = (s.unit if s else "") or c.unit
            agents: dict[str, Any] = {"reporting": len(c.agents)}
            if s is not None and s.hosts:
                agents.update(_host_coverage(s, c.hosts))
            else:
                agents["hosts_reporting"] = len(c.hosts)
            system: dict[str, Any] = {"id": sid}
            if name:
                system["name"] = name
            if level is not None:
                system["level"] = level
            cg: dict[str, Any] = {
                "system": system,
                "summary": {
                    "period": {"start": from_epoch(start), "end": from_epoch(end)},
                    "events": sum(c.events.values()),
                    "events_by_dataset": dict(c.events),
                    "alerts": sum(c.alerts.values()),
                    "alerts_by_severity": {k: c.alerts.get(k, 0)
                                           for k in ("low", "medium", "high", "critical")},
                    "agents": agents,
                },
            }
            if unit:
                cg["unit"] = {"name": unit}
            ev = new_event(SUMMARY_DATASET, kind="metric", category=["host"], type=["info"],
                           action="hourly-summary", timestamp=from_epoch(end),
                           message=f"Summary for {name or sid}: {sum(c.events.values())} events, "
                                   f"{sum(c.alerts.values())} alerts", canhgac=cg)
            out.append(ev)
        self.emitted += len(out)
        return out


def _host_coverage(system: System, seen: set[str]) -> dict[str, Any]:
    """Hosts expected and reporting: each listed host, and each host a selector matched.

    A selector (``dvc-app-*``) is not a host: the hosts it matched this period count as
    expected and reporting; one that matched nothing adds nothing it could not see.
    """
    exact = {h.lower() for h in system.exact_hosts}
    patterns = [p.lower() for p in system.host_patterns]
    matched = {h for h in seen if h not in exact and any(fnmatch.fnmatchcase(h, p)
                                                         for p in patterns)}
    reporting = (exact & seen) | matched
    expected = len(exact) + len(matched)
    out: dict[str, Any] = {"hosts_reporting": len(reporting), "hosts_expected": expected}
    if expected:
        out["coverage"] = round(len(reporting) / expected, 4)
    elif patterns:
        out["coverage"] = 0.0  # selectors only, and no host of theirs reported
    return out
