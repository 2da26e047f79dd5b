"""Collector component for layer 4: indicators in, summaries out, link health watched.

``setup(ctx)`` adds the indicator-matching stage (the summary-counting stage is
appended at start, so that it runs after every other stage), the Prometheus
collector, and one lifespan for the background loops: indicator pull, hourly
summaries (via ``ctx.inject``), periodic connectivity check and backlog
sampling. Ports it provides: ``indicators`` (the IndicatorStage) and, when the
link is configured, ``national_link`` (this component: link_up, last_delivery).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from canhgac.national.client import NationalClient
from canhgac.tasks import cancel_and_wait

if TYPE_CHECKING:
    from collector.context import CollectorContext
    from shipper.outputs.national import NationalOutput
from collector.national.availability import AvailabilityLog
from collector.national.check import run_check
from collector.national.config import NationalSection, load
from collector.national.indicators import IndicatorCache, IndicatorPuller, IndicatorStage
from collector.national.metrics import LinkState, NationalMetrics
from collector.national.summary import SummaryStage

log = logging.getLogger(__name__)

OUTPUT_NAME = "national"


class NationalComponent:
    def __init__(self, ctx: CollectorContext, config: NationalSection) -> None:
        self.ctx = ctx
        self.config = config
        self.state = LinkState(configured=config.link.configured)
        self.stage = IndicatorStage(config.indicators)
        self.summary: SummaryStage | None = None
        self.client: NationalClient | None = None
        self.puller: IndicatorPuller | None = None
        self._secret = b""
        self._tasks: list[asyncio.Task[None]] = []
        self.availability_log = AvailabilityLog(ctx.state_dir / "national" / "availability.db")
        self._availability: tuple[tuple[int, int], float | None] = ((0, 0), None)
        cache = IndicatorCache(ctx.state_dir / "national" / "indicators.json")
        if config.link.configured:
            self._secret = config.link.secret_bytes(ctx.source)
            self.client = NationalClient(config.link, self._secret, "canhgac-collector")
        self.puller = IndicatorPuller(self.client, self.stage, cache,
                                      float(config.indicators.interval))
        restored = self.puller.restore()
        if restored:
            log.info("national indicators: %d restored from %s", restored, cache.path)
        if config.summaries.enabled and ctx.outputs.national is not None:
            self.summary = SummaryStage(ctx.inventory)

    @property
    def link_up(self) -> bool:
        """Last check passed, or a report went through since the last failed check."""
        rep = self.state.last_check
        if rep is not None and rep.ok:
            return True
        out = self.output()
        last = out.counters.last_success if out is not None else 0.0
        return bool(rep is not None and last > rep.finished)

    @property
    def last_delivery(self) -> dict[str, float]:
        """system id -> Unix time its last report was accepted by the center."""
        out = self.output()
        return dict(out.counters.last_delivery) if out is not None else {}

    def availability(self, since: float, until: float) -> float | None:
        """Share of the observed minutes in [since, until] the link was up (None: none).

        Coverage asks once per system in the same second: the answer is kept per minute."""
        key = (int(since // 60), int(until // 60))
        if self._availability[0] != key:
            self._availability = (key, self.availability_log.over(since, until).ratio)
        return self._availability[1]

    def output(self) -> NationalOutput | None:
        return self.ctx.outputs.national

    async def start(self) -> None:
        cfg = self.config
        if self.summary is not None and self.summary not in self.ctx.pipeline.stages:
            # Added at start, i.e. after every component's setup, so it runs last and
            # counts the alerts that later stages (detection) raise as well.
            self.ctx.pipeline.add(self.summary)
        if self.client is not None and self.puller is not None and cfg.indicators.enabled:
            self._spawn(self.puller.run(), "national-indicators")
        if self.client is not None and cfg.check.enabled:
            self._spawn(self._check_loop(), "national-check")
        if self.summary is not None:
            self._spawn(self._summary_loop(), "national-summaries")
        if self.ctx.spool is not None:
            self._spawn(self._backlog_loop(), "national-backlog")
        if self.client is not None:
            self._spawn(self._availability_loop(), "national-availability")
        if self.client is None:
            log.info("national link not configured (national.link.url): layer 4 is off")

    async def stop(self) -> None:
        if self.summary is not None:
            # The partial period is spooled (stop hooks run before the spool closes),
            # so a restart does not lose the last minutes' summary.
            try:
                await self.emit_summaries()
            except Exception as exc:
                log.warning("national: final summaries not spooled: %s", exc)
        await cancel_and_wait(self._tasks)  # a loop's last error is logged already
        self._tasks = []
        if self.client is not None:
            await self.client.close()
        self.availability_log.close()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def check_once(self) -> None:
        assert self.client is not None
        cfg = self.config.check
        rep = await run_check(self.config.link, self._secret, max_clock_skew=cfg.max_clock_skew,
                              cert_min_days=cfg.cert_min_days, client=self.client)
        self.state.last_check = rep
        if rep.ok:
            self.state.last_check_success = rep.finished
        else:
            bad = next(s for s in rep.steps if not s.ok)
            log.warning("national link check failed at %s: %s", bad.name, bad.detail)

    async def _check_loop(self) -> None:
        while True:
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("national link check crashed")
            await asyncio.sleep(self.config.check.interval)

    async def emit_summaries(self, now: float | None = None) -> int:
        assert self.summary is not None
        events = self.summary.flush(now)
        if events:
            await self.ctx.inject(events)
            self.state.summaries += len(events)
        return len(events)

    async def _summary_loop(self) -> None:
        interval = float(self.config.summaries.interval)
        while True:
            now = time.time()
            # Align periods to the clock (an hourly summary covers hh:00 to hh+1:00).
            await asyncio.sleep((now // interval + 1) * interval - now)
            try:
                await self.emit_summaries()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("national summaries could not be spooled")

    async def _availability_loop(self) -> None:
        """One sample a minute (and one per check) of whether the link is up."""
        while True:
            try:
                if self.state.last_check is not None:  # not known before the first check
                    await asyncio.to_thread(self.availability_log.record, self.link_up)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a full disk must not stop the component
                log.warning("national availability not recorded: %s", exc)
            await asyncio.sleep(min(60.0, float(self.config.check.interval)))

    async def _backlog_loop(self) -> None:
        while True:
            try:
                assert self.ctx.spool is not None
                stats = await self.ctx.spool.stats()
                st = stats.get(OUTPUT_NAME)
                if st is not None:
                    self.state.backlog_events = st.pending_events
                    self.state.backlog_age = st.oldest_pending_age_seconds
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("national backlog sample failed: %s", exc)
            await asyncio.sleep(5)


def setup(ctx: CollectorContext) -> None:
    """Plug layer 4 into the collector (see module docstring)."""
    config = load(ctx.config.national, ctx.source)
    comp = NationalComponent(ctx, config)
    ctx.pipeline.add(comp.stage)  # first: indicator alerts then pass through detection
    ctx.registry.register(NationalMetrics(comp.state, comp.stage, comp.puller, comp.output))
    ctx.ports.indicators = comp.stage
    ctx.ports.national_detail = comp
    if config.link.configured:
        # Coverage (layer 4) reads link_up and last_delivery from here; None = not configured.
        ctx.ports.national_link = comp
    ctx.add_startable(comp)
