"""Search component: ``POST /v1/search`` for SOC operators, and operator tokens.

``setup(ctx)`` adds the route and two services: ``ctx.services["operators"]``
(an OperatorStore: ``authenticate(request, minimum_role) -> Operator``, reusable
by other APIs) and ``ctx.services["search"]`` (a SearchService).
"""

from __future__ import annotations

import contextlib
from typing import Any

from collector.search.model import Scope, SearchRequest, SearchResult
from collector.search.operators import DB_NAME, Operator, OperatorStore
from collector.search.service import SearchService, load_config

__all__ = ["Operator", "OperatorStore", "Scope", "SearchRequest", "SearchResult",
           "SearchService", "setup"]


def _resolver(ctx: Any, config: Any) -> Any:
    """Pick the backend at first use: outputs are built after components are set up."""

    def resolve() -> Any:
        outputs = ctx.config.outputs or {}
        use_es = config.backend == "elasticsearch" or (
            config.backend == "auto" and ("elasticsearch" in outputs or config.elasticsearch))
        if use_es:
            from collector.search.es import ElasticsearchBackend

            if config.elasticsearch is not None:
                from shipper.outputs.elasticsearch import make_client
                from shipper.outputs.elasticsearch.config import load

                es_cfg = load(config.elasticsearch, ctx.source, "search.elasticsearch")
                backend = ElasticsearchBackend(make_client(es_cfg), es_cfg.search_index,
                                               owns_client=True)
            else:
                output = ctx.services.get("elasticsearch")
                if output is None:
                    raise RuntimeError("search.backend is elasticsearch but no Elasticsearch "
                                       "output or search.elasticsearch section is configured")
                backend = ElasticsearchBackend(output.client, output.config.search_index)
        else:
            from collector.search.store import StoreBackend

            store = ctx.services.get("store")
            path = config.store or getattr(store, "path", None) or (ctx.state_dir / "events.db")
            backend = StoreBackend(path)
        return backend

    return resolve


def setup(ctx: Any) -> None:
    config = load_config(ctx.config.search, ctx.source)
    if config.backend == "elasticsearch" and "elasticsearch" not in (ctx.config.outputs or {}) \
            and config.elasticsearch is None:
        from canhgac.errors import ConfigError

        raise ConfigError(ctx.source, "search.backend",
                          "elasticsearch needs outputs.elasticsearch or search.elasticsearch")
    operators = OperatorStore(ctx.state_dir / DB_NAME)
    service = SearchService(operators, resolve=_resolver(ctx, config))
    ctx.services["operators"] = operators
    ctx.services["search"] = service
    ctx.app.router.add_post("/v1/search", service.handle)

    async def close() -> None:
        if service._backend is not None:
            with contextlib.suppress(Exception):
                await service._backend.close()
        operators.close()

    ctx.on_stop.append(close)
