"""Attacker observables of a shared alert, as STIX 2.1 cyber-observable objects.

What the national center can act on is the attacker's side: external addresses,
domains, file hashes. They are read from the alert *after* minimisation, so an
address the redactor pseudonymised (internal, or the host's own) is never one of
them. Ids are the deterministic STIX 2.1 ones (UUIDv5 in the STIX namespace over
the object's ID-contributing properties), so the same address reported by two
provinces is the same object at the center.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

import orjson

from canhgac.schema import get_path

# STIX 2.1, section 2.9: the namespace of deterministic cyber-observable ids.
STIX_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")

ADDRESS_FIELDS = ("source.ip", "destination.ip", "client.ip", "server.ip", "related.ip")
DOMAIN_FIELDS = ("source.domain", "destination.domain", "client.domain", "server.domain",
                 "dns.question.name", "url.domain")
# ECS hash field -> STIX hash algorithm name (STIX vocabulary hash-algorithm-ov)
HASH_FIELDS = {"sha256": "SHA-256", "sha1": "SHA-1", "md5": "MD5", "sha512": "SHA-512"}
HASH_PARENTS = ("file.hash", "process.hash", "process.parent.hash", "dll.hash")
MAX_OBSERVABLES = 50


def sco(kind: str, props: dict[str, Any]) -> dict[str, Any]:
    """One STIX 2.1 cyber-observable object with its deterministic id."""
    canonical = orjson.dumps(props, option=orjson.OPT_SORT_KEYS).decode()
    ident = uuid.uuid5(STIX_NAMESPACE, canonical)
    return {"type": kind, "spec_version": "2.1", "id": f"{kind}--{ident}", **props}


def _strings(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, str) and v]


def _address(value: str) -> dict[str, Any] | None:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None  # a pseudonym ("h:…"): not the attacker's, or not shareable
    return sco("ipv4-addr" if ip.version == 4 else "ipv6-addr", {"value": str(ip)})


def observables(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The alert's attacker observables, deduplicated, at most MAX_OBSERVABLES."""
    found: dict[str, dict[str, Any]] = {}

    def add(obj: dict[str, Any] | None) -> None:
        if obj is not None and len(found) < MAX_OBSERVABLES:
            found.setdefault(obj["id"], obj)

    for path in ADDRESS_FIELDS:
        for value in _strings(get_path(doc, path)):
            add(_address(value))
    for path in DOMAIN_FIELDS:
        for value in _strings(get_path(doc, path)):
            name = value.rstrip(".").lower()
            if name and not name.startswith("h:") and name != "[redacted]":
                add(sco("domain-name", {"value": name}))
    for parent in HASH_PARENTS:
        for ecs, stix in HASH_FIELDS.items():
            for value in _strings(get_path(doc, f"{parent}.{ecs}")):
                add(sco("file", {"hashes": {stix: value.lower()}}))
    return list(found.values())
