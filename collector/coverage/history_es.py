"""Coverage history in Elasticsearch: one data stream, its own template and lifecycle.

When the collector has an Elasticsearch output, every snapshot ``HistoryStore``
writes is also queued (SQLite table ``es_pending``) and sent here with the
output's client settings (``make_client``). Documents go to the data stream
``canhgac-coverage-history[-<namespace>]`` with ``create`` and
``_id = <system>.<day>.<seq>``: a retry after a lost answer gets 409, which
counts as delivered, so nothing is written twice. The template's lifecycle keeps
them ``coverage.history_retention`` (default 1096 days), whatever the event
streams' retention is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson

from canhgac.tasks import wait_for_event
from collector.coverage.history import HistoryStore, Snapshot
from shipper.outputs.elasticsearch.config import ElasticsearchConfig

log = logging.getLogger(__name__)

BATCH = 500
TEMPLATE_PRIORITY = 300  # above Elasticsearch's built-in templates (100) and canhgac-logs (200)


def stream_name(config: ElasticsearchConfig) -> str:
    return "canhgac-coverage-history" + (f"-{config.namespace}" if config.namespace else "")


def template(config: ElasticsearchConfig, retention_days: int) -> dict[str, Any]:
    kw = {"type": "keyword", "ignore_above": 1024}
    ratio = {"type": "float"}
    settings: dict[str, Any] = {"codec": "best_compression"}
    if config.replicas is not None:
        settings["number_of_replicas"] = config.replicas
    return {
        "index_patterns": [stream_name(config)],
        "data_stream": {},
        "priority": TEMPLATE_PRIORITY,
        "template": {
            "settings": {"index": settings},
            "lifecycle": {"data_retention": f"{retention_days}d"},
            "mappings": {
                "dynamic": False,
                "properties": {
                    "@timestamp": {"type": "date"},
                    "canhgac": {"properties": {
                        "system": {"properties": {"id": kw, "name": kw, "level": {"type": "long"},
                                                  "status": kw}},
                        "unit": {"properties": {"name": kw}},
                        "coverage": {"properties": {
                            "day": {"type": "date", "format": "yyyy-MM-dd"},
                            "seq": {"type": "long"}, "reason": kw,
                            "layers": {"properties": {
                                layer: {"properties": {"ratio": ratio, "state": kw}}
                                for layer in ("onsite", "monitoring", "assessment", "national")}},
                            "obligations": {"properties": {
                                name: {"type": "boolean"} for name in (
                                    "approved", "approved_on_time", "approval_overdue",
                                    "plan_deployed", "plan_overdue", "overdue")}},
                        }},
                    }},
                },
            },
        },
        "_meta": {"managed_by": "canhgac",
                  "description": "coverage history: daily and on-change snapshots per system"},
    }


def doc_id(s: Snapshot) -> str:
    return f"{s.system}.{s.day.isoformat()}.{s.seq}"


def document(s: Snapshot) -> dict[str, Any]:
    d = s.to_dict()
    from canhgac.timeutil import from_epoch

    return {
        "@timestamp": from_epoch(s.taken_at),
        "canhgac": {
            "system": {"id": s.system, "name": s.name, "level": s.level, "status": s.status},
            "unit": {"name": s.unit},
            "coverage": {
                "day": d["day"], "seq": s.seq, "reason": s.reason,
                "layers": {layer: {"ratio": d["layers"][layer], "state": d["states"][layer]}
                           for layer in d["layers"]},
                "obligations": {name: d[name] for name in (
                    "approved", "approved_on_time", "approval_overdue", "plan_deployed",
                    "plan_overdue", "overdue")},
            },
        },
    }


class EsHistory:
    """Sends ``es_pending`` snapshots; woken by the writer, retried every ``retry`` s."""

    def __init__(self, store: HistoryStore, config: ElasticsearchConfig, *, client: Any = None,
                 retry: float = 30.0) -> None:
        self.store = store
        self.config = config
        self.stream = stream_name(config)
        self.retry = retry
        self._client = client
        self._template_ok = False
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        self.last_error = ""

    @property
    def client(self) -> Any:
        if self._client is None:
            from shipper.outputs.elasticsearch import make_client

            self._client = make_client(self.config)
        return self._client

    def wake(self) -> None:
        """Thread-safe: called by the history writer after a write."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._wake.set)

    async def install(self) -> None:
        days = int(float(self.store.cfg.history_retention) // 86400)
        await self.client.indices.put_index_template(name=self.stream,
                                                     body=template(self.config, days))
        self._template_ok = True

    async def push_once(self) -> int:
        """Send what is pending (in batches); returns the snapshots delivered."""
        if not self._template_ok:
            await self.install()
        sent = 0
        while True:
            pending = await asyncio.to_thread(self.store.pending_es, BATCH)
            if not pending:
                return sent
            lines: list[bytes] = []
            for snap, _key in pending:
                lines.append(orjson.dumps({"create": {"_index": self.stream, "_id": doc_id(snap)}}))
                lines.append(orjson.dumps(document(snap)))
            resp = await self.client.bulk(operations=b"\n".join(lines) + b"\n",
                                          filter_path="errors,items.*.status,items.*.error")
            done = []
            failed = ""
            for (_snap, key), item in zip(pending, resp.body.get("items", []), strict=False):
                result = next(iter(item.values()))
                status = int(result.get("status", 0))
                if 200 <= status < 300 or status == 409:
                    done.append(key)
                elif 400 <= status < 500 and status != 429:
                    # refused for good: retrying would block every later snapshot; the row
                    # stays in history.db
                    log.error("elasticsearch refused coverage snapshot %s: %s %s",
                              doc_id(_snap), status, result.get("error"))
                    done.append(key)
                else:
                    failed = f"{status}: {result.get('error')}"
            await asyncio.to_thread(self.store.es_done, done)
            sent += len(done)
            self.delivered += len(done)
            if failed:
                raise RuntimeError(f"elasticsearch refused coverage history: {failed}")

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before pushing: a write meanwhile wakes the next round
            try:
                await self.push_once()
                self.last_error = ""
                timeout: float | None = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # ES down or refusing: the rows stay pending
                message = str(exc) or type(exc).__name__
                if message != self.last_error:
                    log.warning("coverage history to elasticsearch: %s (retrying every %.0f s)",
                                message, self.retry)
                self.last_error = message
                timeout = self.retry
            await wait_for_event(self._wake, timeout)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.store.on_written.append(self.wake)
        self._task = asyncio.create_task(self._run(), name="coverage-history-es")

    async def stop(self) -> None:
        from canhgac.tasks import cancel_and_wait

        if self.wake in self.store.on_written:
            self.store.on_written.remove(self.wake)
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
        if self._client is not None:
            await self._client.close()
