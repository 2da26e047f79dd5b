"""Báo cáo / reports: download the annual report the CLI and ``GET /v1/reports/annual`` make.

The report is the ``annual_reports`` port's (``collector.report.api.ReportAPI.produce``),
asked with the signed-in principal, so a unit viewer gets a report over its unit's systems
only and another unit's name is refused exactly as an unknown unit — the API's rule, not
one of the console's. A download is a GET (it writes nothing): the form needs no CSRF
token, and the file comes back as an attachment with its name in ASCII and in UTF-8.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from collector.console.page import Page
from collector.report.api import ReportFile

FORMATS = ("docx", "xlsx", "pdf", "md")


def _form(page: Page, **chosen: str) -> dict[str, Any]:
    reports = page.deps.reports
    if reports is None:
        return {"available": False}
    low, high = reports.years()
    return {"available": True, "low": low, "high": high, "formats": FORMATS,
            "units": reports.units(page.who), "error": None,
            "year": chosen.get("year") or str(high), "format": chosen.get("format") or "docx",
            "report_lang": chosen.get("lang") or page.lang, "unit": chosen.get("unit") or ""}


async def reports_page(page: Page) -> tuple[str, dict[str, Any]]:
    return "reports.html", _form(page)


async def annual(page: Page) -> web.StreamResponse | tuple[str, dict[str, Any]]:
    """The file, or the form again with the report's own one-line error (400)."""
    reports = page.deps.reports
    if reports is None:
        return "reports.html", {**_form(page), "status": 404}
    q = page.request.query
    chosen = {k: q.get(k, "") for k in ("year", "format", "lang", "unit")}
    fmt = chosen["format"] or "docx"
    try:
        if fmt not in FORMATS:  # the API's json is not a download
            raise ValueError(f"format: {fmt!r} ({', '.join(FORMATS)})")
        made = await reports.produce(page.who, year=chosen["year"], unit=chosen["unit"],
                                     fmt=fmt, lang=chosen["lang"] or page.lang)
    except ValueError as exc:
        return "reports.html", {**_form(page, **chosen), "error": str(exc), "status": 400}
    if not isinstance(made, ReportFile):  # every format above renders to a file
        raise web.HTTPInternalServerError()
    return web.Response(body=made.body, headers=made.headers())
