"""Levels and 4-layer coverage per system (docs/coverage.md).

``setup(ctx)`` validates ``coverage:`` of collector.yaml, starts the inventory
watcher (file polling + SIGHUP), registers the coverage and certificate
collectors on ``ctx.registry`` and adds ``GET /v1/coverage``. It reads the ports
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
from collector.coverage.metrics import CertificateCollector, CoverageCollector
from collector.coverage.service import CoverageService
from collector.inventory import InventoryWatcher

if TYPE_CHECKING:
    from collector.context import CollectorContext

__all__ = ["CoverageConfig", "CoverageService", "setup"]


def setup(ctx: CollectorContext) -> None:
    cfg = load_coverage_config(ctx.config.coverage, ctx.source)
    ports = ctx.ports
    service = CoverageService(ctx.inventory, cfg, agents=ports.agents, presence=ports.presence,
                              alerts=ports.alerts, link=ports.national_link)
    ctx.registry.register(CoverageCollector(service, ctx.inventory))
    ctx.registry.register(CertificateCollector(_certificates(ctx)))

    async def get_coverage(request: web.Request) -> web.Response:
        access = ports.access
        if access is None:
            raise web.HTTPForbidden(text="coverage API needs collector.alerts for access control\n")
        who = await access.principal(request)
        report = service.report()
        unit = nfc(request.query.get("unit") or "")
        if who.scope is not None or unit:
            # An operator sees only the systems in scope, and totals over those alone.
            report = report.restricted(lambda s: who.allows(s.id, s.unit)
                                       and (not unit or s.unit == unit))
        return web.Response(body=orjson.dumps(report.to_dict()), content_type="application/json")

    ctx.app.add_routes([web.get("/v1/coverage", get_coverage)])

    if ctx.inventory.path is None and ctx.config.inventory is not None:
        ctx.inventory.path = Path(ctx.config.inventory)
    watcher = InventoryWatcher(ctx.inventory)

    ctx.add_startable(watcher)
    ctx.add_startable(service)


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
