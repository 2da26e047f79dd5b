"""The delivery loop: drain one output's cursor of a DurableQueue.

For each lease: send; lines the output marks ``retry`` are sent again alone,
with backoff, until delivered or dead; lines marked ``dead`` go to the queue's
dead-letter table with their reason; then the lease is acked. A whole-batch
TransientError retries the same batch (same batch id) with backoff forever: a
down output builds a backlog in the queue, it never loses events.

The loop never dies. Every failure in a worker (send, lease read, dead-letter
write, ack write, a bug) is caught, counted (``send_errors`` for the output,
``spool_errors`` for the queue), shown (``up`` false, ``last_error``) and
retried with backoff. While an ack cannot be written (a full disk), the workers
take no new lease: the ack is retried every few seconds from memory, and once
it is written delivery goes on where it stopped, nothing sent twice. An output
that can probe its destination (``shipper.output.Probed``) cuts a long backoff
short as soon as the destination answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from canhgac.health import LinkHealth
from canhgac.tasks import wait_for_event
from shipper.output import Batch, Output, PermanentError, Probed, SendResult, TransientError
from shipper.queue import DurableQueue, Lease
from shipper.retry import Backoff

log = logging.getLogger(__name__)

# how often flush() looks at the backlog when no ack of this loop wakes it
FLUSH_POLL = 0.05


@dataclass(slots=True)
class DeliveryStats(LinkHealth):
    """Exact counters, exported by the process that owns the loop (plus up/last_error)."""

    delivered_events: int = 0
    retried_events: int = 0
    dead_events: int = 0  # in the spool's dead-letter table, or the output's own (SendResult)
    batches: int = 0
    send_errors: int = 0
    spool_errors: int = 0  # failed lease reads, dead-letter writes, ack writes (all retried)
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class DeliveryConfig:
    batch_events: int = 500
    batch_bytes: int = 5 * 1024 * 1024
    concurrency: int = 1
    idle_wait: float = 1.0
    backoff_initial: float = 0.2
    backoff_max: float = 30.0
    # the spool is local: a failed read or write of it is retried at least this often
    spool_retry_max: float = 2.0
    # how often a Probed output is asked, during a backoff, whether its destination is back
    probe_interval: float = 2.0


class DeliveryLoop:
    def __init__(
        self,
        queue: DurableQueue,
        output: Output,
        config: DeliveryConfig | None = None,
        on_delivered: Callable[[list[bytes]], None] | None = None,
    ) -> None:
        self.queue = queue
        self.output = output
        self.config = config or DeliveryConfig()
        self.stats = DeliveryStats()
        self._on_delivered = on_delivered
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._started = asyncio.Event()
        self._lease_lock = asyncio.Lock()
        self._acks: set[asyncio.Task[None]] = set()
        # set while acks are written; cleared while one fails (no new leases meanwhile)
        self._spool_ok = asyncio.Event()
        self._spool_ok.set()
        # set after every durable ack: flush() looks at the cursor again at once
        self._acked = asyncio.Event()
        self._probe: Callable[[], Awaitable[bool]] | None = (
            output.probe if isinstance(output, Probed) else None)
        self._probe_lock = asyncio.Lock()
        self._probe_at = -1e9
        self._probe_up = False

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._worker(i), name=f"deliver-{self.output.name}-{i}")
            for i in range(self.config.concurrency)
        ]

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop taking new leases; give in-flight sends ``timeout`` seconds."""
        self._stopping.set()
        done, pending = await asyncio.wait(self._tasks, timeout=timeout) if self._tasks else ((), ())
        for t in pending:
            t.cancel()
        for t in pending:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        if self._acks:
            await asyncio.wait(self._acks)
        # Leases handed out but not acked must be handed out again to whoever
        # drains this output next (a restarted loop in this process).
        self.queue.release_all(self.output.name)
        await self.output.close()

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait until this output's cursor has caught up with the queue (or timeout).

        Looked at again as soon as an ack is written, so the answer comes when the last
        ack is durable rather than up to a polling interval later (a drain is timed by
        it); the ``FLUSH_POLL`` poll remains for what empties the backlog without an ack
        from this loop (the queue evicting telemetry chunks when full).
        """
        deadline = time.monotonic() + timeout
        while True:
            self._acked.clear()
            st = (await self.queue.stats())[self.output.name]
            if st.pending_events == 0:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await wait_for_event(self._acked, min(left, FLUSH_POLL))

    async def _start_output(self) -> None:
        backoff = Backoff(self.config.backoff_initial, self.config.backoff_max)
        while not self._stopping.is_set():
            try:
                await self.output.start()
                self._started.set()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._note_error(f"start: {exc}")
                retry_after = exc.retry_after if isinstance(exc, TransientError) else None
                await self._backoff_sleep(backoff.next_delay(retry_after))

    async def _worker(self, index: int) -> None:
        # One worker starts the output (templates, connections); the others must
        # not send before that has succeeded.
        if index == 0:
            await self._start_output()
        else:
            await self._until(self._started.wait())
        backoff = Backoff(self.config.backoff_initial, self.config.spool_retry_max)
        while not self._stopping.is_set():
            if not self._spool_ok.is_set():
                # an ack cannot be written (disk full): send nothing more until it is
                await self._until(self._spool_ok.wait())
                continue
            try:
                async with self._lease_lock:
                    lease = await self.queue.lease(
                        self.output.name, self.config.batch_events, self.config.batch_bytes
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._spool_error(f"lease: {exc}")
                await self._sleep(backoff.next_delay())
                continue
            if backoff.attempt:
                backoff.reset()
                self.stats.succeeded()
            if lease is None:
                await self._until(self.queue.wait(self.output.name, self.config.idle_wait))
                continue
            await self._deliver_lease(lease)

    async def _until(self, aw: Awaitable[object]) -> None:
        """Wait for ``aw`` or for stop, whichever comes first."""
        waiter = asyncio.ensure_future(aw)
        stopper = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (waiter, stopper):
                t.cancel()

    async def _sleep(self, seconds: float) -> None:
        await wait_for_event(self._stopping, seconds)

    async def _backoff_sleep(self, seconds: float) -> None:
        """Sleep after a whole-batch failure; a Probed output's probe may cut it short."""
        if self._probe is None or seconds <= self.config.probe_interval:
            await self._sleep(seconds)
            return
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await self._sleep(min(left, self.config.probe_interval))
            if self._stopping.is_set() or time.monotonic() >= deadline:
                return
            if await self._destination_up():
                return

    async def _destination_up(self) -> bool:
        """The output's probe, at most once per ``probe_interval`` for all workers."""
        assert self._probe is not None
        async with self._probe_lock:
            if time.monotonic() - self._probe_at < self.config.probe_interval / 2:
                return self._probe_up
            try:
                up = await asyncio.wait_for(self._probe(), max(5.0, self.config.probe_interval))
            except asyncio.CancelledError:
                raise
            except Exception:
                up = False
            self._probe_at = time.monotonic()
            self._probe_up = bool(up)
            if up:
                log.info("output %s: its destination answers again; retrying now",
                         self.output.name)
            return self._probe_up

    def _note_error(self, message: str) -> None:
        self.stats.send_errors += 1
        self.stats.failed(message, log, f"output {self.output.name}")

    def _spool_error(self, message: str) -> None:
        self.stats.spool_errors += 1
        self.stats.failed(message, log, f"output {self.output.name}")

    async def _deliver_lease(self, lease: Lease) -> None:
        """``_deliver`` until it returns: an unexpected error (a bug) sends the lease again."""
        backoff = Backoff(self.config.backoff_initial, self.config.backoff_max)
        while not self._stopping.is_set():
            try:
                await self._deliver(lease)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("output %s: unexpected error delivering %s", self.output.name,
                              lease.batch_id)
                self._note_error(f"unexpected: {exc!r}")
                await self._sleep(backoff.next_delay())

    async def _deliver(self, lease: Lease) -> None:
        lines = lease.lines
        pending = list(range(len(lines)))
        backoff = Backoff(self.config.backoff_initial, self.config.backoff_max)
        while pending:
            batch = Batch(lease.batch_id, [lines[i] for i in pending])
            try:
                result = await self.output.send(batch)
            except TransientError as exc:
                self._note_error(str(exc))
                if self._stopping.is_set():
                    return  # not acked: leased again after restart
                await self._backoff_sleep(backoff.next_delay(exc.retry_after))
                if self._stopping.is_set():
                    return
                continue
            except PermanentError as exc:
                result = SendResult(dead=[(i, str(exc)) for i in range(len(batch.lines))])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or unexpected failure: retry, never drop
                log.exception("output %s: unexpected error", self.output.name)
                self._note_error(f"unexpected: {exc!r}")
                await self._sleep(backoff.next_delay())
                if self._stopping.is_set():
                    return
                continue
            self.stats.succeeded()
            dead_idx = {i for i, _ in result.dead}
            retry_idx = set(result.retry) - dead_idx
            own_dead = set(result.dead_lettered) - dead_idx - retry_idx
            if result.dead:
                by_reason: dict[str, list[bytes]] = {}
                for i, reason in result.dead:
                    by_reason.setdefault(reason, []).append(batch.lines[i])
                if not await self._dead_letter(by_reason):
                    return  # stopping: not acked, leased again after restart
            self.stats.dead_events += len(own_dead)
            delivered = [
                batch.lines[i] for i in range(len(batch.lines))
                if i not in dead_idx and i not in retry_idx and i not in own_dead
            ]
            self.stats.delivered_events += len(delivered)
            if delivered and self._on_delivered is not None:
                try:
                    self._on_delivered(delivered)
                except Exception:  # the owner's callback must not stop delivery
                    log.exception("output %s: on_delivered callback failed", self.output.name)
            pending = [pending[i] for i in sorted(retry_idx)]
            if pending:
                self.stats.retried_events += len(pending)
                await self._sleep(backoff.next_delay(result.retry_after))
                if self._stopping.is_set():
                    return
            else:
                backoff.reset()
        self.stats.batches += 1
        # The cursor's write waits for the spool's writer (behind ingest commits): the worker
        # takes its next lease meanwhile. stop() waits for the acks still being written.
        ack = asyncio.create_task(self._ack(lease))
        self._acks.add(ack)
        ack.add_done_callback(self._acks.discard)

    async def _dead_letter(self, by_reason: dict[str, list[bytes]]) -> bool:
        """Write each group to the spool's dead-letter table, retrying a failed write.

        Returns False when stopped before all were written (the lease is then not acked).
        """
        backoff = Backoff(self.config.backoff_initial, self.config.spool_retry_max)
        for reason, lines in by_reason.items():
            while True:
                try:
                    await self.queue.dead_letter(self.output.name, lines, reason)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._spool_error(f"dead-letter: {exc}")
                    await self._sleep(backoff.next_delay())
                    if self._stopping.is_set():
                        return False
            self.stats.dead_events += len(lines)
        return True

    async def _ack(self, lease: Lease) -> None:
        """Write the ack; while it fails, no worker takes a new lease and it is retried."""
        backoff = Backoff(self.config.backoff_initial, self.config.spool_retry_max)
        while True:
            try:
                await self.queue.ack(lease)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._spool_ok.clear()
                self._spool_error(f"ack: {exc}")
                if self._stopping.is_set():
                    return  # not durable: delivered again after a restart (outputs dedupe)
                await self._sleep(backoff.next_delay())
                continue
            self._acked.set()
            if not self._spool_ok.is_set():
                log.info("output %s: acks are written again", self.output.name)
                self._spool_ok.set()
                self.stats.succeeded()
            return
