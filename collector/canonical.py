"""One form for every event: dotted keys expanded, so that no consumer can be fooled.

``{"canhgac.system.id": "sys-b"}`` and ``{"canhgac": {"system": {"id": "sys-b"}}}`` mean
the same to Elasticsearch, which expands dotted field names. If the collector kept the
flat form, enrichment (which overwrites the nested ``canhgac.system``) and validation
(which checks nested ``source.ip``) would look past it, while Elasticsearch, the alert
store and the national summaries read it as the nested field: a payload could choose
its system. So every accepted event is expanded here, at validation, before anything
else reads it; a key that names the same field twice with different values is refused.
"""

from __future__ import annotations

import json
import re
from typing import Any

# A JSON object key containing a dot: the dot, the rest of the key, its closing quote,
# then a colon. Dots in values are followed by a quote and then , } or ], and dots in
# numbers by no quote at all, so this finds every dotted key (and rarely anything
# else): the common line with no dotted key costs one scan in C and no Python walk.
_DOTTED_KEY = re.compile(rb'\.(?:[^"\\]|\\.)*"\s*:')


# An integer literal of 19 digits or more may not fit in 64 bits (orjson would turn it
# into a float, silently changing what the agent sent); only such lines are re-read exactly.
# Found in C: digits become "0", everything else " ", then a substring search.
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_NINETEEN = b"0" * 19
INT_MIN, UINT_MAX = -(2**63), 2**64 - 1


def oversized_integer(line: bytes) -> str | None:
    """The first JSON integer in ``line`` outside [-2^63, 2^64-1], as written, or None."""
    if _NINETEEN not in line.translate(_DIGITS_AS_ZERO):
        return None
    found: list[str] = []

    def check(text: str) -> int:
        value = int(text)
        if not found and not INT_MIN <= value <= UINT_MAX:
            found.append(text)
        return 0

    try:
        json.loads(line, parse_int=check)
    except ValueError:
        return None  # not JSON: the caller's own parse says so
    return found[0] if found else None


class Conflict(ValueError):
    """A field is given twice (flat and nested) with different values, or a key is empty."""


def may_have_dotted_keys(line: bytes) -> bool:
    return _DOTTED_KEY.search(line) is not None


def expand(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` with every dotted key split into nested objects (recursively)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        value = _expand_value(value)
        if "." not in key:
            _put(out, [key], value, key)
            continue
        parts = key.split(".")
        if any(p == "" for p in parts):
            raise Conflict(f"field name {key[:64]!r} has an empty part")
        _put(out, parts, value, key)
    return out


def _expand_value(value: Any) -> Any:
    if isinstance(value, dict):
        return expand(value)
    if isinstance(value, list):
        return [_expand_value(v) for v in value]
    return value


def _put(target: dict[str, Any], parts: list[str], value: Any, name: str) -> None:
    for i, part in enumerate(parts[:-1]):
        nxt = target.get(part)
        if nxt is None:
            nxt = target[part] = {}
        elif not isinstance(nxt, dict):
            raise Conflict(f"{'.'.join(parts[:i + 1])[:64]} is both a value and an object "
                           f"(via {name[:64]!r})")
        target = nxt
    last = parts[-1]
    if last not in target:
        target[last] = value
        return
    existing = target[last]
    if isinstance(existing, dict) and isinstance(value, dict):
        for k, v in value.items():
            _put(existing, [k], v, name)
    elif existing != value:
        raise Conflict(f"field {'.'.join(parts)[:64]} is given twice with different values")
