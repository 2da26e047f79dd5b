"""Levels and 4-layer coverage per system (docs/coverage.md).

``setup(ctx)`` validates ``coverage:`` of collector.yaml, starts the inventory
watcher (file polling + SIGHUP), registers the coverage and certificate
collectors on ``ctx.registry`` and adds ``GET /v1/coverage``. With
``coverage.history`` (the default) it also keeps the history (``history.py``:
snapshots in ``<state_dir>/history.db``, and in Elasticsearch when that output is
configured, ``history_es.py``) and serves it (``history_api.py``:
``GET /v1/coverage?at=DAY``, ``GET /v1/coverage/history``), and the annual report from
it (``collector.report``: ``GET /v1/reports/annual``). It reads the ports
``agents``, ``presence``, ``alerts`` (acknowledgement times), ``national_link``
and ``access``; a missing provider lowers a layer with a reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from canhgac.text import nfc
from collector.coverage.config import CoverageConfig, load_coverage_config
from collector.coverage.history import HistoryStore
from collector.coverage.history_api import HistoryAPI
from collector.coverage.metrics import CertificateCollector, CoverageCollector
from collector.coverage.service import CoverageService
from collector.inventory import InventoryWatcher

if TYPE_CHECKING:
    from collector.context import CollectorContext

__all__ = ["CoverageConfig", "CoverageService", "HistoryStore", "setup"]


def setup(ctx: CollectorContext) -> None:
    cfg = load_coverage_config(ctx.config.coverage, ctx.source)
    ports = ctx.ports
    service = CoverageService(ctx.inventory, cfg, agents=ports.agents, presence=ports.presence,
                              alerts=ports.alerts, link=ports.national_link)
    ctx.registry.register(CoverageCollector(service, ctx.inventory))
    ctx.registry.register(CertificateCollector(_certificates(ctx)))
    if ctx.inventory.path is None and ctx.config.inventory is not None:
        ctx.inventory.path = Path(ctx.config.inventory)
    ctx.add_startable(InventoryWatcher(ctx.inventory))
    ctx.add_startable(service)
    ports.coverage = service
    # After the service: started once it runs, stopped (drained) after its refresher stops.
    history = _history(ctx, cfg, service) if cfg.history else None

    async def get_coverage(request: web.Request) -> web.Response:
        if "at" in request.query:
            if history is None:
                return web.Response(status=400, content_type="application/json",
                                    body=orjson.dumps({"error": "coverage history is disabled "
                                                       "(coverage.history: false)"}))
            return await history.at(request, request.query["at"])
        access = ports.access
        if access is None:
            raise web.HTTPForbidden(text="coverage API needs collector.alerts for access control\n")
        who = await access.principal(request)
        unit = nfc(request.query.get("unit") or "")
        system = request.query.get("system") or ""
        # An operator sees only the systems in scope, and totals over those alone.
        report = service.report_for(who.allows if who.scope is not None else None, unit, system)
        return web.Response(body=orjson.dumps(report.to_dict()), content_type="application/json")

    ctx.app.add_routes([web.get("/v1/coverage", get_coverage)])
    if history is not None:
        ctx.app.add_routes([web.get("/v1/coverage/history", history.history)])
    # The annual report (docs/reports.md): the year from this history, the same access rule.
    from collector.report.api import ReportAPI

    reports = ReportAPI(ctx.inventory, cfg, access=ports.access,
                        history=history.store if history is not None else None,
                        alerts=ports.alerts, link=ports.national_link, clock=service.clock)
    ctx.app.add_routes(reports.routes())
    ports.annual_reports = reports  # the web console's Báo cáo page asks the same


def _history(ctx: CollectorContext, cfg: CoverageConfig, service: CoverageService) -> HistoryAPI:
    """The history store, fed by the service's reports; Elasticsearch too if configured."""
    es = ctx.outputs.elasticsearch
    store = HistoryStore(ctx.state_dir / "history.db", cfg, report=lambda: service.report(0.0),
                         clock=service.clock, es_enabled=es is not None)
    service.listeners.append(store.on_report)
    ctx.add_closer(store.close)  # registered first: closed after both have stopped
    ctx.ports.coverage_history = store
    ctx.add_startable(store)
    if es is not None:
        from collector.coverage.history_es import EsHistory

        ctx.add_startable(EsHistory(store, es.config))
    return HistoryAPI(store, ctx.inventory, ctx.ports.access)


def _certificates(ctx: CollectorContext) -> dict[str, Path]:
    """The collector's own certificates: configured, or the ones it generates in state_dir/tls."""
    tls = ctx.config.tls
    if not tls.enabled:
        return {}
    generated = ctx.state_dir / "tls"
    certs = {"server": tls.cert or generated / "collector.pem"}
    ca = tls.ca or (generated / "ca.pem" if tls.cert is None else None)
    if ca is not None:
        certs["ca"] = ca
    return certs  # files that do not exist (yet) are simply not exported
