"""Reading STIX 2.1 indicator bundles into atomic (type, value) pairs.

Only single-comparison patterns are used for matching (``[ipv4-addr:value =
'...']`` and friends); compound patterns are counted as unsupported rather
than half-understood. Revoked and expired indicators are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from canhgac.timeutil import parse_rfc3339

_VALUE = r"'((?:[^'\\]|\\.)*)'"
_PATTERNS = [
    (re.compile(r"^\[\s*ipv4-addr:value\s*=\s*" + _VALUE + r"\s*\]$"), "ipv4"),
    (re.compile(r"^\[\s*ipv6-addr:value\s*=\s*" + _VALUE + r"\s*\]$"), "ipv6"),
    (re.compile(r"^\[\s*domain-name:value\s*=\s*" + _VALUE + r"\s*\]$"), "domain"),
    (re.compile(r"^\[\s*url:value\s*=\s*" + _VALUE + r"\s*\]$"), "url"),
    (re.compile(r"^\[\s*file:hashes\.(?:'SHA-256'|\"SHA-256\"|SHA256|'SHA256')\s*=\s*"
                + _VALUE + r"\s*\]$"), "sha256"),
]
_LEVELS = ("low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True)
class Indicator:
    id: str
    type: str  # ipv4 | ipv6 | domain | url | sha256
    value: str
    name: str
    severity: str | None  # low..critical if the center said so
    confidence: int | None
    modified: str


def parse_pattern(pattern: str) -> tuple[str, str] | None:
    for rx, kind in _PATTERNS:
        m = rx.match(pattern.strip())
        if m:
            value = re.sub(r"\\(.)", r"\1", m.group(1))
            return kind, value
    return None


def parse_bundle(
    bundle: Any, now: datetime | None = None
) -> tuple[list[Indicator], int]:
    """Indicators usable for matching, and how many were skipped as unsupported."""
    now = now or datetime.now(UTC)
    out: list[Indicator] = []
    unsupported = 0
    objs = bundle.get("objects", []) if isinstance(bundle, dict) else []
    for obj in objs:
        if not isinstance(obj, dict) or obj.get("type") != "indicator":
            continue
        if obj.get("revoked") is True:
            continue
        until = obj.get("valid_until")
        if isinstance(until, str):
            try:
                if parse_rfc3339(until) <= now:
                    continue
            except ValueError:
                pass
        pattern = obj.get("pattern")
        parsed = parse_pattern(pattern) if isinstance(pattern, str) and \
            obj.get("pattern_type", "stix") == "stix" else None
        if parsed is None:
            unsupported += 1
            continue
        sev = obj.get("x_ncsc_severity")
        conf = obj.get("confidence")
        out.append(Indicator(
            id=str(obj.get("id", "")), type=parsed[0], value=parsed[1],
            name=str(obj.get("name") or f"{parsed[0]} {parsed[1]}"),
            severity=sev if sev in _LEVELS else None,
            confidence=conf if isinstance(conf, int) and not isinstance(conf, bool) else None,
            modified=str(obj.get("modified") or obj.get("created") or ""),
        ))
    return out, unsupported
