"""Writer side of the embedded store (an Output for the delivery loop)."""

from __future__ import annotations

import asyncio
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
from shipper.output import Batch, BuildContext, SendResult
from shipper.outputs.store.schema import SCHEMA


@dataclass
class StoreConfig:
    path: Path | None = None  # default: <collector state_dir>/events.db
    retention: Duration = Duration(30 * 86400)


def open_store(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    db = sqlite_connect(path, synchronous=synchronous)  # type: ignore[arg-type]
    db.executescript(SCHEMA)
    return db


def _row(line: bytes) -> tuple[Any, ...]:
    doc = orjson.loads(line)
    ev = doc["event"]
    ts = int(datetime.fromisoformat(doc["@timestamp"]).timestamp() * 1000)
    cg = doc.get("canhgac") or {}
    return (
        ev["id"], ts, ev.get("dataset"), ev.get("kind"),
        (cg.get("system") or {}).get("id"), (cg.get("unit") or {}).get("name"),
        line.decode(),
    )


class StoreOutput:
    name = "store"

    def __init__(self, config: StoreConfig, path: Path) -> None:
        self.config = config
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._last_prune = 0.0
        self.stored = 0
        self.duplicates = 0

    async def start(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        if self._db is None:
            self._db = await self._run(open_store, self.path)

    async def _run(self, fn: Any, *args: Any) -> Any:
        assert self._executor is not None, "store output used before start()"
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def send(self, batch: Batch) -> SendResult:
        result: SendResult = await self._run(self._write, batch.lines)
        return result

    def _write(self, lines: list[bytes]) -> SendResult:
        db = self._db
        assert db is not None
        rows, dead = [], []
        for i, line in enumerate(lines):
            try:
                rows.append(_row(line))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                dead.append((i, f"store: unusable event: {exc!r}"[:500]))
        db.execute("BEGIN")
        before = db.total_changes
        db.executemany(
            "INSERT OR IGNORE INTO events(id, ts, dataset, kind, system_id, unit, doc) "
            "VALUES(?,?,?,?,?,?,?)",
            rows,
        )
        inserted = db.total_changes - before
        now = time.time()
        if now - self._last_prune > 300:
            self._last_prune = now
            db.execute("DELETE FROM events WHERE ts < ?", (int((now - self.config.retention) * 1000),))
        db.execute("COMMIT")
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
