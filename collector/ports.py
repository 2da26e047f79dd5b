"""The ports collector components meet through: each a small protocol, named for its use.

A component that consumes another's capability types its constructor argument
with one of these, never with the provider's class or a service looked up by
name, so a rename breaks the type check instead of silently zeroing a number.
Providers satisfy them structurally (``AuthStore`` is an ``AgentDirectory``,
``AlertStore`` an ``AlertLedger`` ...).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

if TYPE_CHECKING:
    import datetime as dt

    from collector.alerts.access import Principal
    from collector.alerts.store import AlertRecord
    from collector.auth import AgentRecord
    from collector.coverage.history import Snapshot
    from collector.coverage.model import CoverageReport
    from collector.national.metrics import LinkState
    from collector.report.api import ReportFile
    from collector.report.model import AnnualReport
    from collector.search.model import Scope, SearchRequest, SearchResult
    from collector.search.operators import Operator

Event = dict[str, Any]
# Spools events that the collector makes itself (alerts from timers, summaries)
# through the pipeline, as ingest does for agents' events.
Inject = Callable[[list[Event]], Awaitable[None]]
# system id -> [(raised, acknowledged or None)], for alerts raised since a time.
AckTimes = dict[str, list[tuple[float, float | None]]]


class AgentDirectory(Protocol):
    """Every enrolled agent with its last heartbeat (collector.auth.AuthStore)."""

    def agents(self) -> Sequence[AgentRecord]: ...


class AlertLedger(Protocol):
    """Alert lifecycle facts that layer 1 is scored on (collector.alerts.AlertStore)."""

    def ack_times(self, since: float) -> AckTimes: ...

    def counts(self) -> dict[tuple[str, str], int]: ...

    def unacknowledged(self, alert_ids: Sequence[str]) -> set[str]: ...


class NationalLinkStatus(Protocol):
    """Layer 4 as the national component sees it (collector.national.NationalComponent)."""

    @property
    def link_up(self) -> bool: ...

    @property
    def last_delivery(self) -> dict[str, float]: ...

    def availability(self, since: float, until: float) -> float | None:
        """Share of the observed time in [since, until] the link was up; None: no record."""
        ...


class OperatorAuthenticator(Protocol):
    """SOC operator tokens (collector.search.operators.OperatorStore)."""

    def authenticate(self, request: web.Request, minimum_role: str = "viewer") -> Operator: ...


class PrincipalResolver(Protocol):
    """Who is asking, for every operator-facing API (collector.alerts.access.Access)."""

    async def principal(self, request: web.Request) -> Principal: ...


class AlertDesk(Protocol):
    """Alert queue and steps as a principal may see and take them (collector.alerts.api.AlertsAPI).

    Scope, role and transition rules live behind these methods only; the web console
    calls them exactly as ``/v1/alerts`` does. Refusals raise ``AlertStepError``.
    """

    def query(self, who: Principal, *, status: str | None = None, system: str | None = None,
              since: float | None = None, min_severity: int | None = None, unit: str = "",
              limit: int = 100) -> Sequence[AlertRecord]: ...

    def find(self, who: Principal, given: str) -> AlertRecord: ...

    def step(self, who: Principal, given: str, action: str, note: str = "", outcome: str = "",
             name: str | None = None) -> AlertRecord: ...


class CoverageView(Protocol):
    """The coverage report restricted to a scope (collector.coverage.CoverageService)."""

    def report_for(self, allows: Callable[[str, str], bool] | None, unit: str = "",
                   system: str = "") -> CoverageReport: ...


class CoverageHistory(Protocol):
    """One system's coverage snapshots over time (collector.coverage.HistoryStore)."""

    def today(self) -> dt.date: ...

    def trend(self, system: str, since: dt.date, until: dt.date) -> list[Snapshot]: ...

    def at(self, day: dt.date) -> list[Snapshot]:
        """Per system, the last snapshot on or before ``day`` (removed systems left out)."""
        ...

    def first_day(self) -> dt.date | None: ...


class EventSearch(Protocol):
    """Event search within an operator scope (collector.search.SearchService)."""

    async def search(self, request: SearchRequest, scope: Scope) -> SearchResult: ...


class NationalLinkDetail(Protocol):
    """The national link's last check, backlog and deliveries (collector.national)."""

    @property
    def state(self) -> LinkState: ...

    @property
    def link_up(self) -> bool: ...

    @property
    def last_delivery(self) -> dict[str, float]: ...


class AnnualReports(Protocol):
    """The annual report as a principal may read it (collector.report.api.ReportAPI).

    The scope rule (a unit viewer gets its unit's systems only; another unit answers as an
    unknown one) lives behind ``produce``; ``GET /v1/reports/annual`` and the web console
    both call it. The reader's mistakes raise ``ValueError`` with one line to show.
    """

    def years(self) -> tuple[int, int]: ...

    def units(self, who: Principal) -> list[str]: ...

    async def produce(self, who: Principal, *, year: str, unit: str = "", fmt: str = "json",
                      lang: str = "vi") -> AnnualReport | ReportFile: ...
