"""The Elasticsearch output: data streams with ECS mappings, retention by level, exact counts.

``build(raw, ctx)`` is the factory named in collector.outputs.OUTPUT_FACTORIES.
See docs/elasticsearch.md.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from shipper.outputs.elasticsearch.config import ElasticsearchConfig, load
from shipper.outputs.elasticsearch.service import ElasticsearchOutput, make_client

__all__ = ["ElasticsearchConfig", "ElasticsearchOutput", "build", "make_client"]


def build(raw: Any, ctx: Any) -> ElasticsearchOutput:
    """Validate ``outputs.elasticsearch``, register metrics and the lag refresher."""
    config = load(raw, ctx.source)
    output = ElasticsearchOutput(config, registry=ctx.registry)
    ctx.services["elasticsearch"] = output
    task: dict[str, asyncio.Task[None]] = {}

    async def start_lag() -> None:
        task["lag"] = asyncio.create_task(output.metrics.lag_loop(ctx), name="elasticsearch-lag")

    async def stop_lag() -> None:
        t = task.pop("lag", None)
        if t is not None:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t

    ctx.on_start.append(start_lag)
    ctx.on_stop.append(stop_lag)
    return output
