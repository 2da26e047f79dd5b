"""Output registry for the collector's spool: name under ``outputs:`` -> factory.

A factory is ``build(raw_config, ctx) -> shipper.output.Output`` and validates
its own section (path ``outputs.<name>``).
"""

from __future__ import annotations

import importlib
from typing import Any

from canhgac.errors import ConfigError

OUTPUT_FACTORIES: dict[str, str] = {
    "store": "shipper.outputs.store:build",
    "elasticsearch": "shipper.outputs.elasticsearch:build",
    "national": "shipper.outputs.national:build",
}


def build_output(name: str, raw: Any, ctx: Any) -> Any:
    target = OUTPUT_FACTORIES.get(name)
    if target is None:
        known = ", ".join(sorted(OUTPUT_FACTORIES))
        raise ConfigError(ctx.source, f"outputs.{name}", f"unknown output (known: {known})")
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)(raw, ctx)
