"""The durable notification outbox: what must be told, to which channel, until it is.

SQLite in the state dir (``notify.db``), ``synchronous=FULL``: an alert's
notifications are committed in the same step that routes it, before the batch
that carried the alert is acknowledged to its agent, so a ``kill -9`` at any
point loses none. Delivery is at-least-once: a row leaves ``pending`` only after
its channel accepted it; a send cut short by a crash is made again after restart,
with the same idempotency key (the row's primary key) for the receiver to drop.

Tables:
  routed       one row per (alert, route): re-delivered alerts are not routed twice;
               per-minute counts for storm control; alerts held for the digest.
  outbox       one row per message and channel; pending -> delivered | dead.
  escalations  the next escalation step of each unacknowledged alert, and when.
  channel_stats  durable per-channel counters for ``canhgac notify status``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from canhgac.sqlite import connect as sqlite_connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS routed (
    alert_id TEXT NOT NULL, route TEXT NOT NULL, minute INTEGER NOT NULL,
    held INTEGER NOT NULL DEFAULT 0,  -- 0 sent on its own, 1 waits for the digest, 2 digested
    created REAL NOT NULL, summary TEXT NOT NULL,
    PRIMARY KEY (alert_id, route)
);
CREATE INDEX IF NOT EXISTS routed_window ON routed(route, minute);
CREATE INDEX IF NOT EXISTS routed_held ON routed(held, minute) WHERE held = 1;
CREATE TABLE IF NOT EXISTS outbox (
    key TEXT PRIMARY KEY, channel TEXT NOT NULL, route TEXT NOT NULL, kind TEXT NOT NULL,
    alert_id TEXT NOT NULL DEFAULT '', created REAL NOT NULL, due REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT, delivered_at REAL, payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(channel, due) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS outbox_done ON outbox(delivered_at) WHERE status != 'pending';
CREATE TABLE IF NOT EXISTS escalations (
    alert_id TEXT NOT NULL, route TEXT NOT NULL, step INTEGER NOT NULL, due REAL NOT NULL,
    PRIMARY KEY (alert_id, route)
);
CREATE INDEX IF NOT EXISTS escalations_due ON escalations(due);
CREATE TABLE IF NOT EXISTS channel_stats (
    channel TEXT PRIMARY KEY, delivered INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0, dead INTEGER NOT NULL DEFAULT 0,
    last_success REAL, last_error TEXT, last_error_at REAL
);
"""

WINDOW = 60.0  # storm control counts alerts per route per minute


def window_of(ts: float) -> int:
    return int(ts // WINDOW)


@dataclass(frozen=True)
class Message:
    """One notification for one channel; ``key`` is its idempotency key."""

    key: str
    channel: str
    route: str
    kind: str  # alert | digest | escalation | test
    alert_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Candidate:
    """An alert matched to a route, before storm control decides how it goes out."""

    alert_id: str
    route: str
    limit: int  # storm limit of the route
    created: float
    summary: dict[str, Any]  # kept for the digest
    escalate_at: float | None  # first escalation step, when the route escalates


@dataclass(frozen=True)
class Pending:
    key: str
    channel: str
    kind: str
    attempts: int
    created: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What a send came to: delivered, retry after ``delay`` s, or dead (refused for good)."""

    key: str
    status: str  # delivered | retry | dead
    error: str = ""
    delay: float = 0.0


@dataclass(frozen=True)
class ChannelStatus:
    channel: str
    pending: int
    oldest_pending: float | None  # created, epoch seconds
    retrying: int  # pending after at least one failed attempt
    delivered: int
    failures: int
    dead: int
    last_success: float | None
    last_error: str | None
    last_error_at: float | None


class Outbox:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._db = sqlite_connect(path, synchronous="FULL", private=True)
        self._db.executescript(_SCHEMA)
        self._counts: dict[tuple[str, int], int] = {}  # (route, window) -> alerts routed

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- routing ---------------------------------------------------------------------------

    def admit(self, candidates: Sequence[Candidate],
              render: Callable[[Candidate], list[Message]]) -> Counter[tuple[str, str]]:
        """Route alerts in one commit; counts by (route, "sent" | "held" for a digest).

        An (alert, route) seen before is skipped (a re-delivered batch). Past the route's
        storm limit within the current minute an alert is held; ``close_windows`` turns
        the held alerts of a finished minute into one digest.
        """
        counts: Counter[tuple[str, str]] = Counter()
        window = window_of(self.clock())  # the minute of arrival, not of the alert's timestamp
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for c in candidates:
                    slot = (c.route, window)
                    if slot not in self._counts:
                        self._counts[slot] = db.execute(
                            "SELECT COUNT(*) FROM routed WHERE route=? AND minute=?", slot
                        ).fetchone()[0]
                    over = self._counts[slot] >= c.limit
                    cur = db.execute(
                        "INSERT OR IGNORE INTO routed (alert_id, route, minute, held, created, summary)"
                        " VALUES (?,?,?,?,?,?)",
                        (c.alert_id, c.route, window, 1 if over else 0, c.created,
                         orjson.dumps(c.summary)))
                    if not cur.rowcount:
                        continue
                    self._counts[slot] += 1
                    if c.escalate_at is not None:
                        db.execute("INSERT OR IGNORE INTO escalations VALUES (?,?,1,?)",
                                   (c.alert_id, c.route, c.escalate_at))
                    if over:
                        counts[(c.route, "held")] += 1
                        continue
                    self._insert(render(c))
                    counts[(c.route, "sent")] += 1
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                self._counts.clear()  # may have counted rows that were rolled back
                raise
        self._forget_old_windows()
        return counts

    def _forget_old_windows(self) -> None:
        if len(self._counts) > 1024:
            now = window_of(self.clock())
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= now - 1}

    def _insert(self, messages: Iterable[Message]) -> None:
        now = self.clock()
        self._db.executemany(
            "INSERT OR IGNORE INTO outbox (key, channel, route, kind, alert_id, created, due, payload)"
            " VALUES (?,?,?,?,?,?,?,?)",
            [(m.key, m.channel, m.route, m.kind, m.alert_id, now, now, orjson.dumps(m.payload))
             for m in messages])

    def enqueue(self, messages: Sequence[Message]) -> None:
        """Add messages (a test message, an escalation) in one commit; known keys are skipped."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._insert(messages)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close_windows(self, before: int,
                      render: Callable[[str, int, list[dict[str, Any]]], list[Message]]) -> int:
        """One digest per (route, minute) with held alerts, for minutes before ``before``."""
        made = 0
        with self._lock:
            slots = self._db.execute(
                "SELECT DISTINCT route, minute FROM routed WHERE held=1 AND minute<?",
                (before,)).fetchall()
            for route, window in slots:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    rows = self._db.execute(
                        "SELECT summary FROM routed WHERE route=? AND minute=? AND held=1"
                        " ORDER BY created", (route, window)).fetchall()
                    self._insert(render(route, window, [orjson.loads(r[0]) for r in rows]))
                    self._db.execute("UPDATE routed SET held=2 WHERE route=? AND minute=? AND held=1",
                                     (route, window))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                made += 1
        return made

    # -- delivery --------------------------------------------------------------------------

    def due(self, channel: str, limit: int) -> list[Pending]:
        now = self.clock()
        with self._lock:
            rows = self._db.execute(
                "SELECT key, channel, kind, attempts, created, payload FROM outbox"
                " WHERE status='pending' AND channel=? AND due<=? ORDER BY due LIMIT ?",
                (channel, now, limit)).fetchall()
        return [Pending(k, ch, kind, n, created, orjson.loads(p))
                for k, ch, kind, n, created, p in rows]

    def next_due(self, channel: str) -> float | None:
        with self._lock:
            r = self._db.execute("SELECT MIN(due) FROM outbox WHERE status='pending' AND channel=?",
                                 (channel,)).fetchone()
        return float(r[0]) if r and r[0] is not None else None

    def settle(self, channel: str, outcomes: Sequence[Outcome]) -> None:
        """Record what each send came to, and the channel's counters, in one commit."""
        if not outcomes:
            return
        now = self.clock()
        ok = [o for o in outcomes if o.status == "delivered"]
        failed = [o for o in outcomes if o.status != "delivered"]
        dead = [o for o in failed if o.status == "dead"]
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("UPDATE outbox SET status='delivered', delivered_at=?, attempts=attempts+1"
                               " WHERE key=? AND status='pending'", [(now, o.key) for o in ok])
                db.executemany("UPDATE outbox SET attempts=attempts+1, due=?, last_error=? WHERE key=?"
                               " AND status='pending'",
                               [(now + o.delay, o.error[:500], o.key) for o in failed if o.status == "retry"])
                db.executemany("UPDATE outbox SET status='dead', attempts=attempts+1, last_error=?,"
                               " delivered_at=? WHERE key=? AND status='pending'",
                               [(o.error[:500], now, o.key) for o in dead])
                db.execute("INSERT OR IGNORE INTO channel_stats (channel) VALUES (?)", (channel,))
                db.execute(
                    "UPDATE channel_stats SET delivered=delivered+?, failures=failures+?, dead=dead+?,"
                    " last_success=CASE WHEN ? THEN ? ELSE last_success END,"
                    " last_error=CASE WHEN ? THEN ? ELSE last_error END,"
                    " last_error_at=CASE WHEN ? THEN ? ELSE last_error_at END WHERE channel=?",
                    (len(ok), len(failed), len(dead), bool(ok), now,
                     bool(failed), failed[-1].error[:500] if failed else None, bool(failed), now,
                     channel))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def prune(self, older_than: float) -> int:
        """Forget delivered and dead messages (and routing rows) older than ``older_than``."""
        with self._lock:
            n = self._db.execute("DELETE FROM outbox WHERE status!='pending' AND delivered_at<?",
                                 (older_than,)).rowcount
            # A routing row an escalation still needs (its summary) stays.
            self._db.execute(
                "DELETE FROM routed WHERE held!=1 AND created<? AND NOT EXISTS (SELECT 1 FROM"
                " escalations e WHERE e.alert_id=routed.alert_id AND e.route=routed.route)",
                (older_than,))
        return int(n)

    # -- escalation ------------------------------------------------------------------------

    def due_escalations(self, limit: int = 500) -> list[tuple[str, str, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT alert_id, route, step FROM escalations WHERE due<=? ORDER BY due LIMIT ?",
                (self.clock(), limit)).fetchall()
        return [(str(a), str(r), int(s)) for a, r, s in rows]

    def summary_of(self, alert_id: str, route: str) -> dict[str, Any] | None:
        with self._lock:
            r = self._db.execute("SELECT summary FROM routed WHERE alert_id=? AND route=?",
                                 (alert_id, route)).fetchone()
        return orjson.loads(r[0]) if r else None

    def escalate(self, alert_id: str, route: str, step: int, next_due: float | None,
                 messages: Sequence[Message]) -> None:
        """Enqueue step ``step``'s messages and schedule the next step (or end), atomically."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._insert(messages)
                if next_due is None:
                    self._db.execute("DELETE FROM escalations WHERE alert_id=? AND route=?",
                                     (alert_id, route))
                else:
                    self._db.execute("UPDATE escalations SET step=?, due=? WHERE alert_id=? AND route=?",
                                     (step + 1, next_due, alert_id, route))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def end_escalation(self, pairs: Sequence[tuple[str, str]]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM escalations WHERE alert_id=? AND route=?", pairs)

    # -- status ----------------------------------------------------------------------------

    def status(self) -> list[ChannelStatus]:
        with self._lock:
            pend = {ch: (n, oldest, retrying) for ch, n, oldest, retrying in self._db.execute(
                "SELECT channel, COUNT(*), MIN(created), SUM(attempts>0) FROM outbox"
                " WHERE status='pending' GROUP BY channel")}
            stats = {r[0]: r[1:] for r in self._db.execute(
                "SELECT channel, delivered, failures, dead, last_success, last_error, last_error_at"
                " FROM channel_stats")}
        out = []
        for ch in sorted(set(pend) | set(stats)):
            n, oldest, retrying = pend.get(ch, (0, None, 0))
            delivered, failures, dead, last_ok, last_err, last_err_at = stats.get(
                ch, (0, 0, 0, None, None, None))
            out.append(ChannelStatus(ch, n, oldest, int(retrying or 0), delivered, failures, dead,
                                     last_ok, last_err, last_err_at))
        return out

    def counts(self) -> dict[str, int]:
        """Messages by status and alerts held for a digest, for tests and the status command."""
        with self._lock:
            out = {st: n for st, n in self._db.execute(
                "SELECT status, COUNT(*) FROM outbox GROUP BY status")}
            out["held"] = self._db.execute("SELECT COUNT(*) FROM routed WHERE held=1").fetchone()[0]
            out["escalations"] = self._db.execute("SELECT COUNT(*) FROM escalations").fetchone()[0]
        return out
