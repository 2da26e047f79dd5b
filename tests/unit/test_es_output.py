"""The Elasticsearch output without a cluster: config, routing, encoding, templates, and the
per-item outcome logic against a scripted _bulk endpoint on loopback (the real node is in
tests/integration/test_es_*.py)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from canhgac.errors import ConfigError
from canhgac.schema import DATASETS, PRIORITY_SECURITY, new_event
from shipper.delivery import DeliveryConfig, DeliveryLoop
from shipper.output import Batch, PermanentError, TransientError
from shipper.outputs.elasticsearch import ElasticsearchOutput, templates
from shipper.outputs.elasticsearch.config import load
from shipper.outputs.elasticsearch.encoder import encode
from shipper.queue import DurableQueue
from tests.fixtures.collector import wait_for

REPO = Path(__file__).resolve().parents[2]


def test_config_validation_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"outputs.elasticsearch.hosts\[0\]: must start with"):
        load({"hosts": ["es:9200"]}, "c.yaml")
    with pytest.raises(ConfigError, match="api_key: use either"):
        load({"api_key": "k", "username": "u", "password": "p"}, "c.yaml")
    with pytest.raises(ConfigError, match="namespace"):
        load({"namespace": "Bad-Name"}, "c.yaml")
    with pytest.raises(ConfigError, match=r"retention\[1\].name: duplicate"):
        load({"retention": [{"name": "a", "min_level": 1}, {"name": "a", "min_level": 3}]}, "c.yaml")
    with pytest.raises(ConfigError, match="environment variable CG_TEST_NOPE is not set"):
        load({"api_key": "${CG_TEST_NOPE}"}, "c.yaml")


def test_secrets_come_from_env_and_never_print(monkeypatch) -> None:
    monkeypatch.setenv("CG_TEST_ES_KEY", "c2VjcmV0LWtleQ==")
    cfg = load({"api_key": "${CG_TEST_ES_KEY}"}, "c.yaml")
    assert str(cfg.api_key) == "c2VjcmV0LWtleQ=="
    assert "c2VjcmV0" not in repr(cfg)


def test_retention_classes_bound_the_streams() -> None:
    cfg = load({}, "c.yaml")
    assert [cfg.class_for_level(n) for n in (1, 2, 3, 4, 5)] == ["l1", "l2", "l3", "l3", "l3"]
    assert cfg.class_for_level(None) == "l3"  # unknown system: keep longest
    assert cfg.stream("auth", "l3") == "logs-canhgac.auth-l3"
    assert cfg.deadletter_stream == "logs-canhgac.deadletter-default"
    hue = load({"namespace": "hue", "default_class": "l1"}, "c.yaml")
    assert hue.stream("auth", "l2") == "logs-canhgac.auth-hue.l2"
    assert hue.class_for_level(None) == "l1"
    # however many systems: at most datasets x classes streams
    lines = [orjson.dumps(new_event(DATASETS[i % len(DATASETS)], canhgac={
        "system": {"id": f"sys-{i}", "level": 1 + i % 5}})) for i in range(500)]
    streams = {item.stream for item in encode(lines, cfg).items}
    assert len(streams) <= len(DATASETS) * len(cfg.retention)


def test_encoder_uses_event_id_and_keeps_the_line() -> None:
    cfg = load({}, "c.yaml")
    e = new_event("auth", message="Đăng nhập", canhgac={"system": {"id": "s", "level": 2}})
    unknown = new_event("made.up.dataset")
    no_id = {"@timestamp": "2026-11-23T00:00:00.000Z", "event": {"dataset": "auth"}}
    lines = [orjson.dumps(e), b"not json", orjson.dumps(unknown), b"[1]", orjson.dumps(no_id)]
    enc = encode(lines, cfg)
    assert [bad.index for bad in enc.invalid] == [1, 3]
    first = enc.items[0]
    assert json.loads(first.action) == {"create": {"_index": "logs-canhgac.auth-l2",
                                                   "_id": e["event"]["id"]}}
    assert first.line == lines[0]
    assert enc.items[1].stream == "logs-canhgac.raw-l3"  # unknown datasets never make new streams
    assert enc.items[2].doc_id == encode(lines, cfg).items[2].doc_id  # stable without event.id


def test_template_files_are_current(tmp_path: Path) -> None:
    """deploy/elasticsearch/templates/*.json are what the output installs (regenerate with
    python -m shipper.outputs.elasticsearch.templates deploy/elasticsearch/templates)."""
    templates.write_files(tmp_path)
    shipped = REPO / "deploy" / "elasticsearch" / "templates"
    for path in tmp_path.rglob("*.json"):
        rel = path.relative_to(tmp_path)
        assert (shipped / rel).read_bytes() == path.read_bytes(), f"{rel} is stale"
    body = json.loads((shipped / "index_template" / "canhgac-logs-l3.json").read_text())
    assert body["template"]["lifecycle"]["data_retention"] == "90d"
    assert body["priority"] > 100  # above Elasticsearch's built-in logs-*-*
    mappings = json.loads((shipped / "component_template" / "canhgac-ecs@mappings.json").read_text())
    props = mappings["template"]["mappings"]["properties"]
    assert props["source"]["properties"]["ip"]["type"] == "ip"
    assert props["@timestamp"]["type"] == "date"


# -- a scripted _bulk endpoint ------------------------------------------------------------
class FakeBulk:
    """Answers each item by its ``message``: ok, dup, 429-once, 500-once, 400, dl-400."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.requests = 0
        self.whole: list[int] = []  # statuses to answer whole requests with, first
        self.deadletter_status = 201
        self.deadletter_docs: list[dict[str, Any]] = []
        self.in_flight = 0  # bulk requests being answered now, and the most at once
        self.max_in_flight = 0
        self.gate: asyncio.Event | None = None  # when set up: requests wait until it is set

    async def info(self, _: web.Request) -> web.Response:
        return web.json_response({"version": {"number": "8.17.0"}, "tagline": "You Know, for Search"},
                                 headers={"X-Elastic-Product": "Elasticsearch"})

    async def bulk(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            return await self._bulk(request)
        finally:
            self.in_flight -= 1

    async def _bulk(self, request: web.Request) -> web.Response:
        self.requests += 1
        hdr = {"X-Elastic-Product": "Elasticsearch"}
        if self.whole:
            status = self.whole.pop(0)
            return web.json_response({"error": {"type": "x", "reason": "whole"}, "status": status},
                                     status=status, headers=hdr)
        lines = [ln for ln in (await request.read()).split(b"\n") if ln]
        items = []
        for action, doc in zip(lines[::2], lines[1::2], strict=True):
            meta = orjson.loads(action)["create"]
            d = orjson.loads(doc)
            if meta["_index"].startswith("logs-canhgac.deadletter"):
                self.deadletter_docs.append(d)
                st = self.deadletter_status
                items.append({"create": {"status": st, **({"error": {
                    "type": "x", "reason": "dead-letter refused"}} if st >= 300 else {})}})
                continue
            mode = d.get("message", "ok")
            self.seen[meta["_id"]] += 1
            first = self.seen[meta["_id"]] == 1
            if mode == "dup" or (mode == "ok" and not first):
                st = 409 if mode == "dup" or not first else 201
            elif mode in ("429-once", "500-once") and first:
                st = int(mode[:3])
            elif mode == "400":
                items.append({"create": {"status": 400, "error": {
                    "type": "document_parsing_exception", "reason": "failed to parse field"}}})
                continue
            else:
                st = 201
            items.append({"create": {"status": st}})
        return web.json_response({"errors": True, "items": items}, headers=hdr)


@pytest.fixture
async def fake_es() -> AsyncIterator[tuple[str, FakeBulk]]:
    fake = FakeBulk()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/", fake.info)
    app.router.add_route("*", "/_bulk", fake.bulk)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", fake
    await runner.cleanup()


def _out(url: str, registry: CollectorRegistry | None = None) -> ElasticsearchOutput:
    return ElasticsearchOutput(load({"hosts": [url], "install_templates": False,
                                     "request_timeout": 5}, "t"), registry=registry)


def _line(mode: str, dataset: str = "auth") -> bytes:
    return orjson.dumps(new_event(dataset, message=mode))


async def test_each_item_gets_its_own_outcome(fake_es) -> None:
    url, fake = fake_es
    reg = CollectorRegistry()
    out = _out(url, reg)
    lines = [_line("ok"), _line("dup"), _line("429-once"), _line("500-once"), _line("400"),
             b"{bad json", _line("ok", "process")]
    assert not out._started
    result = await out.send(Batch("b", lines))  # starts (connects, templates) before writing
    assert out._started and out.health.up
    assert sorted(result.retry) == [2, 3]
    assert result.dead == []
    assert sorted(result.dead_lettered) == [4, 5]  # in the dead-letter stream: not delivered
    assert out.health.counts == {"delivered": 2, "duplicate": 1, "retried": 2,
                                 "dead_lettered": 2, "dead_letter_failed": 0}
    assert {d["error"]["type"] for d in fake.deadletter_docs} == {"document_parsing_exception",
                                                                 "invalid_event"}
    originals = {d["event"]["original"] for d in fake.deadletter_docs}
    assert originals == {lines[4].decode(), "{bad json"}
    assert reg.get_sample_value("canhgac_elasticsearch_events_total",
                                {"outcome": "delivered", "dataset": "process"}) == 1
    await out.close()


async def test_refused_dead_letters_go_to_the_spool(fake_es) -> None:
    url, fake = fake_es
    fake.deadletter_status = 400
    out = _out(url)
    result = await out.send(Batch("b", [_line("400")]))
    assert len(result.dead) == 1 and "dead-letter stream refused it too" in result.dead[0][1]
    assert out.health.counts["dead_letter_failed"] == 1
    fake.deadletter_status = 429
    result = await out.send(Batch("b", [_line("400")]))
    assert result.retry == [0] and result.dead == [] and result.dead_lettered == []
    await out.close()


async def test_whole_request_failures(fake_es) -> None:
    url, fake = fake_es
    out = _out(url)
    fake.whole = [429]
    with pytest.raises(TransientError):
        await out.send(Batch("b", [_line("ok")]))
    fake.whole = [503]
    with pytest.raises(TransientError):
        await out.send(Batch("b", [_line("ok")]))
    fake.whole = [400]
    with pytest.raises(PermanentError):
        await out.send(Batch("b", [_line("ok")]))
    fake.whole = [413]  # too large: split in halves until it fits
    result = await out.send(Batch("b", [_line("ok"), _line("ok")]))
    assert result.retry == [] and out.health.counts["delivered"] == 2
    assert not out.health.as_json()["last_error"] == ""
    await out.close()


async def test_delivery_loop_retries_only_failed_items_until_delivered(fake_es, tmp_path) -> None:
    url, fake = fake_es
    queue = DurableQueue(tmp_path / "spool.db", outputs=("elasticsearch",))
    await queue.open()
    out = _out(url)
    loop = DeliveryLoop(queue, out, DeliveryConfig(**out.delivery_config, backoff_initial=0.01,
                                                   backoff_max=0.05))
    lines = [_line(m) for m in ("ok", "429-once", "500-once", "ok", "dup", "400") * 20]
    await queue.append(lines, PRIORITY_SECURITY)
    await loop.start()
    assert await loop.flush(timeout=20)
    await loop.stop()
    await queue.close()
    counts = out.health.counts
    assert counts["delivered"] == 80 and counts["duplicate"] == 20
    assert counts["retried"] == 40 and counts["dead_lettered"] == 20
    assert max(fake.seen.values()) == 2  # failed items were sent again, alone
    assert fake.requests <= 3 * len(lines) // out.config.batch_events + 10
    # the generic counters agree with the output's: the 20 lines in the dead-letter
    # stream are dead-lettered, not delivered (the 20 duplicates are delivered)
    assert loop.stats.dead_events == 20
    assert loop.stats.delivered_events == 100


async def test_build_registers_metrics_and_the_lag_lifespan(tmp_path) -> None:
    from shipper.outputs.elasticsearch import build

    class Ctx:
        source = "c.yaml"
        state_dir = tmp_path
        registry = CollectorRegistry()
        lifespans: list[Any] = []
        spool = None

        def add_lifespan(self, lifespan: Any) -> None:
            self.lifespans.append(lifespan)

    ctx = Ctx()
    out = build({"hosts": ["http://127.0.0.1:9"], "batch_events": 100, "concurrency": 3}, ctx)
    # one delivery worker more than bulk requests in flight: it reads and encodes ahead
    assert out.delivery_config == {"batch_events": 100, "batch_bytes": 8 * 1024 * 1024,
                                   "concurrency": 4}
    assert len(ctx.lifespans) == 1
    async with ctx.lifespans[0]():
        pass
    assert ctx.registry.get_sample_value("canhgac_elasticsearch_up") == 0.0
    await out.close()


async def test_concurrency_caps_requests_in_flight_while_one_more_batch_waits_encoded(
        fake_es, tmp_path) -> None:
    """``concurrency`` is the number of bulk requests in flight; the delivery loop's extra
    worker holds the next lease (read and encoded) until one of them is answered."""
    url, fake = fake_es
    fake.gate = asyncio.Event()
    queue = DurableQueue(tmp_path / "spool.db", outputs=("elasticsearch",))
    await queue.open()
    out = ElasticsearchOutput(load({"hosts": [url], "install_templates": False,
                                    "concurrency": 2, "batch_events": 10}, "t"))
    loop = DeliveryLoop(queue, out, DeliveryConfig(**out.delivery_config))
    for _ in range(8):
        await queue.append([_line("ok") for _ in range(10)], PRIORITY_SECURITY)
    await loop.start()
    try:
        leased = queue._cursors["elasticsearch"].inflight
        assert await wait_for(lambda: fake.in_flight == 2 and len(leased) == 3)
        assert out._in_flight.locked()  # the third batch waits for a slot, not at the server
        fake.gate.set()
        assert await loop.flush(timeout=20)
    finally:
        await loop.stop()
        await queue.close()
    assert fake.max_in_flight == 2
    assert out.health.counts["delivered"] == 80


async def test_a_freed_slot_goes_to_the_waiting_batch_before_the_answer_is_sorted(
        fake_es, tmp_path) -> None:
    """The worker that holds the next batch, encoded, sends it as soon as a request is
    answered, before that answer's items are sorted and its lease acked."""
    url, fake = fake_es
    fake.gate = asyncio.Event()
    queue = DurableQueue(tmp_path / "spool.db", outputs=("elasticsearch",))
    await queue.open()
    out = ElasticsearchOutput(load({"hosts": [url], "install_templates": False,
                                    "concurrency": 1, "batch_events": 10}, "t"))
    loop = DeliveryLoop(queue, out, DeliveryConfig(**out.delivery_config))
    events: list[str] = []
    request_now, send = out._request_now, out.send

    async def logged_request(body: bytes) -> Any:
        events.append("request")
        try:
            return await request_now(body)
        finally:
            events.append("answer")

    async def logged_send(batch: Batch) -> Any:
        result = await send(batch)
        events.append("sorted")
        return result

    out._request_now = logged_request  # type: ignore[method-assign]
    out.send = logged_send  # type: ignore[method-assign]
    for _ in range(3):
        await queue.append([_line("ok") for _ in range(10)], PRIORITY_SECURITY)
    await loop.start()
    try:
        leased = queue._cursors["elasticsearch"].inflight
        # one request at the server, the second batch leased, encoded and waiting for the slot
        assert await wait_for(lambda: fake.in_flight == 1 and len(leased) == 2)
        fake.gate.set()
        assert await loop.flush(timeout=20)
    finally:
        await loop.stop()
        await queue.close()
    assert events[:4] == ["request", "answer", "request", "sorted"]
    assert out.health.counts["delivered"] == 30


def test_document_id_is_scoped_by_agent() -> None:
    """Issue 12 finding: one event.id from two agents was one _id (the second silently
    dropped as a duplicate). The _id is <agent.id>:<event.id>; over 512 bytes, a hash."""
    cfg = load({"hosts": ["http://127.0.0.1:9"]}, "c.yaml")
    base = {"@timestamp": "2026-01-01T00:00:00Z", "event": {"id": "ev-00000001", "dataset": "auth"}}
    lines = [orjson.dumps({**base, "agent": {"id": a}}) for a in ("agent-a", "agent-b", "agent-a")]
    ids = [item.doc_id for item in encode(lines, cfg).items]
    assert ids == ["agent-a:ev-00000001", "agent-b:ev-00000001", "agent-a:ev-00000001"]
    long_agent = orjson.dumps({**base, "agent": {"id": "é" * 300}})
    (item,) = encode([long_agent], cfg).items
    assert item.doc_id.startswith("sha256-") and len(item.doc_id) < 512
    assert encode([long_agent], cfg).items[0].doc_id == item.doc_id
