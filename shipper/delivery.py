"""The delivery loop: drain one output's cursor of a DurableQueue.

For each lease: send; lines the output marks ``retry`` are sent again alone,
with backoff, until delivered or dead; lines marked ``dead`` go to the queue's
dead-letter table with their reason; then the lease is acked. A whole-batch
TransientError retries the same batch (same batch id) with backoff forever: a
down output builds a backlog in the queue, it never loses events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from canhgac.health import LinkHealth
from shipper.output import Batch, Output, PermanentError, SendResult, TransientError
from shipper.queue import DurableQueue, Lease
from shipper.retry import Backoff

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DeliveryStats(LinkHealth):
    """Exact counters, exported by the process that owns the loop (plus up/last_error)."""

    delivered_events: int = 0
    retried_events: int = 0
    dead_events: int = 0
    batches: int = 0
    send_errors: int = 0
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class DeliveryConfig:
    batch_events: int = 500
    batch_bytes: int = 5 * 1024 * 1024
    concurrency: int = 1
    idle_wait: float = 1.0
    backoff_initial: float = 0.2
    backoff_max: float = 30.0


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
        """Wait until this output's cursor has caught up with the queue (or timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = (await self.queue.stats())[self.output.name]
            if st.pending_events == 0:
                return True
            await asyncio.sleep(0.05)
        return False

    async def _start_output(self) -> None:
        backoff = Backoff(self.config.backoff_initial, self.config.backoff_max)
        while not self._stopping.is_set():
            try:
                await self.output.start()
                self._started.set()
                return
            except Exception as exc:
                self._note_error(f"start: {exc}")
                await self._sleep(backoff.next_delay(getattr(exc, "retry_after", None)))

    async def _worker(self, index: int) -> None:
        # One worker starts the output (templates, connections); the others must
        # not send before that has succeeded.
        if index == 0:
            await self._start_output()
        else:
            await asyncio.wait(
                [asyncio.ensure_future(self._started.wait()),
                 asyncio.ensure_future(self._stopping.wait())],
                return_when=asyncio.FIRST_COMPLETED,
            )
        while not self._stopping.is_set():
            async with self._lease_lock:
                lease = await self.queue.lease(
                    self.output.name, self.config.batch_events, self.config.batch_bytes
                )
            if lease is None:
                await asyncio.wait(
                    [asyncio.ensure_future(self.queue.wait(self.output.name, self.config.idle_wait)),
                     asyncio.ensure_future(self._stopping.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                continue
            await self._deliver(lease)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    def _note_error(self, message: str) -> None:
        self.stats.send_errors += 1
        self.stats.failed(message, log, f"output {self.output.name}")

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
                await self._sleep(backoff.next_delay(exc.retry_after))
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
            if result.dead:
                by_reason: dict[str, list[bytes]] = {}
                for i, reason in result.dead:
                    by_reason.setdefault(reason, []).append(batch.lines[i])
                for reason, dl in by_reason.items():
                    await self.queue.dead_letter(self.output.name, dl, reason)
                self.stats.dead_events += len(dead_idx)
            delivered = [
                batch.lines[i] for i in range(len(batch.lines)) if i not in dead_idx and i not in retry_idx
            ]
            self.stats.delivered_events += len(delivered)
            if delivered and self._on_delivered is not None:
                self._on_delivered(delivered)
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
        ack = asyncio.create_task(self.queue.ack(lease))
        self._acks.add(ack)
        ack.add_done_callback(self._ack_done)

    def _ack_done(self, task: asyncio.Task[None]) -> None:
        self._acks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # not acked: delivered again after a restart (duplicates are 409s, never copies)
            self._note_error(f"ack failed: {task.exception()!r}")
