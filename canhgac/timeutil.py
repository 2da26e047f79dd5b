"""Timestamps: always UTC, RFC 3339 with millisecond precision, as ECS expects."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def now_rfc3339() -> str:
    return format_rfc3339(datetime.now(UTC))


def format_rfc3339(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def from_epoch(ts: float) -> str:
    return format_rfc3339(datetime.fromtimestamp(ts, UTC))


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 / ISO 8601 timestamp; naive values are taken as UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


# RFC 3339 section 5.6, as the wire protocol states it: date "T" time, optional fraction,
# then "Z" or a numeric offset with minutes. No week dates, no basic format, no "+00",
# no space for "T" — all of which Python's fromisoformat would take.
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339_strict(value: str) -> datetime:
    """An RFC 3339 date-time exactly (see _RFC3339); raises ValueError otherwise."""
    # The shape agents send (2026-12-02T04:00:00.123Z), checked by position: the hot path.
    if (len(value) == 24 and value[23] == "Z" and value[10] == "T" and value[19] == "."
            and value[4] == value[7] == "-" and value[13] == value[16] == ":"
            and value[:4].isdigit() and value[20:23].isdigit()):
        return datetime.fromisoformat(value[:23] + "+00:00")
    m = _RFC3339.match(value)
    if m is None:
        raise ValueError(f"not RFC 3339 (YYYY-MM-DDTHH:MM:SS[.fff]Z or ±HH:MM): {value[:40]!r}")
    frac = (m.group(7) or "")[:7]  # Python keeps microseconds: 6 digits after the dot
    offset = "+00:00" if m.group(8) == "Z" else m.group(8)
    text = f"{m.group(1)}-{m.group(2)}-{m.group(3)}T{m.group(4)}:{m.group(5)}:{m.group(6)}"
    return datetime.fromisoformat(text + frac + offset)


def parse_duration(value: str | int | float) -> float:
    """'15m' -> 900.0 seconds. Numbers are seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"negative duration: {value!r}")
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 15m, 2h, 7d)")
    return float(m.group(1)) * _UNITS[m.group(2)]

