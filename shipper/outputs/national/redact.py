"""Personal-data minimisation before a line leaves the province.

Modes per field (dotted ECS path; nested or flat-dotted keys, scalars or lists):
- ``hash``: HMAC-SHA256 with a province-local key, first 128 bits, as
  ``h:<hex>``. Stable, so the center can still correlate "same user / same
  address" within this province, but cannot recover the value.
- ``observable``: an address outside the province (the attacker's) is kept in
  clear, the center needs it to act; an internal one (private ranges, the
  configured ``internal_networks``, the reporting host's own ``host.ip``) is
  hashed. Anything that is not an address is hashed.
- ``truncate``: IP addresses keep only their network (/24, /48 by default) and
  stay valid IPs; other values are redacted.
- ``redact``: replaced by ``[redacted]``. ``drop``: removed. ``keep``: left alone
  (to switch a default off).
- ``text``: free text (``message``, ``canhgac.alert.key``), rewritten last: every
  value another field gave up is replaced in it by what that field now holds. A
  message is written for people in the province; this is how it is rebuilt from
  the fields after minimisation instead of leaking what they hid.

``canhgac.alert.new_evidence`` (field → value, from throttle updates) is
minimised key by key with the modes of the fields it names.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from shipper.outputs.national.config import RedactConfig

REDACTED = "[redacted]"
EVIDENCE = ("canhgac", "alert", "new_evidence")
# A value shorter than this is not searched for in free text: replacing every "1" or
# "ab" in a sentence would destroy it, and such a value identifies nobody.
MIN_TEXT_VALUE = 3

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Always internal, whatever the configuration: addresses that cannot be the Internet's.
_ALWAYS_INTERNAL: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.168.0.0/16", "::/128", "::1/128", "fc00::/7", "fe80::/10",
))


def _ip(value: Any) -> IPAddress | None:
    if not isinstance(value, str):
        return None
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class Redactor:
    """Precompiled per config. Pseudonyms are memoised (bounded): the same users and
    addresses recur in nearly every alert, and the HMAC is most of the cost."""

    CACHE_MAX = 65536

    def __init__(self, config: RedactConfig, key: bytes) -> None:
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._cache: dict[str, str] = {}
        self._v4 = config.truncate_ipv4_prefix
        self._v6 = config.truncate_ipv6_prefix
        self._internal = _ALWAYS_INTERNAL + tuple(
            ipaddress.ip_network(n, strict=False) for n in config.internal_networks)
        self._modes = {path: mode for path, mode in config.all_fields().items() if mode != "keep"}
        # Grouped by top-level key so a document is only walked where it has data; free
        # text goes last, once every other field has given up its values.
        self._by_top: dict[str, list[tuple[list[str], str]]] = {}
        self._text: list[list[str]] = []
        for path, mode in self._modes.items():
            if mode == "text":
                self._text.append(path.split("."))
            else:
                self._by_top.setdefault(path.split(".")[0], []).append((path.split("."), mode))
        self._flat = {p: m for p, m in self._modes.items() if "." in p and m != "text"}

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

    def internal(self, ip: IPAddress, own: frozenset[IPAddress] = frozenset()) -> bool:
        """True for an address of the province (never shared in clear)."""
        return ip in own or any(ip in net for net in self._internal)

    def _truncate(self, value: Any) -> Any:
        ip = _ip(str(value))
        if ip is None:
            return REDACTED
        prefix = self._v4 if ip.version == 4 else self._v6
        return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)

    def _scalar(self, value: Any, mode: str, own: frozenset[IPAddress]) -> Any:
        if mode == "hash":
            return self.pseudonym(value)
        if mode == "observable":
            ip = _ip(value)
            return value if ip is not None and not self.internal(ip, own) else self.pseudonym(value)
        if mode == "truncate":
            return self._truncate(value)
        return REDACTED

    def _apply(self, value: Any, mode: str, own: frozenset[IPAddress],
               given_up: dict[str, str]) -> Any:
        if isinstance(value, list):
            return [self._apply(v, mode, own, given_up) for v in value]
        if value is None or isinstance(value, dict):
            return REDACTED if isinstance(value, dict) else None
        new = self._scalar(value, mode, own)
        if new != value:
            given_up[str(value)] = str(new)
        return new

    def apply(self, doc: dict[str, Any]) -> int:
        """Minimise ``doc`` in place; returns how many fields were changed."""
        own = frozenset(ip for ip in map(_ip, _values(doc, ["host", "ip"])) if ip is not None)
        given_up: dict[str, str] = {}
        changed = 0
        for top in [k for k in doc if k in self._by_top or "." in k]:
            if top in self._flat:  # a flat dotted key, e.g. "process.command_line"
                changed += self._set(doc, top, self._flat[top], own, given_up)
            for parts, mode in self._by_top.get(top, ()):
                parent = _parent(doc, parts)
                if parent is not None and parts[-1] in parent:
                    changed += self._set(parent, parts[-1], mode, own, given_up)
        changed += self._evidence(doc, own, given_up)
        if self._text and given_up:
            pattern = _pattern(given_up)
            for parts in self._text:
                for container, key in _places(doc, parts):
                    text = container[key]
                    new = _rewrite(text, pattern, given_up)
                    if new != text:
                        container[key] = new
                        changed += 1
        return changed

    def _set(self, container: dict[str, Any], key: str, mode: str,
             own: frozenset[IPAddress], given_up: dict[str, str]) -> int:
        value = container[key]
        if mode == "drop":
            del container[key]
            for v in value if isinstance(value, list) else [value]:
                if v is not None and not isinstance(v, dict):
                    given_up[str(v)] = REDACTED
        else:
            container[key] = self._apply(value, mode, own, given_up)
        return 1

    def _evidence(self, doc: dict[str, Any], own: frozenset[IPAddress],
                  given_up: dict[str, str]) -> int:
        found = _parent(doc, [*EVIDENCE, ""])  # the evidence mapping itself
        if found is None:
            return 0
        changed = 0
        for name in list(found):
            mode = self._modes.get(str(name))
            if mode is None or mode == "text":
                continue
            changed += self._set(found, name, mode, own, given_up)
        return changed


def _parent(doc: dict[str, Any], parts: list[str]) -> dict[str, Any] | None:
    parent: Any = doc
    for part in parts[:-1]:
        parent = parent.get(part) if isinstance(parent, dict) else None
        if parent is None:
            return None
    return parent if isinstance(parent, dict) else None


def _places(doc: dict[str, Any], parts: list[str]) -> Iterable[tuple[dict[str, Any], str]]:
    """Where a text field is: nested, or a flat dotted key at the top."""
    flat = ".".join(parts)
    if len(parts) > 1 and isinstance(doc.get(flat), str):
        yield doc, flat
    parent = _parent(doc, parts)
    if parent is not None and isinstance(parent.get(parts[-1]), str):
        yield parent, parts[-1]


def _values(doc: dict[str, Any], parts: list[str]) -> list[Any]:
    parent = _parent(doc, parts)
    value = parent.get(parts[-1]) if parent is not None else doc.get(".".join(parts))
    return value if isinstance(value, list) else [value]


def _pattern(given_up: dict[str, str]) -> re.Pattern[str] | None:
    words = sorted((v for v in given_up if len(v) >= MIN_TEXT_VALUE), key=len, reverse=True)
    if not words:
        return None
    # whole tokens only: "10.0.0.5" must not match inside "10.0.0.55"
    return re.compile(r"(?<![\w.])(?:" + "|".join(map(re.escape, words)) + r")(?![\w])")


def _rewrite(text: str, pattern: re.Pattern[str] | None, given_up: dict[str, str]) -> str:
    if pattern is None:
        return text
    return pattern.sub(lambda m: given_up[m.group(0)], text)
