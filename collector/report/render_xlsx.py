"""Excel (.xlsx, openpyxl): units keep their lists in spreadsheets; one sheet per table.

The first sheet holds the title, the period and the summary; each table of the report is
its own sheet with a bold, frozen header row, so a Sở can filter and add up units' files.
"""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from collector.report.layout import Document, Table

MAX_WIDTH = 60


def _sheet_name(n: int, table: Table, used: set[str]) -> str:
    name = f"{n} {table.name}"[:31]
    while name in used:
        name = name[:29] + f"~{len(used)}"
    used.add(name)
    return name


def render(doc: Document) -> bytes:
    book = Workbook()
    cover = book.active
    cover.title = "report"
    cover.append([doc.title])
    cover["A1"].font = Font(bold=True, size=14)
    cover.append([doc.subtitle])
    for line in doc.front:
        cover.append([line])
    for section in doc.sections:
        cover.append([])
        cover.append([section.title])
        cover.cell(row=cover.max_row, column=1).font = Font(bold=True)
        for p in section.paragraphs:
            cover.append([p])
    cover.column_dimensions["A"].width = 120
    used = {cover.title}
    n = 0
    for section in doc.sections:
        for table in section.tables:
            n += 1
            sheet = book.create_sheet(_sheet_name(n, table, used))
            sheet.append([section.title + (f" — {table.caption}" if table.caption else "")])
            sheet["A1"].font = Font(bold=True)
            sheet.append(table.columns)
            for cell in sheet[2]:
                cell.font = Font(bold=True)
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            for row in table.rows:
                sheet.append(row)
            sheet.freeze_panes = "A3"
            for i, title in enumerate(table.columns, start=1):
                longest = max([len(str(r[i - 1])) for r in table.rows] + [len(title) // 2, 8])
                letter = sheet.cell(row=2, column=i).column_letter
                sheet.column_dimensions[letter].width = min(MAX_WIDTH, longest + 2)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
