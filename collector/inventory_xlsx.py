"""The inventory as a spreadsheet (.xlsx): units keep their system lists in Excel.

One sheet per kind of record, one row per record, a header naming each column in
Vietnamese with its key in brackets (``Cấp độ (level)``): the key is what import
reads, so columns may be reordered, relabelled or hidden freely.

| sheet | one row per | keyed to the system by |
| --- | --- | --- |
| Thông tin | province, then one unit per row | — |
| Hệ thống | system (dossier, hosts comma-separated) | ``id`` |
| Đội tại chỗ | on-site team member | ``system`` |
| Đánh giá | assessment | ``system`` |
| Tồn tại | assessment finding | ``system`` + ``assessment_date`` (+ ``assessment_organisation``) |

Import builds the same document the YAML file holds and validates it with
``parse_inventory``: every problem at once, each naming the sheet and row.
Dates are written as Excel dates shown dd/mm/yyyy; on import a date cell, an ISO
date or dd/mm/yyyy text are accepted, nothing else (as in YAML).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

from canhgac.config import did_you_mean
from canhgac.errors import ConfigError, ConfigErrors
from canhgac.message import EMPTY, Message
from canhgac.text import nfc
from collector.inventory import (
    Assessment,
    Contact,
    Finding,
    Inventory,
    System,
    parse_date,
    parse_inventory,
)

INFO, SYSTEMS, TEAM, ASSESSMENTS, FINDINGS = (
    "Thông tin", "Hệ thống", "Đội tại chỗ", "Đánh giá", "Tồn tại")

# Columns of the systems sheet: System's scalars, then its one-of sub-records flattened.
_NESTED = ("approval", "plan", "monitoring", "hosting", "national")
_LISTED = ("onsite", "assessments")  # sheets of their own
DATE_KEYS = frozenset({
    "operating_since", "upgraded_on", "upgrade_started", "retired_on", "approval.date",
    "plan.deployed", "monitoring.contract_from", "monitoring.contract_until", "trained", "date",
    "due", "fixed_on", "assessment_date"})

LABELS = {
    "id": "Mã hệ thống", "name": "Tên hệ thống", "unit": "Đơn vị chủ quản", "level": "Cấp độ",
    "proposed_level": "Cấp độ đề xuất mới", "status": "Trạng thái",
    "operating_since": "Ngày vận hành", "upgraded_on": "Ngày vận hành sau nâng cấp",
    "upgrade_started": "Ngày quyết định nâng cấp", "retired_on": "Ngày dừng hoạt động",
    "operating_unit": "Đơn vị vận hành", "hosts": "Máy chủ", "approval.approved": "Đã phê duyệt",
    "approval.decision": "Số quyết định", "approval.date": "Ngày phê duyệt",
    "approval.authority": "Cấp phê duyệt", "plan.deployed": "Ngày triển khai phương án",
    "plan.document": "Số phương án", "monitoring.provider": "Đơn vị giám sát",
    "monitoring.kind": "Hình thức giám sát", "monitoring.contract_from": "Hợp đồng từ",
    "monitoring.contract_until": "Hợp đồng đến", "hosting.location": "Nơi đặt hệ thống",
    "hosting.name": "Tên nơi đặt", "national.enabled": "Kết nối quốc gia", "system": "Mã hệ thống",
    "role": "Vai trò", "phone": "Điện thoại", "email": "Thư điện tử",
    "trained": "Ngày tập huấn gần nhất", "date": "Ngày đánh giá",
    "organisation": "Tổ chức đánh giá", "independent": "Độc lập", "result": "Kết quả",
    "report": "Số báo cáo", "assessment_date": "Ngày đánh giá",
    "assessment_organisation": "Tổ chức đánh giá", "title": "Nội dung tồn tại",
    "owner": "Đơn vị khắc phục", "due": "Hạn khắc phục", "state": "Tình trạng",
    "fixed_on": "Ngày khắc phục", "province": "Tỉnh", "units": "Đơn vị",
    "department": "Sở chủ trì kiểm tra, kết nối quốc gia",
}
_KEY_IN_HEADER = re.compile(r"\(([A-Za-z_][\w.]*)\)\s*$")


def _scalar_fields(cls: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def system_columns() -> list[str]:
    cols: list[str] = []
    for f in dataclasses.fields(System):
        if f.name in _LISTED:
            continue
        if f.name in _NESTED:
            sub = type(getattr(_blank_system(), f.name))
            cols += [f"{f.name}.{n}" for n in _scalar_fields(sub)]
        else:
            cols.append(f.name)
    return cols


def _blank_system() -> System:
    return System(id="x", name="x", unit="x", level=1)


TEAM_COLUMNS = ["system", *_scalar_fields(Contact)]
ASSESSMENT_COLUMNS = ["system", *[n for n in _scalar_fields(Assessment) if n != "findings"]]
FINDING_COLUMNS = ["system", "assessment_date", "assessment_organisation",
                   *_scalar_fields(Finding)]


def header(key: str) -> str:
    label = LABELS.get(key)
    return f"{label} ({key})" if label else key


# -- export -------------------------------------------------------------------------
def _cell(key: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if key.rsplit(".", 1)[-1] in DATE_KEYS or key in DATE_KEYS:
        return parse_date(str(value))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return value


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def rows(inv: Inventory) -> dict[str, list[list[Any]]]:
    """Each sheet's rows, header first (the pure half of export: easy to test)."""
    sheets: dict[str, list[list[Any]]] = {
        INFO: [[header("province"), nfc(inv.province) or None]]
              + ([[header("department"), nfc(inv.department)]] if inv.department else [])
              + [[header("units"), u] for u in inv.units],
        SYSTEMS: [[header(c) for c in system_columns()]],
        TEAM: [[header(c) for c in TEAM_COLUMNS]],
        ASSESSMENTS: [[header(c) for c in ASSESSMENT_COLUMNS]],
        FINDINGS: [[header(c) for c in FINDING_COLUMNS]],
    }
    for s in inv.systems:
        sheets[SYSTEMS].append([_cell(c, _get(s, c)) for c in system_columns()])
        for m in s.onsite.team:
            sheets[TEAM].append([s.id, *[_cell(c, getattr(m, c)) for c in TEAM_COLUMNS[1:]]])
        for a in s.assessments:
            sheets[ASSESSMENTS].append(
                [s.id, *[_cell(c, getattr(a, c)) for c in ASSESSMENT_COLUMNS[1:]]])
            for f in a.findings:
                sheets[FINDINGS].append([s.id, a.day, a.organisation,
                                         *[_cell(c, getattr(f, c)) for c in FINDING_COLUMNS[3:]]])
    return sheets


def export_xlsx(inv: Inventory, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for title, table in rows(inv).items():
        ws = wb.create_sheet(title)
        for row in table:
            ws.append(row)
        if title != INFO:
            for cell in ws[1]:
                cell.font = Font(bold=True)
            ws.freeze_panes = "A2"
        for col in ws.columns:
            for cell in col:
                if isinstance(cell.value, dt.date):
                    cell.number_format = "DD/MM/YYYY"
            width = max(len(str(c.value)) if c.value is not None else 0 for c in col)
            ws.column_dimensions[col[0].column_letter].width = min(max(width + 2, 10), 60)
    wb.save(path)


# -- import -------------------------------------------------------------------------
class _Sheet:
    """One sheet's records as {key: value} with their row numbers; header problems noted."""

    def __init__(self, ws: Any, known: list[str], source: str, errors: list[ConfigError]) -> None:
        self.name = ws.title
        self.records: list[tuple[int, dict[str, Any]]] = []
        raw = list(ws.iter_rows(values_only=True))
        if not raw:
            return
        keys: list[str | None] = []
        for i, head in enumerate(raw[0]):
            if head is None or str(head).strip() == "":
                keys.append(None)
                continue
            text = nfc(str(head)).strip()
            m = _KEY_IN_HEADER.search(text)
            key = m.group(1) if m else text
            if key not in known:
                errors.append(ConfigError(
                    _at_row(source, self.name, 1),
                    Message("column {n}", "cột {n}", n=i + 1),
                    Message("unknown column {key!r}{hint}", "cột không hợp lệ {key!r}{hint}",
                            key=key, hint=did_you_mean(key, known))))
                keys.append(None)
            else:
                keys.append(key)
        for n, values in enumerate(raw[1:], start=2):
            rec = {k: v for k, v in zip(keys, values, strict=False)
                   if k is not None and v is not None and str(v).strip() != ""}
            if rec:
                self.records.append((n, rec))


def _value(key: str, value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        text = nfc(value).strip()
        if key == "hosts":
            return [h.strip() for h in re.split(r"[,\n;]", text) if h.strip()]
        return text
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _nest(rec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in rec.items():
        target = out
        *parents, leaf = key.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = _value(key, value)
    return out


def read_xlsx(path: Path) -> Inventory:
    """Load and validate; raises ConfigErrors naming sheet and row for every problem."""
    from openpyxl import load_workbook

    source = str(path)
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise ConfigError(source, "", Message("not a readable .xlsx workbook: {exc}",
                                              "không đọc được tệp .xlsx: {exc}",
                                              exc=str(exc))) from None
    errors: list[ConfigError] = []
    missing = [t for t in (SYSTEMS,) if t not in wb.sheetnames]
    if missing:
        raise ConfigError(source, "", Message("no sheet named {name!r} (sheets: {sheets})",
                                              "không có trang tính {name!r} (các trang: {sheets})",
                                              name=missing[0], sheets=", ".join(wb.sheetnames)))

    def sheet(title: str, known: list[str]) -> _Sheet | None:
        return _Sheet(wb[title], known, source, errors) if title in wb.sheetnames else None

    doc: dict[str, Any] = {"systems": []}
    where: dict[str, tuple[str, int]] = {}  # key path -> (sheet, row)
    if INFO in wb.sheetnames:
        for n, values in enumerate(wb[INFO].iter_rows(values_only=True), start=1):
            head = nfc(str(values[0] or "")) if values else ""
            m = _KEY_IN_HEADER.search(head)
            key = m.group(1) if m else head.strip()
            value = values[1] if len(values) > 1 else None
            if key in ("province", "department") and value is not None:
                doc[key] = nfc(str(value)).strip()
                where[key] = (INFO, n)
            elif key == "units" and value is not None:
                where[f"units[{len(doc.setdefault('units', []))}]"] = (INFO, n)
                doc["units"].append(nfc(str(value)).strip())
    systems = sheet(SYSTEMS, system_columns())
    by_id: dict[str, dict[str, Any]] = {}
    assert systems is not None
    for n, rec in systems.records:
        i = len(doc["systems"])
        nested = _nest(rec)
        doc["systems"].append(nested)
        where[f"systems[{i}]"] = (SYSTEMS, n)
        if isinstance(nested.get("id"), str):
            by_id[nested["id"]] = nested
    index = {sid: i for i, sid in enumerate(s.get("id") for s in doc["systems"])
             if isinstance(sid, str)}

    def owner(title: str, n: int, rec: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        sid = _value("system", rec.pop("system", None))
        if not isinstance(sid, str) or sid not in by_id:
            errors.append(ConfigError(_at_row(source, title, n), "system", Message(
                "no system {sid!r} in sheet {sheet!r}{hint}",
                "không có hệ thống {sid!r} trong trang tính {sheet!r}{hint}",
                sid=sid, sheet=SYSTEMS, hint=did_you_mean(str(sid), list(by_id)))))
            return None
        return index[sid], by_id[sid]

    team = sheet(TEAM, TEAM_COLUMNS)
    for n, rec in team.records if team else []:
        found = owner(TEAM, n, rec)
        if found:
            members = found[1].setdefault("onsite", {}).setdefault("team", [])
            where[f"systems[{found[0]}].onsite.team[{len(members)}]"] = (TEAM, n)
            members.append(_nest(rec))
    assessed = sheet(ASSESSMENTS, ASSESSMENT_COLUMNS)
    for n, rec in assessed.records if assessed else []:
        found = owner(ASSESSMENTS, n, rec)
        if found:
            items = found[1].setdefault("assessments", [])
            where[f"systems[{found[0]}].assessments[{len(items)}]"] = (ASSESSMENTS, n)
            items.append(_nest(rec))
    findings = sheet(FINDINGS, FINDING_COLUMNS)
    for n, rec in findings.records if findings else []:
        day = _value("assessment_date", rec.pop("assessment_date", None))
        org = _value("assessment_organisation", rec.pop("assessment_organisation", None))
        found = owner(FINDINGS, n, rec)
        if not found:
            continue
        i, system = found
        matches = [(k, a) for k, a in enumerate(system.get("assessments", []))
                   if _same_day(a.get("date"), day) and (org is None or a.get("organisation") == org)]
        if len(matches) != 1:
            by = EMPTY if org is None else Message(" by {org!r}", " của {org!r}", org=org)
            fields = {"sid": system.get("id"), "day": day, "by": by, "sheet": ASSESSMENTS}
            errors.append(ConfigError(_at_row(source, FINDINGS, n), "assessment_date", Message(
                "no assessment of system {sid!r} dated {day!r}{by} in sheet {sheet!r}",
                "không có đợt đánh giá nào của hệ thống {sid!r} ngày {day!r}{by} trong trang "
                "tính {sheet!r}", **fields) if not matches else Message(
                "more than one assessment of system {sid!r} dated {day!r}{by} in sheet {sheet!r}",
                "có hơn một đợt đánh giá của hệ thống {sid!r} ngày {day!r}{by} trong trang "
                "tính {sheet!r}", **fields)))
            continue
        k, a = matches[0]
        items = a.setdefault("findings", [])
        where[f"systems[{i}].assessments[{k}].findings[{len(items)}]"] = (FINDINGS, n)
        items.append(_nest(rec))
    try:
        inv = parse_inventory(doc, source)
    except ConfigErrors as exc:
        errors.extend(_placed(e, where) for e in exc.errors)
        inv = None
    except ConfigError as exc:
        errors.append(_placed(exc, where))
        inv = None
    if errors or inv is None:
        raise ConfigErrors(errors)
    return inv


def _same_day(a: Any, b: Any) -> bool:
    try:
        return parse_date(str(a)) == parse_date(str(b))
    except ValueError:
        return False


def _placed(exc: ConfigError, where: dict[str, tuple[str, int]]) -> ConfigError:
    """The same problem, said where it is in the workbook (the longest matching record)."""
    best = max((k for k in where if exc.path == k or exc.path.startswith(k + ".")
                or exc.path.startswith(k + "[")), key=len, default=None)
    if best is None:
        return exc
    title, row = where[best]
    return ConfigError(_at_row(exc.source, title, row), exc.path, exc.problem,
                       subject=exc.subject)


def _at_row(source: str, sheet: str, row: int) -> Message:
    return Message("{source}: sheet {sheet!r} row {row}", "{source}: trang tính {sheet!r} dòng {row}",
                   source=source, sheet=sheet, row=row)


# -- YAML out -----------------------------------------------------------------------
def to_document(inv: Inventory) -> dict[str, Any]:
    """The inventory as the YAML file writes it: defaults left out, so it stays short."""
    def strip(obj: Any, default: Any) -> Any:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            out = {}
            for f in dataclasses.fields(obj):
                value = getattr(obj, f.name)
                dflt = getattr(default, f.name, dataclasses.MISSING) if default is not None \
                    else dataclasses.MISSING
                if dflt is not dataclasses.MISSING and value == dflt:
                    continue
                sub_default = dflt if dataclasses.is_dataclass(dflt) else None
                # dates unquoted in the YAML, as a person writes them
                out[f.name] = (parse_date(value) if f.name in DATE_KEYS and isinstance(value, str)
                               else strip(value, sub_default))
            return out
        if isinstance(obj, list):
            return [strip(v, _default_of(v)) for v in obj]
        return obj

    doc: dict[str, Any] = {}
    if inv.province:
        doc["province"] = inv.province
    if inv.department:
        doc["department"] = inv.department
    if inv.units:
        doc["units"] = list(inv.units)
    systems = []
    for s in inv.systems:
        head = {"id": s.id, "name": s.name, "unit": s.unit, "level": s.level}  # always, first
        systems.append(head | {k: v for k, v in strip(s, _blank_system()).items()
                               if k not in head})
    doc["systems"] = systems
    return doc


def _default_of(value: Any) -> Any:
    if isinstance(value, Contact):
        return Contact(name="")
    if isinstance(value, Assessment):
        return Assessment(date="", organisation="")
    if isinstance(value, Finding):
        return Finding(title="")
    return None

