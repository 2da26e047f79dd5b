"""Central agent policy (docs/policy.md): versions kept by the collector, served to each
agent for its system (``GET /v1/agent/policy``), managed with ``canhgac collector policy``.

``setup(ctx)`` opens ``<state_dir>/policy.db`` and adds the route; the level defaults
come from the coverage configuration (the probes layer 2 requires per level)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from collector.coverage.config import load_coverage_config
from collector.inventory import LEVELS
from collector.policy.service import PolicyService
from collector.policy.store import PolicyStore

if TYPE_CHECKING:
    from collector.context import CollectorContext


def level_probes(ctx_coverage: dict[str, object] | None, source: str) -> dict[int, list[str]]:
    cfg = load_coverage_config(ctx_coverage, source)
    return {level: cfg.probes_for(level) for level in LEVELS}


def setup(ctx: CollectorContext) -> None:
    store = PolicyStore(ctx.state_dir / "policy.db")
    service = PolicyService(ctx, store, level_probes(ctx.config.coverage, ctx.source))
    ctx.app.router.add_get("/v1/agent/policy", service.handle)
    ctx.add_closer(store.close)
