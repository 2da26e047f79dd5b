"""Tìm kiếm / search: the language of ``canhgac query``, within the principal's scope.

The request is built and validated by ``SearchRequest.build`` and run by the
``search`` port with the principal's scope AND-ed outside the query, exactly as
``POST /v1/search``; a bad query shows the parser's message with a caret under
the spot, as the CLI does.
"""

from __future__ import annotations

import logging
from typing import Any

from canhgac.timeutil import parse_duration
from collector.console.page import Page
from collector.query.errors import QueryError
from collector.search.model import SearchError, SearchRequest, SearchResult

log = logging.getLogger(__name__)

SINCE_CHOICES = ("15m", "1h", "6h", "24h", "7d", "30d")
PAGE_LIMIT = 50
BARS = 48  # histogram buckets aimed at, whatever the range


def histogram_interval(since: str) -> str:
    seconds = parse_duration(since)
    step = max(60, int(seconds // BARS))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if step % size == 0 or step >= size:
            return f"{max(1, round(step / size))}{unit}"
    return "1m"


def bars(result: SearchResult, width: int = 960, height: int = 120) -> list[dict[str, Any]]:
    """SVG rectangles of the histogram (attributes, not inline style: the CSP forbids it)."""
    buckets = result.histogram or []
    if not buckets:
        return []
    peak = max(b.count for b in buckets) or 1
    w = width / len(buckets)
    out = []
    for i, b in enumerate(buckets):
        h = round(b.count / peak * (height - 2), 1) if b.count else 0
        out.append({"x": round(i * w, 1), "y": round(height - h, 1), "w": max(1.0, round(w - 1, 1)),
                    "h": h, "key": b.key, "count": b.count})
    return out


async def search_page(page: Page) -> tuple[str, dict[str, Any]]:
    q = page.request.query
    query = q.get("q", "")
    since = q.get("since") or "24h"
    system = q.get("system") or None
    top = (q.get("top") or "").strip() or None
    values: dict[str, Any] = {"q": query, "since": since, "system": system or "", "top": top or "",
                              "since_choices": SINCE_CHOICES, "result": None, "bars": [],
                              "error": None, "caret": None, "ran": "q" in q}
    search = page.deps.search
    if "q" not in q or search is None:
        return "search.html", values
    try:
        req = SearchRequest.build(query, since=since, system=system, limit=PAGE_LIMIT, top=top,
                                  histogram=histogram_interval(since))
        result = await search.search(req, page.search_scope())
    except QueryError as exc:
        values.update(error=str(exc), caret=_caret(exc), status=400)
        return "search.html", values
    except SearchError as exc:
        values.update(error=str(exc), status=400)
        return "search.html", values
    except ValueError as exc:  # a since the picker never offers, typed into the URL
        values.update(error=f"since: {exc}", status=400)
        return "search.html", values
    except Exception as exc:
        log.warning("console search failed: %s", exc)
        values.update(error=page.t("search.unavailable"), status=503)
        return "search.html", values
    values.update(result=result, bars=bars(result))
    return "search.html", values


def _caret(exc: QueryError) -> tuple[str, str]:
    """The query and a line with ``^`` under the problem (1-based position)."""
    return exc.query, " " * max(0, exc.position - 1) + "^"
