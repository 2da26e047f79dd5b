"""`POST /v1/events`: the agent -> collector hop (docs/protocol.md).

Order of work per request, cheapest refusal first: auth, backpressure, size,
decompress (bounded), per-line validation, enrichment, in-stream stages,
one durable commit (with the batch id, atomically), then the ack. The ack is
sent only after fsync, so an acknowledged event survives kill -9.
"""

from __future__ import annotations

import logging
import re
import time
import zlib
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from canhgac.schema import PRIORITY_SECURITY, PRIORITY_TELEMETRY, priority_of
from collector.auth import AgentRecord
from collector.enrich import Enricher
from collector.metrics import IngestMetrics, reason_bucket
from collector.validate import Invalid, Limits, parse_line
from shipper.queue import QueueFull

if TYPE_CHECKING:
    from collector.context import CollectorContext

log = logging.getLogger(__name__)

_BATCH_ID = re.compile(r"^[A-Za-z0-9_.:/-]{1,200}$")
# Every rejected line is listed (the agent dead-letters each one by index); long
# reasons are cut so a batch of 10,000 bad lines still answers in ~2 MB.
_MAX_REASON_CHARS = 160


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

    async def _body(self, request: web.Request) -> bytes:
        lim = self.ctx.config.limits
        if request.content_length is not None and request.content_length > lim.max_body_bytes:
            raise web.HTTPRequestEntityTooLarge(lim.max_body_bytes, request.content_length)
        raw = await request.read()
        if len(raw) > lim.max_body_bytes:
            raise web.HTTPRequestEntityTooLarge(lim.max_body_bytes, len(raw))
        encoding = request.headers.get("Content-Encoding", "identity").lower()
        if encoding == "identity":
            body = raw
        elif encoding == "gzip":
            d = zlib.decompressobj(wbits=31)
            try:
                body = d.decompress(raw, lim.max_decompressed_bytes + 1)
            except zlib.error as exc:
                raise web.HTTPBadRequest(text=f'{{"error":"bad gzip body: {exc}"}}',
                                         content_type="application/json") from None
            if len(body) > lim.max_decompressed_bytes or d.unconsumed_tail:
                raise web.HTTPRequestEntityTooLarge(lim.max_decompressed_bytes, len(body))
            if not d.eof:
                raise web.HTTPBadRequest(text='{"error":"truncated gzip body"}',
                                         content_type="application/json")
        else:
            raise web.HTTPUnsupportedMediaType(
                text=orjson.dumps({"error": f"unsupported Content-Encoding {encoding[:20]}"}).decode(),
                content_type="application/json")
        return body

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
        body = await self._body(request)
        lines = [ln for ln in body.split(b"\n") if ln.strip()]
        lim = self.ctx.config.limits
        if len(lines) > lim.max_events_per_batch:
            return json_error(413, f"{len(lines)} events in one batch, limit is "
                                   f"{lim.max_events_per_batch}")
        self.metrics.received.inc(len(lines))
        events: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        now = time.time()
        for i, line in enumerate(lines):
            try:
                events.append(parse_line(line, self.limits, now))
            except Invalid as exc:
                reason = str(exc)
                self.metrics.rejected.labels(reason_bucket(reason)).inc()
                errors.append({"line": i, "reason": reason[:_MAX_REASON_CHARS]})
        rejected = len(lines) - len(events)
        self.enricher.apply(events, agent)
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
        prio = PRIORITY_TELEMETRY
        for e in events:
            if priority_of(e["event"]["dataset"]) == PRIORITY_SECURITY:
                prio = PRIORITY_SECURITY
                break
        if alerts:
            prio = PRIORITY_SECURITY
        key = f"{agent.agent_id}/{batch_id}" if batch_id else None
        assert self.ctx.spool is not None
        try:
            result = await self.ctx.spool.append(out, prio, key=key, key_value=orjson.dumps(ack))
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
            self._note_heartbeat(agent, events)
        self.ctx.auth.touch(agent)
        return web.json_response(ack)

    def _note_heartbeat(self, agent: AgentRecord, events: list[dict[str, Any]]) -> None:
        for ev in reversed(events):
            if ev["event"]["dataset"] == "agent.health":
                status = ev.get("canhgac_agent")  # the agent's self-report (agent/health.py)
                self.ctx.auth.touch(agent, status if isinstance(status, dict) else {})
                return

    def _count_overrides(self) -> None:
        n = self.enricher.overrides - self._overrides_seen
        if n:
            self.metrics.overrides.inc(n)
            self._overrides_seen = self.enricher.overrides
