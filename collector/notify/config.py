"""The ``notifications:`` section of collector.yaml (docs/notifications.md).

Validated like every other section: unknown keys are errors with a did-you-mean,
each error is one line naming the file, the line where known, and the key path.
A channel's keys depend on its ``type``, so channels are loaded in two steps: the
type first, then the rest against that type's dataclass.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from canhgac.config import (
    Duration,
    Secret,
    did_you_mean,
    field_meta,
    line_of,
    load_section,
    yaml_lines,
)
from canhgac.errors import ConfigError
from collector.inventory import LEVELS, Contact, dates_to_text

SEVERITIES = ("low", "medium", "high", "critical")
LANGUAGES = ("vi", "en", "vi+en")


@dataclass
class WebhookChannel:
    url: str
    secret: Secret | None = None  # HMAC-SHA256 key for the signature header
    timeout: Duration = Duration(10)
    ca: Path | None = None  # extra CA for an https URL (default: the system's)

    def validate(self) -> tuple[str, str] | None:
        return _check_url(self.url, "url")


@dataclass
class EmailChannel:
    host: str
    sender: str  # the From: address
    port: int = field(default=587, metadata=field_meta(min=1, max=65535))
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: Secret | None = None
    to: list[str] = field(default_factory=list)  # always copied, and used when a route has no email
    timeout: Duration = Duration(20)
    ca: Path | None = None

    def validate(self) -> tuple[str, str] | None:
        if "@" not in self.sender:
            return ("sender", f"not an email address: {self.sender!r}")
        for i, addr in enumerate(self.to):
            if "@" not in addr:
                return (f"to[{i}]", f"not an email address: {addr!r}")
        if bool(self.username) != (self.password is not None):
            return ("password", "username and password must be given together")
        return None


@dataclass
class AlertmanagerChannel:
    url: str  # base URL, e.g. http://127.0.0.1:9093 (the API path is added)
    timeout: Duration = Duration(10)
    ca: Path | None = None
    username: str = ""  # basic auth, when Alertmanager sits behind a proxy that asks for it
    password: Secret | None = None

    def validate(self) -> tuple[str, str] | None:
        return _check_url(self.url, "url")


@dataclass
class ChatChannel:
    """A Telegram-style bot API: POST {api_url}/bot{token}/sendMessage."""

    token: Secret
    chat_id: str
    api_url: str = "https://api.telegram.org"
    timeout: Duration = Duration(10)
    ca: Path | None = None

    def validate(self) -> tuple[str, str] | None:
        return _check_url(self.api_url, "api_url")


ChannelConfig = WebhookChannel | EmailChannel | AlertmanagerChannel | ChatChannel
CHANNEL_TYPES: dict[str, type[Any]] = {
    "webhook": WebhookChannel, "email": EmailChannel, "alertmanager": AlertmanagerChannel,
    "chat": ChatChannel,
}


def _check_url(url: str, key: str) -> tuple[str, str] | None:
    if not url.startswith(("http://", "https://")):
        return (key, f"must start with http:// or https://, got {url!r}")
    return None


@dataclass
class Match:
    """Which alerts a route takes; an empty list matches everything."""

    units: list[str] = field(default_factory=list)
    systems: list[str] = field(default_factory=list)
    levels: list[int] = field(default_factory=list)
    severity: Literal["low", "medium", "high", "critical"] | None = None  # this and above
    rules: list[str] = field(default_factory=list)  # rule ids or names; * and ? allowed

    def validate(self) -> tuple[str, str] | None:
        for i, level in enumerate(self.levels):
            if level not in LEVELS:
                return (f"levels[{i}]", f"unknown level {level} (levels are 1 to 5)")
        return None

    def takes(self, unit: str, system: str, level: int | None, severity: str, rule: str,
              rule_name: str) -> bool:
        if self.units and unit not in self.units:
            return False
        if self.systems and system not in self.systems:
            return False
        if self.levels and level not in self.levels:
            return False
        if self.severity and SEVERITIES.index(severity) < SEVERITIES.index(self.severity):
            return False
        if self.rules and not any(fnmatch.fnmatchcase(rule, p) or fnmatch.fnmatchcase(rule_name, p)
                                  for p in self.rules):
            return False
        return True


@dataclass
class Route:
    name: str
    channels: list[str]
    match: Match = field(default_factory=Match)
    language: Literal["vi", "en", "vi+en"] = "vi+en"
    # Who is told; empty = the system's on-site team from the inventory.
    recipients: list[Contact] = field(default_factory=list)
    escalate: bool = True
    storm_limit: int | None = field(default=None, metadata=field_meta(min=1))

    def validate(self) -> tuple[str, str] | None:
        if not self.name or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in self.name):
            return ("name", f"{self.name!r}: use ASCII letters, digits, '-', '_' or '.'")
        if not self.channels:
            return ("channels", "a route needs at least one channel")
        return None


@dataclass
class Escalation:
    enabled: bool = True
    # Per level; default: coverage.ack_sla (the layer-1 deadline), so one deadline rules both.
    deadlines: dict[int, Duration] = field(default_factory=dict)
    # The last step: the head of each unit (by the unit's name in the inventory).
    unit_heads: dict[str, Contact] = field(default_factory=dict)

    def validate(self) -> tuple[str, str] | None:
        for level, value in self.deadlines.items():
            if level not in LEVELS:
                return (f"deadlines.{level}", "unknown level (levels are 1 to 5)")
            if float(value) < 1:
                return (f"deadlines.{level}", "must be at least 1s")
        return None


@dataclass
class Retry:
    initial: Duration = field(default=Duration(1), metadata=field_meta(min=0.01))
    maximum: Duration = field(default=Duration(300), metadata=field_meta(min=0.01))


@dataclass
class NotifyConfig:
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    # More alerts than this in one minute on one route: the rest go out as one digest.
    storm_limit: int = field(default=20, metadata=field_meta(min=1))
    escalation: Escalation = field(default_factory=Escalation)
    retry: Retry = field(default_factory=Retry)
    concurrency: int = field(default=16, metadata=field_meta(min=1, max=256))  # sends per channel
    keep_delivered: Duration = Duration(7 * 86400)  # delivered rows kept for `notify status`
    console_url: str = ""  # when set, messages link to {console_url}/alerts/{id}


@dataclass
class Notifications:
    """The checked section: settings, and each channel typed by its ``type``."""

    config: NotifyConfig
    channels: dict[str, ChannelConfig]

    @property
    def routes(self) -> list[Route]:
        return self.config.routes


def parse_notify_config(raw: Any, source: str) -> Notifications:
    """``notifications:`` checked and typed; ConfigError naming file, line and key path."""
    lines = _lines(source)
    try:
        return _parse(dates_to_text(raw), source)
    except ConfigError as exc:
        line = line_of(lines, exc.path) if lines else None
        raise ConfigError(exc.source, exc.path, exc.problem, line=line) from None


def _lines(source: str) -> dict[str, int]:
    p = Path(source)
    try:
        return yaml_lines(p.read_text(encoding="utf-8")) if p.is_file() else {}
    except (OSError, UnicodeDecodeError):
        return {}


def _parse(raw: Any, source: str) -> Notifications:
    base = "notifications"
    cfg = load_section(raw, NotifyConfig, source, base)
    typed: dict[str, ChannelConfig] = {}
    for name, body in cfg.channels.items():
        path = f"{base}.channels.{name}"
        if not name or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in name):
            raise ConfigError(source, path, f"{name!r}: use ASCII letters, digits, '-', '_' or '.'")
        if not isinstance(body, dict):
            raise ConfigError(source, path, "expected a mapping with a type: key")
        kind = body.get("type")
        if kind not in CHANNEL_TYPES:
            hint = did_you_mean(str(kind), CHANNEL_TYPES) if isinstance(kind, str) else ""
            got = "missing" if kind is None else f"unknown type {kind!r}{hint}"
            raise ConfigError(source, f"{path}.type",
                              f"{got} (known types: {', '.join(CHANNEL_TYPES)})")
        rest = {k: v for k, v in body.items() if k != "type"}
        typed[name] = load_section(rest, CHANNEL_TYPES[kind], source, path)
    seen: dict[str, int] = {}
    for i, route in enumerate(cfg.routes):
        path = f"{base}.routes[{i}]"
        if route.name in seen:
            raise ConfigError(source, f"{path}.name",
                              f"duplicate route {route.name!r} (also routes[{seen[route.name]}])")
        seen[route.name] = i
        for j, ch in enumerate(route.channels):
            if ch not in typed:
                raise ConfigError(source, f"{path}.channels[{j}]",
                                  f"unknown channel {ch!r}{did_you_mean(ch, typed)} "
                                  f"(channels: {', '.join(typed) or 'none configured'})")
    if typed and not cfg.routes:
        # No routes: every alert to every channel, recipients from the inventory.
        cfg.routes = [Route(name="default", channels=list(typed))]
    return Notifications(cfg, typed)


def severity_label(value: object, score: object) -> str:
    """The alert's severity word: ``canhgac.alert.severity`` or from ECS ``event.severity``."""
    if isinstance(value, str) and value in SEVERITIES:
        return value
    if isinstance(score, int) and not isinstance(score, bool):
        return "low" if score <= 21 else "medium" if score <= 47 else "high" if score <= 73 else "critical"
    return "medium"
