"""Coverage math for each layer and the level obligations, with fixed clocks."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from canhgac.errors import ConfigError
from collector.coverage.config import CoverageConfig, load_coverage_config
from collector.coverage.metrics import CoverageCollector
from collector.coverage.model import compute
from collector.coverage.render import _width, render
from collector.coverage.service import CoverageService
from collector.fleet import Presence
from collector.inventory import InventoryHolder, parse_inventory

ICT = dt.timezone(dt.timedelta(hours=7))
NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=ICT).timestamp()
HOUR = 3600.0
ALL = ("host_metrics", "session", "auth_log", "file_integrity", "network_sensor")


@dataclass
class FakeAgent:
    agent_id: str
    system_id: str
    hostname: str
    last_seen: float | None
    probes: dict[str, Any] = field(default_factory=dict)
    revoked: float | None = None


@dataclass
class FakeNational:
    link_up: bool = True
    last_delivery: dict[str, float] = field(default_factory=dict)
    available: float | None = None

    def availability(self, since: float, until: float) -> float | None:
        assert until - since == 30 * 86400  # the configured period
        return self.available


def running(*names: str) -> dict[str, Any]:
    return {n: {"running": True, "datasets": []} for n in names}


def inventory(**overrides: Any) -> InventoryHolder:
    sys3 = {
        "id": "s3", "name": "Cổng thông tin điện tử tỉnh", "unit": "Sở Thông tin và Truyền thông",
        "level": 3, "hosts": ["web-01", "web-02", "db-01"],
        "approval": {"approved": True, "date": "2024-08-15"}, "plan": {"deployed": "2024-11-20"},
        "onsite": {"team": [{"name": "Nguyễn Văn An"}]},
        "assessments": [{"date": "2025-02-01", "organisation": "X", "independent": True}],
        "national": {"enabled": True},
    }
    sys1 = {"id": "s1", "name": "Thư điện tử", "unit": "UBND thành phố Huế", "level": 1,
            "hosts": ["mail-*"]}
    sys3.update(overrides)
    return InventoryHolder(parse_inventory({"province": "Thừa Thiên Huế", "systems": [sys3, sys1]},
                                           "t"))


def report(holder: InventoryHolder | None = None, *, agents=(), acks=None, link=None,  # type: ignore[no-untyped-def]
           now: float = NOW, cfg: CoverageConfig | None = None):
    holder = holder or inventory()
    return compute(holder.current, cfg or CoverageConfig(), now, agents=list(agents),
                   acks=acks or {}, link=link, presence=Presence(90))


def s3(r):  # type: ignore[no-untyped-def]
    return next(s for s in r.systems if s.id == "s3")


# -- layer 1 -------------------------------------------------------------------
def test_layer1_no_team_is_zero() -> None:
    r = report(inventory(onsite={"team": []}))
    assert s3(r).layers["onsite"].ratio == 0
    assert s3(r).layers["onsite"].reason == "no on-site team named"


def test_layer1_roster_only_when_no_alerts() -> None:
    l1 = s3(report()).layers["onsite"]
    assert l1.ratio == 1 and "roster only" in l1.reason


def test_layer1_fraction_acknowledged_within_level_sla() -> None:
    sla = 4 * HOUR  # level 3 default
    acks = {"s3": [
        (NOW - 10 * HOUR, NOW - 10 * HOUR + 60),          # in time
        (NOW - 20 * HOUR, NOW - 20 * HOUR + sla),         # exactly at SLA: in time
        (NOW - 5 * 86400, NOW - 5 * 86400 + 3600),        # in time
        (NOW - 30 * HOUR, NOW - 30 * HOUR + sla + 1),     # acked late
        (NOW - 6 * HOUR, None),                           # unacked, past SLA: late
        (NOW - 1 * HOUR, None),                           # unacked, SLA running: pending
        (NOW - 31 * 86400, None),                         # outside the 30-day window
    ]}
    r = report(acks=acks)
    l1 = s3(r).layers["onsite"]
    assert l1.ratio == pytest.approx(3 / 5)
    assert l1.detail == {"team": 1, "sla_seconds": sla, "alerts": 5, "in_time": 3, "late": 2,
                         "pending": 1}
    assert s3(r).alerts_late == 2


def test_layer1_sla_is_configurable_per_level() -> None:
    cfg = load_coverage_config({"ack_sla": {3: "30m"}}, "c.yaml")
    acks = {"s3": [(NOW - 10 * HOUR, NOW - 10 * HOUR + 3600)]}
    assert s3(report(acks=acks, cfg=cfg)).layers["onsite"].ratio == 0
    assert cfg.sla_for(2) == 24 * HOUR  # other levels keep their default


# -- layer 2 -------------------------------------------------------------------
def test_layer2_hosts_with_online_agent_running_required_probes() -> None:
    agents = [
        FakeAgent("a1", "s3", "web-01", NOW - 10, running(*ALL)),
        FakeAgent("a2", "s3", "web-02", NOW - 10, running(*ALL[:3])),  # level 3 lacks two
        # db-01 has no agent
    ]
    l2 = s3(report(agents=agents)).layers["monitoring"]
    assert l2.ratio == pytest.approx(1 / 3)
    assert l2.detail["missing_probes"] == {"web-02": ["file_integrity", "network_sensor"]}
    assert l2.detail["hosts_without_online_agent"] == ["db-01"]


def test_layer2_stopped_agent_drops_after_offline_window() -> None:
    agents = [FakeAgent(f"a{i}", "s3", h, NOW - 30, running(*ALL))
              for i, h in enumerate(["web-01", "web-02", "db-01"])]
    assert s3(report(agents=agents)).layers["monitoring"].ratio == 1
    # The agent on db-01 stops: its last heartbeat ages past 3 intervals (90 s here).
    later = NOW + 61  # last_seen 91 s ago
    agents[2].last_seen = NOW - 30
    agents[0].last_seen = agents[1].last_seen = later - 5
    r = report(agents=agents, now=later)
    assert s3(r).layers["monitoring"].ratio == pytest.approx(2 / 3)
    assert (s3(r).agents_online, s3(r).agents_offline) == (2, 1)


def test_layer2_probe_not_running_counts_as_missing() -> None:
    probes = running(*ALL)
    probes["network_sensor"] = {"running": False, "datasets": ["network"]}
    agents = [FakeAgent("a1", "s3", "web-01", NOW, probes)]
    assert s3(report(agents=agents)).layers["monitoring"].detail["missing_probes"] == {
        "web-01": ["network_sensor"]}


def test_layer2_reads_the_agents_heartbeat_states() -> None:
    """agent/runtime.py reports {"state": ...} per probe: only "running" counts."""
    probes = {p: {"state": "running", "restarts": 0, "events": 3} for p in ALL}
    agents = [FakeAgent("a1", "s3", "web-01", NOW, probes)]
    assert s3(report(agents=agents)).layers["monitoring"].detail["covered"] == 1
    for state in ("starting", "backoff", "done", "disabled", "unavailable", "stopped"):
        probes["session"] = {"state": state}
        detail = s3(report(agents=agents)).layers["monitoring"].detail
        assert detail["missing_probes"] == {"web-01": ["session"]}, state


def test_layer2_unlisted_enrolled_host_counts_and_revoked_ignored() -> None:
    agents = [FakeAgent("a1", "s3", "web-01", NOW, running(*ALL)),
              FakeAgent("a2", "s3", "extra-01", NOW, {}),
              FakeAgent("a3", "s3", "web-02", NOW, running(*ALL), revoked=NOW - 5)]
    l2 = s3(report(agents=agents)).layers["monitoring"]
    assert (l2.detail["hosts"], l2.detail["covered"]) == (4, 1)


def test_layer2_selector_and_level1_probes() -> None:
    agents = [FakeAgent("m1", "", "mail-01", NOW, running("host_metrics")),
              FakeAgent("m2", "s1", "mail-02", NOW, {})]
    s1 = next(s for s in report(agents=agents).systems if s.id == "s1")
    assert s1.layers["monitoring"].ratio == 0.5
    empty = next(s for s in report().systems if s.id == "s1")
    assert empty.layers["monitoring"].ratio == 0
    assert "no hosts" in empty.layers["monitoring"].reason


# -- layer 3 -------------------------------------------------------------------
def test_layer3_recent_assessment() -> None:
    sc = s3(report())
    assert sc.layers["assessment"].ratio == 1
    assert sc.assessment_age_days == (dt.date(2025, 6, 1) - dt.date(2025, 2, 1)).days


def _assessed(*items: dict[str, Any]) -> Any:
    return s3(report(inventory(assessments=[{"organisation": "X", **i} for i in items])))


def test_layer3_last_years_assessment_holds_until_the_year_ends() -> None:
    """Issue 9 finding: layer 3 was "one assessment in a rolling 365 days". The seeds ask
    for one a year ("tối thiểu 01 lần/01 năm"): last year's holds until 31 December."""
    sc = _assessed({"date": "2024-05-31", "independent": True})
    assert sc.layers["assessment"].ratio == 1 and sc.assessment_age_days == 366
    assert "2025's assessment due by 31/12/2025" in sc.layers["assessment"].reason
    sc = _assessed({"date": "2023-12-31", "independent": True})
    assert sc.layers["assessment"].ratio == 0
    assert "no independent assessment in 2024 or 2025" in sc.layers["assessment"].reason


def test_layer3_failed_or_self_assessment_earns_nothing() -> None:
    """Issue 9 finding: a failed assessment and a self-assessment both scored 100 %."""
    failed = _assessed({"date": "2025-03-01", "independent": True, "result": "failed"})
    assert failed.layers["assessment"].ratio == 0
    assert "failed" in failed.layers["assessment"].reason
    own = _assessed({"date": "2025-03-01"})  # independent defaults to false
    assert own.layers["assessment"].ratio == 0
    assert own.layers["assessment"].reason == "only self-assessments recorded"
    assert own.layers["assessment"].detail["self_assessments"] == 1
    failed_last_year = _assessed({"date": "2024-10-01", "independent": True, "result": "failed"})
    assert failed_last_year.layers["assessment"].ratio == 0


def test_layer3_overdue_findings_are_flagged() -> None:
    sc = _assessed({"date": "2025-03-01", "independent": True, "result": "passed_with_findings",
                    "findings": [
                        {"title": "Mật khẩu mặc định trên thiết bị mạng", "owner": "Phòng CNTT",
                         "due": "2025-05-01"},
                        {"title": "Chưa sao lưu", "owner": "Phòng CNTT", "due": "2025-04-01",
                         "state": "fixed", "fixed_on": "2025-03-20"},
                        {"title": "Chưa đến hạn", "due": "2025-07-01"}]})
    assert sc.layers["assessment"].ratio == 1
    assert sc.findings_overdue == 1 and "findings_overdue" in sc.flags and sc.overdue
    assert "1 finding(s) overdue" in sc.layers["assessment"].reason


@pytest.mark.parametrize(("assessment", "path", "fragment"), [
    ({"date": "2025-03-01", "organisation": "Sở Thông tin và Truyền thông", "independent": True},
     "systems[0].assessments[0].independent", "self-assessment is not independent"),
    ({"date": "2025-03-01", "organisation": "X", "findings": [{"title": "x", "state": "fixed"}]},
     "systems[0].assessments[0].findings[0].fixed_on", "needs the date"),
    ({"date": "2025-03-01", "organisation": "X", "findings": [{"title": "x", "due": "1/13/2025"}]},
     "systems[0].assessments[0].findings[0].due", "not a date"),
])
def test_layer3_record_errors(assessment, path, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as exc:
        inventory(assessments=[assessment])
    assert path in str(exc.value) and fragment in str(exc.value)


# -- layer 2: a contracted monitoring service ----------------------------------------
def test_layer2_contracted_soc_in_force_counts() -> None:
    """Issue 9 finding: a system watched by a contracted SOC scored 0, and an expired
    contract changed nothing."""
    sc = s3(report(inventory(monitoring={"provider": "VNPT-IT SOC", "kind": "contracted",
                                         "contract_from": "2025-01-01",
                                         "contract_until": "2025-12-31"})))
    assert sc.layers["monitoring"].ratio == 1 and sc.flags == []
    assert "contracted monitoring by VNPT-IT SOC in force until 2025-12-31" \
        in sc.layers["monitoring"].reason
    soon = s3(report(inventory(monitoring={"provider": "P", "kind": "contracted",
                                           "contract_until": "2025-07-15"})))
    assert soon.layers["monitoring"].ratio == 1 and soon.flags == ["contract_expiring"]
    assert "ends in 44 days" in soon.layers["monitoring"].reason
    expired = s3(report(inventory(monitoring={"provider": "P", "kind": "contracted",
                                              "contract_until": "2024-12-31"})))
    assert expired.layers["monitoring"].ratio == 0 and "contract_expired" in expired.flags
    assert expired.layers["monitoring"].reason.startswith("contract with P expired 2024-12-31; ")
    future = s3(report(inventory(monitoring={"provider": "P", "kind": "contracted",
                                             "contract_from": "2025-07-01",
                                             "contract_until": "2026-06-30"})))
    assert future.layers["monitoring"].ratio == 0 and future.flags == []
    in_house = s3(report(inventory(monitoring={"provider": "SOC tỉnh",
                                               "contract_until": "2025-12-31"})))
    assert in_house.layers["monitoring"].ratio == 0  # in-house: proven by telemetry only


@pytest.mark.parametrize(("monitoring", "path", "fragment"), [
    ({"kind": "contracted", "contract_until": "2025-12-31"}, "monitoring.provider", "provider"),
    ({"kind": "contracted", "provider": "P"}, "monitoring.contract_until", "end date"),
    ({"provider": "P", "contract_from": "2025-12-01", "contract_until": "2025-01-01"},
     "monitoring.contract_until", "before it starts"),
    ({"kind": "outsourced"}, "monitoring.kind", "in_house"),
])
def test_layer2_contract_errors(monitoring, path, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as exc:
        inventory(monitoring=monitoring)
    assert path in str(exc.value) and fragment in str(exc.value)


# -- status and re-approval ------------------------------------------------------------
def test_statuses_planned_building_retired_are_not_counted_upgrading_is() -> None:
    for status, extra, counted in (("planned", {}, False), ("building", {}, False),
                                   ("retired", {"retired_on": "2025-01-01"}, False),
                                   ("upgrading", {"upgraded_on": "2025-09-01",
                                                  "upgrade_started": "2025-03-01"}, True)):
        r = report(inventory(status=status, **extra))
        assert r.province_rollup.systems == (2 if counted else 1), status


def test_an_upgrade_needs_reapproval_before_going_live() -> None:
    up = {"status": "upgrading", "upgrade_started": "2025-01-10"}
    live = s3(report(inventory(**up, upgraded_on="2025-05-01")))
    assert live.needs_reapproval and "needs_reapproval" in live.flags
    assert not live.approved and live.approval_overdue  # live since 1 May, approval of 2024
    ahead = s3(report(inventory(**up, upgraded_on="2025-09-01")))
    assert ahead.needs_reapproval and not ahead.approval_overdue  # not live yet
    reapproved = s3(report(inventory(**up, upgraded_on="2025-05-01",
                                     approval={"approved": True, "date": "2025-04-20"})))
    assert reapproved.approved and reapproved.approved_on_time and not reapproved.needs_reapproval


def test_a_proposed_new_level_is_flagged() -> None:
    sc = s3(report(inventory(proposed_level=4)))
    assert sc.needs_reapproval and sc.flags == ["needs_reapproval"]
    assert s3(report(inventory(proposed_level=3))).flags == []


@pytest.mark.parametrize(("overrides", "path", "fragment"), [
    ({"status": "retired"}, "retired_on", "needs the day"),
    ({"status": "upgrading"}, "upgraded_on", "needs the day"),
    ({"upgraded_on": "2025-05-01"}, "upgrade_started", "an approval before it"),
    ({"status": "decommissioned"}, "status", "planned"),
    ({"proposed_level": 6}, "proposed_level", "at most 5"),
    ({"hosting": {"location": "mars"}}, "hosting.location", "provincial_dc"),
])
def test_dossier_errors(overrides, path, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as exc:
        inventory(**overrides)
    assert f"systems[0].{path}" in str(exc.value) and fragment in str(exc.value)


# -- layer 4 -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("national", "link", "ratio", "reason"),
    [
        ({"enabled": False}, FakeNational(True, {"s3": NOW}), 0, "not enabled"),
        ({"enabled": True}, None, 0, "national link not configured"),
        ({"enabled": True}, FakeNational(False, {"s3": NOW}), 0, "national link down"),
        ({"enabled": True}, FakeNational(True, {}), 0, "no report"),
        ({"enabled": True}, FakeNational(True, {"s3": NOW - 3601}), 0, "window"),
        ({"enabled": True}, FakeNational(True, {"s3": NOW - 60}), 1, "link up"),
        ({"enabled": True}, FakeNational(True, {"s3": NOW - 60}, 0.9875), 0.9875,
         "link available 98.8 % over 30 days"),
    ],
)
def test_layer4(national, link, ratio, reason) -> None:  # type: ignore[no-untyped-def]
    l4 = s3(report(inventory(national=national), link=link)).layers["national"]
    assert l4.ratio == ratio and reason in l4.reason


# -- obligations and roll-ups -----------------------------------------------------
def test_obligations_on_time_late_and_overdue() -> None:
    sc = s3(report())
    assert (sc.approved, sc.approved_on_time, sc.approval_overdue) == (True, True, False)
    assert (sc.plan_deployed, sc.plan_overdue) == (True, False)
    late = s3(report(inventory(approval={"approved": True, "date": "2024-10-01"}, plan={})))
    assert (late.approved, late.approved_on_time, late.plan_overdue) == (True, False, True)
    none = s3(report(inventory(approval={"approved": False})))
    assert none.approval_overdue and none.overdue


def test_deadline_is_local_date() -> None:
    h = inventory(approval={"approved": False})
    # 30 Sept 23:30 in Huế is still on time; 1 Oct 00:30 Huế (17:30 UTC 30 Sept) is not.
    before = dt.datetime(2024, 9, 30, 23, 30, tzinfo=ICT).timestamp()
    after = dt.datetime(2024, 10, 1, 0, 30, tzinfo=ICT).timestamp()
    assert not s3(report(h, now=before)).approval_overdue
    assert s3(report(h, now=after)).approval_overdue


def test_building_system_is_not_overdue_and_future_plan_not_deployed() -> None:
    sc = s3(report(inventory(status="building", approval={"approved": False}, plan={})))
    assert not sc.overdue
    sc = s3(report(inventory(plan={"deployed": "2025-07-01"})))
    assert not sc.plan_deployed and sc.plan_overdue


def test_rollups() -> None:
    link = FakeNational(True, {"s3": NOW})
    agents = [FakeAgent(f"a{i}", "s3", h, NOW, running(*ALL))
              for i, h in enumerate(["web-01", "web-02", "db-01"])]
    r = report(agents=agents, link=link)
    assert s3(r).fully_covered
    units = {u.name: u for u in r.units}
    assert units["Sở Thông tin và Truyền thông"].fully_covered == 1
    assert r.province_rollup.systems == 2
    assert r.province_rollup.layers["monitoring"] == pytest.approx(0.5)
    assert r.province_rollup.approved == 1 and r.province_rollup.overdue == 1


# -- config ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        ({"required_probes": {3: ["host_metrics", "hostmetrics"]}}, "coverage.required_probes.3[1]",
         "unknown probe 'hostmetrics'"),
        ({"ack_sla": {6: "1h"}}, "coverage.ack_sla.6", "unknown level"),
        ({"approval_deadline": "20240930"}, "coverage.approval_deadline", "not a date"),
        ({"alert_window": "a month"}, "coverage.alert_window", "not a duration"),
        ({"sla": {}}, "coverage.sla", "unknown key"),
    ],
)
def test_config_errors(raw, path, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as exc:
        load_coverage_config(raw, "collector.yaml")
    assert exc.value.path == path and fragment in exc.value.problem
    assert str(exc.value).startswith("collector.yaml: ")


def test_config_accepts_yaml_dates() -> None:
    cfg = load_coverage_config({"plan_deadline": dt.date(2025, 3, 31)}, "c")
    assert cfg.plan_deadline_day == dt.date(2025, 3, 31)


# -- service, metrics, table ------------------------------------------------------
class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Agents:
    def __init__(self, agents: list[FakeAgent]) -> None:
        self.list = agents

    def agents(self) -> list[FakeAgent]:
        return self.list


def test_service_caches_and_invalidates_on_inventory_change() -> None:
    holder = inventory()
    clock = Clock(NOW)
    svc = CoverageService(holder, CoverageConfig(), agents=Agents([]), presence=Presence(90),
                          clock=clock)
    first = svc.report()
    assert svc.report() is first
    clock.t += 6
    assert svc.report() is not first
    cached = svc.report()
    holder.set(holder.current)
    assert svc.report() is not cached


def test_metrics_exposition() -> None:
    holder = inventory()
    svc = CoverageService(holder, CoverageConfig(), agents=Agents([]), presence=Presence(90),
                          clock=Clock(NOW))
    reg = CollectorRegistry()
    reg.register(CoverageCollector(svc, holder))
    text = generate_latest(reg).decode()
    unit = "Sở Thông tin và Truyền thông"
    assert (f'canhgac_layer_coverage_ratio{{layer="onsite",level="3",system="s3",unit="{unit}"}} 1.0'
            in text)
    assert 'name="Cổng thông tin điện tử tỉnh"' in text and 'province="Thừa Thiên Huế"' in text
    assert f'canhgac_system_assessment_age_days{{level="3",system="s3",unit="{unit}"}} 120.0' in text
    assert 'canhgac_system_obligation_overdue{level="1",obligation="approval",system="s1"' in text
    assert f'canhgac_unit_systems{{state="total",unit="{unit}"}} 1.0' in text
    assert 'canhgac_province_layer_coverage_ratio{layer="onsite",province="Thừa Thiên Huế"} 0.5' in text


def test_table_fits_80_columns_and_colour_only_when_asked() -> None:
    data = report(inventory(name="Hệ thống thông tin giải quyết thủ tục hành chính tỉnh"),
                  link=FakeNational()).to_dict()
    plain = render(data, colour=False)
    assert "\x1b[" not in plain
    assert all(_width(line) <= 80 for line in plain.splitlines()), plain
    assert "Sở Thông tin và Truyền thông" in plain and "Hệ thống thông tin …" in plain
    coloured = render(data, colour=True)
    assert "\x1b[32m" in coloured and "\x1b[31m" in coloured


def test_a_plan_without_an_approved_level_is_not_deployed() -> None:
    """Issue 9 finding: the plan showed OK for a system whose level was never approved."""
    sc = s3(report(inventory(approval={"approved": False}, plan={"deployed": "2024-11-20"})))
    assert not sc.plan_deployed and sc.plan_overdue


def test_systems_being_built_are_not_in_the_denominators() -> None:
    """Issue 9 finding: systems still being built counted in "1/3 appr."."""
    holder = inventory()
    inv = holder.current
    building = dataclasses.replace(inv.systems[0], id="new-sys", status="building", hosts=[],
                                   approval=dataclasses.replace(inv.systems[0].approval,
                                                                approved=False))
    holder.set(dataclasses.replace(inv, systems=[*inv.systems, building]))
    r = report(holder)
    total = r.province_rollup
    assert total.systems == 2 and total.not_operating == 1
    assert total.approved == sum(s.approved for s in r.systems if s.status == "operating")


def test_a_new_system_approved_before_going_live_is_on_time() -> None:
    """Issue 9 finding: a system approved after 2024-09-30 was LATE forever, even a new one
    approved before it went live ("trước khi đưa vào vận hành")."""
    new = s3(report(inventory(operating_since="2025-03-01",
                              approval={"approved": True, "date": "2025-02-10"})))
    assert new.approved_on_time and not new.overdue
    late = s3(report(inventory(operating_since="2025-03-01",
                               approval={"approved": True, "date": "2025-04-10"})))
    assert late.approved and not late.approved_on_time
    missing = s3(report(inventory(operating_since="2025-03-01", approval={"approved": False})))
    assert missing.approval_overdue  # in operation since March, never approved
    existing = s3(report(inventory(approval={"approved": True, "date": "2024-10-01"})))
    assert not existing.approved_on_time  # an existing system had the 2024-09-30 deadline


def test_agents_of_unknown_or_retired_systems_are_flagged(caplog) -> None:  # type: ignore[no-untyped-def]
    """Issue 9 (fleet consistency): agents of systems missing from the inventory or retired
    are flagged loudly — in the report, on /metrics and once in the log."""
    holder = inventory()
    holder.set(parse_inventory({"province": "P", "systems": [
        *[dataclasses.asdict(s) for s in holder.current.systems],
        {"id": "cu", "name": "Cũ", "unit": "U", "level": 2, "status": "retired",
         "retired_on": "2025-01-01"}]}, "t"))
    agents = [FakeAgent("a1", "s3", "web-01", NOW), FakeAgent("a2", "ghost", "x-01", NOW),
              FakeAgent("a3", "cu", "cu-01", NOW),
              FakeAgent("a4", "ghost", "x-02", NOW, revoked=NOW - 10)]
    r = report(holder, agents=agents)
    assert [(f.agent_id, f.flag) for f in r.flagged_agents] == [
        ("a3", "system_retired"), ("a2", "system_not_in_inventory")]
    assert r.restricted(lambda s: s.unit == "U").flagged_agents == []

    class Directory:
        def agents(self):  # type: ignore[no-untyped-def]
            return agents

    svc = CoverageService(holder, CoverageConfig(), agents=Directory(), presence=Presence(90),
                          clock=lambda: NOW)
    with caplog.at_level("WARNING", logger="collector.coverage.service"):
        svc.report()
        svc.invalidate()
        svc.report()
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2 and any("'ghost', which is not in the inventory" in m for m in warned)
    registry = CollectorRegistry()
    registry.register(CoverageCollector(svc, holder))
    text = generate_latest(registry).decode()
    assert 'canhgac_agents_flagged{flag="system_not_in_inventory"} 1.0' in text
    assert 'canhgac_agents_flagged{flag="system_retired"} 1.0' in text


def test_reasons_in_vietnamese_and_english() -> None:
    """Issue 9, item 6: reasons and flags in Vietnamese and English; every gap explained."""
    r = report(inventory(onsite={"team": []}, assessments=[
        {"date": "2025-03-01", "organisation": "X", "independent": True, "result": "failed"}],
        monitoring={"provider": "VNPT SOC", "kind": "contracted",
                    "contract_until": "2024-12-31"}))
    data = r.to_dict()
    vi = render(data, lang="vi")
    en = render(data, lang="en")
    assert "L1 tại chỗ: chưa có đội ứng cứu tại chỗ" in vi
    assert "L1 on-site: no on-site team named" in en
    assert "L3 đánh giá: kiểm tra, đánh giá độc lập ngày 01/03/2025 không đạt" in vi
    assert "L3 assessment: independent assessment 2025-03-01 failed" in en
    assert "hợp đồng giám sát đã hết hạn" in vi and "monitoring contract expired" in en
    assert "L2 giám sát: hợp đồng giám sát với VNPT SOC đã hết hạn 31/12/2024" in vi
    assert all(_width(line) <= 80 for line in (vi + "\n" + en).splitlines())
    # the API keeps its English reason, and carries the codes
    l1 = data["systems"][0]["layers"]["onsite"]
    assert l1["reason"] == "no on-site team named"
    assert l1["reasons"] == [{"code": "onsite.no_team", "params": {}}]


def test_language_choice() -> None:
    from canhgac.lang import resolve_lang

    assert resolve_lang(None, {}) in ("vi", "en")
    assert resolve_lang(None, {"LANG": "C.UTF-8"}) == "vi"  # a server's locale stays Vietnamese
    assert resolve_lang(None, {"LANG": "en_US.UTF-8"}) == "en"
    assert resolve_lang(None, {"LANG": "en_US.UTF-8", "CANHGAC_LANG": "vi"}) == "vi"
    assert resolve_lang("EN", {"CANHGAC_LANG": "vi"}) == "en"
    with pytest.raises(ValueError, match="use vi or en"):
        resolve_lang("fr", {})
