"""What every rule has in common, whatever its kind, and what a rule hit carries.

Metadata keys are Sigma's (title, id, name, description, level, tags, references,
falsepositives) for every kind, so one rule file reads like another and ATT&CK
tags are written once, the Sigma way (``attack.t1110.001``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from canhgac.errors import ConfigError

# ECS event.severity for each Sigma level. The four upper values are the ones Elastic
# Security uses, so alerts sort and colour the same in Kibana as Elastic's own.
SEVERITY: dict[str, int] = {
    "informational": 1,
    "low": 21,
    "medium": 47,
    "high": 73,
    "critical": 99,
}

KINDS = ("sigma", "threshold", "sequence", "absence")

_TECHNIQUE = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$", re.IGNORECASE)
_TACTIC = re.compile(r"^attack\.([a-z_]+)$")


class RuleError(ValueError):
    """A problem inside one rule: ``path`` is the key path within the rule document."""

    def __init__(self, path: str, problem: str, reason: str | None = None) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem
        self.reason = reason  # a refusal reason code, when the key path does not tell it

    def in_file(self, source: str, prefix: str = "") -> ConfigError:
        path = f"{prefix}{self.path}" if prefix else self.path
        return ConfigError(source, path, self.problem)


@dataclass(frozen=True, slots=True)
class RuleMeta:
    id: str
    title: str
    level: str
    name: str = ""
    description: str = ""
    ruleset: str = "custom"
    kind: str = "sigma"
    techniques: tuple[str, ...] = ()
    tactics: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    source: str = ""  # file the rule came from, for messages

    @property
    def severity(self) -> int:
        return SEVERITY[self.level]

    def matches_selector(self, selector: str) -> bool:
        """Config lists (disabled rules) may name a rule by id or by name."""
        return selector in (self.id, self.name)


def parse_tags(tags: Any, path: str = "tags") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """ATT&CK technique ids (T1110.001) and tactic names from Sigma tags."""
    if tags is None:
        return (), ()
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise RuleError(path, "expected a list of strings such as attack.t1110.001")
    techniques: list[str] = []
    tactics: list[str] = []
    for i, tag in enumerate(tags):
        if "." not in tag:
            raise RuleError(f"{path}[{i}]", f"tag {tag!r} has no namespace (e.g. attack.t1110)")
        m = _TECHNIQUE.match(tag)
        if m:
            techniques.append(m.group(1).upper())
            continue
        m = _TACTIC.match(tag)
        if m and tag.startswith("attack."):
            tactics.append(m.group(1))
    return tuple(dict.fromkeys(techniques)), tuple(dict.fromkeys(tactics))


@dataclass(slots=True)
class Match:
    """One rule hit, before throttling turns it into an alert (or a suppressed count).

    ``event`` is the triggering event (alert context is copied from it);
    ``event_ids`` are all contributing events (capped by the engine).
    """

    meta: RuleMeta
    key: tuple[Any, ...]
    key_fields: tuple[str, ...]
    event: dict[str, Any]
    event_ids: list[str] = field(default_factory=list)
    count: int = 1
    first_seen: float | None = None
    last_seen: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def event_id(doc: dict[str, Any]) -> str | None:
    ev = doc.get("event")
    if ev.__class__ is dict:
        value = ev.get("id")
        return value if isinstance(value, str) else None
    return None


def event_time(doc: dict[str, Any], default: float) -> float:
    """Event time (``@timestamp``) as epoch seconds; ``default`` when absent or unreadable.

    Windows (N failures within T) are measured in event time so that a batch an
    agent delivers late, after an outage, still counts as the burst it was.
    """
    ts = doc.get("@timestamp")
    if ts.__class__ is str:
        try:
            return _fromiso(ts).timestamp()
        except ValueError:
            return default
    if ts.__class__ is int or ts.__class__ is float:
        return float(ts)
    return default


def _fromiso(text: str) -> datetime:
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt
