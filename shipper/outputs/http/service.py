"""The HTTP output: one batch = one ``POST /v1/events`` (gzip NDJSON) to the collector.

How answers map onto the delivery loop (which owns retry and dead-letter):

===========  ==============================================================
200          ack JSON; each ``errors[i].line`` (0-based index in the batch)
             is rejected for good -> ``SendResult.dead`` with its reason
400          the whole body is malformed -> PermanentError (dead-lettered)
401, 403     credentials refused (revoked agent?) -> TransientError, logged
             as an error; events wait in the queue until fixed
413          too large -> split in halves, each sent with a derived,
             deterministic batch id (``<id>/<lo>-<hi>``, within the
             collector's batch id alphabet [A-Za-z0-9_.:/-]); one line still too
             large is dead ("event too large")
429, 503     backpressure -> TransientError(retry_after=Retry-After)
other        5xx, connection errors, timeouts, TLS failures, other 4xx
             (a wrong URL must not destroy events) -> TransientError
===========  ==============================================================

A batch id is only ever re-sent with the same lines (a half that fails
transiently fails the whole batch, and the retry splits the same way), so the
collector, which dedups by (agent, batch id) and replays the first ack, never
answers for different content.
"""

from __future__ import annotations

import logging
import ssl
import time
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from canhgac.protocol import HEADER as PROTOCOL_HEADER
from canhgac.protocol import PROTOCOL_VERSION
from shipper.output import Batch, PermanentError, SendResult, TransientError
from shipper.outputs.http.client import CertificateError, HttpClient, HttpClientError
from shipper.outputs.http.config import HttpOutputConfig
from shipper.outputs.http.encoder import encode_ndjson_gzip

log = logging.getLogger(__name__)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _client_context(ca: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class HttpOutput:
    """Output protocol implementation for the agent -> collector hop."""

    def __init__(self, config: HttpOutputConfig, name: str = "collector") -> None:
        self.name = name
        self.config = config
        self._client: HttpClient | None = None
        self.last_status: int | None = None
        self.auth_refused = False
        self.requests = 0
        self.splits = 0

    async def start(self) -> None:
        if self._client is not None:
            return
        try:
            ctx = _client_context(self.config.ca) if self.config.url.startswith("https") else None
        except (OSError, ssl.SSLError) as exc:
            raise TransientError(f"cannot load CA {self.config.ca}: {exc}") from None
        self._client = HttpClient(self.config.url, ctx, self.config.timeout, self.config.user_agent)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def send(self, batch: Batch) -> SendResult:
        if self._client is None:
            await self.start()
        return await self._send(batch.batch_id, batch.lines)

    async def _post(self, batch_id: str, lines: list[bytes]) -> tuple[int, dict[str, str], bytes]:
        assert self._client is not None
        body = encode_ndjson_gzip(lines, self.config.gzip_level)
        headers = {
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
            "X-Batch-Id": batch_id,
            "Authorization": f"Bearer {self.config.token}",
            PROTOCOL_HEADER: str(PROTOCOL_VERSION),
        }
        self.requests += 1
        try:
            resp = await self._client.post(self.config.path, body, headers)
        except CertificateError as exc:
            raise TransientError(f"TLS: collector certificate not trusted ({exc})") from None
        except HttpClientError as exc:
            raise TransientError(f"{self.config.url}: {exc}") from None
        return resp.status, resp.headers, resp.body

    async def _send(self, batch_id: str, lines: list[bytes]) -> SendResult:
        status, headers, payload = await self._post(batch_id, lines)
        self.last_status = status
        if status == 200:
            if self.auth_refused:
                log.info("collector accepts this agent's credentials again")
            self.auth_refused = False
            return self._parse_ack(batch_id, lines, payload)
        text = payload[:300].decode("utf-8", "replace").strip()
        if status == 413:
            return await self._split(batch_id, lines, text)
        if status == 400:
            raise PermanentError(f"HTTP 400 batch rejected by collector: {text}")
        if status in (401, 403):
            if not self.auth_refused:
                log.error(
                    "collector refused this agent's credentials (HTTP %d): revoked or wrong? "
                    "Events are kept in the queue; re-enroll with `canhgac agent enroll`",
                    status,
                )
            self.auth_refused = True
            raise TransientError(f"HTTP {status}: credentials refused", retry_after=30.0)
        if status in (429, 503):
            retry_after = parse_retry_after(headers.get("retry-after"))
            raise TransientError(f"HTTP {status}: collector busy", retry_after=retry_after)
        raise TransientError(f"HTTP {status}: {text[:120]}")

    async def _split(self, batch_id: str, lines: list[bytes], text: str) -> SendResult:
        if len(lines) <= max(1, self.config.min_split):
            reason = f"event too large for the collector (HTTP 413: {text[:120]})"
            return SendResult(dead=[(i, reason) for i in range(len(lines))])
        self.splits += 1
        mid = len(lines) // 2
        out = SendResult()
        for lo, hi in ((0, mid), (mid, len(lines))):
            part = await self._send(f"{batch_id}/{lo}-{hi}", lines[lo:hi])
            out.retry.extend(lo + i for i in part.retry)
            out.dead.extend((lo + i, reason) for i, reason in part.dead)
            if part.retry_after is not None:
                out.retry_after = max(out.retry_after or 0.0, part.retry_after)
        return out

    def _parse_ack(self, batch_id: str, lines: list[bytes], payload: bytes) -> SendResult:
        try:
            ack: dict[str, Any] = orjson.loads(payload)
            errors = ack.get("errors") or []
        except (orjson.JSONDecodeError, AttributeError):
            # A 200 we cannot read: send again; the collector dedups by event.id.
            raise TransientError("HTTP 200 with an unreadable ack") from None
        dead: dict[int, str] = {}
        for err in errors:
            try:
                idx = int(err["line"])
                reason = str(err.get("reason") or "rejected")
            except (KeyError, TypeError, ValueError):
                continue
            if 0 <= idx < len(lines):
                dead[idx] = f"rejected by collector: {reason}"
            else:
                log.warning("batch %s: ack names line %s outside 0..%d", batch_id, idx, len(lines) - 1)
        rejected = ack.get("rejected")
        if isinstance(rejected, int) and rejected != len(dead):
            log.warning(
                "batch %s: collector counted %d rejected lines but gave %d reasons",
                batch_id, rejected, len(dead),
            )
        return SendResult(dead=sorted(dead.items()))

    def status(self) -> dict[str, Any]:
        return {
            "url": self.config.url,
            "last_status": self.last_status,
            "auth_refused": self.auth_refused,
            "requests": self.requests,
            "splits": self.splits,
        }

