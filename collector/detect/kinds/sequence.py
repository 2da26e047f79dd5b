"""Sequence rules: step A (N times) then step B ... for the same key within T.

The canonical case is a brute force followed by a successful login from the
same address. Each step has its own detection (and may read its own dataset);
state per key is a short, capped list of recent hits per step. When an event
matches the last step we look backwards greedily, taking for each earlier step
the latest hits that precede the step after it, all within T of the final
event: taking the latest possible hits is what makes the greedy walk exact.
A fired sequence clears the key's state so the same failures cannot fire twice.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from collector.detect.fields import make_key_getter
from collector.detect.model import Match, RuleMeta, event_id, event_time
from collector.detect.rule import StatefulRule
from collector.detect.sigma_compile import Predicate
from collector.detect.state import KeyedState


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    datasets: tuple[str, ...]
    predicate: Predicate
    count: int = 1


class SequenceRule(StatefulRule):
    kind = "sequence"

    def __init__(
        self,
        meta: RuleMeta,
        steps: tuple[Step, ...],
        key_fields: tuple[str, ...],
        window: float,
        throttle_window: float | None = None,
    ) -> None:
        datasets = tuple(dict.fromkeys(d for s in steps for d in s.datasets))
        super().__init__(meta, datasets, key_fields, throttle_window)
        self.steps = steps
        self.window = window
        self._key = make_key_getter(key_fields)
        # Keep a few more hits than a step needs, so out-of-order arrival and hits
        # that fall after a later step do not push out the ones that count.
        self._caps = tuple(max(4, 4 * s.count) for s in steps)
        self._state: KeyedState[tuple[Any, ...], list[list[tuple[float, str]]]] = KeyedState(
            100_000, idle=window
        )

    def configure(self, *, cap: int, heartbeat_interval: float) -> None:
        self._state = KeyedState(cap, idle=self.window)

    def on_event(self, doc: dict[str, Any], now: float) -> Match | None:
        dataset = doc["event"].get("dataset")
        last = len(self.steps) - 1
        for i in range(last, -1, -1):
            step = self.steps[i]
            if dataset not in step.datasets or not step.predicate(doc):
                continue
            key = self._key(doc)
            if key.count(None) == len(key):
                return None  # no key, no "same attacker"
            ts = event_time(doc, now)
            eid = event_id(doc) or ""
            if i == last:
                return self._complete(doc, key, ts, eid, now)
            hits = self._state.touch(key, now, self._empty)[i]
            bisect.insort(hits, (ts, eid))
            if len(hits) > self._caps[i]:
                del hits[0]
            return None
        return None

    def _empty(self) -> list[list[tuple[float, str]]]:
        return [[] for _ in self.steps]

    def _complete(
        self, doc: dict[str, Any], key: tuple[Any, ...], ts: float, eid: str, now: float
    ) -> Match | None:
        throttle = self.throttle
        hit = Match(self.meta, key, self.key_fields, doc, [eid] if eid else [], 1, ts, ts)
        if len(self.steps) == 1:
            return hit
        state = self._state.get(key)
        if state is None:
            return None
        bound = ts - self.window
        limit = ts
        used: list[str] = []
        first = ts
        for j in range(len(self.steps) - 2, -1, -1):
            need = self.steps[j].count
            hits = [h for h in state[j] if bound <= h[0] <= limit]
            if len(hits) < need:
                return None
            taken = hits[-need:]
            limit = taken[0][0]
            first = min(first, limit)
            used = [e for _, e in taken if e] + used
        if throttle.window > 0 and throttle.suppress(hit, now):
            self._state.pop(key)
            return None
        self._state.pop(key)
        hit.event_ids = used + hit.event_ids
        hit.count = len(used) + 1
        hit.first_seen = first
        return hit
