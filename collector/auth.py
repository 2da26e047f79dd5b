"""Agent credentials: one-time enrollment tokens and per-agent secrets.

Secrets are 256-bit random values, so a plain SHA-256 is a sufficient at-rest
hash (no password stretching needed); comparisons are constant-time. The
database is shared with the `canhgac collector enroll-token|revoke-agent`
commands, which run as separate processes: the serving process notices their
writes through SQLite's ``PRAGMA data_version`` on every lookup, so a
revocation takes effect on the very next request.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from canhgac.ids import new_token, uuid7
from canhgac.sqlite import connect as sqlite_connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS enroll_tokens(
    token_hash TEXT PRIMARY KEY,
    system_id TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    uses_left INTEGER NOT NULL DEFAULT 1,
    note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS agents(
    agent_id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    system_id TEXT NOT NULL,
    hostname TEXT NOT NULL,
    enrolled REAL NOT NULL,
    revoked REAL,
    last_seen REAL,
    heartbeat TEXT
);
"""


TOKEN_ID_LEN = 12  # hex characters of the token hash that name an enrollment token


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class AgentRecord:
    agent_id: str
    secret_hash: str
    system_id: str
    hostname: str
    enrolled: float
    revoked: float | None = None
    last_seen: float | None = None
    heartbeat: dict[str, Any] = field(default_factory=dict)

    @property
    def probes(self) -> dict[str, Any]:
        return self.heartbeat.get("probes", {}) if self.heartbeat else {}


class EnrollmentError(Exception):
    pass


class AuthStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite_connect(path, private=True)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._version = -1
        self._agents: dict[str, AgentRecord] = {}
        self._dirty_seen: set[str] = set()
        self._refresh()

    # -- cache -------------------------------------------------------------
    def _refresh(self) -> None:
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._version:
            return
        rows = self._db.execute(
            "SELECT agent_id, secret_hash, system_id, hostname, enrolled, revoked, last_seen, heartbeat "
            "FROM agents"
        ).fetchall()
        old = self._agents
        agents = {}
        for r in rows:
            rec = AgentRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6],
                              orjson.loads(r[7]) if r[7] else {})
            prev = old.get(rec.agent_id)
            if prev is not None:  # in-memory liveness is fresher than the table
                rec.last_seen = max(rec.last_seen or 0, prev.last_seen or 0) or None
                rec.heartbeat = prev.heartbeat or rec.heartbeat
            agents[rec.agent_id] = rec
        self._agents = agents
        self._version = version

    def authenticate(self, bearer: str) -> AgentRecord | None:
        """``<agent_id>.<secret>`` -> the agent, or None (unknown, wrong, revoked)."""
        agent_id, sep, secret = bearer.partition(".")
        if not sep or not secret or len(bearer) > 512:
            return None
        with self._lock:
            self._refresh()
            rec = self._agents.get(agent_id)
        expected = rec.secret_hash if rec else _hash("x" * 43)  # same work on unknown ids
        ok = hmac.compare_digest(_hash(secret), expected)
        if rec is None or not ok or rec.revoked is not None:
            return None
        return rec

    def touch(self, rec: AgentRecord, heartbeat: dict[str, Any] | None = None) -> None:
        rec.last_seen = time.time()
        if heartbeat is not None:
            rec.heartbeat = heartbeat
        self._dirty_seen.add(rec.agent_id)

    def flush_seen(self) -> None:
        """Persist liveness (batched: at most once per call, not per request)."""
        with self._lock:
            ids, self._dirty_seen = self._dirty_seen, set()
            if not ids:
                return
            self._db.execute("BEGIN")
            for agent_id in ids:
                rec = self._agents.get(agent_id)
                if rec is not None:
                    self._db.execute(
                        "UPDATE agents SET last_seen=?, heartbeat=? WHERE agent_id=?",
                        (rec.last_seen, orjson.dumps(rec.heartbeat).decode(), agent_id),
                    )
            self._db.execute("COMMIT")
            self._version = self._db.execute("PRAGMA data_version").fetchone()[0]

    def agents(self) -> list[AgentRecord]:
        with self._lock:
            self._refresh()
            return list(self._agents.values())

    # -- enrollment ----------------------------------------------------------
    def create_enroll_token(self, system_id: str, ttl_seconds: float = 86400, uses: int = 1,
                            note: str = "") -> str:
        token = new_token("cge")
        now = time.time()
        self._db.execute(
            "INSERT INTO enroll_tokens(token_hash, system_id, created, expires, uses_left, note) "
            "VALUES(?,?,?,?,?,?)",
            (_hash(token), system_id, now, now + ttl_seconds, uses, note),
        )
        return token

    @staticmethod
    def token_id(token: str) -> str:
        """A token's printable id: the start of its hash (the token itself is never stored)."""
        return _hash(token)[:TOKEN_ID_LEN]

    def enroll_tokens(self, now: float | None = None) -> list[dict[str, Any]]:
        """Tokens that can still be used: id, system, created, expires, uses left, note."""
        now = time.time() if now is None else now
        with self._lock:
            rows = self._db.execute(
                "SELECT token_hash, system_id, created, expires, uses_left, note FROM enroll_tokens "
                "WHERE uses_left > 0 AND expires >= ? ORDER BY created", (now,)).fetchall()
        return [{"id": r[0][:TOKEN_ID_LEN], "system_id": r[1], "created": r[2], "expires": r[3],
                 "uses_left": r[4], "note": r[5]} for r in rows]

    def revoke_enroll_token(self, token_id: str) -> bool:
        """Spend every use of the token with this id; False if no usable one has it."""
        if len(token_id) != TOKEN_ID_LEN or not all(c in "0123456789abcdef" for c in token_id):
            return False
        with self._lock:
            cur = self._db.execute(
                "UPDATE enroll_tokens SET uses_left = 0 WHERE substr(token_hash, 1, ?) = ? "
                "AND uses_left > 0", (TOKEN_ID_LEN, token_id))
        return cur.rowcount > 0

    def token_system(self, token: str) -> str | None:
        """The system a still-usable enrollment token is for, without spending it."""
        with self._lock:
            row = self._db.execute(
                "SELECT system_id FROM enroll_tokens WHERE token_hash=? AND uses_left > 0 "
                "AND expires >= ?", (_hash(token), time.time())).fetchone()
        return str(row[0]) if row else None

    def enroll(self, token: str, hostname: str) -> tuple[str, str, str]:
        """Spend one use of ``token``; returns (agent_id, secret, system_id)."""
        th = _hash(token)
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT system_id, expires, uses_left FROM enroll_tokens WHERE token_hash=?", (th,)
                ).fetchone()
                if row is None or row[1] < now or row[2] <= 0:
                    raise EnrollmentError("enrollment token is unknown, expired or already used")
                self._db.execute(
                    "UPDATE enroll_tokens SET uses_left = uses_left - 1 WHERE token_hash=?", (th,)
                )
                agent_id = uuid7()
                secret = new_token("cgs")
                self._db.execute(
                    "INSERT INTO agents(agent_id, secret_hash, system_id, hostname, enrolled) "
                    "VALUES(?,?,?,?,?)",
                    (agent_id, _hash(secret), row[0], hostname[:255], now),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._version = -1  # data_version only moves for other connections' commits
            self._refresh()
        return agent_id, secret, row[0]

    def revoke(self, agent_id: str) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE agents SET revoked=? WHERE agent_id=? AND revoked IS NULL", (time.time(), agent_id)
            )
            self._version = -1
        return cur.rowcount == 1

    def close(self) -> None:
        self.flush_seen()
        self._db.close()
