"""Writer side of the embedded store (an Output for the delivery loop).

A write that fails (disk full, I/O error) is rolled back and raised as a
TransientError: the delivery loop keeps the batch in the spool and retries it.
``probe`` (see shipper.output.Probed) says the retry is worth trying now as soon
as the filesystem has room again, so the store catches up within seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from canhgac.config import Duration, load_section
from canhgac.sqlite import connect as sqlite_connect
from shipper.docid import document_id
from shipper.output import Batch, BuildContext, Probed, SendResult, TransientError
from shipper.outputs.store.schema import SCHEMA

log = logging.getLogger(__name__)

# free bytes on the store's filesystem that make a retry after a failed write worth it now
_ROOM_AGAIN = 256 * 1024


@dataclass
class StoreConfig:
    path: Path | None = None  # default: <collector state_dir>/events.db
    retention: Duration = Duration(30 * 86400)


def open_store(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    db = sqlite_connect(path, synchronous=synchronous)  # type: ignore[arg-type]
    db.executescript(SCHEMA)
    return db


def _stored_id(doc: dict[str, Any]) -> str:
    doc_id = document_id(doc)
    if doc_id is None:
        raise ValueError("event.id missing or not a string")
    return doc_id


def _row(line: bytes) -> tuple[Any, ...]:
    doc = orjson.loads(line)
    ev = doc["event"]
    ts = int(datetime.fromisoformat(doc["@timestamp"]).timestamp() * 1000)
    cg = doc.get("canhgac") or {}
    return (
        _stored_id(doc), ts, ev.get("dataset"), ev.get("kind"),
        (cg.get("system") or {}).get("id"), (cg.get("unit") or {}).get("name"),
        line.decode(),
    )


class StoreOutput(Probed):
    name = "store"

    def __init__(self, config: StoreConfig, path: Path) -> None:
        self.config = config
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._last_prune = 0.0
        self.stored = 0
        self.duplicates = 0
        self._write_failed = False

    async def start(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        if self._db is None:
            self._db = await self._run(open_store, self.path)

    async def _run(self, fn: Any, *args: Any) -> Any:
        assert self._executor is not None, "store output used before start()"
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def send(self, batch: Batch) -> SendResult:
        try:
            result: SendResult = await self._run(self._write, batch.lines)
        except sqlite3.Error as exc:
            self._write_failed = True
            raise TransientError(f"store {self.path.name}: write failed, retried: {exc}") from None
        self._write_failed = False
        return result

    async def probe(self) -> bool:
        """After a failed write: True once the store's filesystem has room again."""
        if not self._write_failed:
            return False
        try:
            st = os.statvfs(self.path.parent)
        except OSError:
            return False
        return st.f_bavail * st.f_frsize >= _ROOM_AGAIN

    def _write(self, lines: list[bytes]) -> SendResult:
        db = self._db
        assert db is not None
        rows, dead = [], []
        for i, line in enumerate(lines):
            try:
                rows.append(_row(line))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                dead.append((i, f"store: unusable event: {exc!r}"[:500]))
        now = time.time()
        prune = now - self._last_prune > 300
        try:
            if db.in_transaction:  # left open by a ROLLBACK that failed
                db.execute("ROLLBACK")
            db.execute("BEGIN")
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO events(id, ts, dataset, kind, system_id, unit, doc) "
                "VALUES(?,?,?,?,?,?,?)",
                rows,
            )
            inserted = db.total_changes - before
            if prune:
                db.execute("DELETE FROM events WHERE ts < ?",
                           (int((now - self.config.retention) * 1000),))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite may have rolled back by itself (disk full)
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error as rb:  # never hides the first error
                    log.warning("store %s: ROLLBACK failed too: %s", self.path.name, rb)
            raise
        if prune:
            self._last_prune = now
        self.stored += inserted
        self.duplicates += len(rows) - inserted
        return SendResult(dead=dead)

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def build(raw: Any, ctx: BuildContext) -> StoreOutput:
    cfg = load_section(raw, StoreConfig, ctx.source, "outputs.store")
    path = cfg.path or (ctx.state_dir / "events.db")
    return StoreOutput(cfg, Path(path))
