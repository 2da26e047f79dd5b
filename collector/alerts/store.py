"""Alert lifecycle state: open -> acknowledged -> resolved, with who, when and a note.

The alert itself is an event (event.kind "alert") in the event store and in
Elasticsearch; this table keeps only what happens to it afterwards, keyed by
the alert's ``event.id`` so a re-delivered alert never opens twice. SQLite in
the collector's state dir: one writer (the event loop), WAL so readers on a
scrape thread never block it.
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from canhgac.schema import get_path
from canhgac.sqlite import connect as sqlite_connect
from canhgac.timeutil import parse_rfc3339
from collector.ports import AckTimes

STATUSES = ("open", "acknowledged", "resolved")
# What a resolved alert turned out to be: the SOC's verdict, counted for tuning rules.
OUTCOMES = ("true_positive", "false_positive", "benign")
MAX_NOTE = 2000
MIN_PREFIX = 8  # characters of an alert id that may stand for it (if unique)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    system_id TEXT NOT NULL DEFAULT '',
    unit TEXT NOT NULL DEFAULT '',
    rule TEXT NOT NULL DEFAULT '',
    severity INTEGER,
    title TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    acked_by TEXT, acked_at REAL, ack_note TEXT,
    resolved_by TEXT, resolved_at REAL, resolve_note TEXT,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_created ON alerts(created);
CREATE INDEX IF NOT EXISTS alerts_status ON alerts(status, system_id);
-- Covers the layer-1 scan (ack_times) so it never touches the stored events.
CREATE INDEX IF NOT EXISTS alerts_ack ON alerts(created, system_id, acked_at);
"""

# Added after the first release: created on open if missing.
_ADDED_COLUMNS = (("outcome", "TEXT"), ("updates", "INTEGER NOT NULL DEFAULT 0"),
                  ("last_update", "REAL"))

_COLUMNS = ("id", "system_id", "unit", "rule", "severity", "title", "created", "status",
            "acked_by", "acked_at", "ack_note", "resolved_by", "resolved_at", "resolve_note",
            "outcome", "updates", "last_update", "event")


@dataclass(frozen=True)
class AlertFact:
    """What the annual report counts of one alert (collector/report/model.py)."""

    system_id: str
    unit: str
    severity: int | None
    created: float
    acked_at: float | None
    outcome: str | None


class TransitionError(Exception):
    """The alert is not in a state that allows the requested step (HTTP 409)."""


@dataclass
class AlertRecord:
    id: str
    system_id: str
    unit: str
    rule: str
    severity: int | None
    title: str
    created: float
    status: str
    acked_by: str | None
    acked_at: float | None
    ack_note: str | None
    resolved_by: str | None
    resolved_at: float | None
    resolve_note: str | None
    outcome: str | None
    updates: int  # throttle updates folded into this alert
    last_update: float | None
    event: dict[str, Any]

    def to_dict(self, with_event: bool = False) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in _COLUMNS if k != "event"}
        d["evidence"] = evidence(self.event)
        if with_event:
            d["event"] = self.event
        return d


# The fields that say what happened, in the order an operator reads them.
EVIDENCE_FIELDS = ("process.command_line", "process.executable", "user.name", "group.name",
                   "file.path", "source.ip", "destination.ip", "destination.port",
                   "dns.question.name", "url.original")


def evidence(doc: dict[str, Any]) -> dict[str, Any]:
    """The alert's key evidence (ECS fields the detector copied), as {field: value}."""
    out: dict[str, Any] = {}
    for name in EVIDENCE_FIELDS:
        value = get_path(doc, name)
        if value not in (None, "", [], {}):
            out[name] = value
    return out


def _row(r: tuple[Any, ...]) -> AlertRecord:
    values = list(r)
    values[-1] = orjson.loads(values[-1])
    return AlertRecord(*values)


def _summary(doc: dict[str, Any], now: float) -> tuple[Any, ...]:
    event_id = get_path(doc, "event.id")
    ts = doc.get("@timestamp")
    try:
        created = parse_rfc3339(ts).timestamp() if isinstance(ts, str) else now
    except ValueError:
        created = now
    severity = get_path(doc, "event.severity")
    title = get_path(doc, "rule.name") or get_path(doc, "message") or ""
    return (
        str(event_id),
        str(get_path(doc, "canhgac.system.id") or ""),
        str(get_path(doc, "canhgac.unit.name") or ""),
        str(get_path(doc, "rule.id") or get_path(doc, "rule.name") or ""),
        severity if isinstance(severity, int) and not isinstance(severity, bool) else None,
        str(title)[:500],
        created,
        orjson.dumps(doc).decode(),
    )


class AlertStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite_connect(path, synchronous="NORMAL", private=True)
        self._db.executescript(_SCHEMA)
        have = {r[1] for r in self._db.execute("PRAGMA table_info(alerts)")}
        for name, decl in _ADDED_COLUMNS:
            if name not in have:
                self._db.execute(f"ALTER TABLE alerts ADD COLUMN {name} {decl}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def register(self, alerts: list[dict[str, Any]], now: float | None = None) -> int:
        """Open every alert (event.kind "alert") not seen before; returns how many were new.

        A throttle *update* of an alert that is here (``canhgac.alert.update_of``) folds
        into it (its update count and time) instead of opening a row of its own: one
        attack, one line to triage.
        """
        now = time.time() if now is None else now
        fresh = [doc for doc in alerts
                 if get_path(doc, "event.kind") == "alert" and get_path(doc, "event.id")]
        if not fresh:
            return 0
        with self._lock:
            self._db.execute("BEGIN")
            rows = []
            for doc in fresh:
                parent = get_path(doc, "canhgac.alert.update_of")
                if isinstance(parent, str) and self._db.execute(
                        "UPDATE alerts SET updates = updates + 1, last_update = ? WHERE id = ?",
                        (now, parent)).rowcount:
                    continue
                rows.append(_summary(doc, now))
            opened_before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO alerts (id, system_id, unit, rule, severity, title, created,"
                " event) VALUES (?,?,?,?,?,?,?,?)", rows)
            self._db.execute("COMMIT")
            return self._db.total_changes - opened_before

    def get(self, alert_id: str) -> AlertRecord | None:
        with self._lock:
            r = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM alerts WHERE id=?",
                                 (alert_id,)).fetchone()
        return _row(r) if r else None

    def resolve_id(self, given: str) -> str:
        """The full id for an id or a unique prefix of at least MIN_PREFIX characters.

        KeyError if none; ValueError if the prefix is too short or names several."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM alerts WHERE id=?", (given,)).fetchone():
                return given
            if len(given) < MIN_PREFIX:
                raise KeyError(given)
            escaped = given.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self._db.execute("SELECT id FROM alerts WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                                    (escaped + "%",)).fetchall()
        if not rows:
            raise KeyError(given)
        if len(rows) > 1:
            raise ValueError(f"{given!r} is the start of several alert ids: give more of it")
        return str(rows[0][0])

    def list(self, *, status: str | None = None, system_ids: list[str] | None = None,
             since: float | None = None, min_severity: int | None = None,
             limit: int = 100) -> list[AlertRecord]:
        where: list[str] = []
        args: list[Any] = []
        if min_severity is not None:
            where.append("severity>=?")
            args.append(min_severity)
        if status:
            where.append("status=?")
            args.append(status)
        if system_ids is not None:
            if not system_ids:
                return []
            where.append(f"system_id IN ({','.join('?' * len(system_ids))})")
            args.extend(system_ids)
        if since is not None:
            where.append("created>=?")
            args.append(since)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM alerts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created DESC, id LIMIT ?"
        args.append(max(1, min(limit, 10_000)))
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_row(r) for r in rows]

    def acknowledge(self, alert_id: str, who: str, note: str = "", now: float | None = None
                    ) -> AlertRecord:
        now = time.time() if now is None else now
        with self._lock:
            r = self._db.execute("SELECT status, acked_by FROM alerts WHERE id=?",
                                 (alert_id,)).fetchone()
            if r is None:
                raise KeyError(alert_id)
            if r[0] != "open":
                raise TransitionError(self._already(alert_id, r[0]))
            self._db.execute(
                "UPDATE alerts SET status='acknowledged', acked_by=?, acked_at=?, ack_note=?"
                " WHERE id=? AND status='open'", (who, now, note[:MAX_NOTE], alert_id))
        return self.get(alert_id)  # type: ignore[return-value]

    def resolve(self, alert_id: str, who: str, note: str, outcome: str,
                now: float | None = None) -> AlertRecord:
        """Resolve with what was done (``note``) and what it was (``outcome``); resolving
        an open alert acknowledges it at the same moment (someone acted)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        if not note.strip():
            raise ValueError("a note saying what was done is required to resolve")
        now = time.time() if now is None else now
        with self._lock:
            r = self._db.execute("SELECT status FROM alerts WHERE id=?", (alert_id,)).fetchone()
            if r is None:
                raise KeyError(alert_id)
            if r[0] == "resolved":
                raise TransitionError(self._already(alert_id, r[0]))
            self._db.execute(
                "UPDATE alerts SET status='resolved', resolved_by=?, resolved_at=?, resolve_note=?,"
                " outcome=?, acked_by=COALESCE(acked_by, ?), acked_at=COALESCE(acked_at, ?)"
                " WHERE id=? AND status!='resolved'",
                (who, now, note[:MAX_NOTE], outcome, who, now, alert_id))
        return self.get(alert_id)  # type: ignore[return-value]

    def _already(self, alert_id: str, status: str) -> str:
        """'already acknowledged by X' / 'already resolved by Y': who did *that* step."""
        col = "resolved_by" if status == "resolved" else "acked_by"
        r = self._db.execute(f"SELECT {col} FROM alerts WHERE id=?", (alert_id,)).fetchone()
        return f"alert is already {status}" + (f" by {r[0]}" if r and r[0] else "")

    def ack_times(self, since: float) -> AckTimes:
        """(created, acknowledged) per system for layer 1; one indexed range scan."""
        out: dict[str, list[tuple[float, float | None]]] = {}
        with self._lock:
            rows = self._db.execute(
                "SELECT system_id, created, acked_at FROM alerts WHERE created>=? AND system_id!=''",
                (since,)).fetchall()
        for sid, created, acked in rows:
            out.setdefault(sid, []).append((created, acked))
        return out

    def facts(self, since: float, until: float) -> builtins.list[AlertFact]:
        """Every alert raised in [since, until), for the annual report; no event bodies read."""
        with self._lock:
            rows = self._db.execute(
                "SELECT system_id, unit, severity, created, acked_at, outcome FROM alerts "
                "WHERE created>=? AND created<?", (since, until)).fetchall()
        return [AlertFact(*r) for r in rows]

    def unacknowledged(self, alert_ids: Sequence[str]) -> set[str]:
        """Those of ``alert_ids`` still open (nobody acknowledged or resolved them): escalation."""
        out: set[str] = set()
        ids = list(alert_ids)
        with self._lock:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                out.update(r[0] for r in self._db.execute(
                    f"SELECT id FROM alerts WHERE status='open' AND id IN ({','.join('?' * len(chunk))})",
                    chunk))
        return out

    def response_times(self, since: float) -> Sequence[tuple[str, str, int, float, int, float]]:
        """Per (system, unit) for alerts raised since ``since``: (system, unit, acknowledged,
        total seconds to acknowledge, resolved, total seconds to resolve) — MTTA and MTTR."""
        with self._lock:
            rows = self._db.execute(
                "SELECT system_id, unit, COUNT(acked_at), COALESCE(SUM(acked_at - created), 0),"
                " COUNT(resolved_at), COALESCE(SUM(resolved_at - created), 0)"
                " FROM alerts WHERE created>=? GROUP BY system_id, unit", (since,)).fetchall()
        return [(str(a), str(b), int(c), float(d), int(e), float(f)) for a, b, c, d, e, f in rows]

    def counts(self) -> dict[tuple[str, str], int]:
        """Unresolved alerts by (system, status), for the gauges."""
        with self._lock:
            rows = self._db.execute(
                "SELECT system_id, status, COUNT(*) FROM alerts WHERE status!='resolved'"
                " GROUP BY system_id, status").fetchall()
        return {(sid, st): n for sid, st, n in rows}


class AlertStage:
    """Pipeline stage: every event with event.kind == "alert" opens a lifecycle row.

    Runs after enrichment and detection so it sees the system id and the alerts
    the detectors add; it adds no events itself.
    """

    name = "alerts"

    def __init__(self, store: AlertStore) -> None:
        self.store = store
        self.registered = 0

    def process(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        alerts = [e for e in events if get_path(e, "event.kind") == "alert"]
        if alerts:
            self.registered += self.store.register(alerts)
        return []

    def tick(self, now: float) -> list[dict[str, Any]]:
        return []
