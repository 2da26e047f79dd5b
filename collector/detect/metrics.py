"""Prometheus view of the engine's counters, read at scrape time.

The hot path only bumps plain ints; this collector turns them into metrics when
Prometheus asks, so detection pays nothing per event for being observable.
Labels are rule ids: bounded by the loaded rule set, never by event content.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from collector.detect.engine import Engine
from collector.detect.loader import REFUSAL_REASONS

if TYPE_CHECKING:
    from collector.detect.reload import RuleWatcher


class DetectionMetrics(Collector):
    def __init__(self, engine: Engine, watcher: RuleWatcher | None = None) -> None:
        self.engine = engine
        self.watcher = watcher

    def collect(self) -> Iterator[Metric]:
        s = self.engine.stats()
        yield CounterMetricFamily(
            "canhgac_detect_events", "Events offered to the detection stage", value=s["events"]
        )
        yield CounterMetricFamily(
            "canhgac_detect_errors", "Rule evaluations that raised (event skipped for that rule)",
            value=s["errors"],
        )
        yield GaugeMetricFamily(
            "canhgac_detect_rules", "Rules loaded", value=len(self.engine.rules)
        )
        for name, doc, key in (
            ("canhgac_detect_alerts", "Alerts raised (including updates), per rule", "alerts"),
            ("canhgac_detect_suppressed", "Matches folded into an open alert by throttling",
             "suppressed"),
            ("canhgac_detect_escalated", "Matches with new evidence raised at once as an update",
             "escalated"),
            ("canhgac_detect_excepted", "Events a rule skipped under a configured exception",
             "excepted"),
            ("canhgac_detect_state_evictions", "Per-key state evicted because a table was full",
             "evicted"),
        ):
            fam = CounterMetricFamily(name, doc, labels=["rule"])
            for rule_id, value in s[key].items():
                fam.add_metric([rule_id], value)
            yield fam
        if self.watcher is not None:
            fam = CounterMetricFamily(
                "canhgac_detect_reloads", "Rule reloads after a file change, by result",
                labels=["result"],
            )
            fam.add_metric(["ok"], self.watcher.reloads_ok)
            fam.add_metric(["failed"], self.watcher.reloads_failed)
            yield fam
            refused = GaugeMetricFamily(
                "canhgac_detect_rules_refused", "Rules that could not be loaded, by reason",
                labels=["reason"])
            counts = dict.fromkeys(REFUSAL_REASONS, 0)
            for r in self.watcher.refused:
                counts[r.reason] += 1
            for reason, n in counts.items():
                refused.add_metric([reason], n)
            yield refused
        gauge = GaugeMetricFamily(
            "canhgac_detect_state_keys", "Keys held in rule windows and throttles", labels=["rule"]
        )
        for rule_id, value in s["state_keys"].items():
            gauge.add_metric([rule_id], value)
        yield gauge
