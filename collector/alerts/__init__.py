"""Alert handling (layer 1 at work): lifecycle store, pipeline stage, operator API.

``setup(ctx)`` opens ``<state_dir>/alerts.db``, adds the stage that registers
every alert event, the /v1/alerts routes, and exposes the store as
``ctx.services["alerts"]`` (coverage reads acknowledgement times from it) and
the access checker as ``ctx.services["alert_access"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collector.alerts.access import Access, ensure_token
from collector.alerts.api import AlertsAPI
from collector.alerts.store import AlertStage, AlertStore

if TYPE_CHECKING:
    from collector.context import CollectorContext

__all__ = ["AlertStage", "AlertStore", "setup"]


def setup(ctx: CollectorContext) -> None:
    store = AlertStore(ctx.state_dir / "alerts.db")
    access = Access(ctx.services, ensure_token(ctx.state_dir))
    ctx.services["alerts"] = store
    ctx.services["alert_access"] = access
    ctx.pipeline.add(AlertStage(store))
    ctx.app.add_routes(AlertsAPI(store, access, ctx.inventory).routes())

    async def close() -> None:
        store.close()

    ctx.on_stop.append(close)
