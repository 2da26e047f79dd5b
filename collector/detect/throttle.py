"""One alert per (rule, key) per window; later hits are counted, not dropped.

A brute force of 10,000 attempts must give the SOC one alert to act on, not
10,000, yet the size of the attack is itself information. So: the first hit for
a key raises an alert at once and opens a window; hits inside the window are
suppressed and counted (with a capped sample of their event ids); when the
window closes with hits suppressed, one *update* alert is raised carrying the
count and ``canhgac.alert.update_of`` (the first alert's event.id). At most two
alerts per key per window, whatever the event rate.

Windows are measured in collector time (the tick clock), not event time: the
question is "how often do we page the SOC", which is about now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collector.detect.model import Match
from collector.detect.state import KeyedState

AlertBuilder = Callable[..., dict[str, Any]]


class _Open:
    """An open throttle window for one key."""

    __slots__ = ("expires", "alert_id", "suppressed", "sample", "last", "first_seen", "last_seen")

    def __init__(self, expires: float, alert_id: str, match: Match) -> None:
        self.expires = expires
        self.alert_id = alert_id
        self.suppressed = 0
        self.sample: list[str] = []
        self.last: Match = match
        self.first_seen = match.first_seen
        self.last_seen = match.last_seen


class Throttle:
    """Per-rule throttle. ``window`` 0 disables it (every hit is an alert)."""

    def __init__(
        self, window: float, build: AlertBuilder, *, cap: int = 50_000, max_ids: int = 50
    ) -> None:
        self.window = window
        self.build = build
        self.max_ids = max_ids
        self.suppressed_total = 0
        self._pending: list[dict[str, Any]] = []
        # Evicting an open window must not lose its count: flush it as an update.
        self._open: KeyedState[tuple[Any, ...], _Open] = KeyedState(
            cap, idle=window, on_evict=self._flush_evicted
        )

    def __len__(self) -> int:
        return len(self._open)

    @property
    def evicted(self) -> int:
        return self._open.evicted

    def active(self, key: tuple[Any, ...], now: float) -> bool:
        slot = self._open.get(key)
        return slot is not None and slot.expires > now

    def admit(self, match: Match, now: float) -> list[dict[str, Any]]:
        """Alerts to emit for this hit: [alert], [update, alert] or [] when suppressed."""
        out: list[dict[str, Any]] = []
        if self.window <= 0:
            return [self.build(match)]
        slot = self._open.get(match.key)
        if slot is not None and slot.expires > now:
            self._suppress(slot, match)
            return out
        if slot is not None:
            self._open.pop(match.key)
            update = self._update(slot)
            if update is not None:
                out.append(update)
        alert = self.build(match)
        self._open.touch(
            match.key, now, lambda: _Open(now + self.window, alert["event"]["id"], match)
        )
        out.append(alert)
        if self._pending:
            out = self._pending + out
            self._pending = []
        return out

    def suppress(self, match: Match, now: float) -> bool:
        """Count a hit against an open window; False when no window is open for its key."""
        slot = self._open.get(match.key)
        if slot is None or slot.expires <= now:
            return False
        self._suppress(slot, match)
        return True

    def _suppress(self, slot: _Open, match: Match) -> None:
        slot.suppressed += match.count
        self.suppressed_total += match.count
        room = self.max_ids - len(slot.sample)
        if room > 0:
            slot.sample.extend(match.event_ids[:room])
        slot.last = match
        if match.last_seen is not None:
            slot.last_seen = max(slot.last_seen or match.last_seen, match.last_seen)

    def flush(self, now: float) -> list[dict[str, Any]]:
        """Close expired windows; an update alert for each that suppressed anything."""
        out = self._pending
        self._pending = []
        for _key, slot in self._open.expire(now):
            update = self._update(slot)
            if update is not None:
                out.append(update)
        return out

    def _flush_evicted(self, _key: tuple[Any, ...], slot: _Open) -> None:
        update = self._update(slot)
        if update is not None:
            self._pending.append(update)

    def _update(self, slot: _Open) -> dict[str, Any] | None:
        if slot.suppressed == 0:
            return None
        m = slot.last
        summary = Match(
            meta=m.meta,
            key=m.key,
            key_fields=m.key_fields,
            event=m.event,
            event_ids=slot.sample,
            count=slot.suppressed,
            first_seen=slot.first_seen,
            last_seen=slot.last_seen,
            extra=m.extra,
        )
        return self.build(summary, update_of=slot.alert_id, suppressed=slot.suppressed)
