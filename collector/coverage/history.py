"""Coverage history: dated snapshots of every system's four layers and obligations.

What is kept (docs/coverage.md, "History"): one row per system per snapshot in
``<state_dir>/history.db``:

- a **daily** snapshot of every system, the first report of each local day
  (province time, ``utc_offset_hours``); at start when today's is missing
  (reason ``start``), else at local midnight (reason ``daily``);
- a **change** snapshot of one system whenever its *state* differs from its last
  snapshot. The state is: unit, level, status, the five obligation flags
  (approved, approved on time, approval overdue, plan deployed, plan overdue)
  and each layer's *state*: ``full`` (ratio 1), ``partial`` (between) or
  ``none`` (0). A ratio moving inside ``partial`` (3 of 4 hosts → 2 of 4) is
  not a change: it shows in the next daily snapshot.
- a system leaving the inventory gets one last row with status ``removed``.

Rows are columns, not JSON (ratios in 1/10000, flags as a bitmask, unit and
status as label ids): about 40 bytes a row, primary key (system, day, seq).

The snapshot taker is a ``CoverageService`` listener: it runs on the computing
thread, compares each system with its last snapshot in memory (cheap) and hands
the rows to one writer thread (bounded queue), so SQLite is never written on the
event loop. When an Elasticsearch output is configured, written rows are also
queued (table ``es_pending``) for ``history_es.EsHistory``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canhgac.sqlite import connect
from collector.coverage.config import DAY, CoverageConfig
from collector.coverage.model import (
    LAYERS,
    CoverageReport,
    LayerResult,
    SystemCoverage,
    _rollup,
    local_date,
)

log = logging.getLogger(__name__)

SCALE = 10_000  # ratios are stored in 1/10000
REMOVED = "removed"
FLAGS = ("approved", "approved_on_time", "approval_overdue", "plan_deployed", "plan_overdue")
PRUNE_CHUNK = 5_000  # rows deleted per transaction: the write lock is never held long

SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS systems (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
                                    name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    sys INTEGER NOT NULL, day INTEGER NOT NULL, seq INTEGER NOT NULL,
    at INTEGER NOT NULL, reason INTEGER NOT NULL, unit INTEGER NOT NULL,
    level INTEGER NOT NULL, status INTEGER NOT NULL, flags INTEGER NOT NULL,
    l1 INTEGER NOT NULL, l2 INTEGER NOT NULL, l3 INTEGER NOT NULL, l4 INTEGER NOT NULL,
    PRIMARY KEY (sys, day, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS days (day INTEGER PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS es_pending (sys INTEGER NOT NULL, day INTEGER NOT NULL,
    seq INTEGER NOT NULL, PRIMARY KEY (sys, day, seq)) WITHOUT ROWID;
"""
REASONS = ("daily", "start", "change", "new")


def layer_state(ratio: float) -> str:
    return "full" if ratio >= 1.0 else "none" if ratio <= 0.0 else "partial"


@dataclass(frozen=True)
class Snapshot:
    """One system at one moment, as the history keeps it."""

    system: str
    day: dt.date
    seq: int
    taken_at: float
    reason: str
    name: str
    unit: str
    level: int
    status: str
    ratios: tuple[float, float, float, float]
    flags: int  # bit i set = FLAGS[i] true

    def flag(self, name: str) -> bool:
        return bool(self.flags >> FLAGS.index(name) & 1)

    @property
    def states(self) -> tuple[str, ...]:
        return tuple(layer_state(r) for r in self.ratios)

    def signature(self) -> tuple[Any, ...]:
        """What counts as a change (see the module docstring)."""
        return (self.unit, self.level, self.status, self.flags, self.states)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "system": self.system, "day": self.day.isoformat(), "seq": self.seq,
            "taken_at": self.taken_at, "reason": self.reason, "name": self.name,
            "unit": self.unit, "level": self.level, "status": self.status,
            "layers": dict(zip(LAYERS, self.ratios, strict=True)),
            "states": dict(zip(LAYERS, self.states, strict=True)),
        }
        for name in FLAGS:
            out[name] = self.flag(name)
        out["overdue"] = out["approval_overdue"] or out["plan_overdue"]
        return out

    def coverage(self) -> SystemCoverage:
        """As a SystemCoverage, so a report from history has the live report's shape."""
        when = f"snapshot of {self.day.isoformat()}"
        return SystemCoverage(
            id=self.system, name=self.name, unit=self.unit, level=self.level, status=self.status,
            layers={layer: LayerResult(r, when) for layer, r in zip(LAYERS, self.ratios,
                                                                     strict=True)},
            approved=self.flag("approved"), approved_on_time=self.flag("approved_on_time"),
            approval_overdue=self.flag("approval_overdue"),
            plan_deployed=self.flag("plan_deployed"), plan_overdue=self.flag("plan_overdue"),
            assessment_age_days=None, hosts_expected=0, hosts_covered=0, agents_online=0,
            agents_offline=0, alerts_late=0)


def _flags(s: SystemCoverage) -> int:
    return sum(1 << i for i, name in enumerate(FLAGS) if getattr(s, name))


def _ratio(value: float) -> float:
    return round(min(1.0, max(0.0, value)) * SCALE) / SCALE


def snapshot_of(s: SystemCoverage, day: dt.date, seq: int, at: float, reason: str) -> Snapshot:
    ratios = tuple(_ratio(s.layers[layer].ratio) for layer in LAYERS)
    return Snapshot(s.id, day, seq, at, reason, s.name, s.unit, s.level, s.status,
                    ratios, _flags(s))  # type: ignore[arg-type]


def removed_of(last: Snapshot, day: dt.date, seq: int, at: float) -> Snapshot:
    return Snapshot(last.system, day, seq, at, "change", last.name, last.unit, last.level,
                    REMOVED, (0.0, 0.0, 0.0, 0.0), 0)


def report_from(snaps: Sequence[Snapshot], province: str, unit_order: Iterable[str],
                national_configured: bool = True) -> CoverageReport:
    """A CoverageReport built from snapshots: the same JSON, the same table."""
    systems = [s.coverage() for s in snaps]
    names = list(dict.fromkeys([*unit_order, *(s.unit for s in systems)]))
    units = [_rollup(u, [s for s in systems if s.unit == u]) for u in names]
    units = [u for u in units if u.systems or u.not_operating]
    generated = max((s.taken_at for s in snaps), default=0.0)
    return CoverageReport(generated, province, systems, units, _rollup(province, systems),
                          national_configured)


@dataclass
class _Batch:
    rows: list[Snapshot]
    full_day: dt.date | None  # set when this batch is the day's full snapshot
    taken_at: float
    done: threading.Event = field(default_factory=threading.Event)


class HistoryStore:
    """Snapshots in SQLite; a CoverageService listener (``on_report``) feeds it.

    ``start()``: load the last snapshot of each system, take today's snapshot if it
    is missing, start the writer thread and the midnight loop. ``stop()``: drain
    and close. Reads (``at``, ``trend``) may come from any thread.
    """

    def __init__(self, path: Path, cfg: CoverageConfig, *,
                 report: Callable[[], CoverageReport] | None = None,
                 clock: Callable[[], float] = time.time, es_enabled: bool = False,
                 queue_size: int = 16) -> None:
        self.path = path
        self.cfg = cfg
        self.clock = clock
        self.report = report  # forces a fresh computation (the service's report(0.0))
        self.es_enabled = es_enabled
        self.db = connect(path, synchronous="NORMAL")
        self.db.executescript(SCHEMA)
        self._read = connect(path, synchronous="NORMAL")
        self._wlock = threading.Lock()
        self._rlock = threading.Lock()
        self._labels: dict[str, int] = dict(
            (t, i) for i, t in self.db.execute("SELECT id, text FROM labels"))
        self._systems: dict[str, int] = dict(
            (k, i) for i, k in self.db.execute("SELECT id, key FROM systems"))
        self._names: dict[str, str] = dict(self.db.execute("SELECT key, name FROM systems"))
        self._last: dict[str, Snapshot] = {}
        self._loaded = False
        row = self.db.execute("SELECT max(day) FROM days").fetchone()
        self._daily: dt.date | None = dt.date.fromordinal(row[0]) if row[0] else None
        self._started = False
        self._closed = False
        self._queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self.on_written: list[Callable[[], None]] = []  # called on the writer thread
        self.snapshots_written = 0
        self.skipped = 0

    # -- state -----------------------------------------------------------------------
    def _load_last(self) -> None:
        with self._rlock:
            if self._loaded:  # start() and a first report may both get here
                return
            labels = {i: t for t, i in self._labels.items()}
            for key, sid in self._systems.items():
                row = self._read.execute(
                    "SELECT * FROM snapshots WHERE sys=? ORDER BY day DESC, seq DESC LIMIT 1",
                    (sid,)).fetchone()
                if row is not None:
                    self._last[key] = self._snap(row, key, labels)
            self._loaded = True

    def _snap(self, row: Sequence[Any], key: str, labels: dict[int, str]) -> Snapshot:
        _sys, day, seq, at, reason, unit, level, status, flags, l1, l2, l3, l4 = row
        return Snapshot(key, dt.date.fromordinal(day), seq, float(at), REASONS[reason],
                        self._names.get(key, key), labels.get(unit, ""), level,
                        labels.get(status, ""), (l1 / SCALE, l2 / SCALE, l3 / SCALE, l4 / SCALE),
                        flags)

    def today(self) -> dt.date:
        return local_date(self.clock(), self.cfg)

    @property
    def daily_day(self) -> dt.date | None:
        return self._daily

    # -- the listener --------------------------------------------------------------------
    def on_report(self, report: CoverageReport) -> None:
        """Decide which rows this report makes; called on the computing thread."""
        try:
            self._take(report)
        except Exception:  # history must never break coverage or /metrics
            log.exception("coverage history: snapshot failed")

    def _take(self, report: CoverageReport) -> None:
        if self._closed:
            return  # a last computation while the collector stops
        if not self._loaded:
            self._load_last()
        at = report.generated_at
        day = local_date(at, self.cfg)
        full = self._daily is None or day > self._daily
        reason_full = "daily" if self._started and self._daily is not None else "start"
        rows: list[Snapshot] = []
        new_last: dict[str, Snapshot] = {}
        seen: set[str] = set()
        for s in report.systems:
            seen.add(s.id)
            prev = self._last.get(s.id)
            seq = prev.seq + 1 if prev is not None and prev.day >= day else 0
            row_day = max(day, prev.day) if prev is not None else day
            snap = snapshot_of(s, row_day, seq, at, reason_full if full else "change")
            if full or prev is None or prev.signature() != snap.signature() or s.name != prev.name:
                if not full and (prev is None or prev.status == REMOVED):
                    snap = snapshot_of(s, row_day, seq, at, "new")
                rows.append(snap)
                new_last[s.id] = snap
        for key, prev in self._last.items():
            if key not in seen and prev.status != REMOVED:
                seq = prev.seq + 1 if prev.day >= day else 0
                snap = removed_of(prev, max(day, prev.day), seq, at)
                rows.append(snap)
                new_last[key] = snap
        if not rows:
            return
        batch = _Batch(rows, day if full else None, at)
        if self._thread is None:
            self._write(batch)  # not started (tests, bench): write here
        else:
            try:
                self._queue.put_nowait(batch)
            except queue.Full:
                # The writer is behind: keep the old state so the next report retries.
                self.skipped += 1
                log.warning("coverage history: writer behind, %d snapshots postponed", len(rows))
                return
        self._last.update(new_last)
        if full:
            self._daily = day

    # -- writing ---------------------------------------------------------------------------
    def _label(self, text: str) -> int:
        i = self._labels.get(text)
        if i is None:
            self.db.execute("INSERT OR IGNORE INTO labels(text) VALUES (?)", (text,))
            i = int(self.db.execute("SELECT id FROM labels WHERE text=?", (text,)).fetchone()[0])
            self._labels[text] = i
        return i

    def _system(self, key: str, name: str) -> int:
        i = self._systems.get(key)
        if i is None:
            self.db.execute("INSERT OR IGNORE INTO systems(key, name) VALUES (?, ?)", (key, name))
            i = int(self.db.execute("SELECT id FROM systems WHERE key=?", (key,)).fetchone()[0])
            self._systems[key] = i
            self._names[key] = name
        elif self._names.get(key) != name and name:
            self.db.execute("UPDATE systems SET name=? WHERE id=?", (name, i))
            self._names[key] = name
        return i

    def _write(self, batch: _Batch) -> None:
        with self._wlock:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                values = []
                for r in batch.rows:
                    values.append((self._system(r.system, r.name), r.day.toordinal(), r.seq,
                                   int(r.taken_at), REASONS.index(r.reason), self._label(r.unit),
                                   r.level, self._label(r.status), r.flags,
                                   *(round(x * SCALE) for x in r.ratios)))
                db.executemany("INSERT OR REPLACE INTO snapshots VALUES "
                               "(?,?,?,?,?,?,?,?,?,?,?,?,?)", values)
                if self.es_enabled:
                    db.executemany("INSERT OR IGNORE INTO es_pending VALUES (?,?,?)",
                                   [v[:3] for v in values])
                if batch.full_day is not None:
                    db.execute("INSERT OR REPLACE INTO days VALUES (?, ?)",
                               (batch.full_day.toordinal(), int(batch.taken_at)))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self.snapshots_written += len(batch.rows)
        if batch.full_day is not None:
            self.prune(batch.full_day)
        for fn in self.on_written:
            fn()

    def _writer(self) -> None:
        while True:
            batch = self._queue.get()
            try:
                if batch is None:
                    return
                try:
                    self._write(batch)
                except Exception:
                    log.exception("coverage history: writing %d snapshots failed", len(batch.rows))
                batch.done.set()
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until every queued snapshot is written (tests, stop)."""
        if self._thread is not None:
            self._queue.join()

    def prune(self, today: dt.date) -> int:
        """Delete rows older than ``history_retention``, a chunk per transaction."""
        cutoff = (today - dt.timedelta(days=int(float(self.cfg.history_retention) // DAY)))
        removed = 0
        for sid in list(self._systems.values()):
            while True:
                with self._wlock:
                    cur = self.db.execute(
                        "DELETE FROM snapshots WHERE sys=? AND day IN (SELECT day FROM snapshots "
                        "WHERE sys=? AND day<? LIMIT ?)", (sid, sid, cutoff.toordinal(),
                                                           PRUNE_CHUNK))
                n = cur.rowcount
                removed += n
                if n < PRUNE_CHUNK:
                    break
        with self._wlock:
            self.db.execute("DELETE FROM days WHERE day<?", (cutoff.toordinal(),))
        if removed:
            log.info("coverage history: pruned %d snapshots before %s", removed, cutoff)
        return removed

    # -- reading ---------------------------------------------------------------------------
    def _labels_by_id(self) -> dict[int, str]:
        return {i: t for t, i in self._labels.items()}

    def _fresh_ids(self) -> None:
        # Systems and labels the writer added since (reads may run on another thread).
        with self._rlock:
            for i, k, n in self._read.execute("SELECT id, key, name FROM systems"):
                self._systems.setdefault(k, i)
                self._names.setdefault(k, n)
            for i, t in self._read.execute("SELECT id, text FROM labels"):
                self._labels.setdefault(t, i)

    def at(self, day: dt.date) -> list[Snapshot]:
        """Per system, the last snapshot on or before ``day``; removed systems left out."""
        self._fresh_ids()
        labels = self._labels_by_id()
        out = []
        with self._rlock:
            for key, sid in sorted(self._systems.items()):
                row = self._read.execute(
                    "SELECT * FROM snapshots WHERE sys=? AND day<=? ORDER BY day DESC, seq DESC "
                    "LIMIT 1", (sid, day.toordinal())).fetchone()
                if row is not None:
                    snap = self._snap(row, key, labels)
                    if snap.status != REMOVED:
                        out.append(snap)
        return out

    def knows(self, system: str) -> bool:
        self._fresh_ids()
        return system in self._systems

    def trend(self, system: str, since: dt.date, until: dt.date) -> list[Snapshot]:
        """The snapshot in force on ``since`` and every snapshot after it, up to ``until``."""
        self._fresh_ids()
        sid = self._systems.get(system)
        if sid is None:
            return []
        labels = self._labels_by_id()
        with self._rlock:
            first = self._read.execute(
                "SELECT * FROM snapshots WHERE sys=? AND day<? ORDER BY day DESC, seq DESC "
                "LIMIT 1", (sid, since.toordinal())).fetchone()
            rows = self._read.execute(
                "SELECT * FROM snapshots WHERE sys=? AND day>=? AND day<=? ORDER BY day, seq",
                (sid, since.toordinal(), until.toordinal())).fetchall()
        snaps = [self._snap(r, system, labels) for r in ([first] if first else []) + rows]
        return snaps

    def trends(self, systems: Iterable[str], since: dt.date, until: dt.date
               ) -> dict[str, list[Snapshot]]:
        """``trend`` for many systems at once (the annual report: every system over a year),
        with one refresh of the id tables instead of one per system."""
        self._fresh_ids()
        labels = self._labels_by_id()
        out: dict[str, list[Snapshot]] = {}
        with self._rlock:
            for key in systems:
                sid = self._systems.get(key)
                if sid is None:
                    continue
                first = self._read.execute(
                    "SELECT * FROM snapshots WHERE sys=? AND day<? ORDER BY day DESC, seq DESC "
                    "LIMIT 1", (sid, since.toordinal())).fetchone()
                rows = self._read.execute(
                    "SELECT * FROM snapshots WHERE sys=? AND day>=? AND day<=? ORDER BY day, seq",
                    (sid, since.toordinal(), until.toordinal())).fetchall()
                out[key] = [self._snap(r, key, labels) for r in ([first] if first else []) + rows]
        return out

    def first_day(self) -> dt.date | None:
        with self._rlock:
            row = self._read.execute("SELECT min(day) FROM snapshots").fetchone()
        return dt.date.fromordinal(row[0]) if row[0] else None

    def pending_es(self, limit: int) -> list[tuple[Snapshot, tuple[int, int, int]]]:
        self._fresh_ids()
        keys = {i: k for k, i in self._systems.items()}
        labels = self._labels_by_id()
        with self._rlock:
            rows = self._read.execute(
                "SELECT s.* FROM es_pending p JOIN snapshots s ON s.sys=p.sys AND s.day=p.day "
                "AND s.seq=p.seq LIMIT ?", (limit,)).fetchall()
        return [(self._snap(r, keys.get(r[0], str(r[0])), labels), (r[0], r[1], r[2]))
                for r in rows]

    def es_done(self, keys: Iterable[tuple[int, int, int]]) -> None:
        with self._wlock:
            self.db.executemany("DELETE FROM es_pending WHERE sys=? AND day=? AND seq=?",
                                list(keys))
            # pending rows whose snapshot was pruned meanwhile
            self.db.execute("DELETE FROM es_pending WHERE NOT EXISTS (SELECT 1 FROM snapshots s "
                            "WHERE s.sys=es_pending.sys AND s.day=es_pending.day "
                            "AND s.seq=es_pending.seq)")

    def es_backlog(self) -> int:
        with self._rlock:
            return int(self._read.execute("SELECT count(*) FROM es_pending").fetchone()[0])

    # -- lifecycle ---------------------------------------------------------------------------
    async def check(self) -> None:
        """Take today's full snapshot if it is missing (at start, after midnight)."""
        if self.report is None:
            return
        if self._daily is None or self.today() > self._daily:
            await asyncio.to_thread(self.report)

    async def start(self) -> None:
        await asyncio.to_thread(self._load_last)
        await self.check()  # at start: today's snapshot if missing (written here, in a thread)
        self._started = True
        self._thread = threading.Thread(target=self._writer, name="coverage-history",
                                        daemon=True)
        self._thread.start()
        self._task = asyncio.create_task(self._midnight(), name="coverage-history-midnight")

    def seconds_to_midnight(self) -> float:
        now = self.clock()
        tz = dt.timezone(dt.timedelta(hours=self.cfg.utc_offset_hours))
        local = dt.datetime.fromtimestamp(now, tz)
        nxt = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tz)
        return max(0.0, nxt.timestamp() - now)

    async def _midnight(self) -> None:
        while True:
            # Woken a little after local midnight (and at least every 10 min, in case the
            # clock jumps), it forces a computation if today's snapshot is missing.
            await asyncio.sleep(min(600.0, self.seconds_to_midnight() + 1.0))
            try:
                await self.check()
            except Exception:
                log.exception("coverage history: daily snapshot failed")

    async def stop(self) -> None:
        from canhgac.tasks import cancel_and_wait

        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
        self._closed = True
        if self._thread is not None:
            await asyncio.to_thread(self._queue.put, None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        self._started = False

    def close(self) -> None:
        self._closed = True
        with self._wlock:
            self.db.close()
        with self._rlock:
            self._read.close()


def parse_since(text: str, today: dt.date) -> dt.date:
    """``30d``, ``12w``, ``1y`` (back from today) or a date (ISO or dd/mm/yyyy)."""
    import re

    from collector.inventory import parse_date

    t = text.strip().lower()
    m = re.fullmatch(r"(\d{1,4})\s*([dwy])", t)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        if unit == "y":
            try:
                return today.replace(year=today.year - n)
            except ValueError:  # 29 February
                return today.replace(year=today.year - n, day=28)
        return today - dt.timedelta(days=n * (7 if unit == "w" else 1))
    try:
        return parse_date(text)
    except ValueError:
        raise ValueError(f"since: not a period or a date: {text!r} (use e.g. 30d, 12w, 1y, "
                         "2025-01-01 or 01/01/2025)") from None


__all__ = ["HistoryStore", "Snapshot", "layer_state", "parse_since", "report_from",
           "snapshot_of"]
