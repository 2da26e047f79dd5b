"""The collector's composition root: ports, component order, lifespans, one 'online'."""

from __future__ import annotations

import dataclasses

import pytest

from collector.auth import AgentRecord
from collector.components import COMPONENTS, CORE_PORTS, ComponentSpec, check_order
from collector.config import CollectorConfig
from collector.context import Ports
from collector.fleet import Presence


def test_every_declared_port_exists_and_the_shipped_order_is_valid() -> None:
    ports = {f.name for f in dataclasses.fields(Ports)}
    assert CORE_PORTS <= ports
    for spec in COMPONENTS:
        assert set(spec.provides) | set(spec.uses) <= ports, spec.name
    check_order(COMPONENTS)


def test_a_port_used_before_its_provider_is_a_wiring_error() -> None:
    alerts = ComponentSpec("alerts", "collector.alerts", provides=("alerts",), uses=("operators",))
    search = ComponentSpec("search", "collector.search", provides=("operators",))
    check_order((search, alerts))
    with pytest.raises(ValueError, match="uses 'operators' before"):
        check_order((alerts, search))
    with pytest.raises(ValueError, match="no port named 'operator'"):
        check_order((ComponentSpec("x", "x", uses=("operator",)),))


def test_a_port_whose_provider_is_not_selected_may_be_used_and_is_none() -> None:
    check_order((ComponentSpec("coverage", "collector.coverage", uses=("alerts",)),))


def _agent(last_seen: float | None, revoked: float | None = None) -> AgentRecord:
    return AgentRecord("a", "h", "sys", "host", 0.0, revoked=revoked, last_seen=last_seen)


def test_presence_is_one_definition_with_the_configured_or_default_window() -> None:
    now = 10_000.0
    default = Presence.of(CollectorConfig(heartbeat_interval=30))  # type: ignore[arg-type]
    assert default.offline_after == 90
    assert default.state(_agent(now - 90), now) == "online"
    assert default.state(_agent(now - 91), now) == "offline"
    assert default.state(_agent(None), now) == "offline"
    assert default.state(_agent(now, revoked=now - 1), now) == "revoked"
    custom = Presence.of(CollectorConfig(heartbeat_interval=30, offline_after=300))  # type: ignore[arg-type]
    assert custom.state(_agent(now - 200), now) == "online"


def test_coverage_offline_after_names_its_new_place() -> None:
    from canhgac.errors import ConfigError
    from collector.coverage.config import load_coverage_config

    with pytest.raises(ConfigError, match="top-level offline_after"):
        load_coverage_config({"offline_after": "90s"}, "collector.yaml")


async def test_lifespans_start_in_order_stop_in_reverse_and_a_failing_stop_is_contained(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    from collector.app import build_context

    cfg = CollectorConfig(state_dir=tmp_path)
    ctx = build_context(cfg, "t", components=())
    seen: list[str] = []

    def pair(name: str, fail: bool = False):  # type: ignore[no-untyped-def]
        async def start() -> None:
            seen.append(f"start {name}")

        async def stop() -> None:
            seen.append(f"stop {name}")
            if fail:
                raise RuntimeError("boom")

        return start, stop

    ctx.lifespans.clear()
    for name, fail in (("a", False), ("b", True), ("c", False)):
        ctx.add_start_stop(*pair(name, fail))
    async with ctx.running_lifespans():
        assert seen == ["start a", "start b", "start c"]
    assert seen[3:] == ["stop c", "stop b", "stop a"]
    ctx.auth.close()
