"""Prometheus metrics of the national link, read from live state at scrape time.

A custom collector (not module-level gauges) because the values belong to
objects created per collector instance (tests run several in one process) and
because counters kept exactly by the output are exported as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from collector.national.check import STEPS, CheckReport
from shipper.outputs.national.policy import FILTERED_REASONS

if TYPE_CHECKING:
    from collector.national.indicators import IndicatorPuller, IndicatorStage
    from shipper.outputs.national import NationalOutput

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


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(P + name, doc, value=value)


def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(P + name, doc, value=value)


def by_label(family: type[GaugeMetricFamily] | type[CounterMetricFamily], name: str, doc: str,
             label: str, values: Iterable[tuple[str, float]]) -> Metric:
    m = family(P + name, doc, labels=[label])
    for key, value in values:
        m.add_metric([key], value)
    return m


class NationalMetrics(Collector):
    def __init__(self, state: LinkState, stage: IndicatorStage, puller: IndicatorPuller | None = None,
                 output_lookup: Callable[[], NationalOutput | None] | None = None) -> None:
        self.state = state
        self.stage = stage
        self.puller = puller
        self._output = output_lookup or (lambda: None)

    def describe(self) -> list[Metric]:  # no eager collect() at registration
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._link()
        yield from self._reports()
        yield from self._indicators()

    def _link(self) -> Iterator[Metric]:
        st = self.state
        rep = st.last_check
        out = self._output()
        delivered_at = out.counters.last_success if out is not None else 0.0
        yield gauge("link_up", "1 if the last connectivity check passed every step",
                    1.0 if (rep is not None and rep.ok) else 0.0)
        yield gauge("link_configured", "1 if national.link.url is set", 1.0 if st.configured else 0.0)
        if rep is not None and rep.rtt is not None:
            yield gauge("rtt_seconds", "round trip of GET /v1/ping at the last check", rep.rtt)
        if rep is not None and rep.skew is not None:
            yield gauge("clock_skew_seconds", "center clock minus collector clock", rep.skew)
        if rep is not None and rep.cert_not_after is not None:
            yield gauge("cert_expiry_timestamp_seconds",
                        "when the center's TLS certificate expires (Unix time)", rep.cert_not_after)
        yield gauge("last_success_timestamp_seconds",
                    "last successful check or report delivery (Unix time)",
                    max(st.last_check_success, delivered_at))
        passed = {step.name: step.ok for step in rep.steps} if rep is not None else {}
        yield by_label(GaugeMetricFamily, "check_step_ok", "1 if the step passed at the last check",
                       "step", ((name, 1.0 if passed.get(name) else 0.0) for name in STEPS))
        yield gauge("backlog_events", "events in the spool not yet delivered to the center",
                    st.backlog_events)
        yield gauge("backlog_age_seconds", "age of the oldest undelivered spool chunk", st.backlog_age)
        yield counter("summaries", "hourly system summaries generated", st.summaries)

    def _reports(self) -> Iterator[Metric]:
        out = self._output()
        if out is None:
            return
        oc = out.counters
        yield counter("reports_delivered", "lines the center accepted or already had", oc.delivered)
        yield by_label(CounterMetricFamily, "reports_shared", "lines shared, by kind", "kind",
                       ((k, oc.shared.get(k, 0)) for k in ("alert", "summary", "telemetry")))
        yield by_label(CounterMetricFamily, "reports_filtered",
                       "lines the sharing policy kept in the province, by reason", "reason",
                       ((r, oc.filtered.get(r, 0)) for r in FILTERED_REASONS))
        yield counter("reports_duplicate", "lines the center already had", oc.duplicates)
        yield counter("batches_duplicate", "batches re-sent after a lost acknowledgement",
                      oc.duplicate_batches)
        yield counter("reports_rejected", "lines the center refused (dead-lettered)", oc.rejected_lines)
        yield by_label(CounterMetricFamily, "requests_rejected",
                       "report requests refused with 401, by reason", "reason",
                       sorted(oc.rejected_requests.items()))
        yield counter("requests_failed", "report requests failed (network, 5xx, 429)",
                      oc.failed_requests)
        yield counter("sent_bytes", "compressed bytes sent in report requests", oc.bytes_sent)

    def _indicators(self) -> Iterator[Metric]:
        by_type = self.stage.set.by_type
        yield by_label(GaugeMetricFamily, "indicators", "indicators loaded for matching, by type",
                       "type", ((k, by_type.get(k, 0))
                                for k in ("ipv4", "ipv6", "domain", "url", "sha256")))
        sc = self.stage.counters
        yield counter("indicator_matches", "events that matched an indicator", sc.matches)
        yield counter("indicator_alerts", "alerts raised for indicator matches", sc.alerts)
        yield counter("indicator_alerts_suppressed",
                      "matches not alerted again within the suppression window", sc.suppressed)
        if self.puller is not None:
            ps = self.puller.state
            yield gauge("indicator_pull_last_success_timestamp_seconds",
                        "last successful indicator pull (Unix time)", ps.last_success)
            yield counter("indicator_pull_errors", "failed indicator pulls", ps.errors)
