"""The delivery loop never dies, counts every failure, and wakes when a destination is back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from canhgac.schema import PRIORITY_SECURITY
from shipper.delivery import DeliveryConfig, DeliveryLoop
from shipper.output import Batch, Probed, SendResult, TransientError
from shipper.queue import DurableQueue, Lease
from tests.fixtures.collector import wait_for


def lines(prefix: str, n: int) -> list[bytes]:
    return [f'{{"id":"{prefix}{i}"}}'.encode() for i in range(n)]


async def open_queue(tmp_path: Path) -> DurableQueue:
    q = DurableQueue(tmp_path / "q.db", outputs=("a",))
    await q.open()
    return q


class Returning(Probed):
    """Down (connection refused) until ``back``; its probe says when it is back."""

    name = "a"

    def __init__(self) -> None:
        self.back = False
        self.sends = 0
        self.probes = 0
        self.got: list[bytes] = []

    async def start(self) -> None: ...

    async def send(self, batch: Batch) -> SendResult:
        self.sends += 1
        if not self.back:
            raise TransientError("connection refused")
        self.got.extend(batch.lines)
        return SendResult()

    async def probe(self) -> bool:
        self.probes += 1
        return self.back

    async def close(self) -> None: ...


class Gated:
    """Accepts every batch once ``gate`` is set."""

    name = "a"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.sends = 0

    async def start(self) -> None: ...

    async def send(self, batch: Batch) -> SendResult:
        self.sends += 1
        await self.gate.wait()
        return SendResult()

    async def close(self) -> None: ...


async def test_flush_answers_when_the_last_ack_is_written_not_at_its_next_poll(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A drain is timed by flush(): it must wake on the ack itself, not on a timer."""
    import shipper.delivery

    monkeypatch.setattr(shipper.delivery, "FLUSH_POLL", 3600.0)  # only an ack can wake it
    q = await open_queue(tmp_path)
    await q.append(lines("x", 10), PRIORITY_SECURITY)
    out = Gated()
    loop = DeliveryLoop(q, out, DeliveryConfig())
    await loop.start()
    try:
        flushed = asyncio.create_task(loop.flush(timeout=3600))
        assert await wait_for(lambda: out.sends == 1, 10)
        assert not flushed.done()
        out.gate.set()
        assert await asyncio.wait_for(flushed, 30)
    finally:
        await loop.stop()
        await q.close()


async def test_a_probed_output_is_retried_as_soon_as_it_is_back(tmp_path: Path) -> None:
    q = await open_queue(tmp_path)
    await q.append(lines("x", 10), PRIORITY_SECURITY)
    out = Returning()
    # an hour of backoff: only the probe can make the drain finish within the deadline below
    loop = DeliveryLoop(q, out, DeliveryConfig(backoff_initial=3600, backoff_max=3600,
                                               probe_interval=0.05))
    await loop.start()
    try:
        assert await wait_for(lambda: out.probes >= 3, 10)
        assert out.sends == 1, "a down output is probed, not sent to, during the backoff"
        assert not loop.stats.up and loop.stats.send_errors == 1
        out.back = True
        assert await loop.flush(timeout=30), "delivery waited out its timer"
        assert out.got == lines("x", 10) and loop.stats.up
    finally:
        await loop.stop()
        await q.close()


class Sink:
    name = "a"

    def __init__(self, result: Any = None) -> None:
        self.got: list[bytes] = []
        self.result = result

    async def start(self) -> None: ...

    async def send(self, batch: Batch) -> SendResult:
        self.got.extend(batch.lines)
        return self.result(batch) if self.result else SendResult()

    async def close(self) -> None: ...


async def test_workers_survive_lease_failures_and_a_failing_callback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    q = await open_queue(tmp_path)
    for p in "abcd":
        await q.append(lines(p, 5), PRIORITY_SECURITY)
    real_lease = q.lease
    failures = 3

    async def flaky_lease(output: str, *args: Any) -> Lease | None:
        nonlocal failures
        if failures:
            failures -= 1
            raise OSError("disk I/O error")
        return await real_lease(output, *args)

    monkeypatch.setattr(q, "lease", flaky_lease)

    def callback(_: list[bytes]) -> None:
        raise RuntimeError("a bug in the owner's callback")

    sink = Sink()
    loop = DeliveryLoop(q, sink, DeliveryConfig(batch_events=5, concurrency=2,
                                                backoff_initial=0.01, spool_retry_max=0.05),
                        on_delivered=callback)
    await loop.start()
    try:
        assert await loop.flush(timeout=20)
        assert all(not t.done() for t in loop._tasks)
        assert loop.stats.spool_errors == 3 and loop.stats.up
        assert loop.stats.delivered_events == 20
    finally:
        await loop.stop()
        await q.close()
    assert sorted(sink.got) == sorted(b for p in "abcd" for b in lines(p, 5))


async def test_lines_the_output_dead_lettered_itself_count_as_dead_not_delivered(
    tmp_path: Path,
) -> None:
    q = await open_queue(tmp_path)
    await q.append(lines("x", 10), PRIORITY_SECURITY)
    sink = Sink(lambda batch: SendResult(dead_lettered=[0, 1, 2], dead=[(3, "refused")]))
    loop = DeliveryLoop(q, sink)
    await loop.start()
    try:
        assert await loop.flush(timeout=10)
    finally:
        await loop.stop()
    assert loop.stats.dead_events == 4 and loop.stats.delivered_events == 6
    # only what the output could not keep itself is in the spool's dead-letter table
    letters = await q.dead_letters("a")
    assert [d["lines"] for d in letters] == [[lines("x", 10)[3]]]
    await q.close()
