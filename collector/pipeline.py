"""In-stream processing stages between validation and the durable spool.

Every accepted batch of events passes through the stages in order
(enrich -> indicators -> detect). A stage mutates events in place and may return
new events (alerts) that are appended to the same durable commit. Stages are
synchronous on purpose: they run on the hot path per batch, and anything that
needs I/O (reloading rules, pulling indicators) happens in the stage's own
background task, swapping precompiled state atomically.
"""

from __future__ import annotations

from typing import Any, Protocol

Event = dict[str, Any]


class Stage(Protocol):
    name: str

    def process(self, events: list[Event]) -> list[Event]:
        """Mutate ``events``; return extra events to store (usually alerts), or []."""
        ...

    def tick(self, now: float) -> list[Event]:
        """Called about once a second: time-based rules (agent offline, windows)."""
        ...


class Pipeline:
    def __init__(self, stages: list[Stage] | None = None) -> None:
        self.stages: list[Stage] = list(stages or [])

    def add(self, stage: Stage) -> None:
        self.stages.append(stage)

    def process(self, events: list[Event]) -> list[Event]:
        extra: list[Event] = []
        for stage in self.stages:
            new = stage.process(events)
            if new:
                # Alerts made by one stage still pass through the later stages
                # (e.g. national sharing policy), but not through their maker.
                extra.extend(new)
                events = events + new
        return extra

    def tick(self, now: float) -> list[Event]:
        out: list[Event] = []
        for stage in self.stages:
            tick = getattr(stage, "tick", None)
            if tick is not None:
                out.extend(tick(now) or [])
        return out
