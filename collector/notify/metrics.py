"""Notification figures on /metrics (Prometheus conventions: base units, _total, bounded labels).

Labels are configured channel and route names only. Every channel's series exist
from the start (at 0) so ``rate()`` and alert rules see a failure from the first one.
Queue depth is read from the outbox at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from collector.notify.outbox import Outbox


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry, channels: Iterable[str],
                 routes: Iterable[str]) -> None:
        self.delivered = Counter("canhgac_notify_delivered", "Notifications a channel accepted",
                                 ["channel"], registry=registry)
        self.failures = Counter(
            "canhgac_notify_send_failures",
            "Failed sends: transient (retried with backoff) or permanent (given up)",
            ["channel", "kind"], registry=registry)
        self.worker_errors = Counter(
            "canhgac_notify_worker_errors",
            "Unexpected errors in a notification loop (caught, counted, retried)", ["loop"],
            registry=registry)
        self.admit_errors = Counter(
            "canhgac_notify_admit_errors",
            "Batches whose alerts could not be written to the outbox (the batch is refused)",
            registry=registry)
        self.routed = Counter("canhgac_notify_alerts_routed",
                              "Alerts routed: sent on their own, or held for a storm digest",
                              ["route", "how"], registry=registry)
        self.digests = Counter("canhgac_notify_digests", "Storm digests made", ["route"],
                               registry=registry)
        self.escalations = Counter("canhgac_notify_escalations",
                                   "Escalation steps sent for unacknowledged alerts", ["route"],
                                   registry=registry)
        self.latency = Histogram(
            "canhgac_notify_delivery_seconds", "From the alert's routing to its delivery",
            ["channel"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
            registry=registry)
        for ch in channels:
            self.delivered.labels(ch)
            self.failures.labels(ch, "transient")
            self.failures.labels(ch, "permanent")
            self.worker_errors.labels(ch)
        self.worker_errors.labels("housekeeping")
        for r in routes:
            self.routed.labels(r, "sent")
            self.routed.labels(r, "held")
            self.digests.labels(r)
            self.escalations.labels(r)


class OutboxCollector(Collector):
    """Pending messages and the age of the oldest, per channel, read at scrape time."""

    def __init__(self, outbox: Outbox, channels: Iterable[str]) -> None:
        self.outbox = outbox
        self.channels = list(channels)

    def collect(self) -> Iterable[Metric]:
        now = time.time()
        status = {s.channel: s for s in self.outbox.status()}
        pending = GaugeMetricFamily("canhgac_notify_pending", "Notifications not yet delivered",
                                    labels=["channel"])
        oldest = GaugeMetricFamily("canhgac_notify_oldest_pending_seconds",
                                   "Age of the oldest undelivered notification", labels=["channel"])
        for ch in self.channels:
            s = status.get(ch)
            pending.add_metric([ch], s.pending if s else 0)
            age = now - s.oldest_pending if s and s.oldest_pending is not None else 0.0
            oldest.add_metric([ch], max(0.0, age))
        yield pending
        yield oldest
