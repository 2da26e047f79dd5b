"""What the mock center received, in SQLite, so tests and operators can inspect it.

Idempotency is enforced twice: a repeated (key id, batch id) returns the stored
acknowledgement without touching the reports, and (key id, event.id) is unique,
so even a batch re-cut differently after a collector restart never stores an
event twice. Duplicates are counted, never silently merged.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from canhgac.sqlite import connect as sqlite_connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches(
    key_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    received REAL NOT NULL,
    ack BLOB NOT NULL,
    PRIMARY KEY(key_id, batch_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reports(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    received REAL NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    dataset TEXT NOT NULL,
    system_id TEXT,
    severity INTEGER,
    doc BLOB NOT NULL,
    UNIQUE(key_id, event_id)
);
CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen_signatures(sig TEXT PRIMARY KEY, t REAL NOT NULL) WITHOUT ROWID;
"""


@dataclass(slots=True)
class Line:
    """One parsed report line, ready to store."""

    event_id: str
    kind: str
    dataset: str
    system_id: str | None
    severity: int | None
    doc: bytes


class Storage:
    """Thread-safe (one lock); callers run it in an executor so the loop never blocks."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite_connect(self.path, synchronous="NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- replay protection that survives a restart (canhgac.signing.SeenStore) ----------
    def seen_since(self, t: float) -> list[tuple[str, float]]:
        with self._lock:
            self._db.execute("DELETE FROM seen_signatures WHERE t < ?", (t,))
            return [(s, float(u)) for s, u in
                    self._db.execute("SELECT sig, t FROM seen_signatures").fetchall()]

    def remember(self, signature: str, t: float) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO seen_signatures(sig, t) VALUES(?, ?)",
                             (signature, t))

    def known_batch(self, key_id: str, batch_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT ack FROM batches WHERE key_id=? AND batch_id=?", (key_id, batch_id)
            ).fetchone()
        return orjson.loads(row[0]) if row else None

    def store_batch(
        self, key_id: str, batch_id: str, lines: list[Line], ack: dict[str, Any]
    ) -> dict[str, Any]:
        """Store lines and the batch ack in one transaction; fills ``accepted``/``duplicates``.

        If the batch id was stored meanwhile (two concurrent retries), the first
        ack wins and is returned marked as a duplicate batch.
        """
        now = time.time()
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT ack FROM batches WHERE key_id=? AND batch_id=?", (key_id, batch_id)
                ).fetchone()
                if row is not None:
                    db.execute("ROLLBACK")
                    first = orjson.loads(row[0])
                    first["duplicate_batch"] = True
                    return first
                accepted = 0
                for ln in lines:
                    cur = db.execute(
                        "INSERT OR IGNORE INTO reports(key_id, batch_id, received, event_id, kind,"
                        " dataset, system_id, severity, doc) VALUES(?,?,?,?,?,?,?,?,?)",
                        (key_id, batch_id, now, ln.event_id, ln.kind, ln.dataset, ln.system_id,
                         ln.severity, ln.doc),
                    )
                    accepted += cur.rowcount
                ack["accepted"] = accepted
                ack["duplicates"] = len(lines) - accepted
                if batch_id:
                    db.execute(
                        "INSERT INTO batches(key_id, batch_id, received, ack) VALUES(?,?,?,?)",
                        (key_id, batch_id, now, orjson.dumps(ack)),
                    )
                self._bump(db, "batches", 1)
                self._bump(db, "accepted", accepted)
                self._bump(db, "duplicate_events", len(lines) - accepted)
                self._bump(db, "rejected_lines", int(ack.get("rejected", 0)))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return ack

    def bump(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._bump(self._db, name, by)

    @staticmethod
    def _bump(db: sqlite3.Connection, name: str, by: int) -> None:
        if by:
            db.execute(
                "INSERT INTO counters(name, value) VALUES(?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (name, by),
            )

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT name, value FROM counters").fetchall())

    def reports(
        self,
        *,
        kind: str | None = None,
        key_id: str | None = None,
        since_seq: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        sql = ("SELECT seq, key_id, batch_id, received, event_id, kind, dataset, system_id,"
               " severity, doc FROM reports WHERE seq > ?")
        args: list[Any] = [since_seq]
        if kind:
            sql += " AND kind=?"
            args.append(kind)
        if key_id:
            sql += " AND key_id=?"
            args.append(key_id)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [
            {"seq": r[0], "key_id": r[1], "batch_id": r[2], "received": r[3], "event_id": r[4],
             "kind": r[5], "dataset": r[6], "system_id": r[7], "severity": r[8],
             "doc": orjson.loads(r[9])}
            for r in rows
        ]

    def recent(self, limit: int, kind: str | None = None) -> tuple[int, list[dict[str, Any]]]:
        """(total matching, the last ``limit`` of them in arrival order) without reading all."""
        where, args = ("WHERE kind=?", [kind]) if kind else ("", [])
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM reports {where}", args).fetchone()[0]
            row = self._db.execute(
                f"SELECT MIN(seq) FROM (SELECT seq FROM reports {where} ORDER BY seq DESC LIMIT ?)",
                [*args, limit]).fetchone()
        first = (row[0] or 1) - 1
        return total, self.reports(kind=kind, since_seq=first, limit=limit)

    def event_ids(self, kind: str | None = None) -> list[str]:
        """Every stored event id (with repetition, if the uniqueness rule ever failed)."""
        sql = "SELECT event_id FROM reports"
        args: tuple[Any, ...] = ()
        if kind:
            sql += " WHERE kind=?"
            args = (kind,)
        with self._lock:
            return [r[0] for r in self._db.execute(sql, args).fetchall()]

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM reports").fetchone()[0]
