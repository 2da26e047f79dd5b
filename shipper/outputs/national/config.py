"""Configuration of the ``national`` output (``outputs.national``): *what* is shared.

The link itself (where the center is, which key signs) is the kernel's
``canhgac.national.link``, shared with the collector's indicator pull and
``canhgac check national``. ``LinkConfig`` and ``load_link`` are re-exported here.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from canhgac.config import Secret, field_meta, load_section
from canhgac.national.link import LinkConfig, load_link
from canhgac.national.vocabulary import Severity
from canhgac.signing import load_secret

FieldMode = Literal["hash", "redact", "truncate", "drop", "keep", "observable", "text"]

# What leaves the province, by field class (docs/national.md, "What is shared"):
# - victim identities (user names and ids, the host's own addresses, personal data) are
#   pseudonymised, dropped or redacted;
# - addresses are ``observable``: an external address (the attacker's, a C2 server's) goes in
#   clear, an internal one (private ranges, the province's ``internal_networks``, the host's
#   own ``host.ip``) is pseudonymised;
# - free text (``text``) is rewritten after every other field: each value minimised above is
#   replaced in it by its minimised form, so a message never carries what its fields do not.
DEFAULT_FIELDS: dict[str, FieldMode] = {
    "user.name": "hash",
    "user.id": "hash",
    "user.email": "hash",
    "user.full_name": "drop",
    "user.target.name": "hash",
    "user.target.id": "hash",
    "related.user": "hash",
    "source.user.name": "hash",
    "destination.user.name": "hash",
    "group.name": "keep",
    "host.ip": "hash",
    "source.ip": "observable",
    "client.ip": "observable",
    "destination.ip": "observable",
    "server.ip": "observable",
    "related.ip": "observable",
    "source.mac": "hash",
    "host.mac": "hash",
    "process.command_line": "redact",
    "process.args": "redact",
    "process.parent.command_line": "redact",
    "process.parent.args": "redact",
    "process.working_directory": "redact",
    "url.query": "redact",
    "url.original": "redact",
    "url.full": "redact",
    "url.username": "drop",
    "url.password": "drop",
    "event.original": "redact",
    "message": "text",
    "canhgac.alert.key": "text",
    "error.message": "text",
}


@dataclass
class LevelPolicy:
    """What one security level shares. A level override is a full policy (unset keys: defaults)."""

    alerts: bool = True
    min_severity: Severity = "medium"
    summaries: bool = True
    telemetry: bool = False  # raw events: never, unless enabled here
    telemetry_datasets: list[str] = field(default_factory=list)  # empty + telemetry: all
    # attacker observables of a shared alert as STIX 2.1 cyber-observable objects
    observables: bool = True


@dataclass
class PolicyConfig:
    default: LevelPolicy = field(default_factory=LevelPolicy)
    levels: dict[int, LevelPolicy] = field(default_factory=dict)

    def validate(self) -> tuple[str, str] | None:
        for level in self.levels:
            if not 1 <= level <= 5:
                return (f"levels.{level}", "a security level is 1 to 5")
        return None

    def for_level(self, level: int | None) -> LevelPolicy:
        if level is None:
            return self.default
        return self.levels.get(level, self.default)


@dataclass
class RedactConfig:
    """Personal-data minimisation applied to every line before it leaves the province."""

    fields: dict[str, FieldMode] = field(default_factory=lambda: dict(DEFAULT_FIELDS))
    extra_fields: dict[str, FieldMode] = field(default_factory=dict)  # added to ``fields``
    hash_key: Secret = Secret("")  # empty: generated once, kept in state_dir/national/
    truncate_ipv4_prefix: int = field(default=24, metadata=field_meta(min=0, max=32))
    truncate_ipv6_prefix: int = field(default=48, metadata=field_meta(min=0, max=128))
    # The province's own public ranges (data-center and office addresses): internal, like
    # the private ranges, so they leave only pseudonymised. CIDR strings.
    internal_networks: list[str] = field(default_factory=list)

    def validate(self) -> tuple[str, str] | None:
        for i, net in enumerate(self.internal_networks):
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                return (f"internal_networks[{i}]", f"{net!r} is not an IP network (CIDR)")
        return None

    def all_fields(self) -> dict[str, str]:
        out: dict[str, str] = dict(self.fields)
        out.update(self.extra_fields)
        return out


@dataclass
class NationalOutputConfig:
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    redact: RedactConfig = field(default_factory=RedactConfig)
    max_request_events: int = field(default=2000, metadata=field_meta(min=1, max=20000))
    max_request_bytes: int = field(default=8 * 1024 * 1024, metadata=field_meta(min=1024))
    gzip_level: int = field(default=5, metadata=field_meta(min=1, max=9))


def load_output(raw: Any, source: str) -> NationalOutputConfig:
    return load_section(raw, NationalOutputConfig, source, "outputs.national")


def hash_key(cfg: RedactConfig, state_dir: Path | None) -> bytes:
    """The province-local pseudonymisation key.

    Never derived from the link secret: the center knows that one and could
    then reverse hashed IPv4 addresses by brute force. Generated on first use
    and kept (0600) so pseudonyms stay stable across restarts.
    """
    if cfg.hash_key:
        return load_secret(cfg.hash_key)
    if state_dir is None:
        return secrets.token_bytes(32)
    path = state_dir / "national" / "redaction.key"
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex())
    return key


__all__ = ["LinkConfig", "NationalOutputConfig", "RedactConfig", "PolicyConfig", "LevelPolicy",
           "load_link", "load_output", "hash_key"]
