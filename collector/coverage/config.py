"""The ``coverage:`` section of collector.yaml (docs/coverage.md, "Configuration").

Every figure the coverage model uses is here with the seeds' value as default,
so a province that reads its instructions differently changes YAML, not code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from canhgac.config import Duration, field_meta, load_section
from canhgac.probes import PROBE_NAMES
from collector.inventory import LEVELS, dates_to_text, parse_date

HOUR = 3600.0
DAY = 86400.0

# Layer 1: how soon an alert of a system of each level must be acknowledged.
DEFAULT_ACK_SLA: dict[int, float] = {1: 72 * HOUR, 2: 24 * HOUR, 3: 4 * HOUR, 4: 2 * HOUR,
                                     5: 1 * HOUR}

# Layer 2: probes a host must run, by level (cumulative, as the seeds' reference is).
_L1 = ["host_metrics"]
_L2 = _L1 + ["session", "auth_log"]
_L3 = _L2 + ["file_integrity", "network_sensor"]
DEFAULT_REQUIRED_PROBES: dict[int, list[str]] = {1: _L1, 2: _L2, 3: _L3, 4: _L3, 5: _L3}


@dataclass
class CoverageConfig:
    # Layer 1
    alert_window: Duration = Duration(30 * DAY)
    ack_sla: dict[int, Duration] = field(default_factory=dict)  # merged over DEFAULT_ACK_SLA
    # Layer 2
    required_probes: dict[int, list[str]] = field(default_factory=dict)  # per level, replaces
    offline_after: Duration | None = None  # moved to the top level (validate says so)
    contract_warning: Duration = Duration(60 * DAY)  # flag a contract ending this soon
    # Layer 3: one independent assessment per calendar year (no setting: the seeds' rule)
    assessment_max_age: Duration | None = None  # removed (validate says so)
    # Layer 4
    national_delivery_window: Duration = Duration(1 * HOUR)
    national_availability_window: Duration = Duration(30 * DAY)
    # Level obligations (dates in the province's local time)
    approval_deadline: str = "2024-09-30"
    plan_deadline: str = "2024-12-31"
    utc_offset_hours: int = field(default=7, metadata=field_meta(min=-12, max=14))
    # A scrape reuses a report this young (scrapes from two Prometheus servers,
    # the dashboard and the CLI must not each recompute it).
    cache_ttl: Duration = Duration(5)
    # History (docs/coverage.md, "History"): daily and on-change snapshots in history.db
    # (and Elasticsearch when an output is configured), kept this long.
    history: bool = True
    history_retention: Duration = Duration(1096 * DAY)  # 3 years, a leap day included

    def validate(self) -> tuple[str, str] | None:
        if self.assessment_max_age is not None:
            return ("assessment_max_age", "removed: layer 3 asks for an independent assessment "
                    "in each calendar year (docs/coverage.md, layer 3)")
        if self.offline_after is not None:
            return ("offline_after", "moved to the top-level offline_after, so that /metrics and "
                    "coverage share one definition of an online agent")
        for key in ("approval_deadline", "plan_deadline"):
            try:
                parse_date(getattr(self, key))
            except ValueError:
                return (key, f"not a date: {getattr(self, key)!r} (use YYYY-MM-DD)")
        if float(self.history_retention) < DAY:
            return ("history_retention", "at least 1d (the default keeps 3 years: 1096d)")
        for level in self.ack_sla:
            if level not in LEVELS:
                return (f"ack_sla.{level}", "unknown level (levels are 1 to 5)")
        for level, probes in self.required_probes.items():
            if level not in LEVELS:
                return (f"required_probes.{level}", "unknown level (levels are 1 to 5)")
            for i, name in enumerate(probes):
                if name not in PROBE_NAMES:
                    known = ", ".join(sorted(PROBE_NAMES))
                    return (f"required_probes.{level}[{i}]", f"unknown probe {name!r} (known: {known})")
        return None

    def sla_for(self, level: int) -> float:
        return float(self.ack_sla.get(level, DEFAULT_ACK_SLA[level]))

    def probes_for(self, level: int) -> list[str]:
        return list(self.required_probes.get(level, DEFAULT_REQUIRED_PROBES[level]))

    @property
    def approval_deadline_day(self) -> dt.date:
        return parse_date(self.approval_deadline)

    @property
    def plan_deadline_day(self) -> dt.date:
        return parse_date(self.plan_deadline)



def load_coverage_config(raw: dict[str, Any] | None, source: str) -> CoverageConfig:
    return load_section(dates_to_text(raw or {}), CoverageConfig, source, "coverage")
