"""Pipeline metrics (Prometheus conventions: base units, _total, bounded labels).

Rejected lines are labelled by the validator's reason *code* (a fixed set,
``collector.validate.REJECT_CODES``), never by the message text, so a hostile
payload cannot create label values; per-output gauges are labelled by configured
output names.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from canhgac import __version__
from collector.auth import AgentRecord
from collector.fleet import agent_version, behind
from collector.validate import REJECT_CODES

if TYPE_CHECKING:
    from collector.context import CollectorContext
    from shipper.queue import OutputStats



class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "canhgac_ingest_events_received", "Event lines received from agents", registry=registry)
        self.accepted = Counter(
            "canhgac_ingest_events_accepted", "Events durably accepted into the spool",
            registry=registry)
        self.duplicate = Counter(
            "canhgac_ingest_events_duplicate", "Events in batches already accepted (retries)",
            registry=registry)
        self.rejected = Counter(
            "canhgac_ingest_events_rejected", "Event lines rejected, by reason code", ["reason"],
            registry=registry)
        self.requests = Counter(
            "canhgac_ingest_requests", "Ingest requests by HTTP status code", ["code"],
            registry=registry)
        self.overrides = Counter(
            "canhgac_ingest_payload_overrides",
            "Events whose payload claimed another system (overwritten)", registry=registry)
        self.alerts = Counter(
            "canhgac_alerts_raised", "Alerts raised by in-stream stages", registry=registry)
        self.workers = Gauge(
            "canhgac_ingest_workers",
            "Worker processes preparing batches (0: all on the collector's event loop)",
            registry=registry)
        self.worker_restarts = Counter(
            "canhgac_ingest_worker_restarts",
            "Worker pools restarted after a worker died (its batches were redone in-process)",
            registry=registry)
        self.latency = Histogram(
            "canhgac_ingest_request_duration_seconds", "Time to validate, commit and ack a batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry)
        # Every code is exported from the start (at 0), so rate() and alerts see it.
        for code in REJECT_CODES:
            self.rejected.labels(code)


class PipelineCollector(Collector):
    """Spool and output figures, read at scrape time from a cached snapshot."""

    def __init__(self, ctx: CollectorContext) -> None:
        self.ctx = ctx
        self.snapshot: dict[str, OutputStats] = {}

    async def refresh(self) -> None:
        if self.ctx.spool is not None:
            self.snapshot = await self.ctx.spool.stats()

    def collect(self) -> Iterable[Metric]:
        spool = self.ctx.spool
        g = GaugeMetricFamily("canhgac_spool_bytes", "Bytes held in the durable spool")
        g.add_metric([], spool.bytes_used if spool else 0)
        yield g
        g = GaugeMetricFamily("canhgac_spool_fill_ratio", "Spool use relative to its bound")
        g.add_metric([], spool.fill_ratio() if spool else 0)
        yield g
        dropped = CounterMetricFamily(
            "canhgac_spool_dropped_events", "Events dropped by the full spool", labels=["priority"])
        counters = spool.counters if spool else {}
        dropped.add_metric(["telemetry"], counters.get("dropped_telemetry", 0))
        dropped.add_metric(["security"], counters.get("refused_security", 0))
        yield dropped
        pend = GaugeMetricFamily("canhgac_output_lag_events", "Events not yet delivered",
                                 labels=["output"])
        lag = GaugeMetricFamily("canhgac_output_lag_seconds", "Age of the oldest undelivered event",
                                labels=["output"])
        for name, st in self.snapshot.items():
            pend.add_metric([name], st.pending_events)
            lag.add_metric([name], st.oldest_pending_age_seconds)
        yield pend
        yield lag
        delivered = CounterMetricFamily("canhgac_output_events_delivered",
                                        "Events delivered by output", labels=["output"])
        dead = CounterMetricFamily("canhgac_output_events_dead_lettered",
                                   "Events an output rejected permanently", labels=["output"])
        retried = CounterMetricFamily("canhgac_output_events_retried",
                                      "Event sends retried (transient per-item failures)",
                                      labels=["output"])
        errors = CounterMetricFamily("canhgac_output_send_errors",
                                     "Whole-batch send failures", labels=["output"])
        spool_errors = CounterMetricFamily(
            "canhgac_output_spool_errors",
            "Failed spool reads/writes of this output's delivery (lease, dead-letter, ack; retried)",
            labels=["output"])
        up = GaugeMetricFamily("canhgac_output_up", "1 when the last send succeeded",
                               labels=["output"])
        last = GaugeMetricFamily("canhgac_output_last_success_timestamp_seconds",
                                 "Unix time of the last successful send", labels=["output"])
        for name, loop in self.ctx.deliveries.items():
            s = loop.stats
            delivered.add_metric([name], s.delivered_events)
            dead.add_metric([name], s.dead_events)
            retried.add_metric([name], s.retried_events)
            errors.add_metric([name], s.send_errors)
            spool_errors.add_metric([name], s.spool_errors)
            up.add_metric([name], 1 if s.up else 0)
            last.add_metric([name], s.last_success)
        yield from (delivered, dead, retried, errors, spool_errors, up, last)
        now = time.time()
        presence = self.ctx.ports.presence
        agents = self.ctx.ports.agents.agents()
        states = Tally(presence.state(a, now) for a in agents)
        g = GaugeMetricFamily("canhgac_agents", "Enrolled agents by state", labels=["state"])
        for state in ("online", "offline", "revoked"):
            g.add_metric([state], states[state])
        yield g
        yield from version_metrics(agents)


def version_metrics(agents: Sequence[AgentRecord]) -> Iterator[GaugeMetricFamily]:
    """Version skew: agents by release, and how many run an older one than the collector."""
    live = [a for a in agents if a.revoked is None]
    by_version = Tally(agent_version(a) or "unknown" for a in live)
    g = GaugeMetricFamily("canhgac_agents_version", "Enrolled agents by reported version",
                          labels=["version"])
    for version, n in sorted(by_version.items()):
        g.add_metric([version], n)
    yield g
    skew = GaugeMetricFamily("canhgac_agents_behind_collector",
                             f"Agents on an older release than this collector ({__version__})")
    skew.add_metric([], sum(behind(agent_version(a)) for a in live))
    yield skew
