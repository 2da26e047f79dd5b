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
from collector.coverage.reasons import reason, say
from collector.fleet import Presence
from collector.inventory import IN_OPERATION, Inventory, System, parse_date
from collector.ports import NationalLinkStatus

LAYERS: tuple[str, ...] = ("onsite", "monitoring", "assessment", "national")
LAYER_NUMBER = {"onsite": 1, "monitoring": 2, "assessment": 3, "national": 4}

# (created, acknowledged-or-None) epoch seconds of one alert.
AckTimes = Mapping[str, Sequence[tuple[float, float | None]]]


@dataclass
class LayerResult:
    ratio: float
    reason: str  # English, for the API's readers; ``reasons`` has the codes (reasons.py)
    detail: dict[str, Any] = field(default_factory=dict)
    reasons: list[dict[str, Any]] = field(default_factory=list)


def _result(ratio: float, why: list[dict[str, Any]], detail: dict[str, Any]) -> LayerResult:
    return LayerResult(ratio, say(why, "en"), detail, why)


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
    operating_unit: str = ""
    findings_overdue: int = 0  # open assessment findings past their due date
    needs_reapproval: bool = False  # upgraded, or a new level proposed, and not re-approved
    # Loud problems a person must act on (docs/coverage.md, "Flags"): bounded codes.
    flags: list[str] = field(default_factory=list)

    @property
    def overdue(self) -> bool:
        return self.approval_overdue or self.plan_overdue or self.findings_overdue > 0

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


@dataclass(frozen=True)
class FlaggedAgent:
    """An agent whose system the inventory does not list, or lists as retired: its events
    have no unit or level to count for, and they never leave the province."""

    agent_id: str
    hostname: str
    system_id: str
    flag: str  # system_not_in_inventory | system_retired


@dataclass
class CoverageReport:
    generated_at: float
    province: str
    systems: list[SystemCoverage]
    units: list[Rollup]
    province_rollup: Rollup
    national_configured: bool
    flagged_agents: list[FlaggedAgent] = field(default_factory=list)

    def restricted(self, keep: Callable[[SystemCoverage], bool]) -> CoverageReport:
        """The report over the systems ``keep`` accepts, totals recomputed from them only.

        An operator scoped to one unit (or a ``--unit`` view) must not see the province's
        totals: they would disclose what the other units' systems score.
        """
        systems = [s for s in self.systems if keep(s)]
        names = {s.unit for s in systems}
        units = [_rollup(u.name, [s for s in systems if s.unit == u.name])
                 for u in self.units if u.name in names]
        # Flagged agents belong to no system of the inventory: a scoped view shows none.
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
        return _result(0.0, [reason("onsite.no_team")], detail), late
    if in_time + late == 0:
        return _result(1.0, [reason("onsite.roster_only")], detail), 0
    ratio = in_time / (in_time + late)
    return _result(ratio, [reason("onsite.acked", in_time=in_time, total=in_time + late)],
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


def contract(system: System, cfg: CoverageConfig, today: dt.date) -> tuple[bool, list[str], dict[str, Any]]:
    """A contracted monitoring service: (in force, flags, detail)."""
    m = system.monitoring
    if m.kind != "contracted" or m.contract_until is None:
        return False, [], {}
    until = parse_date(m.contract_until)
    in_force = m.in_force(today)
    left = (until - today).days
    detail = {"provider": m.provider, "contract_from": m.contract_from,
              "contract_until": m.contract_until, "in_force": in_force, "days_left": left}
    flags = []
    if today > until:
        flags.append("contract_expired")
    elif in_force and left <= int(float(cfg.contract_warning) // DAY):
        flags.append("contract_expiring")
    return in_force, flags, detail


def monitoring(system: System, cfg: CoverageConfig, now: float, agents: Sequence[AgentRecord],
               presence: Presence) -> tuple[LayerResult, int, int, int, int]:
    """Layer 2: canhgac telemetry meeting the level's probe list on every host, or a
    contracted monitoring service in force (whichever covers more)."""
    telemetry, n, k, online, offline = _telemetry(system, cfg, now, agents, presence)
    today = local_date(now, cfg)
    in_force, flags, detail = contract(system, cfg, today)
    telemetry.detail["contract"] = detail
    provider, until = system.monitoring.provider, detail.get("contract_until")
    if in_force:
        why = [reason("monitoring.contract", provider=provider, until=until)]
        if flags:
            why.append(reason("monitoring.contract_ending", days=detail["days_left"]))
        return _result(1.0, why, telemetry.detail), n, k, online, offline
    if flags:  # expired: no credit, and say so next to the telemetry's own reason
        telemetry = _result(telemetry.ratio, [
            reason("monitoring.contract_expired", provider=provider, until=until),
            *telemetry.reasons], telemetry.detail)
    return telemetry, n, k, online, offline


def _telemetry(system: System, cfg: CoverageConfig, now: float, agents: Sequence[AgentRecord],
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
        return _result(0.0, [reason("monitoring.no_hosts")], detail), 0, 0, online, offline
    return (_result(k / n, [reason("monitoring.hosts", covered=k, hosts=n)], detail),
            n, k, online, offline)


# -- layer 3 -----------------------------------------------------------------
def assessment(system: System, cfg: CoverageConfig, today: dt.date
               ) -> tuple[LayerResult, int | None, int]:
    """Layer 3: an independent inspection with a result in each calendar year ("tối thiểu
    01 lần/01 năm"). This year's is due by 31 December: until then, last year's keeps the
    layer met. A failed result, or only self-assessments, earn nothing. Returns the
    result, the last independent assessment's age in days, and the overdue findings."""
    overdue = sum(f.overdue(today) for a in system.assessments for f in a.findings)
    done = [a for a in system.assessments if a.day <= today]  # a future date is a plan
    independent = [a for a in done if a.independent]
    last = max(independent, key=lambda a: a.day, default=None)
    age = (today - last.day).days if last else None
    detail: dict[str, Any] = {"year": today.year, "findings_overdue": overdue,
                              "self_assessments": len(done) - len(independent)}
    if last is not None:
        detail.update(last=last.date, organisation=last.organisation, result=last.result,
                      age_days=age)
    late = [reason("assessment.findings_overdue", n=overdue)] if overdue else []
    this_year = [a for a in independent if a.day.year == today.year]
    last_year = [a for a in independent if a.day.year == today.year - 1]
    if this_year:
        latest = max(this_year, key=lambda a: a.day)
        if latest.result == "failed":
            return (_result(0.0, [reason("assessment.failed", date=latest.date), *late], detail),
                    age, overdue)
        done_why = reason("assessment.done", date=latest.date, result=latest.result)
        return _result(1.0, [done_why, *late], detail), age, overdue
    if last_year:
        latest = max(last_year, key=lambda a: a.day)
        if latest.result != "failed":
            return (_result(1.0, [reason("assessment.done", date=latest.date, result=latest.result),
                                  reason("assessment.due", year=today.year), *late], detail),
                    age, overdue)
    if not independent:
        why = reason("assessment.self_only" if done else "assessment.none")
        return _result(0.0, [why, *late], detail), age, overdue
    stale = reason("assessment.stale", previous=today.year - 1, year=today.year,
                   last=last.date if last else "-")
    return _result(0.0, [stale, *late], detail), age, overdue


# -- layer 4 -----------------------------------------------------------------
def national(system: System, cfg: CoverageConfig, now: float,
             link: NationalLinkStatus | None) -> LayerResult:
    if not system.national.enabled:
        return _result(0.0, [reason("national.disabled")], {})
    if link is None:
        return _result(0.0, [reason("national.not_configured")], {})
    if not link.link_up:
        return _result(0.0, [reason("national.down")], {"link_up": False})
    deliveries = link.last_delivery
    last = deliveries.get(system.id)
    window = float(cfg.national_delivery_window)
    if last is None:
        return _result(0.0, [reason("national.no_delivery")], {"link_up": True})
    age = now - float(last)
    detail = {"link_up": True, "last_delivery": float(last), "age_seconds": round(age, 3),
              "window_seconds": window}
    if age > window:
        return _result(0.0, [reason("national.stale", age=int(age), window=int(window))], detail)
    period = float(cfg.national_availability_window)
    available = link.availability(now - period, now)
    days = int(period // DAY)
    if available is None:  # no history yet (a new collector): the live state is all we know
        return _result(1.0, [reason("national.up")], detail)
    detail.update(availability=round(available, 6), availability_days=days)
    return _result(available, [reason("national.available", pct=f"{available * 100:.1f} %",
                                      days=days), reason("national.up")], detail)


# -- the whole report --------------------------------------------------------
def system_coverage(system: System, cfg: CoverageConfig, now: float, *,
                    agents: Sequence[AgentRecord], acks: Sequence[tuple[float, float | None]],
                    link: NationalLinkStatus | None, presence: Presence) -> SystemCoverage:
    today = local_date(now, cfg)
    l1, late = onsite(system, cfg, now, acks)
    l2, n, k, online, offline = monitoring(system, cfg, now, agents, presence)
    l3, age, findings_overdue = assessment(system, cfg, today)
    l4 = national(system, cfg, now, link)
    operating = system.in_operation
    # Existing systems: approved by the province's deadline. A system that goes into
    # operation after it, or an upgrade going live: approved "trước khi đưa vào vận hành".
    since = parse_date(system.operating_since) if system.operating_since else None
    upgraded = parse_date(system.upgraded_on) if system.upgraded_on else None
    if upgraded is not None and (since is None or upgraded > since):
        since = upgraded
    approval_due = max(since, cfg.approval_deadline_day) if since else cfg.approval_deadline_day
    approved_day = system.approval.day if system.approval.approved else None
    # An approval older than the upgrade approved the system as it was, not as it is.
    boundary = system.upgrade_boundary
    stale = boundary is not None and approved_day is not None and approved_day < boundary
    approved = approved_day is not None and approved_day <= today and not stale
    needs_reapproval = stale or (system.proposed_level is not None
                                 and system.proposed_level != system.level)
    flags = contract(system, cfg, today)[1]
    if needs_reapproval:
        flags.append("needs_reapproval")
    if findings_overdue:
        flags.append("findings_overdue")
    if operating and not system.approval.approved:
        flags.append("no_approved_level")
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
        operating_unit=system.operator, findings_overdue=findings_overdue,
        needs_reapproval=needs_reapproval, flags=flags,
    )


def _rollup(name: str, all_systems: Sequence[SystemCoverage]) -> Rollup:
    """Totals over the systems in operation: the targets are about those (a system still
    being built has no obligation yet); the others are counted apart."""
    systems = [s for s in all_systems if s.status in IN_OPERATION]
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
    flagged = _flagged(inventory, by_system)
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
                          national_configured=link is not None, flagged_agents=flagged)


def _flagged(inventory: Inventory, by_system: Mapping[str, Sequence[AgentRecord]]
             ) -> list[FlaggedAgent]:
    if not inventory.systems:
        return []  # no inventory in force: nothing can be called unknown
    known = {s.id: s for s in inventory.systems}
    out: list[FlaggedAgent] = []
    for sid, agents in by_system.items():
        system = known.get(sid)
        flag = ("system_not_in_inventory" if system is None
                else "system_retired" if system.status == "retired" else "")
        if flag:
            out.extend(FlaggedAgent(a.agent_id, a.hostname, sid, flag) for a in agents)
    return sorted(out, key=lambda f: (f.system_id, f.hostname))
