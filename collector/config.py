"""collector.yaml.

Sections owned by one area (outputs.<name>, detection, national, search) are kept
as raw mappings here and validated by their owner with
``canhgac.config.load_section(raw, TheirConfig, source, "section.path")`` so
errors still name the file and the key path, and this module stays small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from canhgac.config import Duration, field_meta, load_file, load_section

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
            return ("cert", "cert and key must be given together")
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


@dataclass
class CollectorConfig:
    state_dir: Path = Path(".canhgac/collector")
    listen: ListenConfig = field(default_factory=ListenConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    inventory: Path | None = None
    heartbeat_interval: Duration = Duration(30)
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


def load(path: str | Path | None) -> tuple[CollectorConfig, str]:
    """Load collector.yaml (or the embedded defaults when ``path`` is None)."""
    if path is None:
        return load_section({}, CollectorConfig, "(defaults)"), "(defaults)"
    return load_file(path, CollectorConfig), str(path)
