"""Search backend over the canhgac data streams in Elasticsearch."""

from __future__ import annotations

import time
from typing import Any

from elasticsearch import AsyncElasticsearch, ConnectionTimeout

from collector.query import ast
from collector.query.fields import BOOLEAN
from collector.query.fields import kind_of as _kind_of
from collector.query.to_es import to_es
from collector.search.model import (
    Bucket,
    SearchRequest,
    SearchResult,
    SearchTimeout,
    fill_histogram,
)

# Every canhgac data stream except the dead-letter one.
SEARCH_INDEX = "logs-canhgac.*,-logs-canhgac.deadletter-*"


class ElasticsearchBackend:
    name = "elasticsearch"

    def __init__(self, client: AsyncElasticsearch, index: str = SEARCH_INDEX, *,
                 owns_client: bool = False, timeout: float = 30.0) -> None:
        self.client = client
        self.index = index
        self.timeout = timeout
        self._owns_client = owns_client

    def body(self, request: SearchRequest, node: ast.Node) -> dict[str, Any]:
        body: dict[str, Any] = {
            "query": {"bool": {"filter": [to_es(node)]}},
            "size": request.limit,
            "track_total_hits": True,
            "timeout": f"{int(self.timeout * 1000)}ms",
            "sort": [{"@timestamp": {"order": "desc"}},
                     {"event.id": {"order": "desc", "unmapped_type": "keyword"}}],
        }
        aggs: dict[str, Any] = {}
        if request.top:
            aggs["top"] = {"terms": {"field": request.top, "size": request.top_size,
                                     "shard_size": max(500, request.top_size * 20),
                                     "order": [{"_count": "desc"}, {"_key": "asc"}]}}
        if request.histogram_ms:
            aggs["histogram"] = {"date_histogram": {"field": "@timestamp",
                                                    "fixed_interval": f"{request.histogram_ms}ms",
                                                    "min_doc_count": 1}}
        if aggs:
            body["aggs"] = aggs
        return body

    async def search(self, request: SearchRequest, node: ast.Node) -> SearchResult:
        t0 = time.perf_counter()
        body = self.body(request, node)
        try:
            resp = await self.client.options(request_timeout=self.timeout + 5).search(
                index=self.index, ignore_unavailable=True, allow_no_indices=True, **body)
        except ConnectionTimeout:
            raise SearchTimeout(self.timeout) from None
        if resp.get("timed_out"):
            raise SearchTimeout(self.timeout)
        result = SearchResult(backend=self.name)
        result.total = int(resp["hits"]["total"]["value"])
        result.hits = [h["_source"] for h in resp["hits"]["hits"]]
        aggs = resp.get("aggregations") or {}
        if request.top:
            is_bool = _kind_of(request.top) == BOOLEAN
            buckets = (aggs.get("top") or {}).get("buckets", [])
            result.top = [
                Bucket(bool(b["key"]) if is_bool else b["key"], int(b["doc_count"])) for b in buckets
            ]
        if request.histogram_ms:
            counts = {int(b["key"]): int(b["doc_count"])
                      for b in (aggs.get("histogram") or {}).get("buckets", [])}
            result.histogram = fill_histogram(counts, request)
        result.took_ms = (time.perf_counter() - t0) * 1000
        return result

    async def close(self) -> None:
        if self._owns_client:
            await self.client.close()
