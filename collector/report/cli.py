"""`canhgac report annual --year Y [--unit U] [--lang vi|en] [--format docx|xlsx|pdf|md]
--output FILE`: the report due before 25 December, from the running collector.

Like ``canhgac coverage`` it asks the collector's API (found the same way: collector.yaml
via ``locate``, then ``<state_dir>/collector.json``), because the history, the alerts and
the access rules live there; a unit-scoped operator token gets a unit-scoped report. The
arguments are checked here first, so a typo costs no request: each mistake is one line
in the chosen language and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from canhgac.text import nfc

FORMATS = ("docx", "xlsx", "pdf", "md")  # collector.report.model.FORMATS, without importing it


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from collector.alerts.client import add_connection_args

    p = sub.add_parser("report", help="reports: the annual report on levels and the 4 layers")
    kinds = p.add_subparsers(dest="report", metavar="KIND")
    a = kinds.add_parser("annual", help="the annual report (due before 25 December)",
                         description="Báo cáo năm / the annual report: inventory, approvals, "
                         "the four layers over the year (from history), inspections, alerts, "
                         "the national link and open obligations.")
    a.add_argument("--year", required=True, help="calendar year, e.g. 2025")
    a.add_argument("--unit", default=None, help="only this owner unit (exact name)")
    a.add_argument("--lang", default=None,
                   help="vi (default) or en; env CANHGAC_LANG, else from the locale")
    a.add_argument("--format", default=None, dest="fmt", metavar="FORMAT",
                   help=f"one of {', '.join(FORMATS)} (default: from --output's extension)")
    a.add_argument("--output", "-o", required=True, help="file to write ('-' for stdout)")
    add_connection_args(a)
    a.set_defaults(func=run)

    def usage(_args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=usage)


def check_args(args: argparse.Namespace, now: float | None = None) -> tuple[int, str, str]:
    """(year, format, lang), or UserError with one line in the chosen language."""
    from canhgac.errors import UserError
    from collector.report.i18n import resolve_lang, text

    try:
        lang = resolve_lang(args.lang)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    try:
        year = int(str(args.year).strip())
    except ValueError:
        raise UserError(text("err.year_nan", lang, value=args.year)) from None
    from collector.coverage.config import CoverageConfig
    from collector.report.model import check_year

    bounds = check_year(year, time.time() if now is None else now, CoverageConfig())
    if bounds is not None:
        raise UserError(text("err.year", lang, year=year, low=bounds[0], high=bounds[1]))
    fmt = args.fmt
    if fmt is None:
        suffix = Path(args.output).suffix.lower().lstrip(".")
        fmt = suffix if suffix in FORMATS else "md"
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise UserError(text("err.format", lang, value=args.fmt, choices=", ".join(FORMATS)))
    return year, fmt, lang


def run(args: argparse.Namespace) -> int:
    from canhgac.errors import UserError
    from collector.alerts.client import Client, HTTPStatusError
    from collector.report.i18n import text

    year, fmt, lang = check_args(args)
    unit = nfc(args.unit) if args.unit else None  # the same unit however it was typed
    client = Client.from_args(args)
    client.timeout = max(client.timeout, 120.0)  # a province's PDF takes a few seconds
    try:
        body = client.raw("GET", "/v1/reports/annual",
                          {"year": year, "unit": unit, "format": fmt, "lang": lang}, accept="*/*")
    except HTTPStatusError as exc:
        if exc.status == 400:
            raise UserError(exc.detail) from None  # already one line in the chosen language
        raise
    if args.output == "-":
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        return 0
    out = Path(args.output)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(body)
        os.replace(tmp, out)  # a half-written report is never left under its name
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"--output: {out}: {exc.strerror}") from None
    print(text("written", lang, year=year, format=fmt, path=out), file=sys.stderr)
    return 0
