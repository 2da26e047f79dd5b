"""The Elasticsearch output: bulk ``create`` into data streams, an outcome per item.

What happens to each answer is decided in one place, ``retry.classify`` (its
docstring has the table). In short, per item: 2xx delivered; 409 duplicate
(already there: delivered); 429 and 5xx handed back to the delivery loop as
``retry`` (only those items); any other 4xx goes to the dead-letter data stream
with the original event and Elasticsearch's reason. Only when that write is
refused as well does the line go to the spool's dead-letter table
(``SendResult.dead``), so nothing is ever dropped silently.

Whole requests: connection refused, timeout, 429/5xx, 401/403 raise
TransientError (the spool keeps the backlog and the loop retries); a 413 (the
request is larger than ``http.max_content_length``) splits the request into
halves, again and again, and an event too large on its own is dead-lettered
with that reason. Nothing the client raises leaves this module as is.

For the delivery loop's generic counters, lines this output wrote to its
dead-letter stream are reported in ``SendResult.dead_lettered`` (counted
dead-lettered, not delivered). During a backoff the loop calls ``probe``: after a
failure without an HTTP answer (or a 5xx), it asks the cluster's health with a
short timeout and says "retry now" as soon as the cluster is yellow or green, so
the backlog drains when Elasticsearch returns instead of when the timer ends.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TransportError
from elasticsearch import ApiError, AsyncElasticsearch
from elasticsearch.serializer import OrjsonSerializer
from prometheus_client import CollectorRegistry

from shipper.output import Batch, PermanentError, Probed, SendResult, TransientError
from shipper.outputs.elasticsearch import templates, transport_log
from shipper.outputs.elasticsearch.config import ElasticsearchConfig
from shipper.outputs.elasticsearch.encoder import (
    Item,
    Rejected,
    body_of,
    deadletter_parts,
    encode,
)
from shipper.outputs.elasticsearch.health import Health, Metrics, cluster_status
from shipper.outputs.elasticsearch.response import (
    CREATED,
    FILTER_PATH,
    BulkReply,
    ItemStatus,
    items_of,
)
from shipper.outputs.elasticsearch.retry import Action, classify, describe, retry_after

# the outcome counter's label for each per-item action of a write into a data stream
_OUTCOME = {Action.DELIVERED: "delivered", Action.DUPLICATE: "duplicate", Action.RETRY: "retried"}


def make_client(config: ElasticsearchConfig) -> AsyncElasticsearch:
    """Client with retries limited to connection failures (create is idempotent).

    Responses are decoded with orjson. The transport's per-attempt retry warnings
    are made one line each (``transport_log``); no logger's level is changed.
    """
    transport_log.install()
    orjson_serializer = OrjsonSerializer()
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
        "serializers": {"application/json": orjson_serializer,
                        "application/vnd.elasticsearch+json": orjson_serializer},
    }
    if config.api_key:
        kwargs["api_key"] = str(config.api_key)
    elif config.username is not None and config.password is not None:
        kwargs["basic_auth"] = (config.username, str(config.password))
    if config.ca_cert:
        kwargs["ca_certs"] = str(config.ca_cert)
    return AsyncElasticsearch(**kwargs)


# Whole-request failures after which a healthy cluster does not mean "retry now": the
# cluster answered and refused (overloaded, credentials): the backoff is honoured.
_NO_EARLY_RETRY = frozenset({401, 403, 429})
_PROBE_TIMEOUT = 2.0


class ElasticsearchOutput(Probed):
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
        # HTTP status of the last failed request (None: no answer at all)
        self._last_failure: int | None = None
        # ``concurrency`` is the number of bulk requests in flight; the delivery loop runs
        # one worker more (see delivery_config), which waits here with its batch encoded
        self._in_flight = asyncio.Semaphore(config.concurrency)

    @property
    def client(self) -> AsyncElasticsearch:
        if self._client is None:
            self._client = make_client(self.config)
        return self._client

    @property
    def delivery_config(self) -> dict[str, Any]:
        """What the collector passes to shipper.delivery.DeliveryConfig for this output.

        One delivery worker more than bulk requests in flight: while ``concurrency``
        requests are out, the extra worker reads the next lease from the spool and encodes
        it, then waits for a free slot (``_in_flight``), so a finished request is followed
        at once by the next one instead of by a spool read and an encode (without it, one
        of two slots stood empty about a third of the time under load).
        """
        return {
            "batch_events": self.config.batch_events,
            "batch_bytes": self.config.batch_bytes,
            "concurrency": self.config.concurrency + 1,
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
            self._last_failure = exc.meta.status if isinstance(exc, ApiError) else None
            message = f"start: {describe(exc)}"
            self.health.error(message)
            raise TransientError(message) from None
        self.health.cluster_status = await cluster_status(self.client)
        self.health.ok()
        self._started = True

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def probe(self) -> bool:
        """True when the cluster answers again with status yellow or green (see Probed).

        Only after a failure without an answer or a 5xx: after a 429, 401 or 403 the
        cluster answered and refused, and the delivery loop's backoff is kept.
        """
        if self._last_failure in _NO_EARLY_RETRY:
            return False
        try:
            client = self.client.options(request_timeout=_PROBE_TIMEOUT, max_retries=0)
            resp = await client.cluster.health(timeout=f"{_PROBE_TIMEOUT:g}s")
            status = str(resp.get("status", "unknown"))
        except Exception:
            return False
        self.health.cluster_status = status
        return status in ("green", "yellow")

    # -- one bulk request --------------------------------------------------
    async def _request(self, body: bytes) -> BulkReply:
        """Send one bulk body; every outcome, failures included, comes back as a BulkReply."""
        async with self._in_flight:
            reply = await self._request_now(body)
        # The worker waiting for this slot has its body ready: let it send before this answer
        # is sorted and acked (~1-2 ms of work per batch that kept the slot empty meanwhile).
        await asyncio.sleep(0)
        return reply

    async def _request_now(self, body: bytes) -> BulkReply:
        t0 = time.perf_counter()
        try:
            # bytes go through the client's ndjson serializer unchanged (typed for dicts only)
            resp = await self.client.bulk(operations=body,  # type: ignore[arg-type]
                                          filter_path=FILTER_PATH)
        except ApiError as exc:
            status = exc.meta.status
            self._last_failure = status
            err = exc.body.get("error") if isinstance(exc.body, dict) else None
            reply = BulkReply(status, error=describe(exc),
                              error_type=err.get("type") if isinstance(err, dict) else None,
                              retry_after=retry_after(exc.meta.headers))
            self.metrics.requests.labels(f"http_{status}").inc()
        except TransportError as exc:  # no HTTP answer: refused, reset, timeout, TLS
            self._last_failure = None
            reply = BulkReply(None, error=describe(exc))
            self.metrics.requests.labels(
                "connection_error" if isinstance(exc, TransportConnectionError | ConnectionTimeout)
                else "transport_error").inc()
        else:
            self.metrics.requests.labels("ok").inc()
            self.health.ok()
            return BulkReply(resp.meta.status, items_of(resp.body))
        finally:
            self.metrics.duration.observe(time.perf_counter() - t0)
        self.health.error(reply.error)
        return reply

    async def _write(self, parts: list[bytes]) -> list[ItemStatus]:
        """Per-item statuses for the bulk lines ``parts`` (action, document, ...).

        Raises TransientError / PermanentError for whole-request outcomes. A 413
        sends each half on its own; a single item still too large gets a 413 status.
        """
        reply = await self._request(body_of(parts))
        action = classify(reply.status, reply.error_type, whole_request=True)
        n = len(parts) // 2
        if action is Action.DELIVERED:
            if len(reply.items) != n:
                raise TransientError(f"bulk answered {len(reply.items)} items for {n} sent")
            return reply.items
        if action is Action.SPLIT:
            if n == 1:
                size = len(parts[0]) + len(parts[1]) + 2
                return [ItemStatus(413, "request_too_large",
                                   f"the event alone makes a {size}-byte bulk request, more than "
                                   f"the cluster accepts (http.max_content_length): {reply.error}")]
            mid = n // 2 * 2
            return await self._write(parts[:mid]) + await self._write(parts[mid:])
        if action is Action.RETRY:
            raise TransientError(reply.error, reply.retry_after)
        raise PermanentError(reply.error)

    # -- delivery --------------------------------------------------------
    async def send(self, batch: Batch) -> SendResult:
        if not self._started:
            # Never write before the templates exist: Elasticsearch would auto-create a plain
            # index with guessed mappings where the data stream belongs.
            await self.start()
        enc = encode(batch.lines, self.config)
        result = SendResult()
        tally: Counter[tuple[str, str]] = Counter()
        rejected = [Rejected(bad.index, bad.line, f"elasticsearch output: {bad.reason}",
                             error_type="invalid_event") for bad in enc.invalid]
        if enc.items:
            statuses = await self._write(enc.parts())
            if statuses.count(CREATED) == len(statuses):  # the usual case: all written
                for dataset, n in Counter(item.dataset for item in enc.items).items():
                    tally["delivered", dataset] += n
            else:
                self._sort(enc.items, statuses, result, rejected, tally)
        if rejected:
            await self._deadletter(rejected, result, tally)
        for (outcome, dataset), n in tally.items():
            self.metrics.count(outcome, dataset, n)
        return result

    @staticmethod
    def _sort(items: list[Item], statuses: list[ItemStatus], result: SendResult,
              rejected: list[Rejected], tally: Counter[tuple[str, str]]) -> None:
        """Each item to its outcome, as ``classify`` says."""
        for item, st in zip(items, statuses, strict=True):
            action = classify(st.status, st.error_type)
            if action is Action.DEAD_LETTER:
                rejected.append(Rejected(item.index, item.line, st.describe(), st.status,
                                         st.error_type, item))
                continue
            tally[_OUTCOME[action], item.dataset] += 1
            if action is Action.RETRY:
                result.retry.append(item.index)

    async def _deadletter(self, rejected: list[Rejected], result: SendResult,
                          tally: Counter[tuple[str, str]]) -> None:
        """Write rejected events to the dead-letter stream; what it refuses goes to the spool's."""
        datasets = [rej.item.dataset if rej.item else "raw" for rej in rejected]
        try:
            answers = await self._write(deadletter_parts(rejected, self.config.deadletter_stream))
        except TransientError:
            for rej, ds in zip(rejected, datasets, strict=True):
                tally["retried", ds] += 1
                result.retry.append(rej.index)
            return
        except PermanentError as exc:
            for rej, ds in zip(rejected, datasets, strict=True):
                tally["dead_letter_failed", ds] += 1
                result.dead.append((rej.index, f"{rej.reason}; dead-letter stream refused it "
                                                f"too: {exc}"))
            return
        for rej, ds, ans in zip(rejected, datasets, answers, strict=True):
            action = classify(ans.status, ans.error_type)
            if action is Action.DELIVERED:
                tally["dead_lettered", ds] += 1
                result.dead_lettered.append(rej.index)
            elif action is Action.DUPLICATE:  # dead-lettered by an earlier attempt of this batch
                tally["duplicate", ds] += 1
                result.dead_lettered.append(rej.index)
            elif action is Action.RETRY:
                tally["retried", ds] += 1
                result.retry.append(rej.index)
            else:
                tally["dead_letter_failed", ds] += 1
                result.dead.append((rej.index, f"{rej.reason}; dead-letter stream refused it "
                                                f"too: HTTP {ans.status}: {ans.reason}"))
