"""``POST /v1/search``: operator auth, scope, the query, one backend.

The operator's scope is AND-ed *outside* the user's parsed query (see
``SearchRequest.filter_ast``), for hits and for every aggregation alike, so no
query text (OR, NOT, wildcards on ``canhgac.*``) can widen what is visible.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson
from aiohttp import web

from canhgac.config import Duration, load_section
from collector.query import ast
from collector.query.errors import QueryError
from collector.search.model import Scope, SearchError, SearchRequest, SearchResult, SearchTimeout
from collector.search.operators import OperatorStore

log = logging.getLogger(__name__)

REQUEST_KEYS = {"query", "since", "from", "to", "system", "limit", "top", "top_size", "histogram"}
MAX_BODY = 64 * 1024


class Backend(Protocol):
    name: str

    async def search(self, request: SearchRequest, node: ast.Node) -> SearchResult: ...

    async def close(self) -> None: ...


@dataclass
class SearchConfig:
    """``search:`` in collector.yaml."""

    # auto: Elasticsearch when outputs.elasticsearch is configured, else the embedded store.
    backend: Literal["auto", "store", "elasticsearch"] = "auto"
    store: Path | None = None  # default: <state_dir>/events.db
    elasticsearch: dict[str, Any] | None = None  # own connection (default: the output's)
    timeout: Duration = Duration(30)


def _json_error(status: type[web.HTTPException], payload: dict[str, Any]) -> web.HTTPException:
    return status(text=orjson.dumps(payload).decode(), content_type="application/json")


class SearchService:
    def __init__(self, operators: OperatorStore | None, backend: Backend | None = None,
                 resolve: Callable[[], Backend] | None = None) -> None:
        self.operators = operators
        self._backend = backend
        self._resolve = resolve

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            if self._resolve is None:
                raise RuntimeError("search service has neither a backend nor a resolver")
            self._backend = self._resolve()
        return self._backend

    async def close(self) -> None:
        """Close the backend if one was opened; a failing close must not stop the collector's."""
        if self._backend is not None:
            try:
                await self._backend.close()
            except Exception as exc:
                log.debug("search backend close: %s", exc)

    async def search(self, request: SearchRequest, scope: Scope) -> SearchResult:
        """Search within ``scope``; raises QueryError/SearchError for the user's mistakes."""
        node = request.filter_ast(scope)
        return await self.backend.search(request, node)

    async def handle(self, request: web.Request) -> web.Response:
        assert self.operators is not None
        op = self.operators.authenticate(request, "viewer")
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise _json_error(web.HTTPRequestEntityTooLarge,
                              {"error": f"request body larger than {MAX_BODY} bytes"})
        raw = await request.read()
        if len(raw) > MAX_BODY:
            raise _json_error(web.HTTPBadRequest, {"error": f"request body larger than {MAX_BODY} bytes"})
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError as exc:
            raise _json_error(web.HTTPBadRequest, {"error": f"request body is not JSON: {exc}"}) from None
        if not isinstance(body, dict):
            raise _json_error(web.HTTPBadRequest, {"error": "request body must be a JSON object"})
        unknown = sorted(set(body) - REQUEST_KEYS)
        if unknown:
            raise _json_error(web.HTTPBadRequest, {
                "error": f"unknown field(s) {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(REQUEST_KEYS))})"})
        try:
            req = SearchRequest.build(
                body.get("query") or "", since=body.get("since"), start=body.get("from"),
                end=body.get("to"), system=body.get("system"), limit=body.get("limit"),
                top=body.get("top"), top_size=body.get("top_size"), histogram=body.get("histogram"),
            )
            result = await self.search(req, op.scope)
        except QueryError as exc:
            raise _json_error(web.HTTPBadRequest, exc.as_json()) from None
        except SearchTimeout as exc:
            raise _json_error(web.HTTPServiceUnavailable, {"error": str(exc)}) from None
        except SearchError as exc:
            raise _json_error(web.HTTPBadRequest, {"error": str(exc)}) from None
        except web.HTTPException:
            raise
        except Exception as exc:
            log.warning("search backend %s failed: %s", self.backend.name, exc)
            raise _json_error(web.HTTPServiceUnavailable,
                              {"error": f"search backend {self.backend.name} is unavailable"}) from None
        log.info("search by operator %s (scope %s): %r -> %d hits", op.name, op.scope.describe(),
                 req.query[:200], result.total)
        return web.json_response(result.as_json(req), dumps=lambda o: orjson.dumps(o).decode())


def load_config(raw: Any, source: str) -> SearchConfig:
    return load_section(raw, SearchConfig, source, "search")
