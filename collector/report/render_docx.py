"""Word (.docx, python-docx): what units edit, sign and file; A4, a table per section."""

from __future__ import annotations

import io
from typing import Any

from docx import Document as WordDocument
from docx.enum.section import WD_ORIENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Cm, Pt

from collector.report.layout import Document, Table

FONT = "Times New Roman"  # what Vietnamese administrative documents are set in


def _table(word: Any, table: Table) -> None:
    if table.caption:
        word.add_paragraph().add_run(table.caption).bold = True
    grid = word.add_table(rows=1, cols=len(table.columns))
    grid.style = "Table Grid"
    for cell, text in zip(grid.rows[0].cells, table.columns, strict=True):
        cell.text = ""
        cell.paragraphs[0].add_run(text).bold = True
    for row in table.rows:
        cells = grid.add_row().cells
        for cell, value in zip(cells, row, strict=True):
            cell.text = str(value)
            if isinstance(value, int):
                cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT
    word.add_paragraph()


def render(doc: Document) -> bytes:
    word = WordDocument()
    style = word.styles["Normal"]
    style.font.name = FONT
    style.font.size = Pt(11)
    page = word.sections[0]
    page.orientation = WD_ORIENT.LANDSCAPE
    page.page_width, page.page_height = Cm(29.7), Cm(21.0)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(page, side, Cm(1.8))
    title = word.add_heading(doc.title, level=0)
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    sub = word.add_paragraph(doc.subtitle)
    sub.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for line in doc.front:
        word.add_paragraph(line)
    for section in doc.sections:
        word.add_heading(section.title, level=1)
        for p in section.paragraphs:
            word.add_paragraph(p)
        for table in section.tables:
            _table(word, table)
    out = io.BytesIO()
    word.save(out)
    return out.getvalue()
