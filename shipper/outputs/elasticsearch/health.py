"""Exact counters and health of the Elasticsearch output.

Counters are per outcome and per dataset (``dataset`` is bounded: one of
``canhgac.schema.DATASETS``, unknown ones count as ``raw``). Lag comes from the
spool (events not yet acked by this output, and the age of the oldest), so it
keeps growing while Elasticsearch is down and the collector keeps accepting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from canhgac.health import LinkHealth

log = logging.getLogger(__name__)

OUTCOMES = ("delivered", "duplicate", "retried", "dead_lettered", "dead_letter_failed")


@dataclass
class Health(LinkHealth):
    """What /healthz-style reports and the metrics show about the cluster link."""

    templates_installed: bool = False
    cluster_status: str = "unknown"
    lag_events: int = 0
    lag_seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))

    def ok(self) -> None:
        self.succeeded()

    def error(self, message: str) -> None:
        if len(message) > 300:  # Elasticsearch reasons can be kilobytes of task dumps
            message = message[:300] + "…"
        self.failed(message, log, "elasticsearch output")

    def as_json(self) -> dict[str, Any]:
        return {
            "up": self.up,
            "templates_installed": self.templates_installed,
            "cluster_status": self.cluster_status,
            "last_success": self.last_success,
            "last_error": self.last_error,
            "lag_events": self.lag_events,
            "lag_seconds": round(self.lag_seconds, 3),
            "events": dict(self.counts),
        }


class Metrics:
    """Prometheus series for one Elasticsearch output, on the collector's registry."""

    def __init__(self, registry: CollectorRegistry | None, health: Health, output: str) -> None:
        self.health = health
        self.output = output
        self.events = Counter(
            "canhgac_elasticsearch_events",
            "Events by bulk outcome: delivered (2xx), duplicate (409, also delivered), retried "
            "(per-item 429/5xx, each retry counted), dead_lettered (other 4xx, written to the "
            "dead-letter stream), dead_letter_failed (dead-letter write refused: kept in the spool)",
            ["outcome", "dataset"], registry=registry)
        self.requests = Counter(
            "canhgac_elasticsearch_bulk_requests", "Bulk requests by result",
            ["result"], registry=registry)
        self.duration = Histogram(
            "canhgac_elasticsearch_bulk_duration_seconds", "Bulk request round trip",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=registry)
        self.lag_events = Gauge(
            "canhgac_elasticsearch_lag_events", "Events in the spool not yet in Elasticsearch",
            registry=registry)
        self.lag_seconds = Gauge(
            "canhgac_elasticsearch_lag_seconds",
            "Age of the oldest event in the spool not yet in Elasticsearch", registry=registry)
        self.up = Gauge("canhgac_elasticsearch_up", "1 when the last bulk request succeeded",
                        registry=registry)
        self.up.set_function(lambda: 1.0 if health.up else 0.0)

    def count(self, outcome: str, dataset: str, n: int = 1) -> None:
        if n:
            self.events.labels(outcome, dataset).inc(n)
            self.health.counts[outcome] += n

    async def refresh_lag(self, spool: Any) -> None:
        stats = (await spool.stats()).get(self.output)
        if stats is None:
            return
        self.health.lag_events = stats.pending_events
        self.health.lag_seconds = stats.oldest_pending_age_seconds
        self.lag_events.set(stats.pending_events)
        self.lag_seconds.set(stats.oldest_pending_age_seconds)

    async def lag_loop(self, ctx: Any, interval: float = 1.0) -> None:
        """Refresh lag until cancelled; started by the collector's on_start hook."""
        while True:
            spool = getattr(ctx, "spool", None)
            if spool is not None:
                with contextlib.suppress(Exception):
                    await self.refresh_lag(spool)
            await asyncio.sleep(interval)


async def cluster_status(client: Any) -> str:
    """green / yellow / red, or 'unreachable'."""
    try:
        resp = await client.cluster.health(timeout="2s")
        return str(resp.get("status", "unknown"))
    except Exception:
        return "unreachable"
