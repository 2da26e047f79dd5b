"""The report's sections and tables in one language, shared by every format.

Markdown, Word, Excel and PDF lay out the same list of sections, so the four files say
exactly the same thing and a test that reads one back checks what the others contain.
Cells are display text (dates dd/mm/yyyy in Vietnamese, "95,5 %") except counts, which
stay integers so a spreadsheet can add them up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collector.coverage.model import LAYERS
from collector.report.i18n import Texts
from collector.report.model import STATUSES, AnnualReport

Cell = str | int


@dataclass
class Table:
    name: str  # a short sheet name for Excel
    columns: list[str]
    rows: list[list[Cell]]
    caption: str = ""


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass
class Document:
    title: str
    subtitle: str
    front: list[str]  # province, scope, period, due date, provenance
    sections: list[Section]


def _share(n: int, d: int, t: Texts) -> str:
    return t.pct(n / d if d else None)


def summary(r: AnnualReport, t: Texts) -> Section:
    d = len(r.in_operation)
    total = r.total_alerts
    return Section(t("summary"), [
        t("sum_systems", n=d, total=len(r.systems)),
        t("sum_approved", n=r.approved, d=d, pct=_share(r.approved, d, t)),
        t("sum_plan", n=r.plan_deployed, d=d, pct=_share(r.plan_deployed, d, t)),
        t("sum_assessed", n=r.assessed, d=d, pct=_share(r.assessed, d, t)),
        t("sum_alerts", alerts=total.alerts, incidents=total.incidents),
        t("sum_national", pct=t.pct(r.national_availability)),
        t("sum_obligations", n=len(r.obligations), late=r.overdue_obligations),
    ])


def inventory(r: AnnualReport, t: Texts) -> Section:
    statuses = [s for s in STATUSES if any(r.counts[lv][s] for lv in r.counts)] or ["operating"]
    rows: list[list[Cell]] = []
    for lv in sorted(r.counts):
        row = r.counts[lv]
        rows.append([t("level_n", n=lv), *(row[s] for s in statuses), sum(row.values())])
    rows.append([t("c_total"), *(sum(r.counts[lv][s] for lv in r.counts) for s in statuses),
                 len(r.systems)])
    by_level = Table("levels", [t("c_level"), *(t.label("status", s) for s in statuses),
                                t("c_total")], rows)
    unit_rows: list[list[Cell]] = []
    for u in r.units:
        mine = [s for s in r.systems if s.unit == u]
        unit_rows.append([u, *(sum(s.status == st for s in mine) for st in statuses), len(mine)])
    by_unit = Table("units", [t("c_unit_name"), *(t.label("status", s) for s in statuses),
                              t("c_total")], unit_rows)
    listing = Table("systems", [t("c_id"), t("c_system"), t("c_unit"), t("c_level"),
                                t("c_status"), t("c_hosting")], [
        [s.id, s.name, s.unit + (" " + t("operated_by", unit=s.operating_unit)
                                 if s.operating_unit != s.unit else ""),
         s.level, t.label("status", s.status),
         " — ".join(x for x in (t.label("hosting", s.hosting) if s.hosting else "",
                                s.hosting_name) if x) or t("none")]
        for s in r.systems], caption=t("s_systems"))
    return Section(t("s_inventory"), [], [by_level, by_unit, listing])


def approvals(r: AnnualReport, t: Texts) -> Section:
    d = len(r.in_operation)
    # Level, status and unit are in §1's list: one row per system here, the dossier's dates.
    rows: list[list[Cell]] = [
        [s.name, (s.decision + (f" ({s.authority})" if s.authority else "")) or t("none"),
         t.date(s.approved_on),
         t.yes_no(s.approved_on_time) if s.approved_on_time is not None else t("none"),
         t.date(s.plan_deployed_on),
         t.yes_no(s.plan_on_time) if s.plan_on_time is not None else t("none")]
        for s in r.systems]
    return Section(t("s_approvals"), [
        t("sum_approved", n=r.approved, d=d, pct=_share(r.approved, d, t)),
        t("sum_plan", n=r.plan_deployed, d=d, pct=_share(r.plan_deployed, d, t)),
    ], [Table("approvals", [t("c_system"), t("c_decision"), t("c_approved_on"), t("c_on_time"),
                            t("c_plan"), t("c_plan_on_time")], rows)])


def layers(r: AnnualReport, t: Texts) -> Section:
    note = [t("layers_note")]
    note.append(t("history_from", date=t.date(r.history_from)) if r.history_from
                else t("history_none"))
    rows: list[list[Cell]] = [
        [s.name, s.unit, *(t.pct(s.layers[layer]) for layer in LAYERS),
         f"{s.observed_days:g}".replace(".", "," if t.lang == "vi" else ".")]
        for s in r.systems if s.in_operation]
    return Section(t("s_layers"), note, [Table(
        "layers", [t("c_system"), t("c_unit"), *(t(f"layer.{layer}") for layer in LAYERS),
                   t("c_days")], rows)])


def inspections(r: AnnualReport, t: Texts) -> Section:
    d = len(r.in_operation)
    paragraphs = [t("sum_assessed", n=r.assessed, d=d, pct=_share(r.assessed, d, t))]
    tables = []
    if r.inspections:
        tables.append(Table("inspections", [
            t("c_system"), t("c_date"), t("c_assessor"), t("c_independent"), t("c_result"),
            t("c_report")], [
            [i.system_name, t.date(i.date), i.organisation, t.yes_no(i.independent),
             t.label("result", i.result), i.report or t("none")] for i in r.inspections]))
    else:
        paragraphs.append(t("no_inspections"))
    if r.findings:
        tables.append(Table("findings", [
            t("c_system"), t("c_date"), t("c_finding"), t("c_owner"), t("c_due"), t("c_state"),
            t("c_overdue")], [
            [f.system_name, t.date(f.assessed_on), f.title, f.owner, t.date(f.due),
             t.label("finding", f.state) + (f" ({t.date(f.fixed_on)})" if f.fixed_on else ""),
             t.yes_no(f.overdue)] for f in r.findings], caption=t("s_findings")))
    else:
        paragraphs.append(t("no_findings"))
    return Section(t("s_inspections"), paragraphs, tables)


def alerts(r: AnnualReport, t: Texts) -> Section:
    rows: list[list[Cell]] = []
    for a in r.alerts:
        name = t("c_total") if a.severity == "total" else t.label("severity", a.severity)
        rows.append([name, a.alerts, a.incidents, a.acknowledged, a.within_sla,
                     t.duration(a.median_ack), t.duration(a.p90_ack)])
    return Section(t("s_alerts"), [t("alerts_note")], [Table("alerts", [
        t("c_severity"), t("c_alerts"), t("c_incidents"), t("c_acked"), t("c_in_sla"),
        t("c_median"), t("c_p90")], rows)])


def national(r: AnnualReport, t: Texts) -> Section:
    """Per unit: each system's figure is §3's layer-4 column (the same number)."""
    rows: list[list[Cell]] = []
    for u in r.units:
        live = [s for s in r.in_operation if s.unit == u]
        sharing = [s.full_share["national"] for s in live if s.national_enabled]
        known = [x for x in sharing if x is not None]
        rows.append([u, f"{len(sharing)}/{len(live)}",
                     t.pct(sum(known) / len(known) if known else None)])
    paragraphs = [t("sum_national", pct=t.pct(r.national_availability)), t("national_note")]
    if r.link_availability is not None:
        paragraphs.append(t("link_up", pct=t.pct(r.link_availability)))
    return Section(t("s_national"), paragraphs,
                   [Table("national", [t("c_unit_name"), t("c_sharing"), t("c_availability")],
                          rows)])


def obligations(r: AnnualReport, t: Texts) -> Section:
    if not r.obligations:
        return Section(t("s_obligations"), [t("no_obligations")])
    rows: list[list[Cell]] = []
    for o in r.obligations:
        params = {k: t.date(v) if k == "date" else v for k, v in o.params.items()}
        due = t.date(o.due) + (f" — {t('overdue_mark')}" if o.overdue else "")
        rows.append([o.system_name, t(f"ob.{o.kind}", **params), o.owner or t("department"),
                     due])
    return Section(t("s_obligations"), [
        t("sum_obligations", n=len(r.obligations), late=r.overdue_obligations)],
        [Table("obligations", [t("c_system"), t("c_obligation"), t("c_owner"), t("c_due")],
               rows)])


def document(r: AnnualReport, lang: str) -> Document:
    t = Texts(lang)
    front = [t("province", province=r.province or "—"),
             t("scope_unit", unit=r.unit) if r.unit else t("scope_all"),
             t("period", start=t.date(r.start), end=t.date(r.end))]
    if not r.complete:
        front.append(t("provisional", end=t.date(r.end), year=r.year))
    front += [t("due", year=r.year), t("generated", date=t.date(r.generated))]
    return Document(t("title", year=r.year), t("subtitle"), front, [
        summary(r, t), inventory(r, t), approvals(r, t), layers(r, t), inspections(r, t),
        alerts(r, t), national(r, t), obligations(r, t)])
