"""The sharing policy: which lines leave the province, decided per security level.

Default (any level): alerts of severity medium and above, and the hourly
per-system summaries. Raw telemetry is never shared unless a level enables it.
A system whose inventory entry opts out of national sharing shares nothing.

Severity. Alerts carry ECS ``event.severity`` (a number); we read it with the
Elastic Security risk ranges, whose upper bounds are the numbers our rules
emit: low 0-21 (21), medium 22-47 (47), high 48-73 (73), critical 74-100 (99).
A ``canhgac.alert.severity`` label, when present, wins. An alert with neither
is treated as medium (shared by default): losing an alert is worse than
sharing one the policy was unsure about.
"""

from __future__ import annotations

from typing import Any, Protocol

from canhgac.national.vocabulary import (  # noqa: F401  (re-exported)
    SEVERITY_NUMBER,
    SEVERITY_RANK,
    SUMMARY_DATASET,
    severity_label,
)
from canhgac.schema import get_path
from shipper.outputs.national.config import LevelPolicy, PolicyConfig

# Outcomes. Shared ones start with "share:", filtered ones name why (bounded label set).
SHARE_ALERT = "share:alert"
SHARE_SUMMARY = "share:summary"
SHARE_TELEMETRY = "share:telemetry"
FILTERED_REASONS = ("below_severity", "alerts_disabled", "summaries_disabled", "telemetry",
                    "system_opted_out", "unknown_system", "malformed")


class NationalFlag(Protocol):
    @property
    def enabled(self) -> bool: ...


class SystemRecord(Protocol):
    """What the policy reads of an inventory entry (the collector's ``System``)."""

    @property
    def level(self) -> int: ...

    @property
    def status(self) -> str: ...

    @property
    def national(self) -> NationalFlag: ...


class SystemDirectory(Protocol):
    """The inventory as the policy reads it (the collector's InventoryHolder).

    Typed, so a field renamed in the inventory fails the type check here; read inside
    ``try``: an inventory problem must not stop sharing.
    """

    def system(self, system_id: str) -> SystemRecord | None: ...

    def has_systems(self) -> bool: ...


def _opted_out(inventory: SystemDirectory | None, system_id: Any) -> bool:
    if inventory is None or not isinstance(system_id, str):
        return False
    try:
        system = inventory.system(system_id)
        return system is not None and not system.national.enabled
    except Exception:  # an inventory problem must not stop sharing
        return False


def _retired(inventory: SystemDirectory | None, system_id: Any) -> bool:
    if inventory is None or not isinstance(system_id, str):
        return False
    try:
        system = inventory.system(system_id)
        return system is not None and system.status == "retired"
    except Exception:  # an inventory problem must not stop sharing
        return False


def _unknown(inventory: SystemDirectory | None, system_id: Any) -> bool:
    if inventory is None:
        return False
    try:
        return inventory.has_systems() and (not isinstance(system_id, str)
                                            or inventory.system(system_id) is None)
    except Exception:  # an inventory problem must not stop sharing
        return False


def _level(event: dict[str, Any], inventory: SystemDirectory | None) -> int | None:
    level = get_path(event, "canhgac.system.level")
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    system_id = get_path(event, "canhgac.system.id")
    if inventory is not None and isinstance(system_id, str):
        try:
            system = inventory.system(system_id)
            return None if system is None else int(system.level)
        except Exception:  # an inventory problem must not stop sharing
            return None
    return None


class Policy:
    """Decides per event; ``inventory`` is the collector's InventoryHolder (or None)."""

    def __init__(self, config: PolicyConfig, inventory: SystemDirectory | None = None) -> None:
        self.config = config
        self.inventory = inventory

    def shares_observables(self, event: dict[str, Any]) -> bool:
        """Whether a shared alert of this event's level carries its attacker observables."""
        return self.config.for_level(_level(event, self.inventory)).observables

    def decide(self, event: dict[str, Any]) -> str:
        if not isinstance(event, dict) or not isinstance(event.get("event"), dict):
            return "malformed"
        system_id = get_path(event, "canhgac.system.id")
        if _unknown(self.inventory, system_id):
            return "unknown_system"  # not in the inventory: never reported as the province's
        if _opted_out(self.inventory, system_id):
            return "system_opted_out"
        if _retired(self.inventory, system_id):
            return "system_retired"  # its agents should be gone: never the province's report
        pol: LevelPolicy = self.config.for_level(_level(event, self.inventory))
        ev = event["event"]
        if ev.get("kind") == "alert":
            if not pol.alerts:
                return "alerts_disabled"
            if SEVERITY_RANK[severity_label(event)] < SEVERITY_RANK[pol.min_severity]:
                return "below_severity"
            return SHARE_ALERT
        if ev.get("dataset") == SUMMARY_DATASET:
            return SHARE_SUMMARY if pol.summaries else "summaries_disabled"
        if pol.telemetry and (not pol.telemetry_datasets or ev.get("dataset") in pol.telemetry_datasets):
            return SHARE_TELEMETRY
        return "telemetry"
