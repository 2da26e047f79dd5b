"""agent.yaml: typed, validated on load.

Probe sections stay raw here (``probes.<name>``): each probe validates its own
section with its ``config_class`` via :func:`resolve_probes`, so an error still
names the file and the key path (``probes.process.interval``) while this module
knows nothing about any probe's keys.

The collector address and CA normally come from enrollment
(``state_dir/credentials.json``); the keys here override them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.probes import PROBES, load_probe_class
from agent.probes.base import Probe, ProbeConfig
from canhgac.config import Duration, Secret, field_meta, load_file, load_section
from canhgac.errors import ConfigError
from canhgac.message import Message

log = logging.getLogger(__name__)

MiB = 1024 * 1024


_POSITIVE = Message("must be greater than 0", "phải lớn hơn 0")


@dataclass
class CollectorClientConfig:
    """Where and how events are shipped. Empty url/ca: taken from credentials.json."""

    url: str = ""
    ca: Path | None = None
    # "<agent_id>.<secret>"; normally from credentials.json, may be "${CANHGAC_AGENT_TOKEN}".
    token: Secret | None = None
    batch_events: int = field(default=500, metadata=field_meta(min=1, max=10_000))
    batch_bytes: int = field(default=2 * MiB, metadata=field_meta(min=4096, max=16 * MiB))
    # Longest a delivery worker sleeps when idle before looking at the queue again.
    # Only a safety net: every commit to the queue wakes the workers at once, so a
    # longer value does not delay events; it saves an idle look (a thread hop and a
    # query) every second. 10 s since issue 13 (it was 1 s).
    flush_interval: Duration = Duration(10.0)
    timeout: Duration = Duration(30.0)
    gzip_level: int = field(default=5, metadata=field_meta(min=1, max=9))

    def validate(self) -> tuple[str, str] | None:
        if self.url and not self.url.startswith("https://"):
            # TLS on every hop: events and the bearer token never travel in clear.
            return ("url", Message("must start with https:// (got {url!r})",
                                   "phải bắt đầu bằng https:// (đang là {url!r})", url=self.url))
        if self.flush_interval <= 0:
            return ("flush_interval", _POSITIVE)
        if self.timeout <= 0:
            return ("timeout", _POSITIVE)
        return None


@dataclass
class QueueConfig:
    """The local durable queue (state_dir/queue.db)."""

    max_bytes: int = field(default=256 * MiB, metadata=field_meta(min=MiB))


@dataclass
class AgentConfig:
    state_dir: Path = Path(".canhgac/agent")
    hostname: str = ""  # empty: the OS hostname
    # None: the interval the collector gave at enrollment, else 30 s.
    heartbeat_interval: Duration | None = None
    collector: CollectorClientConfig = field(default_factory=CollectorClientConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    probes: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> tuple[str, str] | None:
        if self.heartbeat_interval is not None and self.heartbeat_interval < 1:
            return ("heartbeat_interval", Message("must be at least 1s", "phải từ 1s trở lên"))
        for name in self.probes:
            if name not in PROBES:
                known = ", ".join(sorted(PROBES))
                return (f"probes.{name}", f"unknown probe (known probes: {known})")
        return None


@dataclass
class ProbeSpec:
    """One registry entry resolved against agent.yaml.

    ``status`` is ``enabled``, ``disabled`` or ``unavailable`` (the probe's
    module could not be imported; ``error`` says why). An unavailable probe is
    reported in every heartbeat instead of stopping the agent.
    """

    name: str
    status: str
    cls: type[Probe[Any]] | None = None
    config: ProbeConfig | None = None
    error: str = ""


def load(path: str | Path | None) -> tuple[AgentConfig, str]:
    """Load agent.yaml, or the defaults when ``path`` is None."""
    if path is None:
        return load_section({}, AgentConfig, "(defaults)"), "(defaults)"
    return load_file(path, AgentConfig), str(path)


def _raw_section(raw: Any, source: str, name: str) -> dict[str, Any]:
    """``probes.x: false`` / ``true`` are shorthands for ``enabled: false`` / ``true``."""
    if raw is None:
        return {}
    if isinstance(raw, bool):
        return {"enabled": raw}
    if isinstance(raw, dict):
        return raw
    raise ConfigError(source, f"probes.{name}", Message(
        "expected a mapping, true or false", "cần một ánh xạ khóa: giá trị, true hoặc false"))


def resolve_probes(cfg: AgentConfig, source: str) -> list[ProbeSpec]:
    """Import and validate every registered probe; raise ConfigError on a bad section."""
    specs: list[ProbeSpec] = []
    for name in PROBES:
        configured = name in cfg.probes
        raw = _raw_section(cfg.probes.get(name), source, name)
        if configured and raw.get("enabled") is False:
            specs.append(ProbeSpec(name, "disabled"))
            continue
        try:
            cls = load_probe_class(name)
        except Exception as exc:
            error = f"cannot load {PROBES[name]}: {type(exc).__name__}: {exc}"
            specs.append(ProbeSpec(name, "unavailable", error=error))
            continue
        section = load_section(raw, cls.config_class, source, f"probes.{name}")
        # Mentioning a probe enables it (unless ``enabled: false``); otherwise its default.
        enabled = section.enabled if configured else cls.default_enabled
        specs.append(ProbeSpec(name, "enabled" if enabled else "disabled", cls, section))
    return specs
