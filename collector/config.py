"""collector.yaml.

Sections owned by one area (outputs.<name>, detection, national, search) are kept
as raw mappings here and validated by their owner with
``canhgac.config.load_section(raw, TheirConfig, source, "section.path")`` so
errors still name the file and the key path, and this module stays small.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from canhgac.config import Duration, field_meta, load_file, load_section
from canhgac.message import Message
from collector.connections import ConnectionLimits

MiB = 1024 * 1024


@dataclass
class ListenConfig:
    host: str = "127.0.0.1"
    port: int = field(default=8443, metadata=field_meta(min=0, max=65535))


@dataclass
class TlsConfig:
    """Server certificate. Both empty: `canhgac up` generates a local CA + cert."""

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None  # the CA agents are told to trust (shown by enroll-token)
    enabled: bool = True

    def validate(self) -> tuple[str, str] | None:
        if self.enabled and (self.cert is None) != (self.key is None):
            return ("cert", Message("cert and key must be given together",
                                    "cert và key phải được ghi cùng nhau"))
        return None


@dataclass
class LimitsConfig:
    max_body_bytes: int = field(default=16 * MiB, metadata=field_meta(min=1024))
    max_decompressed_bytes: int = field(default=64 * MiB, metadata=field_meta(min=1024))
    max_events_per_batch: int = field(default=10_000, metadata=field_meta(min=1))
    max_event_bytes: int = field(default=256 * 1024, metadata=field_meta(min=256))
    max_depth: int = field(default=12, metadata=field_meta(min=2, max=64))
    max_future_skew: Duration = Duration(300)
    max_age: Duration = Duration(30 * 86400)
    spool_max_bytes: int = field(default=2048 * MiB, metadata=field_meta(min=MiB))
    high_water: float = field(default=0.9, metadata=field_meta(min=0.1, max=1.0))
    # Slow and greedy clients (collector/connections.py, docs/protocol.md "Connections").
    handshake_timeout: Duration = field(default=Duration(10), metadata=field_meta(min=0.1))
    header_timeout: Duration = field(default=Duration(10), metadata=field_meta(min=0.1))
    request_timeout: Duration = field(default=Duration(60), metadata=field_meta(min=0.1))
    max_connections: int = field(default=1000, metadata=field_meta(min=1))
    max_connections_per_ip: int = field(default=100, metadata=field_meta(min=1))

    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(
            handshake_timeout=float(self.handshake_timeout),
            header_timeout=float(self.header_timeout),
            request_timeout=float(self.request_timeout),
            max_connections=self.max_connections,
            max_connections_per_ip=self.max_connections_per_ip,
        )


@dataclass
class MetricsConfig:
    """Who may read /metrics (docs/protocol.md, "Metrics")."""

    auth: Literal["token", "none"] = "token"  # none: only when listen.host is loopback
    token_file: Path | None = None  # default <state_dir>/metrics.token, made on first start


@dataclass
class CollectorConfig:
    state_dir: Path = Path(".canhgac/collector")
    listen: ListenConfig = field(default_factory=ListenConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    inventory: Path | None = None
    heartbeat_interval: Duration = Duration(30)
    # An agent silent for longer is offline (default: 3 x heartbeat_interval); the one
    # definition used by /metrics, coverage and `collector agents`.
    offline_after: Duration | None = None
    # Worker processes that decompress, validate and enrich agent batches (docs/scaling.md):
    # "auto" = one per core beyond the first, at most 4; 0 = all on the event loop.
    ingest_workers: int | Literal["auto"] = field(default="auto", metadata=field_meta(min=0, max=64))
    # Optional components to load (default: all that are installed), e.g. [detect, alerts].
    components: list[str] | None = None
    outputs: dict[str, Any] = field(default_factory=lambda: {"store": {}})
    detection: dict[str, Any] = field(default_factory=dict)
    national: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)
    coverage: dict[str, Any] = field(default_factory=dict)
    notifications: dict[str, Any] = field(default_factory=dict)  # docs/notifications.md
    console: dict[str, Any] = field(default_factory=dict)  # web console /ui/ (docs/console.md)


# Where every command looks for collector.yaml when none is named, in this order.
CONFIG_ENV = "CANHGAC_CONFIG"
LOCAL_CONFIGS = (Path("collector.yaml"), Path(".canhgac/collector.yaml"))  # the latter: `up`'s


def locate(path: str | Path | None) -> Path | None:
    """The collector.yaml a command means: the one named, else $CANHGAC_CONFIG, else
    ./collector.yaml, else the one `canhgac up` wrote (./.canhgac/collector.yaml), else
    None (the embedded defaults). One rule for every command, so they agree."""
    if path is not None:
        return Path(path)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return next((p for p in LOCAL_CONFIGS if p.is_file()), None)


def load(path: str | Path | None) -> tuple[CollectorConfig, str]:
    """Load collector.yaml (``locate``d), or the embedded defaults when there is none."""
    found = locate(path)
    if found is None:
        return load_section({}, CollectorConfig, "(defaults)"), "(defaults)"
    return load_file(found, CollectorConfig), str(found)
