"""Notifications (docs/notifications.md): tell the right people about every alert,
durably, and escalate when nobody acts.

``setup(ctx)`` validates ``notifications:`` of collector.yaml; with at least one
channel it opens ``<state_dir>/notify.db`` (the outbox), adds the stage that
routes every alert into it (after the alerts stage, so the alert is registered),
starts one delivery worker per channel and the housekeeping loop (storm digests,
escalation), and puts the figures on /metrics. It uses the ``alerts`` port to
know which alerts are still unacknowledged; without it nothing escalates.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from collector.coverage.config import load_coverage_config
from collector.notify.channels.build import build_channel
from collector.notify.config import Notifications, parse_notify_config
from collector.notify.links import default_console_url
from collector.notify.metrics import NotifyMetrics, OutboxCollector
from collector.notify.outbox import Outbox
from collector.notify.router import Router
from collector.notify.service import Notifier

if TYPE_CHECKING:
    from collector.context import CollectorContext

__all__ = ["Notifier", "Outbox", "setup"]

log = logging.getLogger(__name__)
OUTBOX_FILE = "notify.db"


def escalation_deadlines(ctx: CollectorContext, notif: Notifications) -> dict[int, float]:
    """Per level: ``notifications.escalation.deadlines``, else the layer-1 ack SLA of coverage."""
    coverage = load_coverage_config(ctx.config.coverage, ctx.source)
    out = {level: coverage.sla_for(level) for level in (1, 2, 3, 4, 5)}
    out.update({level: float(v) for level, v in notif.config.escalation.deadlines.items()})
    return out


def setup(ctx: CollectorContext) -> None:
    notif = parse_notify_config(ctx.config.notifications, ctx.source)
    if not notif.channels:
        return
    if not notif.config.console_url:  # messages link to the collector's own console
        notif.config.console_url = default_console_url(ctx.config)
    outbox = Outbox(ctx.state_dir / OUTBOX_FILE)
    router = Router(notif, ctx.inventory, escalation_deadlines(ctx, notif))
    channels = {name: build_channel(name, cfg) for name, cfg in notif.channels.items()}
    metrics = NotifyMetrics(ctx.registry, channels, router.routes)
    ctx.registry.register(OutboxCollector(outbox, channels))
    if ctx.ports.alerts is None:
        log.warning("notifications: the alerts component is off, so no alert is escalated")
    notifier = Notifier(notif.config, outbox, router, channels, metrics, ctx.ports.alerts)
    ctx.pipeline.add(notifier)
    ctx.add_closer(outbox.close)
    ctx.add_startable(notifier)
