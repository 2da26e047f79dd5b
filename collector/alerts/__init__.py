"""Alert handling (layer 1 at work): lifecycle store, pipeline stage, operator API.

``setup(ctx)`` opens ``<state_dir>/alerts.db``, adds the stage that registers
every alert event, the /v1/alerts routes and MTTA/MTTR per unit and level on
/metrics. Ports it provides: ``alerts`` (the store; coverage reads acknowledgement
times from it) and ``access`` (who is asking, for every operator-facing API); it
uses ``operators``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collector.alerts.access import Access, ensure_token
from collector.alerts.api import AlertsAPI
from collector.alerts.metrics import ResponseTimeCollector
from collector.alerts.store import AlertStage, AlertStore

if TYPE_CHECKING:
    from collector.context import CollectorContext

__all__ = ["AlertStage", "AlertStore", "setup"]


def setup(ctx: CollectorContext) -> None:
    store = AlertStore(ctx.state_dir / "alerts.db")
    access = Access(ctx.ports.operators, ensure_token(ctx.state_dir))
    ctx.ports.alerts = store
    ctx.ports.access = access
    ctx.pipeline.add(AlertStage(store))
    api = AlertsAPI(store, access, ctx.inventory)
    ctx.ports.alert_desk = api
    ctx.app.add_routes(api.routes())
    ctx.registry.register(ResponseTimeCollector(store, ctx.inventory))
    ctx.add_closer(store.close)
