"""What a collector component gets to plug itself in.

Components (ingest, enrollment, search, alerts, national link, coverage ...)
are modules with ``setup(ctx: CollectorContext) -> None``. In setup they may add
routes to ``ctx.app``, stages to ``ctx.pipeline``, metrics to ``ctx.registry``
and start/stop hooks. They talk to each other only through this context.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from collector.config import CollectorConfig
from collector.pipeline import Pipeline

if TYPE_CHECKING:
    from collector.auth import AuthStore
    from collector.inventory import InventoryHolder
    from shipper.delivery import DeliveryLoop
    from shipper.queue import DurableQueue

Hook = Callable[[], Awaitable[None]]


@dataclass
class CollectorContext:
    config: CollectorConfig
    source: str  # config file name, for error messages
    state_dir: Path
    app: web.Application
    registry: CollectorRegistry
    pipeline: Pipeline
    auth: AuthStore
    inventory: InventoryHolder
    spool: DurableQueue | None = None  # set before on_start hooks run
    deliveries: dict[str, DeliveryLoop] = field(default_factory=dict)
    on_start: list[Hook] = field(default_factory=list)
    on_stop: list[Hook] = field(default_factory=list)
    # Appends events (alerts from timers, summaries) to the spool through the pipeline.
    inject: Callable[[list[dict[str, Any]]], Awaitable[None]] | None = None
    # Free-form shared services, keyed by name ("store", "indicators", "alerts", ...).
    services: dict[str, Any] = field(default_factory=dict)
