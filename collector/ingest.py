"""`POST /v1/events`: the agent -> collector hop (docs/protocol.md).

Order of work per request, cheapest refusal first: auth, backpressure, size,
decompress (bounded), per-line validation, enrichment, in-stream stages,
one durable commit (with the batch id, atomically), then the ack. The ack is
sent only after fsync, so an acknowledged event survives kill -9.

Decompression, validation and enrichment are stateless per batch
(``collector.ingest_workers.prepare``) and run in worker processes when
``ingest_workers`` > 0, so they use the other cores; detection (stateful),
the commit and the ack stay on this event loop (docs/scaling.md).
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from canhgac.schema import PRIORITY_SECURITY, PRIORITY_TELEMETRY
from collector.auth import AgentRecord
from collector.enrich import Enricher
from collector.ingest_workers import BatchJob, IngestWorkers, Refused, default_workers
from collector.metrics import IngestMetrics
from collector.validate import Limits
from shipper.queue import QueueFull, StorageError

if TYPE_CHECKING:
    from collector.context import CollectorContext

log = logging.getLogger(__name__)

_BATCH_ID = re.compile(r"^[A-Za-z0-9_.:/-]{1,200}$")


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def bearer_of(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class Ingest:
    def __init__(self, ctx: CollectorContext) -> None:
        self.ctx = ctx
        lim = ctx.config.limits
        self.limits = Limits(lim.max_event_bytes, lim.max_depth, float(lim.max_future_skew),
                             float(lim.max_age))
        self.enricher = Enricher(ctx.inventory)
        self.metrics = IngestMetrics(ctx.registry)
        self._overrides_seen = 0
        n = ctx.config.ingest_workers
        self.workers = IngestWorkers(default_workers() if n == "auto" else n,
                                     on_restart=self.metrics.worker_restarts.inc)
        self.metrics.workers.set_function(lambda: self.workers.ready)
        ctx.add_start_stop(self.workers.start, self.workers.stop)

    def authenticate(self, request: web.Request) -> AgentRecord:
        token = bearer_of(request)
        agent = self.ctx.auth.authenticate(token) if token else None
        if agent is None:
            raise web.HTTPUnauthorized(
                text='{"error":"invalid, unknown or revoked agent credentials"}',
                content_type="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="canhgac"'},
            )
        return agent

    def _backpressure(self) -> web.Response | None:
        spool = self.ctx.spool
        assert spool is not None
        if spool.fill_ratio() >= self.ctx.config.limits.high_water:
            return json_error(503, "collector spool above high-water mark; retry later",
                              {"Retry-After": "5"})
        return None

    async def _body(self, request: web.Request) -> tuple[bytes, bool]:
        """The raw body (size-checked) and whether it is gzip; decompression is prepare's."""
        lim = self.ctx.config.limits
        if request.content_length is not None and request.content_length > lim.max_body_bytes:
            raise web.HTTPRequestEntityTooLarge(lim.max_body_bytes, request.content_length)
        raw = await request.read()
        if len(raw) > lim.max_body_bytes:
            raise web.HTTPRequestEntityTooLarge(lim.max_body_bytes, len(raw))
        encoding = request.headers.get("Content-Encoding", "identity").lower()
        if encoding not in ("identity", "gzip"):
            raise web.HTTPUnsupportedMediaType(
                text=orjson.dumps({"error": f"unsupported Content-Encoding {encoding[:20]}"}).decode(),
                content_type="application/json")
        return raw, encoding == "gzip"

    def _job(self, agent: AgentRecord) -> BatchJob:
        lim = self.ctx.config.limits
        system = self.ctx.inventory.system(agent.system_id)
        return BatchJob(self.limits, lim.max_decompressed_bytes, lim.max_events_per_batch, agent,
                        None if system is None else
                        (system.id, system.name, system.unit, int(system.level)))

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            resp = await self._handle(request)
        except web.HTTPException as exc:
            self.metrics.requests.labels(str(exc.status)).inc()
            raise
        self.metrics.requests.labels(str(resp.status)).inc()
        self.metrics.latency.observe(time.perf_counter() - started)
        return resp

    async def _handle(self, request: web.Request) -> web.Response:
        agent = self.authenticate(request)
        busy = self._backpressure()
        if busy is not None:
            return busy
        batch_id = request.headers.get("X-Batch-Id", "")
        if batch_id and not _BATCH_ID.match(batch_id):
            return json_error(400, "X-Batch-Id must be 1-200 characters [A-Za-z0-9_.:/-]")
        raw, gzipped = await self._body(request)
        prepared = await self.workers.prepare(raw, gzipped, self._job(agent), self.enricher)
        if isinstance(prepared, Refused):
            return self._refused(prepared)
        self.metrics.received.inc(prepared.received)
        for code, n in prepared.rejected_by_code.items():
            self.metrics.rejected.labels(code).inc(n)
        events, errors = prepared.events, prepared.errors
        rejected = prepared.received - len(events)
        self._count_overrides()
        alerts = self.ctx.pipeline.process(events) if events else []
        if alerts:
            self.metrics.alerts.inc(len(alerts))
        ack: dict[str, Any] = {
            "batch_id": batch_id or None,
            "accepted": len(events),
            "duplicate": 0,
            "rejected": rejected,
            "errors": errors,
        }
        out = [orjson.dumps(e) for e in events]
        out.extend(orjson.dumps(a) for a in alerts)
        prio = PRIORITY_SECURITY if prepared.security or alerts else PRIORITY_TELEMETRY
        key = f"{agent.agent_id}/{batch_id}" if batch_id else None
        assert self.ctx.spool is not None
        try:
            result = await self.ctx.spool.append(out, prio, key=key, key_value=orjson.dumps(ack))
        except StorageError:  # disk full or I/O error: nothing of the batch was kept
            return json_error(503, "collector spool cannot be written (disk full or I/O error); "
                              "retry later", {"Retry-After": "10"})
        except QueueFull:
            return json_error(503, "collector spool is full; retry later", {"Retry-After": "10"})
        if result.duplicate:
            prev = orjson.loads(result.key_value) if result.key_value else {}
            ack = {"batch_id": batch_id, "accepted": 0,
                   "duplicate": int(prev.get("accepted", 0)), "rejected": int(prev.get("rejected", 0)),
                   "errors": prev.get("errors", [])}
            self.metrics.duplicate.inc(ack["duplicate"])
        elif result.dropped:
            return json_error(503, "collector spool is full; retry later", {"Retry-After": "10"})
        else:
            self.metrics.accepted.inc(len(events))
            if prepared.health >= 0:  # the last agent.health event of the batch
                status = events[prepared.health].get("canhgac_agent")  # agent/health.py
                self.ctx.auth.touch(agent, status if isinstance(status, dict) else {})
        self.ctx.auth.touch(agent)
        return web.json_response(ack)

    @staticmethod
    def _refused(r: Refused) -> web.Response:
        if r.status == 413 and r.limit:
            raise web.HTTPRequestEntityTooLarge(r.limit, r.actual)
        return json_error(r.status, r.message)

    def _count_overrides(self) -> None:
        n = self.enricher.overrides - self._overrides_seen
        if n:
            self.metrics.overrides.inc(n)
            self._overrides_seen = self.enricher.overrides
