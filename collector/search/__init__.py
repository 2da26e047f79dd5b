"""Search component: ``POST /v1/search`` for SOC operators, and operator tokens.

``setup(ctx)`` adds the route and provides the ``operators`` port (an
OperatorStore: ``authenticate(request, minimum_role) -> Operator``, used by every
operator-facing API). Events are searched in Elasticsearch or the embedded store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from collector.search.model import Scope, SearchRequest, SearchResult
from collector.search.operators import DB_NAME, Operator, OperatorStore
from collector.search.service import Backend, SearchConfig, SearchService, load_config

if TYPE_CHECKING:
    from collector.context import CollectorContext

__all__ = ["Operator", "OperatorStore", "Scope", "SearchRequest", "SearchResult",
           "SearchService", "setup"]


def _resolver(ctx: CollectorContext, config: SearchConfig) -> Callable[[], Backend]:
    """Pick the backend at first use, so a collector starts even if Elasticsearch is down."""

    timeout = float(config.timeout)

    def resolve() -> Backend:
        es_output = ctx.outputs.elasticsearch
        use_es = config.backend == "elasticsearch" or (
            config.backend == "auto" and (es_output is not None or config.elasticsearch))
        if use_es:
            from collector.search.es import ElasticsearchBackend

            if config.elasticsearch is not None:
                from shipper.outputs.elasticsearch import make_client
                from shipper.outputs.elasticsearch.config import load

                es_cfg = load(config.elasticsearch, ctx.source, "search.elasticsearch")
                backend = ElasticsearchBackend(make_client(es_cfg), es_cfg.search_index,
                                               owns_client=True, timeout=timeout)
            else:
                if es_output is None:
                    raise RuntimeError("search.backend is elasticsearch but no Elasticsearch "
                                       "output or search.elasticsearch section is configured")
                backend = ElasticsearchBackend(es_output.client, es_output.config.search_index,
                                               timeout=timeout)
            return backend
        from collector.search.store import StoreBackend

        store = ctx.outputs.store
        path = config.store or (store.path if store is not None else ctx.state_dir / "events.db")
        return StoreBackend(path, timeout=timeout)

    return resolve


def setup(ctx: CollectorContext) -> None:
    config = load_config(ctx.config.search, ctx.source)
    if config.backend == "elasticsearch" and "elasticsearch" not in (ctx.config.outputs or {}) \
            and config.elasticsearch is None:
        from canhgac.errors import ConfigError

        raise ConfigError(ctx.source, "search.backend",
                          "elasticsearch needs outputs.elasticsearch or search.elasticsearch")
    operators = OperatorStore(ctx.state_dir / DB_NAME)
    service = SearchService(operators, resolve=_resolver(ctx, config))
    ctx.ports.operators = operators
    ctx.ports.search = service
    ctx.app.router.add_post("/v1/search", service.handle)
    ctx.add_closer(operators.close)
    ctx.add_closer(service.close)
