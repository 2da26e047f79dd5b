"""The collector's optional components, in the order they are wired, with their ports.

Order matters twice: pipeline stages run in it (indicators before rules, alert
bookkeeping after everything that can raise an alert), and a component may only
use a port that the core or an earlier component provides — checked by
``check_order`` when the collector is built, so a reordering that would leave a
port unset fails at start, not as a silently empty number.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from collector.context import Ports

CORE_PORTS: frozenset[str] = frozenset({"agents", "presence"})


@dataclass(frozen=True)
class ComponentSpec:
    name: str  # as written under ``components:`` in collector.yaml
    module: str  # imported only when the component is selected; has setup(ctx)
    provides: tuple[str, ...] = ()  # ports of ``collector.context.Ports`` it may fill
    uses: tuple[str, ...] = ()  # ports it reads (each may be None: the provider is off)


COMPONENTS: tuple[ComponentSpec, ...] = (
    ComponentSpec("national", "collector.national",
                  provides=("indicators", "national_link", "national_detail")),
    ComponentSpec("detect", "collector.detect"),
    ComponentSpec("search", "collector.search", provides=("operators", "search")),
    ComponentSpec("alerts", "collector.alerts", provides=("alerts", "access", "alert_desk"),
                  uses=("operators",)),
    # After alerts: its stage routes alerts the alerts stage has registered, and it
    # asks the alerts port which are still unacknowledged (escalation).
    ComponentSpec("notify", "collector.notify", uses=("alerts",)),
    ComponentSpec("coverage", "collector.coverage",
                  provides=("coverage", "coverage_history", "annual_reports"),
                  uses=("agents", "presence", "alerts", "access", "national_link")),
    ComponentSpec("policy", "collector.policy"),
    # Last: the web console (/ui/) reads what the others provide, through the same rules.
    ComponentSpec("console", "collector.console",
                  uses=("access", "alert_desk", "coverage", "coverage_history", "search", "agents",
                        "presence", "national_detail", "annual_reports")),
)


def check_order(specs: tuple[ComponentSpec, ...]) -> None:
    """Raise ValueError if a port is unknown, or used before the component that provides it."""
    known = {f.name for f in dataclasses.fields(Ports)}
    provided = set(CORE_PORTS)
    later = {p for s in specs for p in s.provides}
    for spec in specs:
        for port in spec.provides + spec.uses:
            if port not in known:
                raise ValueError(f"component {spec.name}: no port named {port!r} in Ports")
        for port in spec.uses:
            if port not in provided and port in later:
                raise ValueError(f"component {spec.name} uses {port!r} before its provider is set up")
        provided.update(spec.provides)
