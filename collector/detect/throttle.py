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

Folding is only for repeats of the *same evidence*. For rules given
``evidence_fields`` (single-event Sigma rules), a hit inside an open window whose
evidence (command line, executable, user, group, file, addresses) differs from every
hit already alerted in the window escalates at once: an update alert naming what is
new (``canhgac.alert.new_evidence``), never a silent fold. A root reverse shell after
an unrelated one on the same host is a new alert, not "1 more matching event".
Distinct evidence per window is bounded (``MAX_EVIDENCE``); beyond it hits fold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collector.detect.fields import make_getter
from collector.detect.model import Match
from collector.detect.state import KeyedState

AlertBuilder = Callable[..., dict[str, Any]]

# What makes two hits of one rule different things, not repeats of one thing.
EVIDENCE_FIELDS: tuple[str, ...] = (
    "process.executable", "process.command_line", "user.name", "group.name", "file.path",
    "source.ip", "destination.ip", "destination.port", "dns.question.name",
)
MAX_EVIDENCE = 32  # distinct evidence escalated per open window


class _Open:
    """An open throttle window for one key."""

    __slots__ = ("expires", "alert_id", "suppressed", "sample", "last", "first_seen", "last_seen",
                 "evidence")

    def __init__(self, expires: float, alert_id: str, match: Match,
                 evidence: tuple[Any, ...] | None = None) -> None:
        self.expires = expires
        self.alert_id = alert_id
        self.suppressed = 0
        self.sample: list[str] = []
        self.last: Match = match
        self.first_seen = match.first_seen
        self.last_seen = match.last_seen
        self.evidence: set[tuple[Any, ...]] = {evidence} if evidence is not None else set()


class Throttle:
    """Per-rule throttle. ``window`` 0 disables it (every hit is an alert)."""

    def __init__(
        self, window: float, build: AlertBuilder, *, cap: int = 50_000, max_ids: int = 50,
        evidence_fields: tuple[str, ...] = (),
    ) -> None:
        self.window = window
        self.build = build
        self.max_ids = max_ids
        self.suppressed_total = 0
        self.escalated_total = 0
        self._evidence = tuple((f, make_getter(f)) for f in evidence_fields)
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
        evidence = self._fingerprint(match)
        if slot is not None and slot.expires > now:
            if (evidence is not None and evidence not in slot.evidence
                    and len(slot.evidence) < MAX_EVIDENCE):
                slot.evidence.add(evidence)
                self.escalated_total += 1
                return [self._escalation(slot, match, evidence)]
            self._suppress(slot, match)
            return out
        if slot is not None:
            self._open.pop(match.key)
            update = self._update(slot)
            if update is not None:
                out.append(update)
        alert = self.build(match)
        self._open.touch(
            match.key, now,
            lambda: _Open(now + self.window, alert["event"]["id"], match, evidence)
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

    def _fingerprint(self, match: Match) -> tuple[Any, ...] | None:
        if not self._evidence:
            return None
        return tuple(_hashable(get(match.event)) for _, get in self._evidence)

    def _escalation(self, slot: _Open, match: Match, evidence: tuple[Any, ...]) -> dict[str, Any]:
        """An update now, naming the evidence no earlier alert of this window had."""
        seen_before = slot.evidence - {evidence}
        new = {name: value for i, ((name, _), value) in enumerate(zip(self._evidence, evidence,
                                                                      strict=True))
               if value is not None and value not in {old[i] for old in seen_before}}
        escalated = Match(meta=match.meta, key=match.key, key_fields=match.key_fields,
                          event=match.event, event_ids=match.event_ids, count=match.count,
                          first_seen=match.first_seen, last_seen=match.last_seen,
                          extra={**match.extra, "new_evidence": new})
        return self.build(escalated, update_of=slot.alert_id, suppressed=0)

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


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value
