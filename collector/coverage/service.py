"""Computes the coverage report from live collector state, cached for ``cache_ttl``.

Inputs are the collector's typed ports; a component that is not set up (None)
lowers a number with a reason instead of breaking /metrics:
  agents    every enrolled agent, online as ``presence`` defines it
  alerts    acknowledgement times (collector.alerts)
  link      layer 4's link_up and last_delivery (collector.national)
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from canhgac.tasks import cancel_and_wait
from collector.coverage.config import CoverageConfig
from collector.coverage.model import CoverageReport, compute
from collector.fleet import Presence
from collector.inventory import InventoryHolder
from collector.ports import AgentDirectory, AlertLedger, NationalLinkStatus

log = logging.getLogger(__name__)


class CoverageService:
    def __init__(self, inventory: InventoryHolder, cfg: CoverageConfig, *,
                 agents: AgentDirectory, presence: Presence,
                 alerts: AlertLedger | None = None, link: NationalLinkStatus | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.inventory = inventory
        self.cfg = cfg
        self.agents = agents
        self.presence = presence
        self.alerts = alerts
        self.link = link
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: CoverageReport | None = None
        self.compute_seconds = 0.0
        self.alert_counts: dict[tuple[str, str], int] = {}
        self._task: asyncio.Task[None] | None = None
        # Called with each new report, on the computing thread (the metrics collector
        # prepares its families there, off the scrape path).
        self.listeners: list[Callable[[CoverageReport], None]] = [self._warn_flagged]
        self._flagged_seen: set[str] = set()
        inventory.on_change(lambda _inv: self.invalidate())

    def invalidate(self) -> None:
        self._cached = None

    def report(self, max_age: float | None = None) -> CoverageReport:
        ttl = float(self.cfg.cache_ttl) if max_age is None else max_age
        if max_age is None and self._task is not None:
            ttl *= 2  # the refresher keeps it young; a scrape never waits for a computation
        now = self.clock()
        with self._lock:  # one computation at a time; concurrent scrapes share it
            cached = self._cached
            if cached is not None and now - cached.generated_at <= ttl and now >= cached.generated_at:
                return cached
            started = time.perf_counter()
            alerts = self.alerts
            acks = alerts.ack_times(now - float(self.cfg.alert_window)) if alerts else {}
            self.alert_counts = alerts.counts() if alerts else {}
            report = compute(self.inventory.current, self.cfg, now, agents=self.agents.agents(),
                             acks=acks, link=self.link, presence=self.presence)
            self.compute_seconds = time.perf_counter() - started
            self._cached = report
            for fn in self.listeners:
                fn(report)
            return report

    def report_for(self, allows: Callable[[str, str], bool] | None, unit: str = "",
                   system: str = "") -> CoverageReport:
        """The report as ``allows(system_id, unit)`` may see it (None: everything), optionally
        one unit or system; totals are recomputed over what remains, so a scoped view never
        carries another unit's numbers. Used by ``GET /v1/coverage`` and the web console."""
        report = self.report()
        if allows is None and not unit and not system:
            return report
        return report.restricted(lambda s: (allows is None or allows(s.id, s.unit))
                                 and (not unit or s.unit == unit)
                                 and (not system or s.id == system))

    def _warn_flagged(self, report: CoverageReport) -> None:
        """Say it loudly, once per agent: an agent of a system the inventory does not list
        (or lists as retired) sends events nobody counts."""
        now = {f.agent_id for f in report.flagged_agents}
        for f in report.flagged_agents:
            if f.agent_id not in self._flagged_seen:
                why = ("is not in the inventory" if f.flag == "system_not_in_inventory"
                       else "is retired in the inventory")
                log.warning("agent %s (host %s) belongs to system %r, which %s: its events count "
                            "for no unit or level and are not shared nationally; add the "
                            "system or revoke the agent (canhgac collector revoke-agent %s)",
                            f.agent_id, f.hostname, f.system_id, why, f.agent_id)
        self._flagged_seen = now

    async def start(self) -> None:
        """Recompute every ``cache_ttl`` in a thread so /metrics only formats."""
        if self._task is None and float(self.cfg.cache_ttl) > 0:
            self._task = asyncio.create_task(self._refresh(), name="coverage-refresh")

    async def _refresh(self) -> None:
        interval = float(self.cfg.cache_ttl)
        while True:
            try:
                await asyncio.to_thread(self.report, 0.0)
            except Exception:  # a bad input must not stop coverage for good; next tick retries
                log.exception("coverage computation failed")
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
