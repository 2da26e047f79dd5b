"""The center's indicator set, served as a STIX 2.1 bundle.

Loaded from a file: either a STIX 2.1 bundle (JSON) used as is, or a short YAML
list (``indicators: [{type: ipv4, value: ..., name: ...}]``) turned into STIX
indicator objects with deterministic ids (uuid5 of type+value), so a reload of
the same file yields the same ids and ETag.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from canhgac.config import load_section, read_yaml
from canhgac.errors import ConfigError
from canhgac.timeutil import format_rfc3339, now_rfc3339, parse_rfc3339

IndicatorType = Literal["ipv4", "ipv6", "domain", "url", "sha256"]
_NAMESPACE = uuid.UUID("6f1c3f0e-6e2b-4a57-9d1e-1c0a2b3c4d5e")
SEVERITY_CONFIDENCE = {"low": 30, "medium": 60, "high": 85, "critical": 100}


@dataclass
class IndicatorSpec:
    type: IndicatorType
    value: str
    name: str = ""
    description: str = ""
    severity: Literal["low", "medium", "high", "critical"] = "high"
    labels: list[str] = field(default_factory=lambda: ["malicious-activity"])
    added: str = ""  # RFC 3339; default: load time
    valid_until: str = ""
    revoked: bool = False

    def validate(self) -> tuple[str, str] | None:
        try:
            pattern(self.type, self.value)
        except ValueError as exc:
            return ("value", str(exc))
        for key in ("added", "valid_until"):
            text = getattr(self, key)
            if text:
                try:
                    parse_rfc3339(text)
                except ValueError:
                    return (key, f"not an RFC 3339 timestamp: {text!r}")
        return None


@dataclass
class IndicatorFile:
    indicators: list[IndicatorSpec] = field(default_factory=list)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def pattern(kind: str, value: str) -> str:
    """STIX pattern for one atomic indicator; raises ValueError on a bad value."""
    if kind == "ipv4":
        ipaddress.IPv4Network(value, strict=False)
        return f"[ipv4-addr:value = '{value}']"
    if kind == "ipv6":
        ipaddress.IPv6Network(value, strict=False)
        return f"[ipv6-addr:value = '{value}']"
    if kind == "domain":
        if not value or " " in value or "'" in value:
            raise ValueError(f"not a domain name: {value!r}")
        return f"[domain-name:value = '{_quote(value.lower().rstrip('.'))}']"
    if kind == "url":
        if "://" not in value:
            raise ValueError(f"not a URL: {value!r}")
        return f"[url:value = '{_quote(value)}']"
    if kind == "sha256":
        if len(value) != 64 or any(c not in "0123456789abcdefABCDEF" for c in value):
            raise ValueError("a SHA-256 is 64 hex characters")
        return f"[file:hashes.'SHA-256' = '{value.lower()}']"
    raise ValueError(f"unknown indicator type {kind!r}")


def to_stix(spec: IndicatorSpec, default_time: str) -> dict[str, Any]:
    added = format_rfc3339(parse_rfc3339(spec.added)) if spec.added else default_time
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid5(_NAMESPACE, spec.type + ':' + spec.value)}",
        "created": added,
        "modified": added,
        "name": spec.name or f"{spec.type} {spec.value}",
        "indicator_types": spec.labels,
        "pattern": pattern(spec.type, spec.value),
        "pattern_type": "stix",
        "valid_from": added,
        "confidence": SEVERITY_CONFIDENCE[spec.severity],
        "x_ncsc_severity": spec.severity,
    }
    if spec.description:
        obj["description"] = spec.description
    if spec.valid_until:
        obj["valid_until"] = format_rfc3339(parse_rfc3339(spec.valid_until))
    if spec.revoked:
        obj["revoked"] = True
    return obj


class IndicatorStore:
    """Indicators by STIX id; ``bundle`` renders a (filtered) bundle and its ETag."""

    def __init__(self) -> None:
        self._objects: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._objects)

    def load(self, path: str | Path) -> int:
        p = Path(path)
        if p.suffix.lower() == ".json":
            try:
                doc = orjson.loads(p.read_bytes())
            except FileNotFoundError:
                raise ConfigError(str(p), "", "file not found") from None
            except orjson.JSONDecodeError as exc:
                raise ConfigError(str(p), "", f"invalid JSON: {exc}") from None
            if not isinstance(doc, dict) or doc.get("type") != "bundle":
                raise ConfigError(str(p), "type", "expected a STIX 2.1 bundle")
            objs = [o for o in doc.get("objects", []) if isinstance(o, dict)
                    and o.get("type") == "indicator" and isinstance(o.get("id"), str)]
        else:
            spec = load_section(read_yaml(p), IndicatorFile, str(p))
            now = now_rfc3339()
            objs = [to_stix(s, now) for s in spec.indicators]
        with self._lock:
            self._objects = {o["id"]: o for o in objs}
        return len(objs)

    def add(self, spec: IndicatorSpec) -> dict[str, Any]:
        """Publish (or update) one indicator now; ``modified`` moves so added_after sees it."""
        obj = to_stix(spec, now_rfc3339())
        now = now_rfc3339()
        obj["modified"] = now
        with self._lock:
            old = self._objects.get(obj["id"])
            if old is not None:
                obj["created"] = old["created"]
            else:
                obj["created"] = now
            self._objects[obj["id"]] = obj
        return obj

    def bundle(self, added_after: datetime | None = None) -> tuple[bytes, str]:
        with self._lock:
            objs = list(self._objects.values())
        if added_after is not None:
            objs = [o for o in objs if parse_rfc3339(o.get("modified") or o["created"]) > added_after]
        objs.sort(key=lambda o: (o.get("modified", ""), o["id"]))
        digest = hashlib.sha256()
        for o in objs:
            digest.update(orjson.dumps(o, option=orjson.OPT_SORT_KEYS))
        etag = '"' + digest.hexdigest()[:32] + '"'
        bundle_id = f"bundle--{uuid.uuid5(_NAMESPACE, etag)}"
        body = orjson.dumps({"type": "bundle", "id": bundle_id, "objects": objs})
        return body, etag
