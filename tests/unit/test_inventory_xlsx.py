"""The inventory as a spreadsheet (issue 9: "Import from and export to a spreadsheet (.xlsx)
— units keep these lists in Excel — with a round trip tested")."""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path

import pytest
import yaml
from openpyxl import load_workbook

from canhgac.cli import main
from canhgac.errors import ConfigError
from collector.inventory import parse_inventory, read_inventory
from collector.inventory_xlsx import (
    ASSESSMENTS,
    FINDINGS,
    SYSTEMS,
    TEAM,
    export_xlsx,
    read_xlsx,
    to_document,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "inventory.yaml"


def test_round_trip_yaml_xlsx_yaml(tmp_path: Path) -> None:
    original = read_inventory(EXAMPLE)
    book = tmp_path / "inventory.xlsx"
    export_xlsx(original, book)
    again = read_xlsx(book)
    assert again == original  # every field of every record, findings included
    as_yaml = yaml.safe_dump(to_document(again), allow_unicode=True, sort_keys=False)
    assert parse_inventory(yaml.safe_load(as_yaml), "x.yaml") == original
    assert "Cổng thông tin điện tử tỉnh" in as_yaml and "date: 2024-08-15" in as_yaml


def test_the_workbook_reads_well_for_a_person(tmp_path: Path) -> None:
    book = tmp_path / "inventory.xlsx"
    export_xlsx(read_inventory(EXAMPLE), book)
    wb = load_workbook(book)
    assert wb.sheetnames == ["Thông tin", SYSTEMS, TEAM, ASSESSMENTS, FINDINGS]
    ws = wb[SYSTEMS]
    head = [c.value for c in ws[1]]
    assert head[:4] == ["Mã hệ thống (id)", "Tên hệ thống (name)", "Đơn vị chủ quản (unit)",
                        "Cấp độ (level)"]
    col = head.index("Ngày phê duyệt (approval.date)") + 1
    cell = ws.cell(row=2, column=col)
    assert cell.value == dt.datetime(2024, 8, 15) and cell.number_format == "DD/MM/YYYY"
    hosts = ws.cell(row=2, column=head.index("Máy chủ (hosts)") + 1).value
    assert hosts == "portal-web-01, portal-web-02, portal-db-01"


def _example_book(tmp_path: Path) -> Path:
    book = tmp_path / "inventory.xlsx"
    export_xlsx(read_inventory(EXAMPLE), book)
    return book


def test_every_problem_at_once_by_sheet_and_row(tmp_path: Path) -> None:
    book = _example_book(tmp_path)
    wb = load_workbook(book)
    systems = wb[SYSTEMS]
    head = [c.value for c in systems[1]]
    systems.cell(row=3, column=head.index("Cấp độ (level)") + 1, value=9)
    systems.cell(row=1, column=len(head) + 1, value="Ghi chú (nots)")
    wb[TEAM].append(["khong-co", "Lê Văn C"])
    wb[FINDINGS].append(["cong-ttdt", dt.date(2020, 1, 1), None, "Tồn tại lạ"])
    wb.save(book)
    with pytest.raises(ConfigError) as err:
        read_xlsx(book)
    text = str(err.value)
    assert text.startswith("4 problems in ")
    assert f"sheet '{SYSTEMS}' row 1: column {len(head) + 1}: unknown column 'nots'" in text
    assert f"sheet '{TEAM}' row 5: system: no system 'khong-co'" in text
    assert f"sheet '{FINDINGS}' row 4: assessment_date: no assessment of system 'cong-ttdt'" in text
    assert (f"sheet '{SYSTEMS}' row 3: systems[1].level (system mot-cua): must be one of "
            "1, 2, 3, 4, 5, got 9") in text
    vi = err.value.render("vi")
    assert vi.startswith("4 lỗi trong ")
    assert f"trang tính '{SYSTEMS}' dòng 1: cột {len(head) + 1}: cột không hợp lệ 'nots'" in vi
    assert f"trang tính '{TEAM}' dòng 5: system: không có hệ thống 'khong-co'" in vi
    assert (f"trang tính '{FINDINGS}' dòng 4: assessment_date: không có đợt đánh giá nào của "
            "hệ thống 'cong-ttdt'") in vi
    assert (f"trang tính '{SYSTEMS}' dòng 3: systems[1].level (hệ thống mot-cua): phải là một "
            "trong 1, 2, 3, 4, 5, đang là 9") in vi


def test_text_is_nfc_and_dates_may_be_vietnamese_text(tmp_path: Path) -> None:
    book = _example_book(tmp_path)
    wb = load_workbook(book)
    ws = wb[SYSTEMS]
    head = [c.value for c in ws[1]]
    ws.cell(row=2, column=head.index("Đơn vị chủ quản (unit)") + 1,
            value=unicodedata.normalize("NFD", "Sở Thông tin và Truyền thông"))
    ws.cell(row=2, column=head.index("Ngày phê duyệt (approval.date)") + 1, value="15/08/2024")
    wb.save(book)
    inv = read_xlsx(book)
    assert inv.systems[0].unit == "Sở Thông tin và Truyền thông"
    assert inv.systems[0].approval.day == dt.date(2024, 8, 15)


def test_not_a_workbook_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "inventory.xlsx"
    bad.write_text("id,name\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"inventory.xlsx: not a readable .xlsx workbook"):
        read_xlsx(bad)


def test_cli_export_import_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANHGAC_LANG", "en")
    book = tmp_path / "ds.xlsx"
    assert main(["inventory", "export", str(EXAMPLE), "-o", str(book)]) == 0
    assert main(["inventory", "export", str(EXAMPLE), "-o", str(book)]) == 2  # exists
    assert "add --force" in capsys.readouterr().err
    assert main(["inventory", "validate", str(book)]) == 0
    assert "OK — 4 systems" in capsys.readouterr().out
    out = tmp_path / "inventory.yaml"
    assert main(["inventory", "import", str(book), "-o", str(out)]) == 0
    assert read_inventory(out) == read_inventory(EXAMPLE)
    assert main(["inventory", "export", str(EXAMPLE), "-o", str(tmp_path / "x.csv")]) == 2
    assert "must end in .xlsx" in capsys.readouterr().err
    assert main(["inventory", "export", str(EXAMPLE), "-o", str(book), "--lang", "vi"]) == 2
    assert "đã có: thêm --force để ghi đè" in capsys.readouterr().err
