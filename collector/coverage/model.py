"""The coverage model: per system, how well each of the four layers covers it.

Pure functions of (inventory, config, now, agents, alert ack times, national
status) so every number in docs/coverage.md can be tested with a fixed clock.
Where a number cannot be earned it is 0 with a reason, never a hopeful guess:
a probe that is not running, a host with no agent, a link we cannot see.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from collector.auth import AgentRecord
from collector.coverage.config import DAY, CoverageConfig
from collector.fleet import Presence
from collector.inventory import Inventory, System, parse_date
from collector.ports import NationalLinkStatus

LAYERS: tuple[str, ...] = ("onsite", "monitoring", "assessment", "national")
LAYER_NUMBER = {"onsite": 1, "monitoring": 2, "assessment": 3, "national": 4}

# (created, acknowledged-or-None) epoch seconds of one alert.
AckTimes = Mapping[str, Sequence[tuple[float, float | None]]]


@dataclass
class LayerResult:
    ratio: float
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class SystemCoverage:
    id: str
    name: str
    unit: str
    level: int
    status: str
    layers: dict[str, LayerResult]
    approved: bool
    approved_on_time: bool
    approval_overdue: bool
    plan_deployed: bool
    plan_overdue: bool
    assessment_age_days: int | None
    hosts_expected: int
    hosts_covered: int
    agents_online: int
    agents_offline: int
    alerts_late: int  # in the window, acknowledged late or still unacknowledged past SLA

    @property
    def overdue(self) -> bool:
        return self.approval_overdue or self.plan_overdue

    @property
    def fully_covered(self) -> bool:
        return all(r.ratio >= 1.0 for r in self.layers.values())


@dataclass
class Rollup:
    name: str
    systems: int = 0  # in operation: the denominators
    not_operating: int = 0  # being built (shown, not counted)
    layers: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LAYERS, 0.0))
    approved: int = 0
    plan_deployed: int = 0
    overdue: int = 0
    fully_covered: int = 0


@dataclass
class CoverageReport:
    generated_at: float
    province: str
    systems: list[SystemCoverage]
    units: list[Rollup]
    province_rollup: Rollup
    national_configured: bool

    def restricted(self, keep: Callable[[SystemCoverage], bool]) -> CoverageReport:
        """The report over the systems ``keep`` accepts, totals recomputed from them only.

        An operator scoped to one unit (or a ``--unit`` view) must not see the province's
        totals: they would disclose what the other units' systems score.
        """
        systems = [s for s in self.systems if keep(s)]
        names = {s.unit for s in systems}
        units = [_rollup(u.name, [s for s in systems if s.unit == u.name])
                 for u in self.units if u.name in names]
        return CoverageReport(self.generated_at, self.province, systems, units,
                              _rollup(self.province, systems), self.national_configured)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for s, src in zip(out["systems"], self.systems, strict=True):
            s["overdue"] = src.overdue
            s["fully_covered"] = src.fully_covered
        return out


def local_date(now: float, cfg: CoverageConfig) -> dt.date:
    """Deadlines are dates in the province (UTC+7): 30 Sept ends at 24:00 Huế time."""
    tz = dt.timezone(dt.timedelta(hours=cfg.utc_offset_hours))
    return dt.datetime.fromtimestamp(now, tz).date()


# -- layer 1 -----------------------------------------------------------------
def onsite(system: System, cfg: CoverageConfig, now: float, acks: Sequence[tuple[float, float | None]]
           ) -> tuple[LayerResult, int]:
    team = len(system.onsite.team)
    sla = cfg.sla_for(system.level)
    since = now - float(cfg.alert_window)
    in_time = late = pending = 0
    for created, acked in acks:
        if created < since or created > now:
            continue
        if acked is not None and acked - created <= sla:
            in_time += 1
        elif acked is None and now - created <= sla:
            pending += 1  # its clock is still running: neither in time nor late yet
        else:
            late += 1
    detail = {"team": team, "sla_seconds": sla, "alerts": in_time + late, "in_time": in_time,
              "late": late, "pending": pending}
    if team == 0:
        return LayerResult(0.0, "no on-site team named", detail), late
    if in_time + late == 0:
        return LayerResult(1.0, "team named; no alerts due in the window (roster only)", detail), 0
    ratio = in_time / (in_time + late)
    return LayerResult(ratio, f"{in_time} of {in_time + late} alerts acknowledged within SLA",
                       detail), late


# -- layer 2 -----------------------------------------------------------------
def _probe_running(value: Any) -> bool:
    """The agent's heartbeat says ``{"state": "running", ...}`` (agent/runtime.py);
    ``{"running": true}`` is accepted too. Starting, backoff, done, disabled: not running."""
    if isinstance(value, dict):
        return value.get("state") == "running" or value.get("running") is True
    return value is True


def agents_of(system: System, agents: Iterable[AgentRecord]) -> list[AgentRecord]:
    """Agents enrolled for the system, plus unattributed ones its selectors match."""
    patterns = [p.lower() for p in system.host_patterns]
    exact = {h.lower() for h in system.exact_hosts}
    out = []
    for a in agents:
        if a.revoked is not None:
            continue
        sid = a.system_id
        if sid == system.id:
            out.append(a)
        elif not sid:
            host = a.hostname.lower()
            if host in exact or any(fnmatch.fnmatchcase(host, p) for p in patterns):
                out.append(a)
    return out


def monitoring(system: System, cfg: CoverageConfig, now: float, agents: Sequence[AgentRecord],
               presence: Presence) -> tuple[LayerResult, int, int, int, int]:
    required = cfg.probes_for(system.level)
    expected = {h.lower() for h in system.exact_hosts}
    covered: set[str] = set()
    online = offline = 0
    missing: dict[str, list[str]] = {}
    for a in agents:
        host = a.hostname.lower()
        expected.add(host)
        if not presence.online(a, now):
            offline += 1
            continue
        online += 1
        probes = a.probes
        lacking = [p for p in required if not _probe_running(probes.get(p))]
        if lacking:
            missing[host] = lacking
        else:
            covered.add(host)
    for h in covered:
        missing.pop(h, None)
    n, k = len(expected), len(covered)
    detail = {"required_probes": required, "hosts": n, "covered": k, "agents_online": online,
              "agents_offline": offline,
              "hosts_without_online_agent": sorted(expected - covered - set(missing)),
              "missing_probes": {h: missing[h] for h in sorted(missing)}}
    if n == 0:
        return LayerResult(0.0, "no hosts listed and no agent enrolled", detail), 0, 0, online, offline
    reason = f"{k} of {n} hosts have an online agent running every required probe"
    return LayerResult(k / n, reason, detail), n, k, online, offline


# -- layer 3 -----------------------------------------------------------------
def assessment(system: System, cfg: CoverageConfig, today: dt.date) -> tuple[LayerResult, int | None]:
    done = [a for a in system.assessments if a.day <= today]  # a future date is a plan, not a result
    if not done:
        return LayerResult(0.0, "no independent assessment recorded", {}), None
    last = max(done, key=lambda a: a.day)
    age = (today - last.day).days
    max_days = int(float(cfg.assessment_max_age) // DAY)
    detail = {"last": last.date, "organisation": last.organisation, "result": last.result,
              "age_days": age, "max_age_days": max_days}
    if age <= max_days:
        return LayerResult(1.0, f"assessed {age} days ago ({last.result})", detail), age
    return LayerResult(0.0, f"last assessment {age} days ago, older than {max_days}", detail), age


# -- layer 4 -----------------------------------------------------------------
def national(system: System, cfg: CoverageConfig, now: float,
             link: NationalLinkStatus | None) -> LayerResult:
    if not system.national.enabled:
        return LayerResult(0.0, "national sharing not enabled for this system", {})
    if link is None:
        return LayerResult(0.0, "national link not configured", {})
    if not link.link_up:
        return LayerResult(0.0, "national link down", {"link_up": False})
    deliveries = link.last_delivery
    last = deliveries.get(system.id)
    window = float(cfg.national_delivery_window)
    if last is None:
        return LayerResult(0.0, "no report of this system delivered yet", {"link_up": True})
    age = now - float(last)
    detail = {"link_up": True, "last_delivery": float(last), "age_seconds": round(age, 3),
              "window_seconds": window}
    if age > window:
        return LayerResult(0.0, f"last delivery {int(age)} s ago, window {int(window)} s", detail)
    return LayerResult(1.0, "link up, reports delivered within the window", detail)


# -- the whole report --------------------------------------------------------
def system_coverage(system: System, cfg: CoverageConfig, now: float, *,
                    agents: Sequence[AgentRecord], acks: Sequence[tuple[float, float | None]],
                    link: NationalLinkStatus | None, presence: Presence) -> SystemCoverage:
    today = local_date(now, cfg)
    l1, late = onsite(system, cfg, now, acks)
    l2, n, k, online, offline = monitoring(system, cfg, now, agents, presence)
    l3, age = assessment(system, cfg, today)
    l4 = national(system, cfg, now, link)
    operating = system.status == "operating"
    # Existing systems: approved by the province's deadline. A system that goes into
    # operation after it: approved "trước khi đưa vào vận hành" (before going live).
    since = parse_date(system.operating_since) if system.operating_since else None
    approval_due = max(since, cfg.approval_deadline_day) if since else cfg.approval_deadline_day
    approved_day = system.approval.day if system.approval.approved else None
    approved = approved_day is not None and approved_day <= today
    plan_day = system.plan.day
    # The plan is deployed "theo hồ sơ đề xuất cấp độ được phê duyệt": a plan without an
    # approved level is not the plan the regulation asks for.
    plan_deployed = approved and plan_day is not None and plan_day <= today
    return SystemCoverage(
        id=system.id, name=system.name, unit=system.unit, level=system.level,
        status=system.status,
        layers={"onsite": l1, "monitoring": l2, "assessment": l3, "national": l4},
        approved=approved,
        approved_on_time=approved and approved_day <= approval_due,  # type: ignore[operator]
        approval_overdue=operating and not approved and (
            today >= since if since and since > cfg.approval_deadline_day
            else today > cfg.approval_deadline_day),
        plan_deployed=plan_deployed,
        plan_overdue=operating and not plan_deployed and today > cfg.plan_deadline_day,
        assessment_age_days=age, hosts_expected=n, hosts_covered=k,
        agents_online=online, agents_offline=offline, alerts_late=late,
    )


def _rollup(name: str, all_systems: Sequence[SystemCoverage]) -> Rollup:
    """Totals over the systems in operation: the targets are about those (a system still
    being built has no obligation yet); the others are counted apart."""
    systems = [s for s in all_systems if s.status == "operating"]
    r = Rollup(name=name, systems=len(systems), not_operating=len(all_systems) - len(systems))
    if systems:
        for layer in LAYERS:
            r.layers[layer] = sum(s.layers[layer].ratio for s in systems) / len(systems)
    r.approved = sum(s.approved for s in systems)
    r.plan_deployed = sum(s.plan_deployed for s in systems)
    r.overdue = sum(s.overdue for s in systems)
    r.fully_covered = sum(s.fully_covered for s in systems)
    return r


def compute(inventory: Inventory, cfg: CoverageConfig, now: float, *,
            agents: Sequence[AgentRecord], acks: AckTimes, link: NationalLinkStatus | None,
            presence: Presence) -> CoverageReport:
    # Bucket agents once: 5,000 agents x 500 systems must not be a product.
    by_system: dict[str, list[AgentRecord]] = {}
    unattributed: list[AgentRecord] = []
    for a in agents:
        if a.revoked is not None:
            continue
        sid = a.system_id
        if sid:
            by_system.setdefault(sid, []).append(a)
        else:
            unattributed.append(a)
    systems = []
    for s in inventory.systems:
        mine = by_system.get(s.id, [])
        if unattributed:
            mine = mine + agents_of(s, unattributed)
        systems.append(system_coverage(s, cfg, now, agents=mine, acks=acks.get(s.id, ()),
                                       link=link, presence=presence))
    units = [_rollup(u, [s for s in systems if s.unit == u]) for u in inventory.unit_names()]
    return CoverageReport(generated_at=now, province=inventory.province, systems=systems,
                          units=units, province_rollup=_rollup(inventory.province, systems),
                          national_configured=link is not None)
