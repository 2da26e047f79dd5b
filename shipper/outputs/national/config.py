"""Configuration of the national link (``national.link``) and of the output (``outputs.national``).

The link (where the center is, which key signs) is shared by the output, the
collector's indicator pull and ``canhgac check national``, so it lives in the
``national:`` section once; ``outputs.national`` only says *what* is shared.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from canhgac.config import Duration, Secret, field_meta, load_section
from canhgac.errors import ConfigError
from canhgac.signing import load_secret

Severity = Literal["low", "medium", "high", "critical"]
FieldMode = Literal["hash", "redact", "truncate", "drop", "keep"]
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# Personal data that leaves the province only minimised, unless configured otherwise.
DEFAULT_FIELDS: dict[str, str] = {
    "user.name": "hash",
    "user.id": "hash",
    "user.email": "hash",
    "user.full_name": "drop",
    "user.target.name": "hash",
    "related.user": "hash",
    "source.ip": "hash",
    "client.ip": "hash",
    "related.ip": "hash",
    "source.user.name": "hash",
    "process.command_line": "redact",
    "process.args": "redact",
    "process.parent.command_line": "redact",
    "process.parent.args": "redact",
    "url.query": "redact",
    "url.username": "drop",
    "url.password": "drop",
}


@dataclass
class LinkConfig:
    """Where the national center is and how this province authenticates to it."""

    url: str = ""  # https://host:port of the center; empty = link not configured
    key_id: str = ""  # the province key id issued by the center
    secret: Secret = Secret("")  # HMAC secret (hex:/base64:/plain, or ${ENV})
    secret_file: Path | None = None  # alternative to ``secret``: a 0600 file holding it
    ca: Path | None = None  # CA bundle that signs the center's certificate (None: system store)
    timeout: Duration = Duration(15)
    connect_timeout: Duration = Duration(5)

    @property
    def configured(self) -> bool:
        return bool(self.url)

    def validate(self) -> tuple[str, str] | None:
        if not self.url:
            return None
        parts = urlsplit(self.url)
        if parts.scheme != "https" or not parts.hostname:
            return ("url", f"must be an https:// URL, got {self.url!r}")
        if parts.path not in ("", "/"):
            return ("url", "give the center's base URL only (the API paths start with /v1/)")
        if not _KEY_ID.match(self.key_id):
            return ("key_id", "is required: 1-64 characters of A-Z a-z 0-9 . _ -")
        if bool(self.secret) == (self.secret_file is not None):
            return ("secret", "give exactly one of secret and secret_file")
        if self.secret:
            try:
                if len(load_secret(self.secret)) < 16:
                    return ("secret", "must be at least 16 bytes")
            except ValueError as exc:
                return ("secret", f"cannot decode: {exc}")
        return None

    @property
    def base(self) -> str:
        return self.url.rstrip("/")

    def secret_bytes(self, source: str, path: str = "national.link") -> bytes:
        """The HMAC key; a missing or unreadable secret file is a ConfigError."""
        if self.secret_file is not None:
            try:
                text = self.secret_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(source, f"{path}.secret_file",
                                  f"{self.secret_file}: {exc.strerror or exc}") from None
            try:
                key = load_secret(text)
            except ValueError as exc:
                raise ConfigError(source, f"{path}.secret_file", f"cannot decode: {exc}") from None
            if len(key) < 16:
                raise ConfigError(source, f"{path}.secret_file", "secret must be at least 16 bytes")
            return key
        return load_secret(self.secret)


@dataclass
class LevelPolicy:
    """What one security level shares. A level override is a full policy (unset keys: defaults)."""

    alerts: bool = True
    min_severity: Severity = "medium"
    summaries: bool = True
    telemetry: bool = False  # raw events: never, unless enabled here
    telemetry_datasets: list[str] = field(default_factory=list)  # empty + telemetry: all


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

    def all_fields(self) -> dict[str, str]:
        out = dict(self.fields)
        out.update(self.extra_fields)
        return out


@dataclass
class NationalOutputConfig:
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    redact: RedactConfig = field(default_factory=RedactConfig)
    max_request_events: int = field(default=2000, metadata=field_meta(min=1, max=20000))
    max_request_bytes: int = field(default=8 * 1024 * 1024, metadata=field_meta(min=1024))
    gzip_level: int = field(default=5, metadata=field_meta(min=1, max=9))


def load_link(raw_national: Any, source: str) -> LinkConfig:
    """``national.link`` from the raw ``national:`` mapping (other keys belong to the component)."""
    if raw_national is None:
        raw_national = {}
    if not isinstance(raw_national, dict):
        raise ConfigError(source, "national", "expected a mapping")
    return load_section(raw_national.get("link"), LinkConfig, source, "national.link")


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
