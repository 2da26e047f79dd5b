"""The collector's composition root: what a component is given and what it provides.

``collector.app`` builds one ``CollectorContext``, then sets up the components in
an explicit order (``collector.components``). A component reads the typed ports
it uses from ``ctx.ports``, fills the ones it provides, adds routes, pipeline
stages and metrics, and registers its start/stop pair as one lifespan
(``ctx.add_lifespan``): started in registration order, stopped in reverse, so
nothing is stopped before what depends on it.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry

from collector.config import CollectorConfig
from collector.fleet import Presence
from collector.pipeline import Pipeline
from collector.ports import (
    AgentDirectory,
    AlertDesk,
    AlertLedger,
    AnnualReports,
    CoverageHistory,
    CoverageView,
    EventSearch,
    Inject,
    NationalLinkDetail,
    NationalLinkStatus,
    OperatorAuthenticator,
    PrincipalResolver,
)

if TYPE_CHECKING:
    from collector.auth import AuthStore
    from collector.inventory import InventoryHolder
    from collector.national.indicators import IndicatorStage
    from shipper.delivery import DeliveryLoop
    from shipper.outputs.elasticsearch import ElasticsearchOutput
    from shipper.outputs.national import NationalOutput
    from shipper.outputs.store import StoreOutput
    from shipper.queue import DurableQueue

log = logging.getLogger(__name__)

Lifespan = Callable[[], contextlib.AbstractAsyncContextManager[None]]


class Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Outputs:
    """The configured outputs, typed; None where an output is not configured."""

    store: StoreOutput | None = None
    elasticsearch: ElasticsearchOutput | None = None
    national: NationalOutput | None = None


@dataclass
class Ports:
    """What components provide to each other. None: the provider is not set up.

    ``collector.components`` declares, per component, which of these it provides
    and uses; ``collector.app`` checks that a port is provided before it is used.
    """

    agents: AgentDirectory
    presence: Presence
    operators: OperatorAuthenticator | None = None
    access: PrincipalResolver | None = None
    alerts: AlertLedger | None = None
    national_link: NationalLinkStatus | None = None
    indicators: IndicatorStage | None = None
    search: EventSearch | None = None
    alert_desk: AlertDesk | None = None
    coverage: CoverageView | None = None
    coverage_history: CoverageHistory | None = None  # None: coverage.history is off
    national_detail: NationalLinkDetail | None = None  # set even when the link is not configured
    annual_reports: AnnualReports | None = None  # the coverage component's report


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
    ports: Ports
    inject: Inject
    outputs: Outputs = field(default_factory=Outputs)
    spool: DurableQueue | None = None  # opened before any lifespan starts
    deliveries: dict[str, DeliveryLoop] = field(default_factory=dict)
    lifespans: list[Lifespan] = field(default_factory=list)

    def add_lifespan(self, lifespan: Lifespan) -> None:
        """Run ``lifespan()`` (an async context manager) for as long as the collector serves."""
        self.lifespans.append(lifespan)

    def add_startable(self, obj: Startable) -> None:
        """The lifespan of an object with ``start()`` and ``stop()``."""
        self.add_lifespan(lambda: _started(obj.start, obj.stop))

    def add_start_stop(self, start: Callable[[], Awaitable[None]],
                       stop: Callable[[], Awaitable[None]]) -> None:
        self.add_lifespan(lambda: _started(start, stop))

    @contextlib.asynccontextmanager
    async def running_lifespans(self) -> AsyncIterator[None]:
        """Every lifespan, started in registration order and stopped in reverse.

        A failing stop is logged and the others still stop.
        """
        async with contextlib.AsyncExitStack() as stack:
            for lifespan in self.lifespans:
                await stack.enter_async_context(_logged_stop(lifespan))
            yield

    def add_closer(self, close: Callable[[], object]) -> None:
        """Call ``close`` (sync or async) when the collector stops."""
        self.add_lifespan(lambda: _closing(close))


@contextlib.asynccontextmanager
async def _started(start: Callable[[], Awaitable[None]],
                   stop: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
    await start()
    try:
        yield
    finally:
        await stop()


@contextlib.asynccontextmanager
async def _closing(close: Callable[[], object]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        result = close()
        if inspect.isawaitable(result):
            await result


@contextlib.asynccontextmanager
async def _logged_stop(lifespan: Lifespan) -> AsyncIterator[None]:
    cm = lifespan()
    await cm.__aenter__()
    try:
        yield
    finally:
        try:
            await cm.__aexit__(None, None, None)
        except Exception:
            log.exception("stopping a collector component failed")
