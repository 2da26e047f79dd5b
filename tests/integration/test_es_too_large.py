"""A bulk request larger than the node's http.max_content_length: a real 413 from a real node
(its own, started with -Ehttp.max_content_length=64kb). The output splits the request until
each part fits, and an event too large on its own is dead-lettered with the reason; no
exception leaves the output."""

from __future__ import annotations

import orjson
import pytest

from canhgac.schema import new_event
from shipper.output import Batch
from shipper.outputs.elasticsearch import ElasticsearchOutput
from shipper.outputs.elasticsearch.config import load

pytestmark = [pytest.mark.integration, pytest.mark.elasticsearch]

LIMIT = 64 * 1024


async def test_413_splits_and_a_single_too_large_event_is_dead_lettered(es_node_factory) -> None:
    node = es_node_factory(f"-Ehttp.max_content_length={LIMIT // 1024}kb")
    output = ElasticsearchOutput(load({"hosts": [node.url], "replicas": 0, "namespace": "big",
                                       "request_timeout": 30}, "test"))
    lines = [orjson.dumps(new_event("auth", message=f"đăng nhập {i}", user={"name": "root"}))
             for i in range(400)]
    huge = orjson.dumps(new_event("auth", message="x" * (2 * LIMIT)))
    lines.insert(123, huge)
    assert sum(map(len, lines)) > 3 * LIMIT  # the batch needs several requests
    try:
        result = await output.send(Batch("b", lines))
        assert result.retry == []
        assert [i for i, _ in result.dead] == [123]
        reason = result.dead[0][1]
        assert "HTTP 413 request_too_large" in reason
        assert "http.max_content_length" in reason
        # the dead-letter record carries the whole event: too large for the stream as well,
        # so the line goes to the spool's dead-letter table (with both reasons)
        assert "dead-letter stream refused it too" in reason
        counts = output.health.counts
        assert counts["delivered"] == 400 and counts["dead_letter_failed"] == 1
        client = output.client
        await client.indices.refresh(index=output.config.search_index)
        assert (await client.count(index=output.config.search_index))["count"] == 400
        # a retry of the same batch writes nothing twice
        again = await output.send(Batch("b", [ln for ln in lines if ln is not huge]))
        assert again.retry == [] and again.dead == []
        assert output.health.counts["duplicate"] == 400
    finally:
        await output.close()
