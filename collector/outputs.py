"""The collector's outputs: name under ``outputs:`` -> factory, and the typed set built.

A factory is ``build(raw_config, ctx) -> Output`` and validates its own section
(path ``outputs.<name>``). Each output is imported only when configured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from canhgac.errors import ConfigError
from canhgac.message import Message
from shipper.delivery import DeliveryConfig

if TYPE_CHECKING:
    from collector.context import CollectorContext
    from shipper.output import Output


Built = tuple["Output", DeliveryConfig]  # the output and how its delivery loop batches


def _delivery(settings: Mapping[str, Any]) -> DeliveryConfig:
    """How the output wants its leases cut (batch size, backoff ceiling)."""
    return DeliveryConfig(**settings)


def _store(raw: Any, ctx: CollectorContext) -> Built:
    from shipper.outputs.store import build

    ctx.outputs.store = out = build(raw, ctx)
    return out, DeliveryConfig()


def _elasticsearch(raw: Any, ctx: CollectorContext) -> Built:
    from shipper.outputs.elasticsearch import build

    ctx.outputs.elasticsearch = out = build(raw, ctx)
    return out, _delivery(out.delivery_config)


def _national(raw: Any, ctx: CollectorContext) -> Built:
    from shipper.outputs.national import build

    ctx.outputs.national = out = build(raw, ctx, national_section=ctx.config.national,
                                       inventory=ctx.inventory)
    return out, _delivery(out.delivery_config)


OUTPUT_FACTORIES: dict[str, Callable[[Any, CollectorContext], Built]] = {
    "store": _store,
    "elasticsearch": _elasticsearch,
    "national": _national,
}


def build_outputs(raw: dict[str, Any] | None, ctx: CollectorContext) -> dict[str, Built]:
    """Build every configured output, in configuration order; at least one is required."""
    built: dict[str, Built] = {}
    for name, section in (raw or {}).items():
        factory = OUTPUT_FACTORIES.get(name)
        if factory is None:
            known = ", ".join(sorted(OUTPUT_FACTORIES))
            raise ConfigError(ctx.source, f"outputs.{name}", Message(
                "unknown output (known: {known})", "đầu ra không hợp lệ (các đầu ra: {known})",
                known=known))
        built[name] = factory(section, ctx)
    if not built:
        raise ConfigError(ctx.source, "outputs", Message(
            "at least one output is required (e.g. store: {{}})",
            "cần ít nhất một đầu ra (ví dụ store: {{}})"))
    return built
