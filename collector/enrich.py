"""Enrichment: stamp every event with who it belongs to.

The system, level and unit come from the agent's enrollment and the inventory,
never from the payload: ``canhgac.system``, ``canhgac.unit``, ``canhgac.agent``
(and ``canhgac.alert``, which only the collector's detection may raise) are
replaced whatever an agent sends, and an attempt to claim another system is
counted. Other ``canhgac.*`` keys are probe details and pass through.
"""

from __future__ import annotations

from typing import Any

from canhgac.timeutil import now_rfc3339
from collector.auth import AgentRecord
from collector.inventory import InventoryHolder

# Who an event belongs to: always set by the collector, never taken from a payload.
ATTRIBUTION_KEYS = frozenset({"system", "unit", "agent", "alert"})


class Enricher:
    def __init__(self, inventory: InventoryHolder) -> None:
        self.inventory = inventory
        self.overrides = 0  # payloads that claimed another system

    def context_for(self, agent: AgentRecord) -> dict[str, Any]:
        system = self.inventory.system(agent.system_id)
        sysd: dict[str, Any] = {"id": agent.system_id}
        ctx: dict[str, Any] = {"system": sysd, "agent": {"id": agent.agent_id}}
        if system is not None:
            sysd["name"] = system.name
            sysd["level"] = system.level
            ctx["unit"] = {"name": system.unit}
        return ctx

    def apply(self, events: list[dict[str, Any]], agent: AgentRecord) -> None:
        ctx = self.context_for(agent)
        ingested = now_rfc3339()
        sid = agent.system_id
        for doc in events:
            claimed = doc.get("canhgac")
            mine = {k: (dict(v) if isinstance(v, dict) else v) for k, v in ctx.items()}
            if isinstance(claimed, dict):
                csys = claimed.get("system")
                if isinstance(csys, dict) and csys.get("id") not in (None, sid):
                    self.overrides += 1
                # Probe details (canhgac.scan, canhgac.arp, canhgac.file ...) are kept;
                # only the attribution keys are the collector's to set.
                for key, value in claimed.items():
                    if key not in ATTRIBUTION_KEYS:
                        mine[key] = value
            doc["canhgac"] = mine
            ag = doc.get("agent")
            if not isinstance(ag, dict):
                ag = {}
                doc["agent"] = ag
            ag["id"] = agent.agent_id
            ag.setdefault("type", "canhgac")
            host = doc.get("host")
            if not isinstance(host, dict):
                doc["host"] = {"hostname": agent.hostname}
            elif "hostname" not in host:
                host["hostname"] = agent.hostname
            doc["event"]["ingested"] = ingested
