"""The Elasticsearch output: data streams with ECS mappings, retention by level, exact counts.

``build(raw, ctx)`` is the factory named in collector.outputs.OUTPUT_FACTORIES.
See docs/elasticsearch.md.
"""

from __future__ import annotations

from typing import Any

from canhgac.tasks import running
from shipper.output import BuildContext
from shipper.outputs.elasticsearch.config import ElasticsearchConfig, load
from shipper.outputs.elasticsearch.service import ElasticsearchOutput, make_client

__all__ = ["ElasticsearchConfig", "ElasticsearchOutput", "build", "make_client"]


def build(raw: Any, ctx: BuildContext) -> ElasticsearchOutput:
    """Validate ``outputs.elasticsearch``, register metrics and the lag refresher."""
    config = load(raw, ctx.source)
    output = ElasticsearchOutput(config, registry=ctx.registry)
    ctx.add_lifespan(lambda: running(output.metrics.lag_loop(ctx), "elasticsearch-lag"))
    return output
