"""Rule tests: sample events written in the rule file, replayed through a real engine.

```yaml
tests:
  - name: five failures from one address raise one alert
    events:                       # flat dotted keys (or nested ECS), in time order
      - {event.action: ssh_login, event.outcome: failure, source.ip: 203.0.113.7,
         _repeat: 5, _every: 1s}  # the same event 5 times, 1 s apart
      - {event.outcome: success, _at: 3m}   # explicit time from the test start
    tick: [5m, 15m]               # collector ticks (absence rules, throttle updates)
    expect:
      alerts: 1                   # alerts raised, updates included
      fields: {source.ip: 203.0.113.7}      # checked on the first alert
      last: {canhgac.alert.suppressed: 3}   # checked on the last alert
```

Each event gets an ``event.id``, ``@timestamp`` (test start + offset) and, when
the rule reads one dataset, ``event.dataset``. Each case runs on a freshly
compiled rule with the collector clock at the event's time, so windows,
throttles and silences behave exactly as in the collector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from canhgac.ids import uuid7
from canhgac.schema import get_path, set_path
from canhgac.timeutil import from_epoch, parse_duration
from collector.detect.engine import Engine, EngineLimits
from collector.detect.loader import build_rule
from collector.detect.model import RuleError

START = 1_790_000_000.0  # a fixed test epoch (2026-09-21), so results never depend on today
_CONTROL = frozenset({"_repeat", "_every", "_at"})


@dataclass
class CaseResult:
    name: str
    passed: bool
    alerts: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _seconds(value: Any, path: str) -> float:
    try:
        return parse_duration(value)
    except (ValueError, TypeError) as exc:
        raise RuleError(path, str(exc)) from None


def expand_event(raw: dict[str, Any]) -> dict[str, Any]:
    """Flat dotted keys -> nested ECS (nested input passes through)."""
    doc: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _CONTROL:
            continue
        if key.startswith("@") or "." not in key:
            if isinstance(value, dict) and isinstance(doc.get(key), dict):
                doc[key].update(value)
            else:
                doc[key] = value
        else:
            set_path(doc, key, value)
    return doc


def timeline(
    case: dict[str, Any], path: str, dataset: str | None
) -> list[tuple[float, dict[str, Any]]]:
    """(offset, event) in time order from a case's ``events`` list."""
    raw_events = case.get("events") or []
    if not isinstance(raw_events, list):
        raise RuleError(f"{path}.events", "expected a list of events")
    out: list[tuple[float, dict[str, Any]]] = []
    t = -1.0
    for i, raw in enumerate(raw_events):
        epath = f"{path}.events[{i}]"
        if not isinstance(raw, dict):
            raise RuleError(epath, "expected a mapping (an event)")
        repeat = raw.get("_repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise RuleError(f"{epath}._repeat", "expected a positive integer")
        every = _seconds(raw.get("_every", 1), f"{epath}._every")
        t = _seconds(raw["_at"], f"{epath}._at") if "_at" in raw else t + 1.0
        for n in range(repeat):
            at = t + n * every
            doc = expand_event(raw)
            ev = doc.setdefault("event", {})
            if not isinstance(ev, dict):
                raise RuleError(f"{epath}.event", "expected a mapping")
            ev.setdefault("kind", "event")
            if dataset is not None:
                ev.setdefault("dataset", dataset)
            ev.setdefault("id", uuid7())
            doc.setdefault("@timestamp", from_epoch(START + at))
            out.append((at, doc))
        t = t + (repeat - 1) * every
    out.sort(key=lambda pair: pair[0])
    return out


def run_case(
    rule_doc: dict[str, Any], case: Any, index: int, *, heartbeat_interval: float = 30.0
) -> CaseResult:
    """Run one test case against a fresh copy of the rule."""
    path = f"tests[{index}]"
    if not isinstance(case, dict):
        raise RuleError(path, "expected a mapping with name, events and expect")
    name = str(case.get("name") or f"case {index}")
    rule = build_rule(rule_doc)
    dataset = rule.datasets[0] if len(rule.datasets) == 1 else None
    events = timeline(case, path, dataset)
    ticks_raw = case.get("tick", [])
    ticks_raw = ticks_raw if isinstance(ticks_raw, list) else [ticks_raw]
    ticks = sorted(_seconds(t, f"{path}.tick") for t in ticks_raw)
    expect = case.get("expect")
    if not isinstance(expect, dict) or "alerts" not in expect:
        raise RuleError(f"{path}.expect", "expected a mapping with at least 'alerts'")

    clock = [START]
    engine = Engine(
        [rule], EngineLimits(heartbeat_interval=heartbeat_interval), clock=lambda: clock[0]
    )
    alerts: list[dict[str, Any]] = []
    steps: list[tuple[float, int, dict[str, Any] | None]] = [(t, 0, d) for t, d in events]
    steps += [(t, 1, None) for t in ticks]
    steps.sort(key=lambda s: (s[0], s[1]))
    for at, is_tick, doc in steps:
        clock[0] = START + at
        if is_tick:
            alerts.extend(engine.tick(clock[0]))
        else:
            alerts.extend(engine.process([doc]))  # type: ignore[list-item]

    problems = check(expect, alerts, f"{path}.expect")
    return CaseResult(name, not problems, alerts, problems)


def check(expect: dict[str, Any], alerts: list[dict[str, Any]], path: str) -> list[str]:
    problems: list[str] = []
    want = expect["alerts"]
    if len(alerts) != want:
        problems.append(f"expected {want} alert(s), got {len(alerts)}")
    for key, which in (("fields", 0), ("last", -1)):
        fields = expect.get(key)
        if not fields:
            continue
        if not isinstance(fields, dict):
            raise RuleError(f"{path}.{key}", "expected a mapping of field: value")
        if not alerts:
            problems.append(f"{key}: no alert to check")
            continue
        alert = alerts[which]
        for fname, value in fields.items():
            got = get_path(alert, fname)
            if got != value:
                problems.append(f"{key}: {fname} is {got!r}, expected {value!r}")
    return problems


def run_tests(rule_doc: dict[str, Any], tests: list[Any]) -> list[CaseResult]:
    return [run_case(rule_doc, case, i) for i, case in enumerate(tests)]
