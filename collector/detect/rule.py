"""The interface every compiled rule offers the engine.

A rule declares the datasets it reads (the engine offers it only those events),
the fields that make its key (what "the same attacker" means for throttling and
for its own windows), and two entry points: ``on_event`` on the hot path and
``on_tick`` about once a second for rules about time passing (a heartbeat that
stopped). Stateful rules keep their state in :class:`KeyedState` tables so it is
bounded and expires.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collector.detect.model import Match, RuleMeta
from collector.detect.state import KeyedState
from collector.detect.throttle import Throttle


class Rule:
    kind = "sigma"

    def __init__(
        self,
        meta: RuleMeta,
        datasets: tuple[str, ...],
        key_fields: tuple[str, ...],
        throttle_window: float | None,
    ) -> None:
        self.meta = meta
        self.datasets = datasets
        self.key_fields = key_fields
        self.throttle_window = throttle_window  # None: the engine's default
        self.throttle: Throttle  # set by the engine when the rule is installed
        # The deployment's exceptions (detection.exceptions): events the rule never sees.
        self.exceptions: tuple[Callable[[dict[str, Any]], bool], ...] = ()
        self.excepted_total = 0

    def on_event(self, doc: dict[str, Any], now: float) -> Match | None:
        raise NotImplementedError

    def on_event_excepting(self, doc: dict[str, Any], now: float) -> Match | None:
        """``on_event`` for events no exception covers (the engine's handler when any)."""
        for known_good in self.exceptions:
            if known_good(doc):
                self.excepted_total += 1
                return None
        return self.on_event(doc, now)

    def on_tick(self, now: float) -> list[Match]:
        return []

    def expire(self, now: float) -> None:
        """Drop per-key state idle for longer than the rule can use it."""

    def state_size(self) -> int:
        return 0

    def evicted(self) -> int:
        return 0

    def configure(self, *, cap: int, heartbeat_interval: float) -> None:
        """Engine-wide limits, applied when the rule is installed."""


class StatefulRule(Rule):
    """A rule whose per-key state lives in one bounded, expiring ``KeyedState``."""

    _state: KeyedState[Any, Any]

    def expire(self, now: float) -> None:
        self._state.expire(now)

    def state_size(self) -> int:
        return len(self._state)

    def evicted(self) -> int:
        return self._state.evicted
