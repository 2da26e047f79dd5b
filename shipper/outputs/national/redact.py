"""Personal-data minimisation before a line leaves the province.

Modes per field (dotted ECS path; nested or flat-dotted keys, scalars or lists):
- ``hash``: HMAC-SHA256 with a province-local key, first 128 bits, as
  ``h:<hex>``. Stable, so the center can still correlate "same user / same
  address" within this province, but cannot recover the value.
- ``truncate``: IP addresses keep only their network (/24, /48 by default) and
  stay valid IPs; other values are redacted.
- ``redact``: replaced by ``[redacted]``. ``drop``: removed. ``keep``: left alone
  (to switch a default off).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import Any

from shipper.outputs.national.config import RedactConfig

REDACTED = "[redacted]"


class Redactor:
    """Precompiled per config. Pseudonyms are memoised (bounded): the same users and
    addresses recur in nearly every alert, and the HMAC is most of the cost."""

    CACHE_MAX = 65536

    def __init__(self, config: RedactConfig, key: bytes) -> None:
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._cache: dict[str, str] = {}
        self._v4 = config.truncate_ipv4_prefix
        self._v6 = config.truncate_ipv6_prefix
        fields = [(path, path.split("."), mode) for path, mode in config.all_fields().items()
                  if mode != "keep"]
        # Grouped by top-level key so a document is only walked where it has data.
        self._by_top: dict[str, list[tuple[list[str], str]]] = {}
        for _path, parts, mode in fields:
            self._by_top.setdefault(parts[0], []).append((parts, mode))
        self._flat = {path: mode for path, _parts, mode in fields if "." in path}

    def pseudonym(self, value: Any) -> str:
        text = value if isinstance(value, str) else str(value)
        hit = self._cache.get(text)
        if hit is None:
            mac = self._mac.copy()
            mac.update(text.encode("utf-8"))
            hit = "h:" + mac.hexdigest()[:32]
            if len(self._cache) >= self.CACHE_MAX:
                self._cache.clear()
            self._cache[text] = hit
        return hit

    def _truncate(self, value: Any) -> Any:
        try:
            ip = ipaddress.ip_address(str(value))
        except ValueError:
            return REDACTED
        prefix = self._v4 if ip.version == 4 else self._v6
        return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)

    def _apply(self, value: Any, mode: str) -> Any:
        if isinstance(value, list):
            return [self._apply(v, mode) for v in value]
        if value is None:
            return None
        if mode == "hash":
            return self.pseudonym(value)
        if mode == "truncate":
            return self._truncate(value)
        return REDACTED

    def apply(self, doc: dict[str, Any]) -> int:
        """Minimise ``doc`` in place; returns how many fields were changed."""
        changed = 0
        for top in [k for k in doc if k in self._by_top or "." in k]:
            if top in self._flat:  # a flat dotted key, e.g. "process.command_line"
                changed += self._set(doc, top, self._flat[top])
            for parts, mode in self._by_top.get(top, ()):
                parent: Any = doc
                for part in parts[:-1]:
                    parent = parent.get(part) if isinstance(parent, dict) else None
                    if parent is None:
                        break
                if isinstance(parent, dict) and parts[-1] in parent:
                    changed += self._set(parent, parts[-1], mode)
        return changed

    def _set(self, container: dict[str, Any], key: str, mode: str) -> int:
        if mode == "drop":
            del container[key]
        else:
            container[key] = self._apply(container[key], mode)
        return 1
