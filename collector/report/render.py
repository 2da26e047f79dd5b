"""One call from a typed report to the bytes of a file, whatever the format."""

from __future__ import annotations

from collector.report.layout import document
from collector.report.model import FORMATS, AnnualReport

MEDIA_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def render(report: AnnualReport, fmt: str, lang: str) -> bytes:
    """The report as a file of format ``fmt`` (one of FORMATS) in ``lang`` (vi or en)."""
    doc = document(report, lang)
    if fmt == "md":
        from collector.report import render_md

        return render_md.render(doc)
    if fmt == "docx":
        from collector.report import render_docx

        return render_docx.render(doc)
    if fmt == "xlsx":
        from collector.report import render_xlsx

        return render_xlsx.render(doc)
    if fmt == "pdf":
        from collector.report import render_pdf

        return render_pdf.render(doc, lang)
    raise ValueError(f"unknown format {fmt!r} (one of: {', '.join(FORMATS)})")
