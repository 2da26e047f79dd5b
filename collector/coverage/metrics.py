"""Prometheus view of the coverage report (docs/coverage.md, "Metrics").

A custom Collector computes at scrape time from the cached report, so labels
are exactly the systems and units of the inventory in force: a system removed
from the inventory disappears from the next scrape, and no event content ever
becomes a label.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from collector.coverage.model import LAYERS, CoverageReport
from collector.coverage.service import CoverageService
from collector.inventory import InventoryHolder

log = logging.getLogger(__name__)

SYS = ["system", "unit", "level"]


class CoverageCollector(Collector):
    def __init__(self, service: CoverageService, inventory: InventoryHolder) -> None:
        self.service = service
        self.inventory = inventory
        self._families: tuple[CoverageReport, list[GaugeMetricFamily]] | None = None
        service.listeners.append(self._prepare)

    def _prepare(self, report: CoverageReport) -> None:
        """Build the families once per report, where the report is computed."""
        self._families = (report, list(self._build(report)))

    def collect(self) -> Iterable[GaugeMetricFamily]:
        report = self.service.report()
        cached = self._families
        if cached is None or cached[0] is not report:
            self._prepare(report)
            cached = self._families
        assert cached is not None
        yield from cached[1]
        yield from self._holder_metrics()

    def _build(self, report: CoverageReport) -> Iterable[GaugeMetricFamily]:
        province = report.province

        ratio = GaugeMetricFamily("canhgac_layer_coverage_ratio",
                                  "Coverage of a system by one protection layer (0..1)",
                                  labels=[*SYS, "layer"])
        info = GaugeMetricFamily("canhgac_system_info", "Inventory facts of a system (always 1)",
                                 labels=[*SYS, "name", "status", "province"])
        approved = GaugeMetricFamily("canhgac_system_level_approved",
                                     "1 when the level dossier is approved", labels=SYS)
        on_time = GaugeMetricFamily("canhgac_system_level_approved_on_time",
                                    "1 when approved by the approval deadline", labels=SYS)
        plan = GaugeMetricFamily("canhgac_system_plan_deployed",
                                 "1 when the security plan of the level is deployed", labels=SYS)
        overdue = GaugeMetricFamily("canhgac_system_obligation_overdue",
                                    "1 when an obligation is past its deadline and not met",
                                    labels=[*SYS, "obligation"])
        agents = GaugeMetricFamily("canhgac_system_agents", "Agents of a system by state",
                                   labels=[*SYS, "state"])
        hosts = GaugeMetricFamily("canhgac_system_hosts", "Hosts of a system (expected, covered)",
                                  labels=[*SYS, "state"])
        age = GaugeMetricFamily("canhgac_system_assessment_age_days",
                                "Days since the last independent assessment", labels=SYS)
        findings = GaugeMetricFamily("canhgac_system_findings_overdue",
                                     "Open assessment findings past their due date", labels=SYS)
        flag = GaugeMetricFamily("canhgac_system_flag",
                                 "1 for each problem a person must act on (docs/coverage.md, "
                                 "Flags); absent when none", labels=[*SYS, "flag"])
        late = GaugeMetricFamily("canhgac_system_alerts_late",
                                 "Alerts in the layer-1 window acknowledged late or overdue",
                                 labels=SYS)
        for sc in report.systems:
            lv = [sc.id, sc.unit, str(sc.level)]
            for layer in LAYERS:
                ratio.add_metric([*lv, layer], sc.layers[layer].ratio)
            info.add_metric([*lv, sc.name, sc.status, province], 1)
            approved.add_metric(lv, int(sc.approved))
            on_time.add_metric(lv, int(sc.approved_on_time))
            plan.add_metric(lv, int(sc.plan_deployed))
            overdue.add_metric([*lv, "approval"], int(sc.approval_overdue))
            overdue.add_metric([*lv, "plan"], int(sc.plan_overdue))
            overdue.add_metric([*lv, "findings"], int(sc.findings_overdue > 0))
            findings.add_metric(lv, sc.findings_overdue)
            for name in sc.flags:
                flag.add_metric([*lv, name], 1)
            agents.add_metric([*lv, "online"], sc.agents_online)
            agents.add_metric([*lv, "offline"], sc.agents_offline)
            hosts.add_metric([*lv, "expected"], sc.hosts_expected)
            hosts.add_metric([*lv, "covered"], sc.hosts_covered)
            if sc.assessment_age_days is not None:
                age.add_metric(lv, sc.assessment_age_days)
            late.add_metric(lv, sc.alerts_late)
        yield from (ratio, info, approved, on_time, plan, overdue, agents, hosts, age, late,
                    findings, flag)

        flagged = GaugeMetricFamily("canhgac_agents_flagged",
                                    "Agents of systems the inventory does not list or lists as "
                                    "retired (not revoked)", labels=["flag"])
        for name in ("system_not_in_inventory", "system_retired"):
            flagged.add_metric([name], sum(f.flag == name for f in report.flagged_agents))
        yield flagged

        counts = self.service.alert_counts
        g = GaugeMetricFamily("canhgac_system_alerts_unresolved",
                              "Unresolved alerts of a system by status", labels=[*SYS, "status"])
        for sc in report.systems:
            lv = [sc.id, sc.unit, str(sc.level)]
            for status in ("open", "acknowledged"):
                g.add_metric([*lv, status], counts.get((sc.id, status), 0))
        yield g

        unit_ratio = GaugeMetricFamily("canhgac_unit_layer_coverage_ratio",
                                       "Mean layer coverage of a unit's systems",
                                       labels=["unit", "layer"])
        unit_sys = GaugeMetricFamily("canhgac_unit_systems",
                                     "Systems of a unit, by obligation state",
                                     labels=["unit", "state"])
        for u in report.units:
            for layer in LAYERS:
                unit_ratio.add_metric([u.name, layer], u.layers[layer])
            for state, n in (("total", u.systems), ("approved", u.approved),
                             ("plan_deployed", u.plan_deployed), ("overdue", u.overdue),
                             ("fully_covered", u.fully_covered)):
                unit_sys.add_metric([u.name, state], n)
        yield from (unit_ratio, unit_sys)

        p = report.province_rollup
        prov_ratio = GaugeMetricFamily("canhgac_province_layer_coverage_ratio",
                                       "Mean layer coverage of all systems in the inventory",
                                       labels=["province", "layer"])
        prov_sys = GaugeMetricFamily("canhgac_province_systems",
                                     "Systems in the inventory, by obligation state",
                                     labels=["province", "state"])
        for layer in LAYERS:
            prov_ratio.add_metric([province, layer], p.layers[layer])
        for state, n in (("total", p.systems), ("approved", p.approved),
                         ("plan_deployed", p.plan_deployed), ("overdue", p.overdue),
                         ("fully_covered", p.fully_covered)):
            prov_sys.add_metric([province, state], n)
        yield from (prov_ratio, prov_sys)

    def _holder_metrics(self) -> Iterable[GaugeMetricFamily]:
        holder = self.inventory
        g = GaugeMetricFamily("canhgac_inventory_reloads", "Inventory reloads by result",
                              labels=["result"])
        g.add_metric(["ok"], holder.reloads_ok)
        g.add_metric(["refused"], holder.reloads_failed)
        yield g
        g = GaugeMetricFamily("canhgac_inventory_file_invalid",
                              "1 while the file on disk is refused (old inventory in force)")
        g.add_metric([], 1 if holder.last_error else 0)
        yield g
        g = GaugeMetricFamily("canhgac_inventory_loaded_timestamp_seconds",
                              "When the inventory in force was loaded")
        g.add_metric([], holder.loaded_at)
        yield g
        g = GaugeMetricFamily("canhgac_coverage_compute_seconds",
                              "Time the last coverage computation took")
        g.add_metric([], self.service.compute_seconds)
        yield g


class CertificateCollector(Collector):
    """Expiry of the collector's own certificates, for the "certificate expiring" alert.

    Parsed once per file change (mtime), not per scrape.
    """

    def __init__(self, paths: dict[str, Path]) -> None:
        self.paths = paths
        self._cache: dict[str, tuple[int, float | None]] = {}

    def _not_after(self, name: str, path: Path) -> float | None:
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        hit = self._cache.get(name)
        if hit and hit[0] == mtime:
            return hit[1]
        from cryptography import x509

        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            value: float | None = cert.not_valid_after_utc.replace(tzinfo=dt.UTC).timestamp()
        except (OSError, ValueError) as exc:
            log.warning("cannot read certificate %s: %s", path, exc)
            value = None
        self._cache[name] = (mtime, value)
        return value

    def collect(self) -> Iterable[GaugeMetricFamily]:
        g = GaugeMetricFamily("canhgac_tls_certificate_expiry_timestamp_seconds",
                              "notAfter of the collector's certificates", labels=["cert"])
        for name, path in sorted(self.paths.items()):
            value = self._not_after(name, path)
            if value is not None:
                g.add_metric([name], value)
        yield g
