"""The Elasticsearch output: bulk ``create`` into data streams, an outcome per item.

Per item: 2xx delivered; 409 duplicate (already there: delivered); 429 and 5xx
handed back to the delivery loop as ``retry`` (only those items, with backoff,
never the whole batch, never dropped); any other 4xx goes to the dead-letter
data stream with the original event and Elasticsearch's reason. Only when
that write is refused as well does the line go to the spool's dead-letter
table (``SendResult.dead``), so nothing is ever dropped silently.

Whole-request failures (connection refused, timeout, 429/5xx, auth) raise
TransientError: the spool keeps the backlog and the loop retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TransportError
from elasticsearch import ApiError, AsyncElasticsearch
from prometheus_client import CollectorRegistry

from shipper.output import Batch, PermanentError, SendResult, TransientError
from shipper.outputs.elasticsearch import templates
from shipper.outputs.elasticsearch.config import ElasticsearchConfig
from shipper.outputs.elasticsearch.encoder import (
    Item,
    body_of,
    deadletter_doc,
    encode,
    encode_deadletters,
    line_id,
)
from shipper.outputs.elasticsearch.health import Health, Metrics, cluster_status

log = logging.getLogger(__name__)

_FILTER = "errors,items.*.status,items.*.error.type,items.*.error.reason"


def make_client(config: ElasticsearchConfig) -> AsyncElasticsearch:
    """Client with retries limited to connection failures (create is idempotent).

    The transport's own per-attempt warnings (with tracebacks) are silenced: the
    output reports each distinct failure once through ``Health.error``.
    """
    logging.getLogger("elastic_transport").setLevel(logging.ERROR)
    kwargs: dict[str, Any] = {
        "hosts": list(config.hosts),
        "request_timeout": float(config.request_timeout),
        "max_retries": max(1, len(config.hosts)),
        "retry_on_status": (),
        "retry_on_timeout": True,
        "verify_certs": config.verify_certs,
        # one host down must not keep it out of rotation for long once it is back
        "dead_node_backoff_factor": 0.5,
        "max_dead_node_backoff": 5.0,
    }
    if config.api_key:
        kwargs["api_key"] = str(config.api_key)
    elif config.username is not None and config.password is not None:
        kwargs["basic_auth"] = (config.username, str(config.password))
    if config.ca_cert:
        kwargs["ca_certs"] = str(config.ca_cert)
    return AsyncElasticsearch(**kwargs)


def _retry_after(exc: ApiError) -> float | None:
    headers = getattr(exc.meta, "headers", None) or {}
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _describe(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        err = exc.body.get("error") if isinstance(exc.body, dict) else None
        reason = err.get("reason") if isinstance(err, dict) else exc.message
        return f"HTTP {exc.meta.status}: {reason}"
    return f"{type(exc).__name__}: {exc}"


class ElasticsearchOutput:
    """An ``Output`` for the shipper delivery loop (see shipper.output)."""

    def __init__(
        self,
        config: ElasticsearchConfig,
        *,
        name: str = "elasticsearch",
        registry: CollectorRegistry | None = None,
        client: AsyncElasticsearch | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.health = Health()
        self.metrics = Metrics(registry, self.health, name)
        self._client = client
        self._started = False
        self._start_lock = asyncio.Lock()

    @property
    def client(self) -> AsyncElasticsearch:
        if self._client is None:
            self._client = make_client(self.config)
        return self._client

    @property
    def delivery_config(self) -> dict[str, Any]:
        """What the collector passes to shipper.delivery.DeliveryConfig for this output."""
        return {
            "batch_events": self.config.batch_events,
            "batch_bytes": self.config.batch_bytes,
            "concurrency": self.config.concurrency,
        }

    # -- lifecycle -------------------------------------------------------
    async def start(self) -> None:
        """Connect and install templates; idempotent, and safe to call concurrently."""
        async with self._start_lock:
            if not self._started:
                await self._start()

    async def _start(self) -> None:
        try:
            await self.client.info()
            if self.config.install_templates:
                await templates.install(self.client, self.config)
                self.health.templates_installed = True
        except (ApiError, TransportError) as exc:
            message = f"start: {_describe(exc)}"
            self.health.error(message)
            raise TransientError(message) from None
        self.health.cluster_status = await cluster_status(self.client)
        self.health.ok()
        self._started = True

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    # -- delivery --------------------------------------------------------
    async def _bulk(self, body: bytes) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            resp = await self.client.bulk(operations=body, filter_path=_FILTER)
        except (TransportConnectionError, ConnectionTimeout) as exc:
            self.metrics.requests.labels("connection_error").inc()
            self.health.error(_describe(exc))
            raise TransientError(_describe(exc)) from None
        except ApiError as exc:
            self.metrics.requests.labels(f"http_{exc.meta.status}").inc()
            self.health.error(_describe(exc))
            if exc.meta.status == 413:
                raise
            if exc.meta.status == 429 or exc.meta.status >= 500 or exc.meta.status in (401, 403, 404, 408):
                raise TransientError(_describe(exc), _retry_after(exc)) from None
            raise PermanentError(_describe(exc)) from None
        except TransportError as exc:
            self.metrics.requests.labels("transport_error").inc()
            self.health.error(_describe(exc))
            raise TransientError(_describe(exc)) from None
        finally:
            self.metrics.duration.observe(time.perf_counter() - t0)
        self.metrics.requests.labels("ok").inc()
        self.health.ok()
        return resp.body

    async def _bulk_items(self, items: list[Item]) -> list[dict[str, Any]]:
        """Per-item results; a 413 (request too large) splits the request in halves."""
        try:
            body = await self._bulk(body_of(items))
        except ApiError as exc:  # only 413 reaches here
            if len(items) == 1:
                return [{"status": 413, "error": {"type": "request_too_large",
                                                  "reason": _describe(exc)}}]
            mid = len(items) // 2
            return await self._bulk_items(items[:mid]) + await self._bulk_items(items[mid:])
        results = [next(iter(r.values())) for r in body.get("items", [])]
        if len(results) != len(items):
            raise TransientError(f"bulk answered {len(results)} items for {len(items)} sent")
        return results

    async def send(self, batch: Batch) -> SendResult:
        if not self._started:
            # Never write before the templates exist: Elasticsearch would auto-create a plain
            # index with guessed mappings where the data stream belongs.
            await self.start()
        enc = encode(batch.lines, self.config)
        result = SendResult()
        # (index, line, reason, status, error type, item)
        rejected: list[tuple[int, bytes, str, int | None, str | None, Item | None]] = [
            (i, line, f"elasticsearch output: {reason}", None, "invalid_event", None)
            for i, line, reason in enc.invalid
        ]
        if enc.items:
            for item, r in zip(enc.items, await self._bulk_items(enc.items), strict=True):
                status = int(r.get("status", 0))
                if 200 <= status < 300:
                    self.metrics.count("delivered", item.dataset)
                elif status == 409:
                    self.metrics.count("duplicate", item.dataset)
                elif status == 429 or status >= 500 or status == 0:
                    self.metrics.count("retried", item.dataset)
                    result.retry.append(item.index)
                else:
                    err = r.get("error") or {}
                    etype = err.get("type") if isinstance(err, dict) else None
                    reason = err.get("reason") if isinstance(err, dict) else str(err)
                    rejected.append((item.index, item.line,
                                     f"HTTP {status} {etype or 'error'}: {reason}", status, etype,
                                     item))
        if rejected:
            await self._deadletter(rejected, result)
        return result

    async def _deadletter(
        self,
        rejected: list[tuple[int, bytes, str, int | None, str | None, Item | None]],
        result: SendResult,
    ) -> None:
        """Write rejected events to the dead-letter stream; what it refuses goes to the spool's."""
        stream = self.config.deadletter_stream
        # _id: the event's own (or a hash of the line), so a retried dead-letter write is a 409
        records = [
            (item.doc_id if item else line_id(line),
             deadletter_doc(line, reason, status=status, error_type=etype, item=item,
                            stream=item.stream if item else None))
            for _i, line, reason, status, etype, item in rejected
        ]
        datasets = [item.dataset if item else "raw" for *_rest, item in rejected]
        try:
            body = await self._bulk(encode_deadletters(records, stream))
            answers = [next(iter(r.values())) for r in body.get("items", [])]
            if len(answers) != len(records):
                raise TransientError("dead-letter bulk answered a different number of items")
        except TransientError:
            for (idx, *_rest), ds in zip(rejected, datasets, strict=True):
                self.metrics.count("retried", ds)
                result.retry.append(idx)
            return
        except (PermanentError, ApiError) as exc:
            for (idx, _line, reason, *_rest), ds in zip(rejected, datasets, strict=True):
                self.metrics.count("dead_letter_failed", ds)
                result.dead.append((idx, f"{reason}; dead-letter stream refused it too: {exc}"))
            return
        for (idx, _line, reason, *_rest), ds, ans in zip(rejected, datasets, answers, strict=True):
            status = int(ans.get("status", 0))
            if 200 <= status < 300:
                self.metrics.count("dead_lettered", ds)
            elif status == 409:  # dead-lettered by an earlier attempt of this batch
                self.metrics.count("duplicate", ds)
            elif status == 429 or status >= 500:
                self.metrics.count("retried", ds)
                result.retry.append(idx)
            else:
                err = ans.get("error") or {}
                why = err.get("reason") if isinstance(err, dict) else str(err)
                self.metrics.count("dead_letter_failed", ds)
                result.dead.append((idx, f"{reason}; dead-letter stream refused it too: "
                                         f"HTTP {status}: {why}"))
