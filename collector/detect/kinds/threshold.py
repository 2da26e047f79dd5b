"""Threshold rules: at least N matching events with the same key within T.

``distinct: field`` counts distinct values instead of events (N different
ports, N different user names). State per key is at most N entries and the key
table is capped and idle-expired (see state.KeyedState), so an attacker
spraying from many addresses costs bounded memory.

Once a key has fired, further matches while its throttle window is open are
counted against that alert (they are the same attack) instead of starting a
new window, so the update alert reports how big the attack really was.
"""

from __future__ import annotations

import bisect
from typing import Any

from collector.detect.fields import make_getter, make_key_getter
from collector.detect.model import Match, RuleMeta, event_id, event_time
from collector.detect.rule import StatefulRule
from collector.detect.sigma_compile import Predicate
from collector.detect.state import KeyedState


class ThresholdRule(StatefulRule):
    kind = "threshold"

    def __init__(
        self,
        meta: RuleMeta,
        datasets: tuple[str, ...],
        predicate: Predicate,
        key_fields: tuple[str, ...],
        count: int,
        window: float,
        distinct: str | None = None,
        throttle_window: float | None = None,
    ) -> None:
        super().__init__(meta, datasets, key_fields, throttle_window)
        self.predicate = predicate
        self.count = count
        self.window = window
        self.distinct = distinct
        self._distinct = make_getter(distinct) if distinct else None
        self._key = make_key_getter(key_fields)
        self._state: KeyedState[tuple[Any, ...], Any] = KeyedState(100_000, idle=window)

    def configure(self, *, cap: int, heartbeat_interval: float) -> None:
        self._state = KeyedState(cap, idle=self.window)

    def on_event(self, doc: dict[str, Any], now: float) -> Match | None:
        if not self.predicate(doc):
            return None
        key = self._key(doc)
        if key.count(None) == len(key):
            return None  # no key, no "same attacker": never lump unrelated events together
        ts = event_time(doc, now)
        eid = event_id(doc) or ""
        throttle = self.throttle
        if throttle.window > 0 and throttle.active(key, now):
            throttle.suppress(
                Match(self.meta, key, self.key_fields, doc, [eid] if eid else [], 1, ts, ts), now
            )
            return None
        if self._distinct is not None:
            return self._distinct_hit(doc, key, ts, eid, now)
        entries: list[tuple[float, str]] = self._state.touch(key, now, list)
        bisect.insort(entries, (ts, eid))
        if len(entries) > self.count:
            del entries[0]
        newest = entries[-1][0]
        while entries and entries[0][0] < newest - self.window:
            del entries[0]
        if len(entries) < self.count:
            return None
        self._state.pop(key)
        return Match(
            self.meta, key, self.key_fields, doc,
            [e for _, e in entries if e], len(entries), entries[0][0], newest,
        )

    def _distinct_hit(
        self, doc: dict[str, Any], key: tuple[Any, ...], ts: float, eid: str, now: float
    ) -> Match | None:
        value = self._distinct(doc)  # type: ignore[misc]
        if value is None:
            return None
        seen: dict[Any, tuple[float, str]] = self._state.touch(key, now, dict)
        seen.pop(value, None)
        seen[value] = (ts, eid)
        limit = ts - self.window
        for v in [v for v, (t, _) in seen.items() if t < limit]:
            del seen[v]
        if len(seen) < self.count:
            return None
        self._state.pop(key)
        times = [t for t, _ in seen.values()]
        return Match(
            self.meta, key, self.key_fields, doc,
            [e for _, e in seen.values() if e], len(seen), min(times), max(times),
            extra={"distinct": {"field": self.distinct, "count": len(seen)}},
        )
