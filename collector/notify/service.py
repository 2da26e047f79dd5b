"""The notifier: a pipeline stage that routes alerts into the outbox, and the loops
that deliver it.

The stage runs on the ingest path after alert bookkeeping: it commits the
alert's messages to the outbox before the batch is acknowledged (so a crash
loses none) and wakes the channel's worker, which sends at once — no polling
delay between an alert and its notification.

One worker per channel, plus one housekeeping loop (storm digests when a minute
ends, escalation of unacknowledged alerts, pruning). No loop ever dies: every
exception is caught, counted on /metrics (``canhgac_notify_worker_errors_total``),
logged, and the loop goes on after a backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from canhgac.tasks import cancel_and_wait, wait_for_event
from collector.notify.channels import Channel, SendError
from collector.notify.config import NotifyConfig
from collector.notify.metrics import NotifyMetrics
from collector.notify.outbox import Outbox, Outcome, Pending, window_of
from collector.notify.router import Router
from collector.ports import AlertLedger
from shipper.retry import Backoff

log = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL = 1.0
IDLE_WAIT = 5.0  # a worker re-checks the outbox at least this often (retries that fell due)


class Notifier:
    name = "notify"  # as a pipeline stage

    def __init__(self, cfg: NotifyConfig, outbox: Outbox, router: Router,
                 channels: dict[str, Channel], metrics: NotifyMetrics,
                 alerts: AlertLedger | None, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.router = router
        self.channels = channels
        self.metrics = metrics
        self.alerts = alerts
        self.clock = clock
        self._wake = {name: asyncio.Event() for name in channels}
        self._tasks: list[asyncio.Task[None]] = []
        self._last_prune = 0.0

    # -- pipeline stage --------------------------------------------------------------------

    def process(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        candidates = self.router.candidates(events)
        if not candidates:
            return []
        try:
            counts = self.outbox.admit(candidates, self.router.render)
        except Exception:
            # Refuse the batch (its agent retries): an alert must not be acknowledged
            # while its notifications are not durable.
            self.metrics.admit_errors.inc()
            raise
        for (route, how), n in counts.items():
            self.metrics.routed.labels(route, how).inc(n)
        if any(how == "sent" for _, how in counts):
            self.wake()
        return []

    def tick(self, now: float) -> list[dict[str, Any]]:
        return []

    def wake(self) -> None:
        for ev in self._wake.values():
            ev.set()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        for name, channel in self.channels.items():
            self._tasks.append(asyncio.create_task(self._worker(name, channel),
                                                   name=f"notify-{name}"))
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="notify-housekeeping"))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        for channel in self.channels.values():
            try:
                await channel.close()
            except Exception:
                log.exception("closing notification channel %s", channel.name)

    # -- delivery --------------------------------------------------------------------------

    async def _worker(self, name: str, channel: Channel) -> None:
        wake = self._wake[name]
        trouble = Backoff(initial=0.5, maximum=30.0)
        while True:
            try:
                wake.clear()
                batch = self.outbox.due(name, limit=self.cfg.concurrency * 4)
                if not batch:
                    nd = self.outbox.next_due(name)
                    wait = IDLE_WAIT if nd is None else min(IDLE_WAIT, max(0.0, nd - self.clock()))
                    await wait_for_event(wake, wait)
                    continue
                outcomes = await self._send_all(channel, batch)
                self.outbox.settle(name, outcomes)
                trouble.reset()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.metrics.worker_errors.labels(name).inc()
                log.exception("notification worker %s failed; retrying", name)
                await asyncio.sleep(trouble.next_delay())

    async def _send_all(self, channel: Channel, batch: list[Pending]) -> list[Outcome]:
        gate = asyncio.Semaphore(self.cfg.concurrency)

        async def one(p: Pending) -> Outcome:
            async with gate:
                return await self._send(channel, p)

        return list(await asyncio.gather(*(one(p) for p in batch)))

    async def _send(self, channel: Channel, p: Pending) -> Outcome:
        try:
            await channel.send(p.payload)
        except SendError as exc:
            kind = "permanent" if exc.permanent else "transient"
            self.metrics.failures.labels(channel.name, kind).inc()
            if exc.permanent:
                log.error("notification %s refused by %s for good: %s", p.key, channel.name, exc)
                return Outcome(p.key, "dead", str(exc))
            return Outcome(p.key, "retry", str(exc), self._delay(p.attempts, exc.retry_after))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a channel's own bug: retried like a transient failure
            self.metrics.failures.labels(channel.name, "transient").inc()
            log.exception("notification channel %s raised", channel.name)
            return Outcome(p.key, "retry", f"{type(exc).__name__}: {exc}",
                           self._delay(p.attempts, None))
        self.metrics.delivered.labels(channel.name).inc()
        self.metrics.latency.labels(channel.name).observe(max(0.0, self.clock() - p.created))
        return Outcome(p.key, "delivered")

    def _delay(self, attempts: int, advised: float | None) -> float:
        """Exponential backoff with jitter from ``retry.initial`` to ``retry.maximum``."""
        lo, hi = float(self.cfg.retry.initial), float(self.cfg.retry.maximum)
        cap = min(hi, lo * (2 ** min(attempts, 30)))
        delay = random.uniform(cap / 2, cap)
        return max(delay, min(advised, hi)) if advised is not None else delay

    # -- housekeeping ----------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)
            try:
                self.housekeep()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.metrics.worker_errors.labels("housekeeping").inc()
                log.exception("notification housekeeping failed; retrying")

    def housekeep(self) -> None:
        """Digests for finished minutes, due escalations, pruning: one pass."""
        now = self.clock()
        digests = self.outbox.close_windows(window_of(now), self._digest)
        escalated = self._escalate()
        if digests or escalated:
            self.wake()
        if now - self._last_prune > 3600:
            self._last_prune = now
            self.outbox.prune(now - float(self.cfg.keep_delivered))

    def _digest(self, route: str, window: int, summaries: list[dict[str, Any]]) -> list[Any]:
        messages = self.router.render_digest(route, window, summaries)
        if messages:
            self.metrics.digests.labels(route).inc()
        return messages

    def _escalate(self) -> int:
        due = self.outbox.due_escalations()
        if not due:
            return 0
        if self.alerts is None:  # nothing says what was acknowledged: escalate nothing
            self.outbox.end_escalation([(a, r) for a, r, _ in due])
            return 0
        still_open = self.alerts.unacknowledged([a for a, _, _ in due])
        self.outbox.end_escalation([(a, r) for a, r, _ in due if a not in still_open])
        sent = 0
        for alert_id, route, step in due:
            if alert_id not in still_open:
                continue
            summary = self.outbox.summary_of(alert_id, route)
            if summary is None:
                self.outbox.end_escalation([(alert_id, route)])
                continue
            messages, next_due = self.router.render_escalation(route, summary, step)
            self.outbox.escalate(alert_id, route, step, next_due, messages)
            if messages:
                self.metrics.escalations.labels(route).inc()
                sent += 1
        return sent
