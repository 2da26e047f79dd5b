"""Serving each agent its effective policy: ``GET /v1/agent/policy`` (agent bearer).

The agent polls with its heartbeat and ``If-None-Match``: a 304 costs a stat-free
cache lookup. The latest version is re-read at most once a second, so a ``policy set``
run by another process reaches every agent within one heartbeat interval.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from collector.ingest import bearer_of
from collector.policy.model import PolicyDocument, effective, etag, parse_policy
from collector.policy.store import PolicyStore, PolicyVersion

if TYPE_CHECKING:
    from collector.context import CollectorContext

log = logging.getLogger(__name__)

RECHECK = 1.0  # seconds between looks at the store for a new version


class PolicyService:
    def __init__(self, ctx: CollectorContext, store: PolicyStore,
                 level_probes: dict[int, list[str]]) -> None:
        self.ctx = ctx
        self.store = store
        self.level_probes = level_probes
        self._current: tuple[PolicyVersion, PolicyDocument] | None = None
        self._checked = 0.0
        self.served = 0
        self.not_modified = 0

    def current(self) -> tuple[PolicyVersion, PolicyDocument]:
        now = time.monotonic()
        if self._current is None or now - self._checked >= RECHECK:
            self._checked = now
            latest = self.store.latest_version()
            if self._current is None or self._current[0].version != latest:
                version = self.store.get()
                assert version is not None
                try:
                    doc = parse_policy(version.document, f"policy version {version.version}")
                except Exception as exc:  # written validated; a hand-edited db must not break serving
                    log.error("policy version %d is unusable, serving the previous one: %s",
                              version.version, exc)
                    if self._current is None:
                        doc = PolicyDocument()
                    else:
                        return self._current
                self._current = (version, doc)
                log.info("agent policy version %d in force", version.version)
        return self._current

    def for_system(self, system_id: str) -> tuple[int, dict[str, Any], str]:
        version, doc = self.current()
        system = self.ctx.inventory.system(system_id) if system_id else None
        body = effective(doc, system, self.level_probes)
        return version.version, body, etag(version.version, body)

    async def handle(self, request: web.Request) -> web.Response:
        token = bearer_of(request)
        agent = self.ctx.auth.authenticate(token) if token else None
        if agent is None:
            return web.json_response({"error": "invalid, unknown or revoked agent credentials"},
                                     status=401, headers={"WWW-Authenticate": 'Bearer realm="canhgac"'})
        version, body, tag = self.for_system(agent.system_id)
        if request.headers.get("If-None-Match") == tag:
            self.not_modified += 1
            return web.Response(status=304, headers={"ETag": tag})
        self.served += 1
        return web.json_response({"version": version, **body}, headers={"ETag": tag})
