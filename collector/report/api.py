"""``GET /v1/reports/annual?year=Y[&unit=U][&format=json|md|docx|xlsx|pdf][&lang=vi|en]``.

The same access rule as ``/v1/coverage``: the local admin sees every unit; an operator
scoped to a unit gets a report over that unit's systems only, totals and alerts
included, and a unit outside its scope answers exactly as an unknown one (the "did you
mean" suggests only units the reader may see). Bad input: 400 with one line in
``{"error": ...}``, in the language asked for.
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import orjson
from aiohttp import web

from canhgac.config import did_you_mean
from canhgac.text import nfc
from collector.alerts.access import Principal
from collector.alerts.store import AlertFact
from collector.coverage.config import CoverageConfig
from collector.coverage.history import HistoryStore
from collector.coverage.model import local_date
from collector.inventory import Inventory, InventoryHolder
from collector.ports import NationalLinkStatus, PrincipalResolver
from collector.report.i18n import LANGS, text
from collector.report.model import (
    FORMATS,
    MIN_YEAR,
    AnnualReport,
    Keep,
    build,
    check_year,
    period_of,
)


@runtime_checkable
class AlertFacts(Protocol):
    """The alerts of a period (collector.alerts.AlertStore)."""

    def facts(self, since: float, until: float) -> list[AlertFact]: ...


class BadRequest(ValueError):
    """The reader's mistake (year, unit, format, language): one line in the report's language."""


@dataclass(frozen=True)
class ReportFile:
    """A rendered report as it is downloaded: its bytes, media type and file name."""

    body: bytes
    media_type: str
    filename: str  # may hold Vietnamese letters (a unit's name): see ``content_disposition``

    def headers(self) -> dict[str, str]:
        return {"Content-Type": self.media_type,
                "Content-Disposition": content_disposition(self.filename)}


def file_name(year: int, fmt: str, lang: str, unit: str = "") -> str:
    """``bao-cao-2025.docx`` / ``annual-report-2025.docx``; a unit's report adds its name."""
    stem = f"bao-cao-{year}" if lang == "vi" else f"annual-report-{year}"
    return f"{stem} - {unit}.{fmt}" if unit else f"{stem}.{fmt}"


def ascii_fold(name: str) -> str:
    """The name without diacritics (đ -> d), for browsers that read only ``filename=``."""
    folded = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(c for c in folded if c.isascii() and not unicodedata.combining(c))
    return "".join(c if c.isalnum() or c in " .-_" else "_" for c in plain)


def content_disposition(name: str) -> str:
    """An attachment named ``name`` (RFC 6266): an ASCII ``filename`` every client reads, and
    ``filename*`` in UTF-8 (RFC 8187, ex-5987) with the Vietnamese letters when there are any."""
    plain = ascii_fold(name)
    value = f'attachment; filename="{plain}"'
    if plain != name:
        value += f"; filename*=UTF-8''{quote(nfc(name), safe='')}"
    return value


def parse_year(value: str, now: float, cfg: CoverageConfig, lang: str) -> int:
    try:
        year = int(value.strip())
    except ValueError:
        raise BadRequest(text("err.year_nan", lang, value=value)) from None
    bounds = check_year(year, now, cfg)
    if bounds is not None:
        raise BadRequest(text("err.year", lang, year=year, low=bounds[0], high=bounds[1]))
    return year


def visible_units(inventory: Inventory, keep: Keep | None) -> list[str]:
    return [u for u in inventory.unit_names()
            if any(s.unit == u and (keep is None or keep(s.id, s.unit))
                   for s in inventory.systems)]


def check_unit(unit: str, inventory: Inventory, keep: Keep | None, lang: str) -> None:
    units = visible_units(inventory, keep)
    if unit and unit not in units:
        hint = did_you_mean(unit, units)
        if hint:  # ' (did you mean 'x'?)' -> in the report's language
            hint = text("did_you_mean", lang, name=hint.split("'", 1)[1].rsplit("'", 1)[0])
        raise BadRequest(text("err.unit", lang, unit=unit, hint=hint))


def gather(inventory: Inventory, cfg: CoverageConfig, year: int, now: float, *,
           history: HistoryStore | None, alerts: AlertFacts | None, unit: str = "",
           keep: Keep | None = None, link: NationalLinkStatus | None = None) -> AnnualReport:
    """Read what the report needs from the stores (history of the year's systems, the year's
    alerts) and build it. Runs in a thread: SQLite reads, no event loop."""
    p = period_of(year, now, cfg)
    ids = [s.id for s in inventory.systems
           if (not unit or s.unit == unit) and (keep is None or keep(s.id, s.unit))]
    trends = history.trends(ids, p.start, p.end) if history is not None else {}
    facts: Sequence[AlertFact] = alerts.facts(p.start_ts, p.end_ts) if alerts is not None else ()
    first = history.first_day() if history is not None else None
    # The shared link's own record (province infrastructure, no unit's figures in it).
    available = link.availability(p.start_ts, p.end_ts) if link is not None else None
    return build(inventory, cfg, year, now, trends=trends, alerts=facts, history_from=first,
                 unit=unit, keep=keep, link_availability=available)


def _keep(who: Principal) -> Keep | None:
    return None if who.scope is None else who.allows


class ReportAPI:
    def __init__(self, inventory: InventoryHolder, cfg: CoverageConfig, *,
                 access: PrincipalResolver | None, history: HistoryStore | None,
                 alerts: object | None, link: NationalLinkStatus | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.inventory = inventory
        self.cfg = cfg
        self.access = access
        self.history = history
        self.alerts = alerts if isinstance(alerts, AlertFacts) else None
        self.link = link
        self.clock = clock

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/v1/reports/annual", self.annual)]

    def years(self) -> tuple[int, int]:
        """The years a report can be asked for (2000 .. the current year in the province)."""
        return MIN_YEAR, local_date(self.clock(), self.cfg).year

    def units(self, who: Principal) -> list[str]:
        """The units ``who`` may ask a report of (a unit with a system in its scope)."""
        return visible_units(self.inventory.current, _keep(who))

    async def produce(self, who: Principal, *, year: str, unit: str = "", fmt: str = "json",
                      lang: str = "vi") -> AnnualReport | ReportFile:
        """The report ``who`` may read, as the API and the web console serve it: the typed
        report for ``json``, else the rendered file. ``BadRequest`` for the reader's mistakes;
        a unit outside ``who``'s scope is refused exactly as an unknown one."""
        if lang not in LANGS:
            raise BadRequest(text("err.lang", "vi", value=lang))
        if fmt not in (*FORMATS, "json"):
            raise BadRequest(text("err.format", lang, value=fmt,
                                  choices=", ".join((*FORMATS, "json"))))
        now = self.clock()
        inventory = self.inventory.current
        keep = _keep(who)
        unit = nfc(unit)
        number = parse_year(year, now, self.cfg, lang)
        check_unit(unit, inventory, keep, lang)
        report = await asyncio.to_thread(gather, inventory, self.cfg, number, now,
                                         history=self.history, alerts=self.alerts, unit=unit,
                                         keep=keep, link=self.link)
        if fmt == "json":
            return report
        from collector.report.render import MEDIA_TYPES, render

        body = await asyncio.to_thread(render, report, fmt, lang)
        return ReportFile(body, MEDIA_TYPES[fmt], file_name(number, fmt, lang, unit))

    async def annual(self, request: web.Request) -> web.Response:
        if self.access is None:
            raise web.HTTPForbidden(text="reports need collector.alerts for access control\n")
        who = await self.access.principal(request)
        q = request.query
        try:
            made = await self.produce(who, year=q.get("year") or "", unit=q.get("unit") or "",
                                      fmt=q.get("format") or "json", lang=q.get("lang") or "vi")
        except BadRequest as exc:
            return _error(str(exc))
        if isinstance(made, ReportFile):
            return web.Response(body=made.body, headers=made.headers())
        # levels are integer keys of ``counts``
        return web.Response(body=orjson.dumps(made.to_dict(), option=orjson.OPT_NON_STR_KEYS),
                            content_type="application/json")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(message: str) -> web.Response:
    return _json({"error": message}, 400)
