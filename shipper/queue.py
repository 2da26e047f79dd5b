"""A durable, bounded, multi-consumer queue on SQLite (WAL, synchronous=FULL).

Why SQLite: one file, crash-safe commits, and a transaction can carry the batch,
its idempotency key and the byte accounting together. The unit of storage is a
*chunk* (a list of NDJSON lines appended together), so the cost of a commit and
its fsync is paid per batch, never per event.

Semantics
- ``append`` returns only after the chunk is durably committed (fsync). Appends
  that arrive while a commit runs are grouped into the next commit.
- Each output has its own cursor. ``lease`` hands out the next chunks; ``ack``
  advances the cursor once every earlier lease is acked too (at-least-once:
  a crash before ack means the chunks are leased again after restart).
- A chunk is deleted once every registered output has acked it.
- Bounded by ``max_bytes``. When full, low-priority (telemetry) chunks are
  refused, and a high-priority chunk evicts the oldest undelivered telemetry to
  make room; every dropped event is counted, persistently.

Storage failures (a full disk, an I/O error): every write (append, ack,
dead-letter) is one transaction that is either committed or rolled back as a
whole. A failed write changes nothing in memory either (byte count, counters,
cursors are updated only after COMMIT returns), a ROLLBACK that fails too is
logged and never hides the first error, and the caller gets one typed
exception: ``StorageFull`` (disk full; it is a ``QueueFull``, so an ingest
answers it with backpressure) or ``StorageError`` (any other failed write).
``writable()`` says whether the last write succeeded; while it does not, the
writer tries a one-row write every ``probe_interval`` seconds, so it turns
true again when space comes back even if nobody else writes.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from canhgac.schema import PRIORITY_TELEMETRY
from canhgac.sqlite import connect as sqlite_connect
from canhgac.tasks import wait_for_event

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    priority INTEGER NOT NULL,
    n INTEGER NOT NULL,
    nbytes INTEGER NOT NULL,
    created REAL NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_priority ON chunks(priority, seq);
CREATE TABLE IF NOT EXISTS cursors(output TEXT PRIMARY KEY, acked INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    output TEXT NOT NULL,
    created REAL NOT NULL,
    reason TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS keys(key TEXT PRIMARY KEY, created REAL NOT NULL, value BLOB)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value) WITHOUT ROWID;
"""

_T = TypeVar("_T")
# WAL bytes written since the last checkpoint that start one in the background (about
# SQLite's own default of 1000 pages), and the bound past which the writer checkpoints
# itself between commits (a background checkpoint that keeps racing commits may never
# let the WAL start over).
CHECKPOINT_BYTES = 4 * 1024 * 1024
CHECKPOINT_INLINE_BYTES = 16 * CHECKPOINT_BYTES
# SQLite primary result codes (the low byte of an extended code)
_SQLITE_FULL = 13


class QueueFull(Exception):
    """No room even after evicting telemetry: the caller must apply backpressure."""


class StorageError(OSError):
    """A write to the queue's database failed (I/O error, disk full, ...).

    The transaction was rolled back: nothing of this write was kept, on disk or in
    memory. Retrying later is safe.
    """


class StorageFull(StorageError, QueueFull):
    """The filesystem holding the queue is full (SQLITE_FULL): apply backpressure.

    Also a ``QueueFull``: whoever answers a full queue with backpressure (503 +
    Retry-After) answers a full disk the same way.
    """


def _storage_error(where: str, exc: sqlite3.Error) -> StorageError:
    code = getattr(exc, "sqlite_errorcode", None)
    name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    if code is not None and code & 0xFF == _SQLITE_FULL:
        return StorageFull(errno.ENOSPC, f"{where}: the disk is full ({name}: {exc}); "
                                         "nothing of this write was kept, retry later")
    return StorageError(errno.EIO, f"{where}: the database could not be written ({name}: {exc}); "
                                   "nothing of this write was kept, retry later")


@dataclass(slots=True)
class AppendResult:
    accepted: int = 0
    dropped: int = 0
    duplicate: bool = False
    key_value: bytes | None = None


@dataclass(slots=True)
class Lease:
    output: str
    first: int
    last: int
    lines: list[bytes]
    created: float  # birth time of the oldest chunk in the lease
    done: bool = False

    @property
    def batch_id(self) -> str:
        return f"{self.output}:{self.first}-{self.last}"


@dataclass(slots=True)
class _Cursor:
    acked: int  # every lease up to here is acked (in memory)
    read_pos: int
    durable: int  # what the database holds; behind ``acked`` while an ack's write fails
    inflight: deque[Lease] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True)
class _PendingAppend:
    data: bytes
    n: int
    priority: int
    key: str | None
    key_value: bytes | None
    future: asyncio.Future[AppendResult]


@dataclass(slots=True)
class _Txn:
    """What one write transaction changes in memory: applied only after its COMMIT."""

    db: sqlite3.Connection
    bytes_used: int
    bumps: dict[str, int] = field(default_factory=dict)
    wal_bytes: int = 4096  # about what the transaction adds to the WAL (for checkpoints)

    def bump(self, name: str, by: int) -> None:
        if by:
            self.bumps[name] = self.bumps.get(name, 0) + by
            self.db.execute(
                "INSERT INTO counters(name, value) VALUES(?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (name, by),
            )


@dataclass(frozen=True, slots=True)
class OutputStats:
    pending_events: int
    pending_chunks: int
    oldest_pending_age_seconds: float


def split_lines(data: bytes) -> list[bytes]:
    return [line for line in data.split(b"\n") if line]


class DurableQueue:
    """See module docstring. All database work runs on one dedicated thread."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 512 * 1024 * 1024,
        outputs: tuple[str, ...] = (),
        key_ttl_seconds: float = 24 * 3600,
        synchronous: str = "FULL",
        probe_interval: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.key_ttl_seconds = key_ttl_seconds
        self.probe_interval = probe_interval
        self._synchronous = synchronous
        self._output_names = tuple(outputs)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"queue-{self.path.name}")
        self._db: sqlite3.Connection | None = None
        # Leases read on their own connection and thread (WAL: readers never wait for a
        # writer), so an output's next batch is not queued behind an ingest commit's fsync.
        self._read_executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"queue-read-{self.path.name}")
        self._rdb: sqlite3.Connection | None = None
        # WAL checkpoints run on their own connection and thread, never inside a commit
        # (SQLite's automatic checkpoint ran in the COMMIT of whichever append crossed
        # 1000 pages, so that ack waited for 4 MiB to be copied and fsync'd again).
        self._ckpt_executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"queue-ckpt-{self.path.name}")
        self._cdb: sqlite3.Connection | None = None
        self._wal_unckpt = 0  # WAL bytes since the last background checkpoint (writer thread)
        self._ckpt_running = False
        self._wal_restart = False  # the WAL grew past CHECKPOINT_INLINE_BYTES: writer restarts it
        self._page_size = 4096
        self._ckpt_error = ""
        self.checkpoints = 0  # checkpoints that copied the whole WAL (background or inline)
        self._cursors: dict[str, _Cursor] = {}
        # Appends waiting for a commit: added on the event loop, taken by the writer thread.
        self._pending: list[_PendingAppend] = []
        self._pending_lock = threading.Lock()
        self._writer_wakeup: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self.bytes_used = 0
        self.counters: dict[str, int] = {}
        self._last_key_prune = 0.0
        # Storage health: the last write's error ("" after a successful write), whether it
        # was a full disk, and how many write transactions failed since open (in memory).
        self.last_write_error = ""
        self.storage_full = False
        self.write_errors = 0

    # -- lifecycle -------------------------------------------------------
    async def open(self) -> None:
        await self._run(self._open_sync)
        await asyncio.get_running_loop().run_in_executor(self._read_executor, self._open_reader_sync)
        self._writer_wakeup = asyncio.Event()
        self._writer = asyncio.create_task(self._writer_loop(), name=f"queue-writer-{self.path.name}")

    def _open_sync(self) -> None:
        try:
            db = sqlite_connect(self.path, synchronous=self._synchronous)  # type: ignore[arg-type]
            db.executescript(_SCHEMA)
            db.execute("PRAGMA wal_autocheckpoint=0")  # see _after_commit
            self._page_size = db.execute("PRAGMA page_size").fetchone()[0]
        except sqlite3.Error as exc:
            raise _storage_error(f"queue {self.path}: open", exc) from exc
        self._db = db
        self.bytes_used = db.execute("SELECT COALESCE(SUM(nbytes),0) FROM chunks").fetchone()[0]
        self.counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        known = dict(db.execute("SELECT output, acked FROM cursors").fetchall())
        for name in self._output_names:
            acked = known.get(name, 0)
            self._cursors[name] = _Cursor(acked=acked, read_pos=acked, durable=acked)

        def register(txn: _Txn) -> None:
            for stale in set(known) - set(self._output_names):
                log.warning("queue %s: output %r is no longer configured; dropping its cursor",
                            self.path.name, stale)
                txn.db.execute("DELETE FROM cursors WHERE output=?", (stale,))
            for name in self._output_names:
                if name not in known:
                    txn.db.execute("INSERT INTO cursors(output, acked) VALUES(?, 0)", (name,))
            txn.bytes_used -= self._gc_sync(txn.db, self._floor())

        self._transaction("open", register)

    def _open_reader_sync(self) -> None:
        self._cdb = sqlite_connect(self.path, synchronous=self._synchronous)  # type: ignore[arg-type]
        self._cdb.execute("PRAGMA wal_autocheckpoint=0")
        self._rdb = sqlite_connect(self.path, synchronous=self._synchronous)  # type: ignore[arg-type]
        self._rdb.execute("PRAGMA query_only=1")
        # it reads each chunk once, in order: a small page cache is enough (bounded memory)
        self._rdb.execute("PRAGMA cache_size=-512")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            assert self._writer_wakeup is not None
            self._writer_wakeup.set()
            await self._writer
        for cur in self._cursors.values():
            cur.wakeup.set()
        if self._rdb is not None:
            await asyncio.get_running_loop().run_in_executor(self._read_executor, self._rdb.close)
        self._read_executor.shutdown(wait=True)
        self._ckpt_executor.shutdown(wait=True)
        if self._cdb is not None:
            self._cdb.close()
        if self._db is not None:
            await self._run(self._db.close)
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- one write transaction (writer thread) ------------------------------
    def writable(self) -> bool:
        """False while the last write to the database failed (disk full, I/O error).

        Cheap (no I/O): for readiness checks. Turns true after the next successful write;
        while false, the writer itself tries a one-row write every ``probe_interval``.
        Never refuse a write because of it: only a write shows that space is back.
        """
        return not self.last_write_error

    def _transaction(self, what: str, body: Callable[[_Txn], _T]) -> _T:
        """Run ``body`` in one write transaction; apply its in-memory effects after COMMIT.

        Any failure rolls the transaction back (a failing ROLLBACK is logged, never raised
        over the first error) and leaves memory as it was; a database error is raised as
        StorageError / StorageFull.
        """
        db = self._db
        assert db is not None
        txn = _Txn(db, self.bytes_used)
        try:
            if db.in_transaction:  # left open by an earlier ROLLBACK that failed
                self._rollback(db, what)
            db.execute("BEGIN IMMEDIATE")
            out = body(txn)
            db.execute("COMMIT")
        except BaseException as exc:
            self._rollback(db, what)
            if isinstance(exc, sqlite3.Error):
                err = _storage_error(f"queue {self.path.name}: {what}", exc)
                self._write_failed(err)
                raise err from exc
            raise
        self.bytes_used = txn.bytes_used
        self._after_commit(txn.wal_bytes)
        for name, by in txn.bumps.items():
            self.counters[name] = self.counters.get(name, 0) + by
        if self.last_write_error:
            log.warning("queue %s: writes succeed again (%d failed since open)",
                        self.path.name, self.write_errors)
            self.last_write_error = ""
            self.storage_full = False
        return out

    def _after_commit(self, wal_bytes: int) -> None:
        """Start a WAL checkpoint in the background once enough was written (writer thread).

        The commit is durable in the WAL already (fsync'd): a checkpoint only copies pages
        into the database file so the WAL can start over, and it changes nothing of what a
        crash keeps. PASSIVE never waits for the writer or readers. A background checkpoint
        that keeps racing commits may leave the WAL never starting over (a commit began
        while it ran); once it reports a WAL longer than CHECKPOINT_INLINE_BYTES, the writer
        checkpoints between two commits itself (RESTART), which bounds the WAL file.
        """
        self._wal_unckpt += wal_bytes
        if self._wal_restart and self._db is not None:
            self._checkpoint(self._db, "RESTART")
        elif (self._wal_unckpt >= CHECKPOINT_BYTES and not self._ckpt_running
              and self._cdb is not None):
            self._ckpt_running = True
            self._wal_unckpt = 0
            try:
                self._ckpt_executor.submit(self._checkpoint_background)
            except RuntimeError:  # closing: the last connection's close checkpoints
                self._ckpt_running = False

    def _checkpoint_background(self) -> None:
        try:
            if self._cdb is not None:
                self._checkpoint(self._cdb, "PASSIVE")
        finally:
            self._ckpt_running = False

    def _checkpoint(self, db: sqlite3.Connection, mode: str) -> None:
        """PASSIVE (background: waits for nobody) or RESTART (the writer: waits, at most
        busy_timeout, for readers to finish, so that the next commit starts the WAL over)."""
        try:
            busy, frames, done = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error as exc:  # not a durability problem: the WAL only grows meanwhile
            if str(exc) != self._ckpt_error:
                log.warning("queue %s: WAL checkpoint failed (retried): %s", self.path.name, exc)
            self._ckpt_error = str(exc)
            return
        self._ckpt_error = ""
        if not busy and frames == done:
            self.checkpoints += 1
        if mode == "RESTART":
            self._wal_restart = bool(busy)
        elif frames * self._page_size >= CHECKPOINT_INLINE_BYTES:
            self._wal_restart = True

    def _rollback(self, db: sqlite3.Connection, what: str) -> None:
        if not db.in_transaction:  # SQLite rolled back by itself (SQLITE_FULL, IOERR)
            return
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.warning("queue %s: %s: ROLLBACK failed too (%s); retried before the next write",
                        self.path.name, what, exc)

    def _write_failed(self, err: StorageError) -> None:
        self.write_errors += 1
        message = str(err)
        if message != self.last_write_error:
            log.error("%s", message)
        self.last_write_error = message
        self.storage_full = isinstance(err, StorageFull)

    def _probe_sync(self) -> None:
        def touch(txn: _Txn) -> None:
            txn.db.execute(
                "INSERT INTO meta(name, value) VALUES('write_probe', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (time.time(),))

        self._transaction("write probe", touch)

    # -- append (group commit) ------------------------------------------
    async def append(
        self,
        lines: list[bytes],
        priority: int,
        *,
        key: str | None = None,
        key_value: bytes | None = None,
    ) -> AppendResult:
        """Durably store ``lines`` as one chunk.

        Raises QueueFull under pressure, StorageFull when the disk is full (also a
        QueueFull), StorageError when the database cannot be written; after either,
        nothing of this append was kept.
        """
        if self._closed:
            raise RuntimeError("queue is closed")
        if not lines and key is None:
            return AppendResult()
        data = b"\n".join(lines)
        fut: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        with self._pending_lock:
            self._pending.append(_PendingAppend(data, len(lines), priority, key, key_value, fut))
        assert self._writer_wakeup is not None
        self._writer_wakeup.set()
        return await fut

    async def _writer_loop(self) -> None:
        assert self._writer_wakeup is not None
        while True:
            if self.last_write_error and not self._closed:
                await wait_for_event(self._writer_wakeup, self.probe_interval)
            else:
                await self._writer_wakeup.wait()
            self._writer_wakeup.clear()
            if not self._pending:
                if self._closed:
                    return
                if self.last_write_error:
                    try:
                        await self._run(self._probe_sync)
                    except Exception:  # still failing: already logged and counted
                        pass
                continue
            try:
                await self._run(self._commit_pending, asyncio.get_running_loop())
            except Exception as exc:  # a bug: _commit_pending answers every append itself
                log.error("queue %s: commit failed: %r", self.path.name, exc)

    def _commit_pending(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit the waiting appends, group after group, until none wait (writer thread).

        The next group is committed as soon as the last one is, on this thread: handing
        each group back to the event loop before starting the next (which waits for
        whatever the loop is busy with, then for the GIL on this thread) added about a
        commit's time to every ack under load. Each group's appends are answered on the
        loop as soon as their commit returns. After a failed commit this stops; the
        writer loop picks up what waits (and probes) as before.
        """
        while True:
            with self._pending_lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                results = self._commit_sync(batch)
            except Exception as exc:  # disk full, I/O error: fail these appends loudly
                if not isinstance(exc, StorageError):
                    log.error("queue %s: commit failed: %r", self.path.name, exc)
                failed: list[AppendResult | Exception] = [exc] * len(batch)
                loop.call_soon_threadsafe(self._answer, batch, failed)
                return
            loop.call_soon_threadsafe(self._answer, batch, results)

    def _answer(self, batch: list[_PendingAppend], results: list[AppendResult | Exception]) -> None:
        """Settle the appends of one commit (event loop)."""
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                if isinstance(result, Exception):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)
        for cur in self._cursors.values():
            cur.wakeup.set()

    def _commit_sync(self, batch: list[_PendingAppend]) -> list[AppendResult | Exception]:
        now = time.time()

        def commit(txn: _Txn) -> list[AppendResult | Exception]:
            db = txn.db
            results: list[AppendResult | Exception] = []
            for item in batch:
                if item.key is not None:
                    row = db.execute("SELECT value FROM keys WHERE key=?", (item.key,)).fetchone()
                    if row is not None:
                        results.append(AppendResult(duplicate=True, key_value=row[0]))
                        continue
                if item.n:
                    size = len(item.data)
                    if txn.bytes_used + size > self.max_bytes:
                        if item.priority == PRIORITY_TELEMETRY:
                            txn.bump("dropped_telemetry", item.n)
                            results.append(AppendResult(dropped=item.n))
                            continue
                        if not self._evict_sync(txn, size):
                            txn.bump("refused_security", item.n)
                            results.append(QueueFull(f"queue {self.path.name} is full"))
                            continue
                    db.execute(
                        "INSERT INTO chunks(priority, n, nbytes, created, data) VALUES(?,?,?,?,?)",
                        (item.priority, item.n, size, now, item.data),
                    )
                    txn.bytes_used += size
                    txn.wal_bytes += size
                    txn.bump("appended_events", item.n)
                if item.key is not None:
                    db.execute(
                        "INSERT INTO keys(key, created, value) VALUES(?,?,?)",
                        (item.key, now, item.key_value),
                    )
                results.append(AppendResult(accepted=item.n, key_value=item.key_value))
            if now - self._last_key_prune > 60:
                db.execute("DELETE FROM keys WHERE created < ?", (now - self.key_ttl_seconds,))
            return results

        out = self._transaction("commit", commit)
        if now - self._last_key_prune > 60:
            self._last_key_prune = now
        return out

    def _evict_sync(self, txn: _Txn, need: int) -> bool:
        """Delete the oldest telemetry chunks until ``need`` bytes fit."""
        rows = txn.db.execute(
            "SELECT seq, n, nbytes FROM chunks WHERE priority=? ORDER BY seq",
            (PRIORITY_TELEMETRY,),
        ).fetchall()
        freed_events = 0
        for seq, n, nbytes in rows:
            if txn.bytes_used + need <= self.max_bytes:
                break
            txn.db.execute("DELETE FROM chunks WHERE seq=?", (seq,))
            txn.bytes_used -= nbytes
            freed_events += n
        txn.bump("dropped_telemetry", freed_events)
        return txn.bytes_used + need <= self.max_bytes

    # -- consume ---------------------------------------------------------
    def outputs(self) -> tuple[str, ...]:
        return self._output_names

    async def lease(
        self, output: str, max_events: int = 500, max_bytes: int = 5 * 1024 * 1024
    ) -> Lease | None:
        """Next chunks for ``output`` past everything already leased, or None."""
        cur = self._cursors[output]
        rows = await asyncio.get_running_loop().run_in_executor(
            self._read_executor, self._read_sync, cur.read_pos, max_events, max_bytes)
        if not rows:
            return None
        lines: list[bytes] = []
        for _seq, _n, data, _created in rows:
            lines.extend(split_lines(data))
        lease = Lease(output, rows[0][0], rows[-1][0], lines, rows[0][3])
        cur.read_pos = lease.last
        cur.inflight.append(lease)
        return lease

    def _read_sync(self, after: int, max_events: int, max_bytes: int) -> list[tuple[Any, ...]]:
        db = self._rdb
        assert db is not None
        out: list[tuple[Any, ...]] = []
        events = size = 0
        for row in db.execute(
            "SELECT seq, n, data, created FROM chunks WHERE seq > ? ORDER BY seq LIMIT 256",
            (after,),
        ):
            if out and (events + row[1] > max_events or size + len(row[2]) > max_bytes):
                break
            out.append(row)
            events += row[1]
            size += len(row[2])
        return out

    async def wait(self, output: str, timeout: float | None = None) -> None:
        """Sleep until new data may be available for ``output`` (or timeout)."""
        cur = self._cursors[output]
        await wait_for_event(cur.wakeup, timeout)
        cur.wakeup.clear()

    async def ack(self, lease: Lease) -> None:
        """Mark ``lease`` delivered; the cursor moves past it once all before it are too.

        Raises StorageError when the cursor cannot be written: the lease stays acked in
        memory (it is not handed out again by this process) and calling ``ack`` again
        (with this or any later lease) writes the cursor; until then the database keeps
        the older cursor, and a restart would deliver those chunks again (at-least-once).
        """
        cur = self._cursors[lease.output]
        lease.done = True
        while cur.inflight and cur.inflight[0].done:
            cur.acked = cur.inflight.popleft().last
        if cur.acked > cur.durable:
            await self._run(self._ack_sync, lease.output, cur.acked)

    def _ack_sync(self, output: str, acked: int) -> None:
        cur = self._cursors[output]
        if acked <= cur.durable:  # a later ack wrote it already
            return

        # cursor and garbage collection in one transaction: one commit (one fsync) per ack
        def write(txn: _Txn) -> None:
            txn.db.execute("UPDATE cursors SET acked=? WHERE output=?", (acked, output))
            txn.bytes_used -= self._gc_sync(txn.db, self._floor(output, acked))

        self._transaction("ack", write)
        cur.durable = acked

    def _floor(self, output: str | None = None, acked: int = 0) -> int:
        """The highest seq every output has durably acked (with ``output`` at ``acked``)."""
        if not self._cursors:
            return 0
        return min(acked if name == output else c.durable for name, c in self._cursors.items())

    @staticmethod
    def _gc_sync(db: sqlite3.Connection, floor: int) -> int:
        """Delete the chunks at or below ``floor``; returns the bytes freed."""
        freed = db.execute("SELECT COALESCE(SUM(nbytes),0) FROM chunks WHERE seq <= ?", (floor,))
        nbytes: int = freed.fetchone()[0]
        if nbytes:
            db.execute("DELETE FROM chunks WHERE seq <= ?", (floor,))
        return nbytes

    def release_all(self, output: str) -> None:
        """Forget unacked leases so they are handed out again (after a send loop restarts).

        Memory only: it cannot fail. Leases acked but whose cursor write failed are not
        handed out again; the next successful ack writes the cursor past them.
        """
        cur = self._cursors[output]
        cur.inflight.clear()
        cur.read_pos = cur.acked

    async def dead_letter(self, output: str, lines: list[bytes], reason: str) -> None:
        """Keep ``lines`` with ``reason``. Raises StorageError (nothing kept) on a failed write."""
        if not lines:
            return
        await self._run(self._dead_sync, output, lines, reason)

    def _dead_sync(self, output: str, lines: list[bytes], reason: str) -> None:
        def write(txn: _Txn) -> None:
            txn.db.execute(
                "INSERT INTO dead(output, created, reason, data) VALUES(?,?,?,?)",
                (output, time.time(), reason[:2000], b"\n".join(lines)),
            )
            txn.bump(f"dead_letter:{output}", len(lines))

        self._transaction("dead-letter", write)

    async def dead_letters(self, output: str | None = None,
                           limit: int = 100) -> list[dict[str, Any]]:
        def q() -> list[dict[str, Any]]:
            db = self._db
            assert db is not None
            sql = "SELECT id, output, created, reason, data FROM dead"
            args: tuple[str, ...] = ()
            if output:
                sql += " WHERE output=?"
                args = (output,)
            sql += " ORDER BY id DESC LIMIT ?"
            rows = db.execute(sql, (*args, limit)).fetchall()
            return [
                {"id": r[0], "output": r[1], "created": r[2], "reason": r[3],
                 "lines": split_lines(r[4])}
                for r in rows
            ]

        letters: list[dict[str, Any]] = await self._run(q)
        return letters

    # -- observe ---------------------------------------------------------
    async def stats(self) -> dict[str, OutputStats]:
        def q() -> dict[str, OutputStats]:
            db = self._db
            assert db is not None
            now = time.time()
            out: dict[str, OutputStats] = {}
            for name, cur in self._cursors.items():
                n, chunks, oldest = db.execute(
                    "SELECT COALESCE(SUM(n),0), COUNT(*), MIN(created) FROM chunks WHERE seq > ?",
                    (cur.durable,),
                ).fetchone()
                out[name] = OutputStats(n, chunks, (now - oldest) if oldest else 0.0)
            return out

        stats: dict[str, OutputStats] = await self._run(q)
        return stats

    def fill_ratio(self) -> float:
        return self.bytes_used / self.max_bytes if self.max_bytes else 0.0
