"""A full disk under the durable queue and its delivery loop (a real, filled tmpfs).

Appends fail with one typed exception (StorageFull, a QueueFull and an OSError),
nothing of a failed write stays in memory (byte count, counters, cursors equal what a
fresh reader finds on disk), delivery workers survive failed acks and dead-letter
writes (up goes false, errors are counted), and once the filler is deleted delivery
resumes by itself: everything accepted is delivered exactly once, counted by event id.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from canhgac.schema import PRIORITY_SECURITY
from shipper.delivery import DeliveryConfig, DeliveryLoop
from shipper.output import Batch, SendResult
from shipper.queue import DurableQueue, QueueFull, StorageError, StorageFull
from tests.fixtures.collector import wait_for
from tests.fixtures.smallfs import fill, small_tmpfs


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path) as mnt:
        yield mnt


def events(prefix: str, n: int, size: int = 200) -> list[bytes]:
    return [orjson.dumps({"event": {"id": f"{prefix}-{i}"}, "pad": "x" * size}) for i in range(n)]


def ids(lines: list[bytes]) -> list[str]:
    return [orjson.loads(line)["event"]["id"] for line in lines]


def on_disk(path: Path) -> dict[str, object]:
    """What a fresh reader of the database finds (its own connection)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            "bytes": db.execute("SELECT COALESCE(SUM(nbytes),0) FROM chunks").fetchone()[0],
            "counters": dict(db.execute("SELECT name, value FROM counters").fetchall()),
            "cursors": dict(db.execute("SELECT output, acked FROM cursors").fetchall()),
        }
    finally:
        db.close()


def in_memory(q: DurableQueue) -> dict[str, object]:
    return {"bytes": q.bytes_used, "counters": dict(q.counters),
            "cursors": {name: c.durable for name, c in q._cursors.items()}}


async def test_failed_writes_raise_one_typed_error_and_change_nothing(small_fs: Path) -> None:
    path = small_fs / "q.db"
    q = DurableQueue(path, outputs=("a",), probe_interval=0.05)
    await q.open()
    accepted: list[bytes] = []
    for k in range(3):
        chunk = events(f"before{k}", 20)
        assert (await q.append(chunk, PRIORITY_SECURITY, key=f"batch-{k}")).accepted == 20
        accepted += chunk
    lease = await q.lease("a", max_events=20)
    assert lease is not None
    filler = fill(small_fs)
    assert q.writable()

    with pytest.raises(StorageFull) as info:
        await q.append(events("lost", 20), PRIORITY_SECURITY, key="batch-lost")
    err = info.value
    assert isinstance(err, QueueFull) and isinstance(err, OSError) and err.errno == errno.ENOSPC
    assert "disk is full" in str(err) and "q.db" in str(err)
    assert not q.writable() and q.storage_full and "disk is full" in q.last_write_error
    assert in_memory(q) == on_disk(path)

    # a group commit fails as a whole, each caller gets the typed error
    results = await asyncio.gather(*(q.append(events(f"g{i}", 5), PRIORITY_SECURITY)
                                     for i in range(5)), return_exceptions=True)
    assert all(isinstance(r, StorageFull) for r in results), results
    with pytest.raises(StorageFull):
        await q.ack(lease)
    with pytest.raises(StorageFull):
        await q.dead_letter("a", [b'{"x":1}'], "bad")
    assert in_memory(q) == on_disk(path)
    assert (await q.stats())["a"].pending_events == 60  # the ack is not on disk
    assert q.write_errors >= 4

    filler.unlink()
    # the queue's own probe write finds the space again, with nobody else writing
    assert await wait_for(q.writable, 10)
    assert not q.storage_full and q.last_write_error == ""
    await q.ack(lease)  # retrying the failed ack writes the cursor
    assert (await q.stats())["a"].pending_events == 40
    assert in_memory(q) == on_disk(path)
    # the batch that failed was not kept: its retry is stored, not a duplicate
    retry = events("lost", 20)
    r = await q.append(retry, PRIORITY_SECURITY, key="batch-lost")
    assert r.accepted == 20 and not r.duplicate
    accepted += retry
    assert in_memory(q) == on_disk(path)
    before = q.bytes_used
    await q.close()

    q = DurableQueue(path, outputs=("a",))
    await q.open()
    try:
        assert q.bytes_used == before
        got: list[bytes] = list(lease.lines)
        while (nxt := await q.lease("a")) is not None:
            got += nxt.lines
            await q.ack(nxt)
        assert sorted(ids(got)) == sorted(ids(accepted))
        assert q.bytes_used == 0 == on_disk(path)["bytes"]
    finally:
        await q.close()


class _Faulty:
    """A connection whose COMMIT and ROLLBACK fail (an I/O error the disk never clears)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.fail = True

    @property
    def in_transaction(self) -> bool:
        return self.db.in_transaction

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if self.fail and sql in ("COMMIT", "ROLLBACK"):
            raise sqlite3.OperationalError(f"disk I/O error during {sql}")
        return self.db.execute(sql, *args)


async def test_a_failing_rollback_never_hides_the_first_error(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    q = DurableQueue(path, outputs=("a",))
    await q.open()
    await q.append(events("a", 3), PRIORITY_SECURITY)
    real = q._db
    assert real is not None
    faulty = _Faulty(real)
    q._db = faulty  # type: ignore[assignment]
    try:
        with pytest.raises(StorageError) as info:
            await q.append(events("b", 3), PRIORITY_SECURITY)
        assert "COMMIT" in str(info.value) and "ROLLBACK" not in str(info.value)
        assert not isinstance(info.value, StorageFull) and not q.writable()
        assert real.in_transaction  # the failed ROLLBACK left it open
        faulty.fail = False
        # the next write rolls the leftover back first, then succeeds
        assert (await q.append(events("c", 3), PRIORITY_SECURITY)).accepted == 3
        assert q.writable()
    finally:
        q._db = real
    assert in_memory(q) == on_disk(path)
    lease = await q.lease("a")
    assert lease is not None and ids(lease.lines) == ids(events("a", 3) + events("c", 3))
    await q.close()


class _Sink:
    """Records every line; lines whose id starts with ``dead`` are refused permanently."""

    name = "a"

    def __init__(self) -> None:
        self.got: list[bytes] = []

    async def start(self) -> None: ...

    async def send(self, batch: Batch) -> SendResult:
        self.got.extend(batch.lines)
        return SendResult(dead=[(i, "refused") for i, line in enumerate(batch.lines)
                                if line.startswith(b'{"event":{"id":"dead')])

    async def close(self) -> None: ...


async def test_delivery_survives_a_full_disk_and_resumes_by_itself(small_fs: Path) -> None:
    path = small_fs / "q.db"
    q = DurableQueue(path, outputs=("a",), probe_interval=0.05)
    await q.open()
    accepted: list[bytes] = []
    for k in range(10):
        chunk = events(f"ok{k}", 10) + events(f"dead{k}", 1)
        await q.append(chunk, PRIORITY_SECURITY)
        accepted += chunk
    filler = fill(small_fs)
    sink = _Sink()
    loop = DeliveryLoop(q, sink, DeliveryConfig(batch_events=11, concurrency=3,
                                                backoff_initial=0.01, spool_retry_max=0.05))
    await loop.start()
    try:
        # dead-letter and ack writes fail: the loop shows it and keeps trying
        assert await wait_for(lambda: loop.stats.spool_errors >= 5, 20)
        assert not loop.stats.up
        assert "disk is full" in loop.stats.last_error
        assert all(not t.done() for t in loop._tasks), "a delivery worker ended"
        with pytest.raises(StorageFull):
            await q.append(events("refused", 5), PRIORITY_SECURITY)
        # no new lease while acks cannot be written: at most one lease per worker is out
        assert len(sink.got) <= 3 * 11
        filler.unlink()
        assert await loop.flush(timeout=30), "delivery did not resume after space came back"
        late = events("late", 10)
        await q.append(late, PRIORITY_SECURITY)
        accepted += late
        assert await loop.flush(timeout=30)
        assert loop.stats.up and all(not t.done() for t in loop._tasks)
    finally:
        await loop.stop()
    got = ids(sink.got)
    assert len(got) == len(set(got)), "something was delivered twice"
    assert set(got) == set(ids(accepted))
    dead = [line for d in await q.dead_letters("a", limit=1000) for line in d["lines"]]
    assert sorted(ids(dead)) == sorted(i for i in ids(accepted) if i.startswith("dead"))
    assert loop.stats.dead_events == 10 == q.counters["dead_letter:a"]
    assert loop.stats.delivered_events == len(accepted) - 10
    assert in_memory(q) == on_disk(path)
    assert q.bytes_used == 0
    await q.close()
