"""Kết nối quốc gia / national link: the periodic check's steps, backlog and last deliveries.

The check is the one ``canhgac check national`` runs (``collector.national.check``),
as the collector's own periodic run last saw it. Deliveries are listed only for
the systems in the principal's scope; the backlog is a province-wide total, so
only a principal who sees the whole province is shown it.
"""

from __future__ import annotations

import time
from typing import Any

from collector.console.page import Page


async def national_page(page: Page) -> tuple[str, dict[str, Any]]:
    detail = page.deps.national
    if detail is None or not detail.state.configured:
        return "national.html", {"configured": False}
    state = detail.state
    deliveries = detail.last_delivery
    now = time.time()
    rows = [{"id": s.id, "name": s.name, "unit": s.unit, "last": deliveries.get(s.id),
             "age": now - deliveries[s.id] if s.id in deliveries else None}
            for s in page.deps.inventory.current.systems
            if s.national.enabled and page.allows(s.id, s.unit)]
    return "national.html", {
        "configured": True, "link_up": detail.link_up, "check": state.last_check,
        "backlog": None if page.scoped else (state.backlog_events, state.backlog_age),
        "summaries": None if page.scoped else state.summaries, "deliveries": rows,
    }
