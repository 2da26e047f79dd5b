"""The ``national`` output: signed, idempotent report batches to the national center.

Per line outcome for the delivery loop: lines the policy excludes count as
delivered (and are counted as filtered); lines the center accepts, or already
had, are delivered; lines it rejects are dead-lettered with its reason; any
transport failure, 5xx, 429 or signature refusal (401: a key or clock problem an
operator can fix) is transient, so an outage or misconfiguration builds a
visible backlog in the spool instead of losing alerts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from canhgac.health import LinkHealth
from canhgac.national.client import NationalClient
from shipper.output import Batch, SendResult, TransientError
from shipper.outputs.national.encoder import Encoder

log = logging.getLogger(__name__)


@dataclass
class OutputCounters(LinkHealth):
    """Exact, monotonic counts; the collector exports them as Prometheus counters."""

    delivered: int = 0  # lines the center accepted or already had
    shared: Counter[str] = field(default_factory=Counter)  # by kind: alert/summary/telemetry
    filtered: Counter[str] = field(default_factory=Counter)  # by reason
    duplicates: int = 0  # lines the center already had (acknowledged, not stored twice)
    duplicate_batches: int = 0  # batches re-sent after a lost ack, acknowledged from memory
    rejected_lines: int = 0  # lines the center refused (dead-lettered)
    rejected_requests: Counter[str] = field(default_factory=Counter)  # 401 by reason
    failed_requests: int = 0  # transport errors, 5xx, 429
    requests: int = 0
    bytes_sent: int = 0
    last_rtt: float = 0.0
    # system id -> time a report of it was last accepted (layer-4 coverage reads this)
    last_delivery: dict[str, float] = field(default_factory=dict)


class NationalOutput:
    name = "national"

    def __init__(self, client: NationalClient, encoder: Encoder) -> None:
        self.client = client
        self.encoder = encoder
        self.counters = OutputCounters()
        # Read by the collector when it builds this output's DeliveryLoop. Lease
        # sizes match the request size so one lease is usually one request.
        self.delivery_config = {"batch_events": encoder.max_events,
                                "batch_bytes": encoder.max_bytes, "backoff_max": 60.0}

    async def start(self) -> None:
        await self.client.open()

    async def close(self) -> None:
        await self.client.close()

    async def send(self, batch: Batch) -> SendResult:
        if len(batch.lines) > 64:
            # ~35 us per line (parse, policy, minimise, gzip): off the event loop, so a
            # backlog drain never stalls the collector's ingest.
            enc = await asyncio.to_thread(self.encoder.encode, batch.batch_id, batch.lines)
        else:
            enc = self.encoder.encode(batch.batch_id, batch.lines)
        result = SendResult()
        for n, req in enumerate(enc.requests):
            try:
                ack = await self._post(req.batch_id, req.body, req.gz)
            except TransientError as exc:
                if n == 0:
                    raise  # nothing went through: the whole batch is retried as is
                # Earlier requests are in; only the rest is retried (new batch ids
                # then, since their content differs from this lease's).
                result.retry.extend(i for r in enc.requests[n:] for i in r.indexes)
                result.retry_after = exc.retry_after
                break
            self._account(ack, req.indexes, result)
            self.counters.shared.update(req.kinds)
            now = time.time()
            for sid in req.systems:
                self.counters.last_delivery[sid] = now
        # Filtered lines are delivered with this send (they are never in ``retry``).
        self.counters.filtered.update(enc.filtered)
        return result

    def _account(self, ack: dict[str, Any], indexes: list[int], result: SendResult) -> None:
        # Center error indexes are positions in the NDJSON we sent, which is
        # exactly ``indexes`` in order (one line per shared event).
        dead: dict[int, str] = {}
        for err in ack.get("errors") or []:
            pos = err.get("index") if isinstance(err, dict) else None
            if isinstance(pos, int) and 0 <= pos < len(indexes):
                dead[pos] = f"national center rejected: {err.get('reason', 'unknown')}"
        result.dead.extend((indexes[pos], reason) for pos, reason in dead.items())
        self.counters.rejected_lines += len(dead)
        if ack.get("duplicate_batch") is True:
            self.counters.duplicate_batches += 1
        else:
            self.counters.duplicates += int(ack.get("duplicates", 0) or 0)
        self.counters.delivered += len(indexes) - len(dead)

    async def _post(self, batch_id: str, body: bytes, gz: bytes) -> dict[str, Any]:
        self.counters.requests += 1
        try:
            reply = await self.client.request("POST", "/v1/reports", body, wire=gz,
                                              batch_id=batch_id)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.counters.failed_requests += 1
            self._fail(f"{type(exc).__name__}: {exc}")
            raise TransientError(f"national center unreachable: {type(exc).__name__}") from None
        self.counters.bytes_sent += len(gz)
        if reply.status == 200:
            try:
                ack = reply.json()
            except ValueError:
                ack = None
            if not isinstance(ack, dict):
                self.counters.failed_requests += 1
                self._fail("malformed acknowledgement")
                raise TransientError("national center sent a malformed acknowledgement")
            self.counters.succeeded()
            self.counters.last_rtt = reply.rtt
            return ack
        reason = _error_code(reply)
        retry_after = _retry_after(reply)
        if reply.status == 401:
            self.counters.rejected_requests[reason] += 1
            self._fail(f"401 {reason}")
            raise TransientError(f"national center refused the signature ({reason}): check "
                                 "national.link key_id/secret and the clock", retry_after)
        if reply.status in (400, 413):
            # The request is wrong as a whole (a bug, or an over-large line): every
            # line becomes dead with the center's reason, visible in dead letters.
            self._fail(f"{reply.status} {reason}")
            n = body.count(b"\n")
            return {"errors": [{"index": i, "reason": f"{reply.status} {reason}"}
                               for i in range(n)]}
        self.counters.failed_requests += 1
        self._fail(f"{reply.status} {reason}")
        raise TransientError(f"national center answered {reply.status} ({reason})", retry_after)

    def _fail(self, message: str) -> None:
        self.counters.failed(message, log, "national output")


def _error_code(reply: object) -> str:
    try:
        doc = reply.json()  # type: ignore[attr-defined]
    except Exception:  # any non-JSON error body
        return "error"
    code = doc.get("error") if isinstance(doc, dict) else None
    return code if isinstance(code, str) and code.isidentifier() else "error"


def _retry_after(reply: object) -> float | None:
    value = reply.headers.get("Retry-After")  # type: ignore[attr-defined]
    try:
        return float(value) if value else None
    except ValueError:
        return None
