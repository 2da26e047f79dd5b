"""Prometheus metrics of the national link, read from live state at scrape time.

A custom collector (not module-level gauges) because the values belong to
objects created per collector instance (tests run several in one process) and
because counters kept exactly by the output are exported as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from collector.national.check import STEPS, CheckReport
from shipper.outputs.national.policy import FILTERED_REASONS

P = "canhgac_national_"


@dataclass
class LinkState:
    """What the periodic tasks learned; read by the metrics collector."""

    configured: bool = False
    last_check: CheckReport | None = None
    last_check_success: float = 0.0
    backlog_events: int = 0
    backlog_age: float = 0.0
    summaries: int = 0


class NationalMetrics(Collector):
    def __init__(self, state: LinkState, stage: Any, puller: Any = None,
                 output_lookup: Any = None) -> None:
        self.state = state
        self.stage = stage
        self.puller = puller
        self._output = output_lookup or (lambda: None)

    def describe(self) -> list:  # no eager collect() at registration
        return []

    def collect(self) -> Iterator[Any]:
        st = self.state
        rep = st.last_check
        out = self._output()
        oc = getattr(out, "counters", None)
        last_success = max(st.last_check_success, getattr(oc, "last_success", 0.0) or 0.0)

        up = GaugeMetricFamily(P + "link_up", "1 if the last connectivity check passed every step")
        up.add_metric([], 1.0 if (rep is not None and rep.ok) else 0.0)
        yield up
        g = GaugeMetricFamily(P + "link_configured", "1 if national.link.url is set")
        g.add_metric([], 1.0 if st.configured else 0.0)
        yield g
        if rep is not None and rep.rtt is not None:
            g = GaugeMetricFamily(P + "rtt_seconds", "round trip of GET /v1/ping at the last check")
            g.add_metric([], rep.rtt)
            yield g
        if rep is not None and rep.skew is not None:
            g = GaugeMetricFamily(P + "clock_skew_seconds", "center clock minus collector clock")
            g.add_metric([], rep.skew)
            yield g
        if rep is not None and rep.cert_not_after is not None:
            g = GaugeMetricFamily(P + "cert_expiry_timestamp_seconds",
                                  "when the center's TLS certificate expires (Unix time)")
            g.add_metric([], rep.cert_not_after)
            yield g
        g = GaugeMetricFamily(P + "last_success_timestamp_seconds",
                              "last successful check or report delivery (Unix time)")
        g.add_metric([], last_success)
        yield g
        g = GaugeMetricFamily(P + "check_step_ok", "1 if the step passed at the last check",
                              labels=["step"])
        passed = {s.name: s.ok for s in rep.steps} if rep is not None else {}
        for step in STEPS:
            g.add_metric([step], 1.0 if passed.get(step) else 0.0)
        yield g
        g = GaugeMetricFamily(P + "backlog_events", "events in the spool not yet delivered to the center")
        g.add_metric([], st.backlog_events)
        yield g
        g = GaugeMetricFamily(P + "backlog_age_seconds", "age of the oldest undelivered spool chunk")
        g.add_metric([], st.backlog_age)
        yield g
        c = CounterMetricFamily(P + "summaries", "hourly system summaries generated")
        c.add_metric([], st.summaries)
        yield c

        if oc is not None:
            c = CounterMetricFamily(P + "reports_delivered", "lines the center accepted or already had")
            c.add_metric([], oc.delivered)
            yield c
            c = CounterMetricFamily(P + "reports_shared", "lines shared, by kind", labels=["kind"])
            for kind in ("alert", "summary", "telemetry"):
                c.add_metric([kind], oc.shared.get(kind, 0))
            yield c
            c = CounterMetricFamily(P + "reports_filtered",
                                    "lines the sharing policy kept in the province, by reason",
                                    labels=["reason"])
            for reason in FILTERED_REASONS:
                c.add_metric([reason], oc.filtered.get(reason, 0))
            yield c
            c = CounterMetricFamily(P + "reports_duplicate", "lines the center already had")
            c.add_metric([], oc.duplicates)
            yield c
            c = CounterMetricFamily(P + "batches_duplicate",
                                    "batches re-sent after a lost acknowledgement")
            c.add_metric([], oc.duplicate_batches)
            yield c
            c = CounterMetricFamily(P + "reports_rejected", "lines the center refused (dead-lettered)")
            c.add_metric([], oc.rejected_lines)
            yield c
            c = CounterMetricFamily(P + "requests_rejected",
                                    "report requests refused with 401, by reason", labels=["reason"])
            for reason, n in sorted(oc.rejected_requests.items()):
                c.add_metric([reason], n)
            yield c
            c = CounterMetricFamily(P + "requests_failed", "report requests failed (network, 5xx, 429)")
            c.add_metric([], oc.failed_requests)
            yield c
            c = CounterMetricFamily(P + "sent_bytes", "compressed bytes sent in report requests")
            c.add_metric([], oc.bytes_sent)
            yield c

        g = GaugeMetricFamily(P + "indicators", "indicators loaded for matching, by type",
                              labels=["type"])
        for kind in ("ipv4", "ipv6", "domain", "url", "sha256"):
            g.add_metric([kind], self.stage.set.by_type.get(kind, 0))
        yield g
        sc = self.stage.counters
        c = CounterMetricFamily(P + "indicator_matches", "events that matched an indicator")
        c.add_metric([], sc.matches)
        yield c
        c = CounterMetricFamily(P + "indicator_alerts", "alerts raised for indicator matches")
        c.add_metric([], sc.alerts)
        yield c
        c = CounterMetricFamily(P + "indicator_alerts_suppressed",
                                "matches not alerted again within the suppression window")
        c.add_metric([], sc.suppressed)
        yield c
        if self.puller is not None:
            ps = self.puller.state
            g = GaugeMetricFamily(P + "indicator_pull_last_success_timestamp_seconds",
                                  "last successful indicator pull (Unix time)")
            g.add_metric([], ps.last_success)
            yield g
            c = CounterMetricFamily(P + "indicator_pull_errors", "failed indicator pulls")
            c.add_metric([], ps.errors)
            yield c
