"""The annual report as data: what a unit sends the Sở, and the Sở the province, each year.

``build`` is a pure function of the inventory (the level dossier), the coverage history
of each system over the year, the year's alerts and the coverage configuration, with the
clock passed in, so every figure in docs/reports.md can be checked with a fixed day. The
renderers (render_*.py) only lay this out; none of them computes anything.

Why history and not today's coverage: a report for 2025 must say how 2025 went. A system
whose monitoring was down from March to October and is fine today scored about 40 % on
layer 2 that year, and that is what the report says (time-weighted over the history's
snapshots, see ``layer_means``).

Every field is read as the typed inventory model declares it (``collector/inventory.py``):
a field renamed there fails the type check here instead of silently reading a default.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from canhgac.national.vocabulary import severity_label
from collector.alerts.store import AlertFact
from collector.coverage.config import CoverageConfig
from collector.coverage.history import Snapshot
from collector.coverage.model import LAYERS, local_date
from collector.inventory import Assessment, Inventory, System, parse_date

STATUSES = ("operating", "upgrading", "building", "planned", "retired")
# An upgrading system keeps running while it is upgraded: its obligations stay.
IN_OPERATION = frozenset({"operating", "upgrading"})
SEVERITIES = ("critical", "high", "medium", "low")
FORMATS = ("docx", "xlsx", "pdf", "md")
MIN_YEAR = 2000
CONTRACT_WARNING_DAYS = 60  # issue 9: flag a SOC contract that ends within 60 days
Keep = Callable[[str, str], bool]  # (system id, unit) -> in the reader's scope


@dataclass(frozen=True)
class Period:
    year: int
    start: dt.date
    end: dt.date  # last day counted: 31 December, or today while the year runs
    complete: bool
    start_ts: float
    end_ts: float


def period_of(year: int, now: float, cfg: CoverageConfig) -> Period:
    """The calendar year in the province's time zone, cut at ``now`` if it is not over."""
    tz = dt.timezone(dt.timedelta(hours=cfg.utc_offset_hours))
    start_ts = dt.datetime(year, 1, 1, tzinfo=tz).timestamp()
    year_end = dt.datetime(year + 1, 1, 1, tzinfo=tz).timestamp()
    complete = now >= year_end
    end = dt.date(year, 12, 31) if complete else local_date(now, cfg)
    return Period(year, dt.date(year, 1, 1), end, complete, start_ts, min(year_end, now))


@dataclass
class SystemYear:
    id: str
    name: str
    unit: str
    operating_unit: str
    level: int
    proposed_level: int | None
    status: str
    in_operation: bool  # at the end of the period: the denominators count these
    hosting: str
    hosting_name: str
    operating_since: dt.date | None
    retired_on: dt.date | None
    approved: bool
    decision: str
    approved_on: dt.date | None
    authority: str
    approved_on_time: bool | None  # None: not approved or not in operation
    plan_deployed_on: dt.date | None
    plan_on_time: bool | None  # None: not deployed or not in operation
    plan_document: str
    layers: dict[str, float | None]  # time-weighted mean ratio in operation; None: no data
    full_share: dict[str, float | None]  # share of that time with the layer fully met
    observed_days: float  # days of the period in operation that the history covers
    assessed: bool  # an independent inspection with a passing result in the year
    national_enabled: bool
    monitoring_provider: str
    monitoring_kind: str
    contract_until: dt.date | None
    onsite_team: int
    onsite_trained: int


@dataclass
class Finding:
    system_id: str
    system_name: str
    unit: str
    assessed_on: dt.date
    title: str
    owner: str
    due: dt.date | None
    state: str
    fixed_on: dt.date | None
    overdue: bool


@dataclass
class Inspection:
    system_id: str
    system_name: str
    unit: str
    date: dt.date
    organisation: str
    independent: bool
    result: str
    report: str
    findings: int


@dataclass
class SeverityYear:
    severity: str  # one of SEVERITIES, or "total"
    alerts: int = 0
    incidents: int = 0  # resolved as a true positive
    acknowledged: int = 0
    within_sla: int = 0
    median_ack: float | None = None  # seconds
    p90_ack: float | None = None


@dataclass
class Obligation:
    system_id: str
    system_name: str
    unit: str
    kind: str  # an "ob.<kind>" text in i18n.py
    params: dict[str, Any]
    owner: str  # "" = the department (the report names it by its title)
    due: dt.date | None
    overdue: bool


@dataclass
class AnnualReport:
    province: str
    unit: str  # "" = every unit the reader may see
    year: int
    start: dt.date
    end: dt.date
    complete: bool
    generated: dt.date
    history_from: dt.date | None
    counts: dict[int, dict[str, int]]  # level -> status -> systems
    systems: list[SystemYear]
    inspections: list[Inspection]
    findings: list[Finding]
    alerts: list[SeverityYear]  # one per severity, then the total
    national_availability: float | None
    obligations: list[Obligation]
    units: list[str] = field(default_factory=list)
    # The link itself (collector.national's record of it): up share of the observed time.
    link_availability: float | None = None

    @property
    def in_operation(self) -> list[SystemYear]:
        return [s for s in self.systems if s.in_operation]

    @property
    def approved(self) -> int:
        return sum(s.approved for s in self.in_operation)

    @property
    def plan_deployed(self) -> int:
        return sum(s.plan_deployed_on is not None for s in self.in_operation)

    @property
    def assessed(self) -> int:
        return sum(s.assessed for s in self.in_operation)

    @property
    def total_alerts(self) -> SeverityYear:
        return self.alerts[-1]

    @property
    def overdue_obligations(self) -> int:
        return sum(o.overdue for o in self.obligations)

    def to_dict(self) -> dict[str, Any]:
        """For the JSON API (orjson writes the dates as ISO)."""
        return asdict(self)


# -- reading the inventory, old and new fields alike ---------------------------------------
def _day(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value:
        try:
            return parse_date(value)
        except ValueError:
            return None
    return None


def was_in_operation(s: System, end: dt.date) -> bool:
    status = s.status
    if status in IN_OPERATION:
        since = _day(s.operating_since)
        return since is None or since <= end
    if status == "retired":
        retired = _day(s.retired_on)
        return retired is not None and retired > end
    return False


def in_report(s: System, p: Period) -> bool:
    """A system retired before the year began is not part of the year."""
    if s.status == "retired":
        retired = _day(s.retired_on)
        return retired is None or retired >= p.start
    return True


# -- the history over the year -----------------------------------------------------------------
def layer_means(snaps: Sequence[Snapshot], start: float, end: float
                ) -> tuple[dict[str, float | None], dict[str, float | None], float]:
    """Per layer, the time-weighted mean ratio and the share of time fully met, over the
    stretches of [start, end) in which the system was in operation; and those seconds.

    A snapshot holds from its ``taken_at`` until the next one (the history writes a row on
    every state change and every day), so the weights are the real durations. Time before
    the first snapshot is not known and not counted (``observed`` says how much was).
    """
    sums = [0.0] * len(LAYERS)
    full = [0.0] * len(LAYERS)
    observed = 0.0
    ordered = sorted(snaps, key=lambda s: (s.day, s.seq))
    for i, s in enumerate(ordered):
        a = max(s.taken_at, start)
        b = min(ordered[i + 1].taken_at if i + 1 < len(ordered) else end, end)
        if b <= a or s.status not in IN_OPERATION:
            continue
        w = b - a
        observed += w
        for j, r in enumerate(s.ratios):
            sums[j] += r * w
            if r >= 1.0:
                full[j] += w
    if observed <= 0:
        none: dict[str, float | None] = dict.fromkeys(LAYERS, None)
        return none, dict(none), 0.0
    return ({layer: sums[j] / observed for j, layer in enumerate(LAYERS)},
            {layer: full[j] / observed for j, layer in enumerate(LAYERS)}, observed)


# -- per system ------------------------------------------------------------------------------------
def approval_due(s: System, cfg: CoverageConfig) -> dt.date:
    """Existing systems: the province's deadline; a system live after it: its go-live day
    ("trước khi đưa vào vận hành")."""
    since = _day(s.operating_since)
    deadline = cfg.approval_deadline_day
    return max(since, deadline) if since else deadline


def plan_due(s: System, cfg: CoverageConfig) -> dt.date:
    since = _day(s.operating_since)
    deadline = cfg.plan_deadline_day
    return max(since, deadline) if since else deadline


def _passing(a: Assessment) -> bool:
    return a.result in ("passed", "passed_with_findings")


def system_year(s: System, p: Period, cfg: CoverageConfig, snaps: Sequence[Snapshot]) -> SystemYear:
    approved_on = s.approval.day if s.approval.approved else None
    approved = approved_on is not None and approved_on <= p.end
    plan_on = s.plan.day
    # The plan is the one "theo hồ sơ đề xuất cấp độ được phê duyệt": not without approval.
    plan_deployed = plan_on if approved and plan_on is not None and plan_on <= p.end else None
    in_op = was_in_operation(s, p.end)
    since = _day(s.operating_since)
    start = p.start_ts
    if since is not None and since > p.start:  # no obligation before it went live
        tz = dt.timezone(dt.timedelta(hours=cfg.utc_offset_hours))
        start = max(start, dt.datetime.combine(since, dt.time(), tz).timestamp())
    means, shares, seconds = layer_means(snaps, start, p.end_ts)
    assessed = any(p.start <= a.day <= p.end and a.independent and _passing(a)
                   for a in s.assessments)
    team = list(s.onsite.team)
    return SystemYear(
        id=s.id, name=s.name, unit=s.unit,
        operating_unit=s.operating_unit or s.unit,
        level=int(s.level), proposed_level=s.proposed_level,
        status=s.status, in_operation=in_op, hosting=s.hosting.location,
        hosting_name=s.hosting.name,
        operating_since=_day(s.operating_since),
        retired_on=_day(s.retired_on),
        approved=approved, decision=s.approval.decision if approved else "",
        approved_on=approved_on if approved else None,
        authority=s.approval.authority if approved else "",
        approved_on_time=(approved_on <= approval_due(s, cfg)  # type: ignore[operator]
                          if approved and in_op else None),
        plan_deployed_on=plan_deployed,
        plan_on_time=plan_deployed <= plan_due(s, cfg) if plan_deployed and in_op else None,
        plan_document=s.plan.document,
        layers=means, full_share=shares, observed_days=round(seconds / 86400.0, 1),
        assessed=assessed, national_enabled=bool(s.national.enabled),
        monitoring_provider=s.monitoring.provider, monitoring_kind=s.monitoring.kind,
        contract_until=_day(s.monitoring.contract_until), onsite_team=len(team),
        onsite_trained=sum(_day(c.trained) is not None for c in team),
    )


def inspections_of(s: System, p: Period) -> tuple[list[Inspection], list[Finding]]:
    """The year's inspections, their findings, and findings of earlier ones still open
    (follow-up of what an inspection found is part of the year's work)."""
    out: list[Inspection] = []
    found: list[Finding] = []
    for a in sorted(s.assessments, key=lambda a: a.day):
        if a.day > p.end:
            continue  # a future date is a plan, not a result
        this_year = a.day >= p.start
        findings = list(a.findings)
        if this_year:
            out.append(Inspection(s.id, s.name, s.unit, a.day, a.organisation, a.independent,
                                  a.result, a.report, len(findings)))
        for f in findings:
            state = f.state
            if not this_year and state != "open":
                continue
            due = _day(f.due)
            found.append(Finding(
                s.id, s.name, s.unit, a.day, f.title,
                f.owner or s.unit, due, state,
                _day(f.fixed_on),
                overdue=state == "open" and due is not None and due < p.end))
    return out, found


def obligations_of(sy: SystemYear, s: System, p: Period, cfg: CoverageConfig,
                   findings: Iterable[Finding], last: Snapshot | None,
                   department: str = "") -> list[Obligation]:
    """What is still owed at the end of the period, and by whom.

    The owner unit answers for its systems (the seeds, 1a: "chịu trách nhiệm trước Chủ
    tịch UBND tỉnh"); a finding names its own owner when the inspection gave one. The
    yearly inspection and the link with the national center are the department's
    (Hải Dương 2b, 2c: "Giao Sở Thông tin và Truyền thông ... Định kỳ tổ chức hoạt động
    thanh tra, kiểm tra, đánh giá ... tối thiểu 01 lần/01 năm"): ``department`` is the
    inventory's, and "" makes the report name the department by its title.
    """
    out: list[Obligation] = []

    def add(kind: str, due: dt.date | None, overdue: bool, owner: str = "", **params: Any) -> None:
        out.append(Obligation(sy.id, sy.name, sy.unit, kind, params, owner or sy.unit, due,
                              overdue))

    for f in findings:
        if f.state == "open":
            add("fix_finding", f.due, f.overdue, f.owner, title=f.title)
    if sy.status == "upgrading":
        add("reapprove", None, False)
    if not sy.in_operation:
        return out
    if not sy.approved:
        due = approval_due(s, cfg)
        add("approve_level", due, p.end > due)
    elif sy.plan_deployed_on is None:
        due = plan_due(s, cfg)
        add("deploy_plan", due, p.end > due)
    if not sy.assessed:
        out.append(Obligation(sy.id, sy.name, sy.unit, "assess", {"year": p.year}, department,
                              p.start.replace(month=12, day=31), p.complete))
    if sy.onsite_team == 0:
        add("onsite", None, False)
    contracted = sy.monitoring_kind == "contracted" and sy.contract_until is not None
    if contracted and sy.contract_until is not None:
        if sy.contract_until < p.end:
            add("contract_expired", sy.contract_until, True, date=sy.contract_until)
        elif (sy.contract_until - p.end).days <= CONTRACT_WARNING_DAYS:
            add("contract_ending", sy.contract_until, False, date=sy.contract_until)
    elif last is None or last.ratios[1] < 1.0:
        add("monitoring", None, False)
    if not sy.national_enabled:
        out.append(Obligation(sy.id, sy.name, sy.unit, "national", {}, department, None, False))
    return out


# -- alerts --------------------------------------------------------------------------------------
def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def alert_year(facts: Iterable[AlertFact], levels: Mapping[str, int], cfg: CoverageConfig
               ) -> list[SeverityYear]:
    """By severity (the national vocabulary's ranges; no number = medium), with the time to
    acknowledge and how many were acknowledged within their system level's deadline."""
    rows = {sev: SeverityYear(sev) for sev in (*SEVERITIES, "total")}
    delays: dict[str, list[float]] = {sev: [] for sev in rows}
    for f in facts:
        sev = severity_label({"event": {"severity": f.severity}} if f.severity is not None else {})
        for key in (sev, "total"):
            r = rows[key]
            r.alerts += 1
            r.incidents += f.outcome == "true_positive"
            if f.acked_at is not None:
                delay = max(0.0, f.acked_at - f.created)
                r.acknowledged += 1
                delays[key].append(delay)
                level = levels.get(f.system_id)
                if level is not None and delay <= cfg.sla_for(level):
                    r.within_sla += 1
    for key, r in rows.items():
        values = delays[key]
        r.median_ack = statistics.median(values) if values else None
        r.p90_ack = _quantile(values, 0.9)
    return list(rows.values())


# -- the whole report -------------------------------------------------------------------------------
def build(inventory: Inventory, cfg: CoverageConfig, year: int, now: float, *,
          trends: Mapping[str, Sequence[Snapshot]], alerts: Iterable[AlertFact],
          history_from: dt.date | None = None, unit: str = "",
          keep: Keep | None = None, link_availability: float | None = None) -> AnnualReport:
    """The report over the systems in ``unit`` (all when "") that ``keep`` lets the reader
    see. Totals and alerts come from those systems only: a unit's report never shows
    another unit's figures, totals included."""
    p = period_of(year, now, cfg)
    scoped = keep is not None or bool(unit)
    chosen = [s for s in inventory.systems
              if in_report(s, p) and (not unit or s.unit == unit)
              and (keep is None or keep(s.id, s.unit))]
    systems: list[SystemYear] = []
    inspections: list[Inspection] = []
    findings: list[Finding] = []
    obligations: list[Obligation] = []
    counts: dict[int, dict[str, int]] = {lv: dict.fromkeys(STATUSES, 0) for lv in range(1, 6)}
    for s in chosen:
        snaps = trends.get(s.id, ())
        sy = system_year(s, p, cfg, snaps)
        systems.append(sy)
        counts[sy.level][sy.status if sy.status in STATUSES else "operating"] += 1
        done, found = inspections_of(s, p)
        inspections += done
        findings += found
        in_period = [x for x in snaps if x.taken_at < p.end_ts]
        last = max(in_period, key=lambda x: (x.day, x.seq)) if in_period else None
        obligations += obligations_of(sy, s, p, cfg, found, last, inventory.department)
    ids = {s.id: s.level for s in systems}
    facts = [f for f in alerts if (not scoped or f.system_id in ids)
             and p.start_ts <= f.created < p.end_ts]
    enabled = [s.full_share["national"] for s in systems
               if s.in_operation and s.national_enabled and s.full_share["national"] is not None]
    national = sum(x for x in enabled if x is not None) / len(enabled) if enabled else None
    names = list(dict.fromkeys(s.unit for s in systems))
    order = {u: i for i, u in enumerate(inventory.unit_names())}
    names.sort(key=lambda u: order.get(u, len(order)))
    obligations.sort(key=lambda o: (not o.overdue, o.due or dt.date.max, o.unit, o.system_id))
    return AnnualReport(
        province=inventory.province, unit=unit, year=year, start=p.start, end=p.end,
        complete=p.complete, generated=local_date(now, cfg), history_from=history_from,
        counts=counts, systems=systems, inspections=inspections, findings=findings,
        alerts=alert_year(facts, ids, cfg), national_availability=national,
        obligations=obligations, units=names, link_availability=link_availability)


def check_year(year: int, now: float, cfg: CoverageConfig) -> tuple[int, int] | None:
    """None if ``year`` can be reported on, else the allowed (low, high)."""
    high = local_date(now, cfg).year
    return None if MIN_YEAR <= year <= high else (MIN_YEAR, high)
