"""MTTA and MTTR per unit and level: how fast layer 1 acknowledges and resolves alerts.

Read from the alert store at scrape time over a rolling window (30 days, as the
layer-1 score uses). Exported as a mean (``..._seconds``) and the number of alerts
behind it (``..._alerts``), so a dashboard can weigh units against each other, or
recompute a province-wide mean with ``sum(mean * alerts) / sum(alerts)``.
The level comes from the inventory (``unknown`` for an alert of no listed system);
labels are bounded by the inventory's units and the five levels.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from collector.alerts.store import AlertStore
from collector.inventory import InventoryHolder

WINDOW = 30 * 86400.0


class ResponseTimeCollector(Collector):
    def __init__(self, store: AlertStore, inventory: InventoryHolder, window: float = WINDOW) -> None:
        self.store = store
        self.inventory = inventory
        self.window = window

    def collect(self) -> Iterable[Metric]:
        totals: dict[tuple[str, str], list[float]] = {}
        for system_id, unit, acked, ack_sum, resolved, res_sum in self.store.response_times(
                time.time() - self.window):
            system = self.inventory.system(system_id) if system_id else None
            key = (unit or (system.unit if system else ""), str(system.level) if system else "unknown")
            t = totals.setdefault(key, [0.0, 0.0, 0.0, 0.0])
            t[0] += acked
            t[1] += ack_sum
            t[2] += resolved
            t[3] += res_sum
        labels = ["unit", "level"]
        mtta = GaugeMetricFamily("canhgac_alerts_mtta_seconds",
                                 "Mean time to acknowledge, alerts raised in the last 30 days",
                                 labels=labels)
        mtta_n = GaugeMetricFamily("canhgac_alerts_mtta_alerts",
                                   "Acknowledged alerts behind canhgac_alerts_mtta_seconds",
                                   labels=labels)
        mttr = GaugeMetricFamily("canhgac_alerts_mttr_seconds",
                                 "Mean time to resolve, alerts raised in the last 30 days",
                                 labels=labels)
        mttr_n = GaugeMetricFamily("canhgac_alerts_mttr_alerts",
                                   "Resolved alerts behind canhgac_alerts_mttr_seconds",
                                   labels=labels)
        for (unit_name, level), (n_ack, sum_ack, n_res, sum_res) in sorted(totals.items()):
            lv = [unit_name, level]
            mtta_n.add_metric(lv, n_ack)
            mttr_n.add_metric(lv, n_res)
            if n_ack:
                mtta.add_metric(lv, sum_ack / n_ack)
            if n_res:
                mttr.add_metric(lv, sum_res / n_res)
        yield from (mtta, mtta_n, mttr, mttr_n)
