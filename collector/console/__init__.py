"""The web console, ``/ui/`` on the collector's TLS port (docs/console.md).

``setup(ctx)`` reads ``console:`` from collector.yaml and adds the routes and the
security headers. It provides no port; it uses ``access`` (who is asking, the
only authority), ``alert_desk``, ``coverage``, ``coverage_history``, ``search``, ``agents``,
``presence``, ``national_detail`` and ``annual_reports``; a page whose provider is off says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collector.console.config import load_config
from collector.console.headers import add_headers

if TYPE_CHECKING:
    from collector.context import CollectorContext


def setup(ctx: CollectorContext) -> None:
    config = load_config(ctx.config.console, ctx.source)
    if not config.enabled:
        return
    from collector.console.app import Console
    from collector.console.page import Deps
    from collector.console.views import alerts, national, overview, reports, search, system

    ports = ctx.ports
    if ports.access is None:
        from canhgac.errors import ConfigError

        raise ConfigError(ctx.source, "components", "the console needs the alerts component "
                          "(access control); add it or set console.enabled: false")
    deps = Deps(access=ports.access, inventory=ctx.inventory, agents=ports.agents,
                presence=ports.presence, alerts=ports.alert_desk, coverage=ports.coverage,
                history=ports.coverage_history,
                search=ports.search, national=ports.national_detail,
                reports=ports.annual_reports)
    console = Console(deps, config)
    ctx.app.on_response_prepare.append(add_headers)
    ctx.app.add_routes(console.routes([
        ("GET", "/ui/overview", overview.overview, True),
        ("GET", "/ui/alerts", alerts.alerts_page, True),
        ("GET", "/ui/alerts/queue", alerts.alerts_queue, False),
        ("GET", "/ui/alerts/{id}", alerts.alert_detail, True),
        ("POST", "/ui/alerts/{id}/ack", alerts.ack, True),
        ("POST", "/ui/alerts/{id}/resolve", alerts.resolve, True),
        ("GET", "/ui/search", search.search_page, True),
        ("GET", "/ui/systems/{id}", system.system_page, True),
        ("GET", "/ui/systems/{id}/events", system.system_events, True),
        ("GET", "/ui/national", national.national_page, True),
        ("GET", "/ui/reports", reports.reports_page, True),
        ("GET", "/ui/reports/annual", reports.annual, True),
    ]))
