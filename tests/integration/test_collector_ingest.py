"""The agent -> collector contract against a real collector over TLS (in-process)."""

from __future__ import annotations

import gzip
import sqlite3

import orjson

from canhgac.schema import new_event
from collector.app import INGEST_KEY
from tests.fixtures.collector import gz_ndjson, wait_for


def headers(token: str, batch: str | None = None) -> dict[str, str]:
    h = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
         "Content-Type": "application/x-ndjson"}
    if batch:
        h["X-Batch-Id"] = batch
    return h


def stored_ids(collector) -> set[str]:
    path = collector.state_dir / "events.db"
    if not path.exists():
        return set()
    db = sqlite3.connect(path)
    try:
        return {r[0] for r in db.execute("SELECT json_extract(doc, '$.event.id') FROM events")}
    except sqlite3.OperationalError:  # the store has not created its table yet
        return set()
    finally:
        db.close()


async def test_events_are_acked_stored_and_attributed(collector, session):
    token = await collector.enroll(session)
    events = [new_event("process", action="start", process={"pid": i}) for i in range(5)]
    # A payload claiming another system is overwritten (and counted).
    events[0]["canhgac"] = {"system": {"id": "someone-else"}}
    async with session.post(f"{collector.url}/v1/events", data=gz_ndjson(events),
                            headers=headers(token, "b-1")) as r:
        assert r.status == 200
        ack = await r.json()
    assert ack == {"batch_id": "b-1", "accepted": 5, "duplicate": 0, "rejected": 0, "errors": []}
    ids = {e["event"]["id"] for e in events}
    assert await wait_for(lambda: stored_ids(collector) == ids)
    db = sqlite3.connect(collector.state_dir / "events.db")
    docs = [orjson.loads(r[0]) for r in db.execute("SELECT doc FROM events")]
    assert {d["canhgac"]["system"]["id"] for d in docs} == {"sys-1"}
    assert collector.ctx.app[INGEST_KEY].enricher.overrides == 1


async def test_retried_batch_id_is_not_stored_twice(collector, session):
    token = await collector.enroll(session)
    events = [new_event("auth", outcome="failure") for _ in range(3)]
    body = gz_ndjson(events)
    for expected in ({"accepted": 3, "duplicate": 0}, {"accepted": 0, "duplicate": 3}):
        async with session.post(f"{collector.url}/v1/events", data=body,
                                headers=headers(token, "same")) as r:
            ack = await r.json()
            assert {k: ack[k] for k in expected} == expected
    st = await collector.ctx.spool.stats()
    assert await wait_for(lambda: len(stored_ids(collector)) == 3)
    assert st["store"].pending_events in (0, 3)


async def test_bad_lines_rejected_one_by_one_good_lines_kept(collector, session):
    token = await collector.enroll(session)
    good = new_event("socket", action="listen")
    lines = [
        orjson.dumps(good),
        b"{not json",
        b"[1,2,3]",
        orjson.dumps({"event": {"id": "short"}}),
        orjson.dumps({**new_event("nope"), }),
        orjson.dumps({**new_event("auth"), "@timestamp": "2999-01-01T00:00:00Z"}),
        orjson.dumps({**new_event("auth"), "source": {"ip": "999.1.1.1"}}),
        orjson.dumps({**new_event("auth"), "source": {"port": 70000}}),
        orjson.dumps({**new_event("auth"), "@timestamp": "2024-01-01T00:00:00"}),
    ]
    async with session.post(f"{collector.url}/v1/events", data=gzip.compress(b"\n".join(lines)),
                            headers=headers(token)) as r:
        assert r.status == 200
        ack = await r.json()
    assert ack["accepted"] == 1 and ack["rejected"] == 8
    assert [e["line"] for e in ack["errors"]] == list(range(1, 9))
    assert all(e["reason"] for e in ack["errors"])
    assert await wait_for(lambda: stored_ids(collector) == {good["event"]["id"]})


async def test_wrong_or_revoked_token_gets_401_and_nothing_stored(collector, session):
    token = await collector.enroll(session)
    body = gz_ndjson([new_event("auth")])
    for bad in ("nonsense", token[:-2] + "xx", "unknown-agent.secret"):
        async with session.post(f"{collector.url}/v1/events", data=body, headers=headers(bad)) as r:
            assert r.status == 401
    async with session.post(f"{collector.url}/v1/events", data=body,
                            headers={"Content-Encoding": "gzip"}) as r:
        assert r.status == 401
    agent_id = token.split(".")[0]
    assert collector.ctx.auth.revoke(agent_id)
    async with session.post(f"{collector.url}/v1/events", data=body, headers=headers(token)) as r:
        assert r.status == 401
    assert stored_ids(collector) == set()


async def test_enrollment_token_is_single_use(collector, session):
    token = collector.enroll_token()
    payload = {"token": token, "hostname": "h"}
    async with session.post(f"{collector.url}/v1/enroll", json=payload) as r:
        assert r.status == 200
    async with session.post(f"{collector.url}/v1/enroll", json=payload) as r:
        assert r.status == 401
    for bad in (b"nope", b"[]", orjson.dumps({"token": 5, "hostname": "h"})):
        async with session.post(f"{collector.url}/v1/enroll", data=bad) as r:
            assert r.status == 400


async def test_malformed_oversized_and_nested_payloads_get_4xx(collector, session):
    token = await collector.enroll(session)
    url = f"{collector.url}/v1/events"
    # not gzip although it says so
    async with session.post(url, data=b"plain", headers=headers(token)) as r:
        assert r.status == 400
    # truncated gzip
    async with session.post(url, data=gz_ndjson([new_event("auth")])[:-6], headers=headers(token)) as r:
        assert r.status == 400
    # gzip bomb: 80 MiB of zeros compresses to ~80 KiB
    bomb = gzip.compress(b"0" * (80 * 1024 * 1024))
    async with session.post(url, data=bomb, headers=headers(token)) as r:
        assert r.status == 413
    # body over the limit
    async with session.post(url, data=b"x" * (17 * 1024 * 1024), headers=headers(token)) as r:
        assert r.status == 413
    # deep nesting: rejected as a line, never a 500
    ev = orjson.dumps(new_event("auth"))[:-1]
    for depth in (5000, 20):
        line = ev + b',"x":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"
        async with session.post(url, data=gzip.compress(line), headers=headers(token)) as r:
            assert r.status == 200
            ack = await r.json()
            assert ack["rejected"] == 1 and "nesting" in ack["errors"][0]["reason"]
    async with session.post(url, data=gz_ndjson([new_event("auth")]),
                            headers={**headers(token), "Content-Encoding": "br"}) as r:
        assert r.status == 415
    async with session.post(url, data=gz_ndjson([new_event("auth")]),
                            headers=headers(token, "bad id with spaces")) as r:
        assert r.status == 400


async def test_metrics_expose_pipeline_counts(collector, session):
    token = await collector.enroll(session)
    async with session.post(f"{collector.url}/v1/events",
                            data=gz_ndjson([new_event("auth"), b"{bad"]), headers=headers(token)) as r:
        assert r.status == 200
    async with session.get(f"{collector.url}/metrics") as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    async with session.get(f"{collector.url}/metrics", headers={"Authorization": "Bearer nope"}) as r:
        assert r.status == 401
    async with session.get(f"{collector.url}/metrics", headers=collector.metrics_headers) as r:
        assert r.status == 200
        assert r.headers["Server"] == "canhgac"  # no aiohttp/Python versions
        text = await r.text()
    assert "canhgac_ingest_events_received_total 2.0" in text
    assert 'canhgac_ingest_events_rejected_total{reason="json"} 1.0' in text
    assert "canhgac_spool_bytes" in text
    for path in ("/healthz", "/readyz"):
        async with session.get(collector.url + path) as r:
            assert r.status == 200


async def test_attribution_is_overwritten_but_probe_details_pass(collector, session):
    token = await collector.enroll(session)
    ev = new_event("network", action="port_scan")
    ev["canhgac"] = {"system": {"id": "other", "level": 5}, "unit": {"name": "x"},
                     "alert": {"severity": "critical"}, "scan": {"ports": 120}}
    async with session.post(f"{collector.url}/v1/events", data=gz_ndjson([ev]),
                            headers=headers(token)) as r:
        assert (await r.json())["accepted"] == 1
    assert await wait_for(lambda: stored_ids(collector) == {ev["event"]["id"]})
    db = sqlite3.connect(collector.state_dir / "events.db")
    doc = orjson.loads(db.execute("SELECT doc FROM events").fetchone()[0])
    assert doc["canhgac"]["system"] == {"id": "sys-1"}
    assert "unit" not in doc["canhgac"] and "alert" not in doc["canhgac"]
    assert doc["canhgac"]["scan"] == {"ports": 120}


async def test_same_event_id_from_two_agents_is_stored_for_each(collector, session):
    """Issue 12 finding: an ``event.id`` already used by another agent was acked but
    silently not stored (the store's key was the bare event.id). Ids are the agent's
    own, so they are scoped by the enrolled agent; a retry from one agent stays one row."""
    first = await collector.enroll(session, hostname="web-01")
    second = await collector.enroll(session, hostname="web-02")
    event = new_event("auth", outcome="failure")
    for token, batch in ((first, "a-1"), (second, "b-1"), (second, "b-2")):
        async with session.post(f"{collector.url}/v1/events", data=gz_ndjson([event]),
                                headers=headers(token, batch)) as r:
            assert r.status == 200
            assert (await r.json())["accepted"] == 1

    def rows() -> list[tuple[str, str]]:
        path = collector.state_dir / "events.db"
        if not path.exists():
            return []
        db = sqlite3.connect(path)
        try:
            return sorted(db.execute(
                "SELECT json_extract(doc, '$.agent.id'), json_extract(doc, '$.host.hostname') "
                "FROM events"))
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()

    agents = {t.partition(".")[0] for t in (first, second)}
    assert await wait_for(lambda: {a for a, _ in rows()} == agents)
    assert sorted(h for _, h in rows()) == ["web-01", "web-02"]  # b-2 (a retry) is not a row
