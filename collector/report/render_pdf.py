"""PDF: the document drawn with ReportLab, for sending and printing as is.

ReportLab's flowables rather than HTML laid out by a browser engine: a report of 500
systems has ~17,000 table cells, and a CSS table layout cost about 1.3 ms per cell
(31 s for the whole report, against a 10 s budget); ReportLab sets a plain cell in
microseconds. The layout is still declared, not drawn: A4 landscape, the header row
repeated on every page, tables split across pages by themselves, "page / pages" at the
foot. The font is DejaVu (Debian: fonts-dejavu-core), embedded, which carries every
Vietnamese letter (ơ, ư, ạ, ễ ...) and keeps the text extractable. Cell text is escaped:
nothing in the inventory can inject ReportLab's paragraph markup.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from collector.report.layout import Cell, Document, Table

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"),
             Path("/usr/local/share/fonts"))
FONTS = {"CgSans": "DejaVuSans.ttf", "CgSans-Bold": "DejaVuSans-Bold.ttf",
         "CgSans-Oblique": "DejaVuSans-Oblique.ttf"}
WRAP_AT = 24  # characters: a longer cell is set as a wrapping paragraph, a shorter as a string


class FontMissing(RuntimeError):
    """The PDF needs the DejaVu fonts; the message says which package has them."""


@lru_cache(maxsize=1)
def _register_fonts() -> None:
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for name, file in FONTS.items():
        found = next((d / file for d in FONT_DIRS if (d / file).is_file()), None)
        if found is None:
            raise FontMissing(f"the PDF report needs the font {file} (Debian: apt-get install "
                              "fonts-dejavu-core); docx, xlsx and md need no font")
        pdfmetrics.registerFont(TTFont(name, str(found)))
    addMapping("CgSans", 0, 0, "CgSans")
    addMapping("CgSans", 1, 0, "CgSans-Bold")
    addMapping("CgSans", 0, 1, "CgSans-Oblique")
    addMapping("CgSans", 1, 1, "CgSans-Bold")


def _styles() -> dict[str, Any]:
    from reportlab.lib.enums import TA_CENTER
    from reportlab.lib.styles import ParagraphStyle

    body = ParagraphStyle("body", fontName="CgSans", fontSize=8.5, leading=10.5)
    return {
        "body": body,
        "cell": ParagraphStyle("cell", parent=body, fontSize=7.5, leading=9),
        "head": ParagraphStyle("head", parent=body, fontName="CgSans-Bold", fontSize=7.5,
                               leading=9),
        "title": ParagraphStyle("title", parent=body, fontName="CgSans-Bold", fontSize=13,
                                leading=16, alignment=TA_CENTER, spaceAfter=2),
        "subtitle": ParagraphStyle("subtitle", parent=body, fontName="CgSans-Oblique",
                                   alignment=TA_CENTER, spaceAfter=8),
        "h2": ParagraphStyle("h2", parent=body, fontName="CgSans-Bold", fontSize=11,
                             leading=14, spaceBefore=10, spaceAfter=4, keepWithNext=1),
        "caption": ParagraphStyle("caption", parent=body, fontName="CgSans-Bold",
                                  spaceBefore=4, keepWithNext=1),
    }


def _widths(table: Table, total: float) -> list[float]:
    """Columns share the width by how long their text runs (capped), so names get room."""
    lengths = []
    for i, col in enumerate(table.columns):
        longest = max([len(col) * 0.6] + [len(str(r[i])) for r in table.rows[:200] if i < len(r)])
        lengths.append(min(max(longest, 4.0), 40.0))
    scale = total / sum(lengths)
    return [n * scale for n in lengths]


def _cell(value: Cell, styles: dict[str, Any]) -> Any:
    from reportlab.platypus import Paragraph

    if isinstance(value, int):
        return str(value)
    text = str(value)
    if len(text) <= WRAP_AT and "\n" not in text:
        return text  # drawn as is: no markup is read from a plain string
    return Paragraph(escape(text).replace("\n", "<br/>"), styles["cell"])


def _table(table: Table, styles: dict[str, Any], width: float) -> list[Any]:
    from reportlab.lib import colors
    from reportlab.platypus import LongTable, Paragraph, TableStyle

    data: list[list[Any]] = [[Paragraph(escape(c), styles["head"]) for c in table.columns]]
    data += [[_cell(v, styles) for v in row] for row in table.rows]
    numeric = [i for i in range(len(table.columns))
               if table.rows and all(isinstance(r[i], int) for r in table.rows if i < len(r))]
    flow = LongTable(data, colWidths=_widths(table, width), repeatRows=1)
    flow.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), "CgSans", 7.5),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#777777")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        *[("ALIGN", (i, 1), (i, -1), "RIGHT") for i in numeric],
    ]))
    out: list[Any] = []
    if table.caption:
        out.append(Paragraph(escape(table.caption), styles["caption"]))
    out.append(flow)
    return out


def _numbered_canvas() -> Any:
    """A canvas that writes "page / pages" once the number of pages is known."""
    from reportlab.pdfgen.canvas import Canvas

    class Numbered(Canvas):  # type: ignore[misc]  # ReportLab ships no types
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # ReportLab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.setFont("CgSans", 7.5)
                width, _ = self._pagesize
                self.drawRightString(width - 42, 24, f"{self._pageNumber} / {total}")
                super().showPage()
            super().save()

    return Numbered


def render(doc: Document, lang: str) -> bytes:
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import cm
    from reportlab.platypus import Paragraph, SimpleDocTemplate

    _register_fonts()
    styles = _styles()
    out = io.BytesIO()
    page = SimpleDocTemplate(out, pagesize=landscape(A4), leftMargin=1.5 * cm,
                             rightMargin=1.5 * cm, topMargin=1.5 * cm, bottomMargin=1.6 * cm,
                             title=doc.title, author="canhgac")
    story: list[Any] = [Paragraph(escape(doc.title), styles["title"]),
                        Paragraph(escape(doc.subtitle), styles["subtitle"])]
    story += [Paragraph(escape(line), styles["body"]) for line in doc.front]
    for section in doc.sections:
        story.append(Paragraph(escape(section.title), styles["h2"]))
        story += [Paragraph(escape(p), styles["body"]) for p in section.paragraphs]
        for table in section.tables:
            story += _table(table, styles, page.width)
    page.build(story, canvasmaker=_numbered_canvas())
    return out.getvalue()
