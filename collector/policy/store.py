"""Policy versions in ``<state_dir>/policy.db``: every ``policy set`` is a new version,
none is ever rewritten, so ``policy diff`` and an agent's reported version always mean
the same document. Version 0 is the empty policy (level defaults only)."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from canhgac.sqlite import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS policy_versions (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    document TEXT NOT NULL  -- JSON, as validated
);
"""


@dataclass(frozen=True)
class PolicyVersion:
    version: int
    created: float
    note: str
    document: dict[str, Any]


EMPTY = PolicyVersion(0, 0.0, "level defaults only", {})


class PolicyStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = connect(self.path)
            self._db.executescript(SCHEMA)
        return self._db

    def add(self, document: dict[str, Any], note: str = "") -> PolicyVersion:
        now = time.time()
        with self._lock:
            cur = self._conn().execute(
                "INSERT INTO policy_versions(created, note, document) VALUES(?, ?, ?)",
                (now, note, orjson.dumps(document).decode()))
            version = int(cur.lastrowid or 0)
        return PolicyVersion(version, now, note, document)

    def latest_version(self) -> int:
        with self._lock:
            row = self._conn().execute("SELECT MAX(version) FROM policy_versions").fetchone()
        return int(row[0] or 0)

    def get(self, version: int | None = None) -> PolicyVersion | None:
        """A version (None: the latest); None when there is no such version."""
        with self._lock:
            db = self._conn()
            row = (db.execute("SELECT version, created, note, document FROM policy_versions "
                              "ORDER BY version DESC LIMIT 1").fetchone() if version is None
                   else db.execute("SELECT version, created, note, document FROM policy_versions "
                                   "WHERE version = ?", (version,)).fetchone())
        if row is None:
            return EMPTY if version in (None, 0) else None
        return PolicyVersion(int(row[0]), float(row[1]), str(row[2]), orjson.loads(row[3]))

    def history(self) -> list[PolicyVersion]:
        with self._lock:
            rows = self._conn().execute("SELECT version, created, note, document FROM "
                                        "policy_versions ORDER BY version").fetchall()
        return [PolicyVersion(int(r[0]), float(r[1]), str(r[2]), orjson.loads(r[3])) for r in rows]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
