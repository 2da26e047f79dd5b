"""Absence rules: a key that used to send matching events has gone quiet.

"Agent offline" is the built-in use: an agent's heartbeats (dataset
``agent.health``) stop for ``intervals`` x the collector's heartbeat interval.
Time here is collector time, not the agent's ``@timestamp``: a dead agent has no
clock, and a skewed one must not make a live agent look dead.

The alert carries the last matching event's context (system, host, agent), fires
once per silence, and re-arms when the key is heard from again. Keys unheard
for ``forget`` (default 7 days) are dropped, so a decommissioned agent does not
stay in memory forever. State lives in memory: after a collector restart an
agent is watched again from its first heartbeat.
"""

from __future__ import annotations

from typing import Any

from collector.detect.fields import make_key_getter
from collector.detect.model import Match, RuleMeta, event_id
from collector.detect.rule import StatefulRule
from collector.detect.sigma_compile import Predicate
from collector.detect.state import KeyedState

FORGET_AFTER = 7 * 86400.0


class _Seen:
    __slots__ = ("last", "doc", "alerted")

    def __init__(self) -> None:
        self.last = 0.0
        self.doc: dict[str, Any] = {}
        self.alerted = False


class AbsenceRule(StatefulRule):
    kind = "absence"

    def __init__(
        self,
        meta: RuleMeta,
        datasets: tuple[str, ...],
        predicate: Predicate,
        key_fields: tuple[str, ...],
        timeout: float | None,
        intervals: float | None,
        throttle_window: float | None = None,
    ) -> None:
        super().__init__(meta, datasets, key_fields, throttle_window)
        self.predicate = predicate
        self.fixed_timeout = timeout
        self.intervals = intervals
        self.timeout = timeout or 90.0
        self._key = make_key_getter(key_fields)
        self._state: KeyedState[tuple[Any, ...], _Seen] = KeyedState(100_000, FORGET_AFTER)

    def configure(self, *, cap: int, heartbeat_interval: float) -> None:
        self._state = KeyedState(cap, FORGET_AFTER)
        if self.fixed_timeout is None and self.intervals is not None:
            self.timeout = self.intervals * heartbeat_interval

    def on_event(self, doc: dict[str, Any], now: float) -> Match | None:
        if not self.predicate(doc):
            return None
        key = self._key(doc)
        if all(v is None for v in key):
            return None
        seen = self._state.touch(key, now, _Seen)
        seen.last = now
        seen.doc = doc
        seen.alerted = False
        return None

    def on_tick(self, now: float) -> list[Match]:
        out: list[Match] = []
        limit = now - self.timeout
        for key, seen in self._state.items():
            if seen.last > limit:
                break  # touch order: everything after this was heard from more recently
            if seen.alerted:
                continue
            seen.alerted = True
            eid = event_id(seen.doc)
            out.append(
                Match(
                    self.meta, key, self.key_fields, seen.doc, [eid] if eid else [], 1,
                    seen.last, seen.last,
                    extra={"silent_seconds": round(now - seen.last, 3)},
                )
            )
        return out
