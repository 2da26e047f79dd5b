"""The in-stream rules engine: the collector pipeline's ``detect`` stage.

Rules are indexed by ``event.dataset`` at install time, so an event is offered
only to the rules that read its dataset; with the built-in pack most events meet
one or two predicates and many meet none. Within a dataset, Sigma rules are
prefiltered by the literals they need (prefilter.py): one multi-pattern scan per
field per event instead of one test per rule, so a large community rule set costs
little more than the rules an event can actually match. Each hit goes through its rule's
throttle, which decides between a new alert, nothing (counted as suppressed) or
an update alert. ``tick`` runs time-based rules (absence), closes throttle
windows and, every few seconds, expires idle per-key state.

Swapping rule sets is atomic with respect to batches: :meth:`install` builds
the new index aside and swaps it in on the event loop thread, the thread that
runs ``process``, so a batch never meets half the old rules and half the new.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from collector.detect.alerts import build_alert
from collector.detect.model import Match
from collector.detect.prefilter import DatasetIndex, Handler, Requirement
from collector.detect.rule import Rule
from collector.detect.throttle import EVIDENCE_FIELDS, Throttle

Event = dict[str, Any]
log = logging.getLogger(__name__)

EXPIRE_EVERY = 5.0  # seconds between idle-state sweeps


@dataclass(frozen=True)
class EngineLimits:
    throttle: float = 600.0  # default throttle window, seconds (a rule may set its own)
    max_keys: int = 100_000  # per rule: keys held in windows and in the throttle
    max_event_ids: int = 50  # contributing event ids carried by one alert
    heartbeat_interval: float = 30.0


class Engine:
    name = "detect"

    def __init__(
        self,
        rules: list[Rule] | None = None,
        limits: EngineLimits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limits = limits or EngineLimits()
        self.clock = clock
        self.rules: list[Rule] = []
        self._index: dict[str, DatasetIndex] = {}
        self._by_id: dict[str, Rule] = {}
        self._next_expiry = 0.0
        # Plain counters read by the metrics collector; no Prometheus call per event.
        self.events_total = 0
        self.matches_total = 0
        self.alerts_total: dict[str, int] = {}
        self.errors_total = 0
        self._logged: set[str] = set()
        self.install(rules or [])

    def install(self, rules: list[Rule]) -> None:
        """Compile-time work: throttles, limits, the dataset index. Then swap in.

        Rules already installed keep their state (windows, open throttles), so a
        reload that changes one file does not reset every other rule.
        """
        lim = self.limits
        current = {id(r) for r in self.rules}
        index: dict[str, list[tuple[Handler, Requirement | None]]] = {}
        for rule in rules:
            if id(rule) not in current:
                rule.configure(cap=lim.max_keys, heartbeat_interval=lim.heartbeat_interval)
                window = lim.throttle if rule.throttle_window is None else rule.throttle_window
                build = partial(build_alert, max_ids=lim.max_event_ids)
                evidence = EVIDENCE_FIELDS if rule.kind == "sigma" else ()
                rule.throttle = Throttle(window, build, cap=lim.max_keys, max_ids=lim.max_event_ids,
                                         evidence_fields=evidence)
            for ds in rule.datasets:
                handler = rule.on_event_excepting if rule.exceptions else rule.on_event
                index.setdefault(ds, []).append((handler, getattr(rule, "requirement", None)))
        by_id = {r.meta.id: r for r in rules}
        for r in rules:
            self.alerts_total.setdefault(r.meta.id, 0)
        # The swap: three assignments with no event processing in between (same thread).
        self._by_id = by_id
        self.rules = list(rules)
        self._index = {ds: DatasetIndex(entries) for ds, entries in index.items()}

    @property
    def datasets(self) -> frozenset[str]:
        return frozenset(self._index)

    # -- the Stage protocol -----------------------------------------------------------

    def process(self, events: list[Event]) -> list[Event]:
        """Evaluate one batch; return the alerts it raised.

        A hit is admitted through its throttle at once, not at the end of the
        batch, so the next event of the same attack in this batch already sees
        the open alert and is counted into it (stateful rules rely on that).
        """
        index = self._index
        now = self.clock()
        out: list[Event] = []
        for doc in events:
            ev = doc.get("event")
            if ev.__class__ is not dict:
                continue
            entry = index.get(str(ev.get("dataset")))
            if entry is None:
                continue
            try:
                handlers = entry.candidates(doc)
            except Exception:  # an odd value the scan cannot read: evaluate every rule
                handlers = entry.handlers
            for handler in handlers:
                try:
                    m = handler(doc, now)
                except Exception:  # one odd event must not stop detection for the batch
                    self._error(handler)
                    continue
                if m is not None:
                    out.extend(self._admit([m], now))
        self.events_total += len(events)
        return out

    def tick(self, now: float) -> list[Event]:
        hits: list[Match] = []
        for rule in self.rules:
            hits.extend(rule.on_tick(now))
        out = self._admit(hits, now) if hits else []
        for rule in self.rules:
            flushed = rule.throttle.flush(now)
            if flushed:
                self._count(rule, len(flushed))
                out.extend(flushed)
        if now >= self._next_expiry:
            self._next_expiry = now + EXPIRE_EVERY
            for rule in self.rules:
                rule.expire(now)
        return out

    def drain(self) -> list[Event]:
        """Close every throttle window now (end of a replay, or shutdown): updates out."""
        out: list[Event] = []
        for rule in self.rules:
            flushed = rule.throttle.flush(float("inf"))
            self._count(rule, len(flushed))
            out.extend(flushed)
        return out

    # -- internals ------------------------------------------------------------------

    def _admit(self, hits: list[Match], now: float) -> list[Event]:
        out: list[Event] = []
        self.matches_total += len(hits)
        for m in hits:
            rule = self._by_id[m.meta.id]
            alerts = rule.throttle.admit(m, now)
            if alerts:
                self._count(rule, len(alerts))
                out.extend(alerts)
        return out

    def _error(self, handler: Callable[..., Any]) -> None:
        self.errors_total += 1
        rule = getattr(handler, "__self__", None)
        rid = rule.meta.id if isinstance(rule, Rule) else "?"
        if rid not in self._logged:  # once per rule: an attacker must not flood the log
            self._logged.add(rid)
            log.exception("detection: rule %s failed on an event (counted, skipped)", rid)

    def _count(self, rule: Rule, n: int) -> None:
        self.alerts_total[rule.meta.id] = self.alerts_total.get(rule.meta.id, 0) + n

    def stats(self) -> dict[str, Any]:
        """Counters and state sizes for metrics and `rules test`."""
        return {
            "events": self.events_total,
            "matches": self.matches_total,
            "errors": self.errors_total,
            "alerts": dict(self.alerts_total),
            "suppressed": {r.meta.id: r.throttle.suppressed_total for r in self.rules},
            "escalated": {r.meta.id: r.throttle.escalated_total for r in self.rules},
            "excepted": {r.meta.id: r.excepted_total for r in self.rules},
            "state_keys": {r.meta.id: r.state_size() + len(r.throttle) for r in self.rules},
            "evicted": {r.meta.id: r.evicted() + r.throttle.evicted for r in self.rules},
        }
