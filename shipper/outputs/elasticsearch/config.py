"""``outputs.elasticsearch`` in collector.yaml.

Secrets come from the environment (``api_key: ${CANHGAC_ES_API_KEY}``) and are
typed :class:`Secret` so they are never printed. Retention classes map a
system's security level to a data stream namespace with its own lifecycle:
the number of data streams stays datasets x classes, however many systems.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canhgac.config import Duration, Secret, field_meta, load_section

MiB = 1024 * 1024
_NAMESPACE = re.compile(r"^[a-z0-9_.]{0,60}$")
_CLASS = re.compile(r"^[a-z0-9_]{1,20}$")


@dataclass
class RetentionClass:
    """Events of systems at ``min_level`` or above (and below the next class) go here."""

    name: str
    min_level: int = field(metadata=field_meta(min=1, max=5))
    retention: Duration = Duration(90 * 86400)


def default_classes() -> list[RetentionClass]:
    # DOMAIN.md reference figures: level 3+ at least 3 months online, level 2 one month.
    return [
        RetentionClass("l3", 3, Duration(90 * 86400)),
        RetentionClass("l2", 2, Duration(30 * 86400)),
        RetentionClass("l1", 1, Duration(14 * 86400)),
    ]


@dataclass
class ElasticsearchConfig:
    hosts: list[str] = field(default_factory=lambda: ["http://127.0.0.1:9200"])
    api_key: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    ca_cert: Path | None = None
    verify_certs: bool = True
    request_timeout: Duration = Duration(30)
    # Batching: what one bulk request carries, and how many run at once.
    batch_events: int = field(default=2000, metadata=field_meta(min=1, max=50_000))
    batch_bytes: int = field(default=8 * MiB, metadata=field_meta(min=1024, max=95 * MiB))
    concurrency: int = field(default=2, metadata=field_meta(min=1, max=32))
    # Data stream names: logs-canhgac.<dataset>-<namespace><class>.
    namespace: str = ""
    retention: list[RetentionClass] = field(default_factory=default_classes)
    # Class for events whose system has no level (unknown system): keep the longest.
    default_class: str | None = None
    deadletter_retention: Duration = Duration(90 * 86400)
    install_templates: bool = True
    # Replicas per shard; unset keeps the cluster default (1). 0 for a single-node cluster.
    replicas: int | None = field(default=None, metadata=field_meta(min=0, max=10))

    def validate(self) -> tuple[str, str] | None:
        if not self.hosts:
            return ("hosts", "at least one host is required")
        for i, h in enumerate(self.hosts):
            if not h.startswith(("http://", "https://")):
                return (f"hosts[{i}]", f"must start with http:// or https://, got {h!r}")
        if self.api_key and (self.username or self.password):
            return ("api_key", "use either api_key or username/password, not both")
        if (self.username is None) != (self.password is None):
            return ("username", "username and password must be given together")
        if not _NAMESPACE.match(self.namespace):
            return ("namespace", "lowercase letters, digits, _ and . only (no -), at most 60")
        if not self.retention:
            return ("retention", "at least one retention class is required")
        seen: set[str] = set()
        for i, rc in enumerate(self.retention):
            if not _CLASS.match(rc.name):
                return (f"retention[{i}].name", "lowercase letters, digits and _ only")
            if rc.name in seen:
                return (f"retention[{i}].name", f"duplicate class {rc.name!r}")
            seen.add(rc.name)
        if self.default_class is not None and self.default_class not in seen:
            return ("default_class", f"unknown class {self.default_class!r} "
                    f"(known: {', '.join(sorted(seen))})")
        return None

    # -- derived ---------------------------------------------------------
    def classes_by_level(self) -> list[RetentionClass]:
        return sorted(self.retention, key=lambda c: c.min_level, reverse=True)

    def class_for_level(self, level: Any) -> str:
        if isinstance(level, int) and not isinstance(level, bool):
            for rc in self.classes_by_level():
                if level >= rc.min_level:
                    return rc.name
            return self.classes_by_level()[-1].name
        return self.default_class or self.classes_by_level()[0].name

    def stream_namespace(self, class_name: str) -> str:
        return f"{self.namespace}.{class_name}" if self.namespace else class_name

    def stream(self, dataset: str, class_name: str) -> str:
        return f"logs-canhgac.{dataset}-{self.stream_namespace(class_name)}"

    @property
    def search_index(self) -> str:
        """Every event stream of this namespace (never the dead-letter stream)."""
        return ",".join(f"logs-canhgac.*-{self.stream_namespace(rc.name)}" for rc in self.retention)

    @property
    def deadletter_stream(self) -> str:
        return f"logs-canhgac.deadletter-{self.namespace or 'default'}"


def load(raw: Any, source: str, path: str = "outputs.elasticsearch") -> ElasticsearchConfig:
    return load_section(raw, ElasticsearchConfig, source, path)
