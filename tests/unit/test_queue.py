"""DurableQueue semantics: durability, cursors, ordering of acks, bounds, dedup keys."""

from __future__ import annotations

import pytest

from canhgac.schema import PRIORITY_SECURITY, PRIORITY_TELEMETRY
from shipper.queue import DurableQueue, QueueFull


def lines(prefix: str, n: int) -> list[bytes]:
    return [f'{{"id":"{prefix}{i}"}}'.encode() for i in range(n)]


async def open_queue(tmp_path, **kw) -> DurableQueue:
    q = DurableQueue(tmp_path / "q.db", outputs=kw.pop("outputs", ("a",)), **kw)
    await q.open()
    return q


async def test_append_lease_ack_and_restart(tmp_path):
    q = await open_queue(tmp_path)
    await q.append(lines("x", 3), PRIORITY_SECURITY)
    await q.append(lines("y", 2), PRIORITY_SECURITY)
    lease = await q.lease("a", max_events=3)
    assert lease is not None and lease.lines == lines("x", 3)
    await q.close()
    # Not acked: after a restart the same chunk is leased again (at-least-once).
    q = await open_queue(tmp_path)
    again = await q.lease("a", max_events=3)
    assert again is not None and again.lines == lines("x", 3)
    assert again.batch_id == lease.batch_id
    await q.ack(again)
    nxt = await q.lease("a")
    assert nxt is not None and nxt.lines == lines("y", 2)
    await q.ack(nxt)
    assert await q.lease("a") is None
    assert q.bytes_used == 0
    await q.close()


async def test_out_of_order_acks_move_cursor_only_when_contiguous(tmp_path):
    q = await open_queue(tmp_path)
    for p in "abc":
        await q.append(lines(p, 1), PRIORITY_SECURITY)
    l1 = await q.lease("a", max_events=1)
    l2 = await q.lease("a", max_events=1)
    await q.ack(l2)
    assert (await q.stats())["a"].pending_events == 3
    await q.ack(l1)
    assert (await q.stats())["a"].pending_events == 1
    await q.close()


async def test_each_output_has_its_own_cursor(tmp_path):
    q = await open_queue(tmp_path, outputs=("a", "b"))
    await q.append(lines("x", 2), PRIORITY_SECURITY)
    la = await q.lease("a")
    await q.ack(la)
    st = await q.stats()
    assert st["a"].pending_events == 0 and st["b"].pending_events == 2
    assert q.bytes_used > 0  # b still needs it
    lb = await q.lease("b")
    assert lb.lines == lines("x", 2)
    await q.ack(lb)
    assert q.bytes_used == 0
    await q.close()


async def test_full_queue_drops_telemetry_first_and_counts(tmp_path):
    q = await open_queue(tmp_path, max_bytes=200)
    r = await q.append(lines("m", 5), PRIORITY_TELEMETRY)  # ~50 bytes
    assert r.accepted == 5
    r = await q.append(lines("m", 20), PRIORITY_TELEMETRY)  # does not fit: refused
    assert r.dropped == 20
    # A security chunk evicts the telemetry chunk to fit.
    r = await q.append(lines("s", 14), PRIORITY_SECURITY)
    assert r.accepted == 14
    assert q.counters["dropped_telemetry"] == 25
    with pytest.raises(QueueFull):
        await q.append(lines("s", 30), PRIORITY_SECURITY)
    await q.close()
    q = await open_queue(tmp_path, max_bytes=200)
    assert q.counters["dropped_telemetry"] == 25  # persisted
    lease = await q.lease("a")
    assert lease.lines == lines("s", 14)
    await q.close()


async def test_idempotency_key_stores_once(tmp_path):
    q = await open_queue(tmp_path)
    r1 = await q.append(lines("x", 2), PRIORITY_SECURITY, key="batch-1", key_value=b"ack1")
    r2 = await q.append(lines("x", 2), PRIORITY_SECURITY, key="batch-1", key_value=b"ack2")
    assert not r1.duplicate and r2.duplicate and r2.key_value == b"ack1"
    assert (await q.stats())["a"].pending_events == 2
    await q.close()


async def test_concurrent_appends_group_commit(tmp_path):
    import asyncio

    q = await open_queue(tmp_path)
    await asyncio.gather(*(q.append(lines(f"g{i}-", 10), PRIORITY_SECURITY) for i in range(50)))
    total = 0
    while (lease := await q.lease("a", max_events=100)) is not None:
        total += len(lease.lines)
        await q.ack(lease)
    assert total == 500
    await q.close()


async def test_dead_letters_are_kept_with_reason(tmp_path):
    q = await open_queue(tmp_path)
    await q.dead_letter("a", [b'{"x":1}'], "mapper_parsing_exception: bad")
    dl = await q.dead_letters("a")
    assert dl[0]["reason"].startswith("mapper_parsing") and dl[0]["lines"] == [b'{"x":1}']
    assert q.counters["dead_letter:a"] == 1
    await q.close()


async def test_release_all_hands_unacked_leases_out_again(tmp_path):
    q = await open_queue(tmp_path)
    await q.append(lines("x", 2), PRIORITY_SECURITY)
    first = await q.lease("a")
    assert await q.lease("a") is None
    q.release_all("a")
    again = await q.lease("a")
    assert again is not None and again.lines == first.lines
    await q.close()


async def test_delivery_acks_written_in_the_background_are_durable_after_stop(tmp_path):
    """The delivery loop does not wait for an ack's write before its next lease; stop() waits
    for the writes, so after a restart nothing delivered is leased again."""
    from shipper.delivery import DeliveryConfig, DeliveryLoop
    from shipper.output import Batch, SendResult

    class Sink:
        name = "a"

        def __init__(self) -> None:
            self.got: list[bytes] = []

        async def start(self) -> None: ...

        async def send(self, batch: Batch) -> SendResult:
            self.got.extend(batch.lines)
            return SendResult()

        async def close(self) -> None: ...

    q = await open_queue(tmp_path)
    for p in "abcdefgh":
        await q.append(lines(p, 50), PRIORITY_SECURITY)
    sink = Sink()
    loop = DeliveryLoop(q, sink, DeliveryConfig(batch_events=60, concurrency=3))
    await loop.start()
    assert await loop.flush(timeout=10)
    await loop.stop()
    await q.close()
    assert sorted(sink.got) == sorted(b for p in "abcdefgh" for b in lines(p, 50))
    q = await open_queue(tmp_path)
    assert await q.lease("a") is None
    assert (await q.stats())["a"].pending_events == 0 and q.bytes_used == 0
    await q.close()


async def test_wal_is_checkpointed_off_the_commit_and_stays_bounded(tmp_path, monkeypatch):
    """SQLite's automatic checkpoint (inside a COMMIT, so inside an ack's wait) is off; the
    queue checkpoints on its own thread once enough was written, and the WAL file stays
    bounded however many commits race those checkpoints."""
    import shipper.queue as queue_mod
    from tests.fixtures.collector import wait_for

    monkeypatch.setattr(queue_mod, "CHECKPOINT_BYTES", 64 * 1024)
    monkeypatch.setattr(queue_mod, "CHECKPOINT_INLINE_BYTES", 1024 * 1024)
    q = await open_queue(tmp_path)
    assert q._db is not None and q._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    wal = tmp_path / "q.db-wal"
    chunk = [b'{"pad":"' + b"x" * 1000 + b'"}'] * 20  # ~20 KB a chunk
    for i in range(400):  # ~8 MB in all, 120x the checkpoint threshold
        await q.append(chunk, PRIORITY_SECURITY, key=f"k{i}")
        lease = await q.lease("a")
        assert lease is not None
        await q.ack(lease)
        # the bound, plus the commits made while a background checkpoint reports it
        assert wal.stat().st_size < 3 * 1024 * 1024
    assert q.checkpoints > 0
    assert await wait_for(lambda: not q._ckpt_running, timeout=30)
    await q.close()
    q = await open_queue(tmp_path)  # nothing lost: keys and counters as committed
    assert q.counters["appended_events"] == 400 * 20
    assert (await q.append(chunk, PRIORITY_SECURITY, key="k7")).duplicate
    await q.close()
