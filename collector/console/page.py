"""What a view is given: the request, who is asking (as the access layer says), the language.

Views never authenticate or filter by themselves beyond asking the ports with
``who``: the scope and role rules are the API's (``collector.alerts.access``,
the ``alert_desk``, ``coverage`` and ``search`` ports), applied the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from collector.alerts.access import Principal
from collector.console.format import Formatter
from collector.console.session import Session
from collector.console.views.trend import Baseline
from collector.fleet import Presence
from collector.inventory import InventoryHolder
from collector.ports import (
    AgentDirectory,
    AlertDesk,
    AnnualReports,
    CoverageHistory,
    CoverageView,
    EventSearch,
    NationalLinkDetail,
    PrincipalResolver,
)

if TYPE_CHECKING:
    from collector.search.model import Scope


@dataclass
class Deps:
    """The collector's parts the console reads, each None when its component is off."""

    access: PrincipalResolver
    inventory: InventoryHolder
    agents: AgentDirectory
    presence: Presence
    alerts: AlertDesk | None
    coverage: CoverageView | None
    history: CoverageHistory | None
    search: EventSearch | None
    national: NationalLinkDetail | None
    reports: AnnualReports | None = None
    baseline: Baseline = field(default_factory=Baseline)  # the overview trend's past day


@dataclass
class Page:
    request: web.Request
    session: Session
    who: Principal
    lang: str
    t: Callable[..., str]
    fmt: Formatter
    deps: Deps
    form: Any = None  # the posted form of a write (CSRF already checked)

    def allows(self, system_id: str, unit: str = "") -> bool:
        return self.who.allows(system_id, unit)

    @property
    def scoped(self) -> bool:
        """Limited to some units or systems (a scope of ``all`` is the whole province)."""
        scope = self.who.scope
        return scope is not None and scope != "*" and not getattr(scope, "all", False)

    @property
    def allows_fn(self) -> Callable[[str, str], bool] | None:
        """For ``CoverageView.report_for``: None when the principal sees everything."""
        return self.who.allows if self.scoped else None

    def search_scope(self) -> Scope:
        """The principal's scope as the search filter (AND-ed outside the user's query)."""
        from collector.search.model import Scope

        scope: Any = self.who.scope
        if scope is None:
            return Scope.everything()
        if isinstance(scope, Scope):
            return scope
        # Any other kind of scope: the systems of the inventory it allows, nothing else.
        systems = self.deps.inventory.current.systems
        return Scope(False, (), tuple(s.id for s in systems if self.who.allows(s.id, s.unit)))
