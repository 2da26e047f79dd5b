"""The mock national center over real TLS on loopback: reports, signatures, indicators, faults."""

from __future__ import annotations

import asyncio
import gzip
import logging
import time

import aiohttp
import orjson
import pytest

from canhgac import signing
from canhgac.schema import ALERT, new_event
from canhgac.tls import client_context
from national_center.testing import TEST_KEY_ID, start_center

pytestmark = pytest.mark.integration
SECRET = b"national-test-secret-0123456789ab"


@pytest.fixture
async def center(tmp_path, test_ca):
    c = await start_center(tmp_path / "center", test_ca, keys={TEST_KEY_ID: SECRET})
    yield c
    await c.close()


@pytest.fixture
async def http(test_ca):
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(
            ssl=client_context(test_ca.cert))) as s:
        yield s


def alerts(n: int) -> list[dict]:
    out = []
    for i in range(n):
        ev = new_event(ALERT, kind="alert", message=f"alert {i}: Thừa Thiên Huế")
        ev["event"]["severity"] = 73
        ev["canhgac"] = {"system": {"id": "dvc", "level": 3}}
        out.append(ev)
    return out


async def post(http, center, docs, *, batch_id="b1", secret=SECRET, key_id=TEST_KEY_ID,
               headers=None, now=None):
    body = b"\n".join(orjson.dumps(d) for d in docs) + b"\n"
    h = headers or signing.sign(key_id, secret, "POST", "/v1/reports", body, batch_id=batch_id,
                                now=now)
    h = {**h, "Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"}
    async with http.post(center.url + "/v1/reports", data=gzip.compress(body), headers=h) as r:
        return r.status, await r.json(), h


async def test_signed_report_is_verified_and_stored_once(center, http):
    docs = alerts(3)
    status, ack, _ = await post(http, center, docs)
    assert status == 200
    assert ack == {"batch_id": "b1", "received": 3, "accepted": 3, "duplicates": 0, "rejected": 0,
                   "errors": [], "duplicate_batch": False}
    stored = center.storage.reports()
    assert [r["event_id"] for r in stored] == [d["event"]["id"] for d in docs]
    assert stored[0]["doc"]["message"] == "alert 0: Thừa Thiên Huế"
    assert stored[0]["key_id"] == TEST_KEY_ID and stored[0]["severity"] == 73

    # The same batch id again (a retry after a lost ack): acknowledged, not stored twice.
    status, ack, _ = await post(http, center, docs)
    assert status == 200 and ack["duplicate_batch"] is True and ack["accepted"] == 3
    # A different batch carrying some of the same events: only the new ones are stored.
    status, ack, _ = await post(http, center, docs[1:] + alerts(1), batch_id="b2")
    assert (ack["accepted"], ack["duplicates"]) == (1, 2)
    assert center.storage.count() == 4
    assert len(set(center.storage.event_ids())) == 4


async def test_forged_tampered_replayed_and_stale_are_refused(center, http):
    docs = alerts(1)
    status, ack, _ = await post(http, center, docs, secret=b"forged-secret-forged-secret-0000")
    assert (status, ack["error"]) == (401, "bad_signature")
    status, ack, _ = await post(http, center, docs, key_id="vn-unknown")
    assert (status, ack["error"]) == (401, "bad_signature")
    status, ack, h = await post(http, center, docs)
    assert status == 200
    # Replay: the very same signed request again.
    status, ack, _ = await post(http, center, docs, headers=h)
    assert (status, ack["error"]) == (401, "replay")
    # Tampered: a valid signature over another body.
    other = alerts(1)
    body = b"\n".join(orjson.dumps(d) for d in other) + b"\n"
    h2 = signing.sign(TEST_KEY_ID, SECRET, "POST", "/v1/reports", body, batch_id="t")
    status, ack, _ = await post(http, center, docs, headers=h2)
    assert (status, ack["error"]) == (401, "body_mismatch")
    # Stale: signed 10 minutes ago (beyond the 300 s window).
    status, ack, _ = await post(http, center, docs, batch_id="old", now=time.time() - 600)
    assert (status, ack["error"]) == (401, "stale")
    assert center.storage.count() == 1
    assert center.rejections == {"bad_signature": 2, "body_mismatch": 1, "replay": 1, "stale": 1}
    # Unsigned reads of indicators are refused too.
    async with http.get(center.url + "/v1/indicators") as r:
        assert r.status == 401


async def test_bad_lines_are_rejected_one_by_one(center, http):
    good = alerts(1)[0]
    body = orjson.dumps(good) + b"\nnot json\n" + orjson.dumps({"event": {"kind": "alert"}}) + b"\n"
    h = signing.sign(TEST_KEY_ID, SECRET, "POST", "/v1/reports", body, batch_id="mixed")
    async with http.post(center.url + "/v1/reports", data=body, headers=h) as r:
        ack = await r.json()
    assert ack["accepted"] == 1 and ack["rejected"] == 2
    assert [e["index"] for e in ack["errors"]] == [1, 2]


async def test_indicators_etag_and_added_after(center, http):
    from canhgac.config import load_section
    from national_center.indicators import IndicatorSpec

    center.indicators.add(load_section({"type": "ipv4", "value": "203.0.113.5"}, IndicatorSpec, "t"))

    async def get(path, etag=None):
        h = signing.sign(TEST_KEY_ID, SECRET, "GET", path)
        if etag:
            h["If-None-Match"] = etag
        async with http.get(center.url + path, headers=h) as r:
            return r.status, r.headers.get("ETag"), await r.read()

    status, etag, body = await get("/v1/indicators")
    bundle = orjson.loads(body)
    assert status == 200 and bundle["type"] == "bundle" and len(bundle["objects"]) == 1
    status, etag2, body = await get("/v1/indicators", etag)
    assert status == 304 and etag2 == etag and body == b""
    later = bundle["objects"][0]["modified"]
    await asyncio.sleep(0.01)
    center.indicators.add(load_section({"type": "domain", "value": "evil.example"},
                                       IndicatorSpec, "t"))
    status, etag3, body = await get(f"/v1/indicators?added_after={later}", etag)
    objs = orjson.loads(body)["objects"]
    assert status == 200 and etag3 != etag
    assert [o["pattern"] for o in objs] == ["[domain-name:value = 'evil.example']"]


async def test_ping_and_signed_noop(center, http):
    async with http.get(center.url + "/v1/ping") as r:
        doc = await r.json()
    assert abs(doc["epoch"] - time.time()) < 5 and doc["time"].endswith("Z")
    h = signing.sign(TEST_KEY_ID, SECRET, "POST", "/v1/ping", b"")
    async with http.post(center.url + "/v1/ping", headers=h) as r:
        assert (await r.json())["verified"] is True
    assert center.storage.count() == 0


async def test_faults_via_admin_endpoint(center, http):
    async def put(doc):
        async with http.put(center.url + "/admin/faults", json=doc) as r:
            return r.status, await r.json()

    status, doc = await put({"unavailable_for": "30s", "retry_after": 2})
    assert status == 200 and doc["windows"][0]["duration"] == 30
    async with http.get(center.url + "/v1/ping") as r:
        assert r.status == 503 and r.headers["Retry-After"] == "2"
    async with http.get(center.url + "/admin/faults") as r:
        assert r.status == 200  # admin is never faulted
    async with http.delete(center.url + "/admin/faults") as r:
        assert r.status == 200
    await put({"reject_signatures": True})
    status, ack, _ = await post(http, center, alerts(1))
    assert (status, ack["error"]) == (401, "injected")
    await put({"reject_signatures": False, "error_rate": 1})
    async with http.get(center.url + "/v1/ping") as r:
        assert r.status == 500
    await put({"error_rate": 0, "drop_rate": 1})
    with pytest.raises(aiohttp.ClientError):
        async with http.get(center.url + "/v1/ping") as r:
            await r.read()
    await put({"drop_rate": 0, "latency": "300ms"})
    t = time.perf_counter()
    async with http.get(center.url + "/v1/ping") as r:
        assert r.status == 200
    assert time.perf_counter() - t >= 0.3
    status, doc = await put({"latency": 0, "bogus": 1})
    assert status == 400 and "bogus" in doc["message"]


async def test_slow_tls_delays_the_handshake_without_blocking_others(center, test_ca):
    center.faults.update({"slow_tls": 1.0})

    async def one() -> float:
        t = time.perf_counter()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                ssl=client_context(test_ca.cert))) as s, s.get(center.url + "/v1/ping") as r:
            assert r.status == 200
        return time.perf_counter() - t

    times = await asyncio.gather(*(one() for _ in range(4)))
    # Each waits its second, and all four waited at the same time (not one after another).
    assert all(t >= 1.0 for t in times)
    assert center.slow_tls_peak == 4 and center.slow_tls_waiting == 0


async def test_down_and_up_again_on_the_same_port(center, http):
    port = center.port
    await center.stop_listening()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(center.url + "/v1/ping") as r:
            await r.read()
    await center.start()
    assert center.port == port
    async with http.get(center.url + "/v1/ping") as r:
        assert r.status == 200


async def test_received_command_lists_what_arrived(center, http, capsys):
    from canhgac.cli import main as cli_main

    def main(argv):
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            return cli_main(argv)
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)

    await post(http, center, alerts(2))
    assert await asyncio.to_thread(main, ["national-mock", "received", "--db",
                                          str(center.settings.db)]) == 0
    out = capsys.readouterr().out
    assert "2 report(s) stored" in out and TEST_KEY_ID in out and "alert" in out
    assert await asyncio.to_thread(main, ["national-mock", "received", "--db",
                                          str(center.settings.db), "--format", "ndjson"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and orjson.loads(lines[0])["event"]["kind"] == "alert"
    assert await asyncio.to_thread(main, ["national-mock", "received", "--db", "/nonexistent.db"]) == 2


# -- issue 12 findings on the mock center ------------------------------------------------
async def test_a_forged_report_is_refused_before_its_body_is_inflated(center, http, monkeypatch):
    """Before: the center inflated up to 64 MiB, then checked the signature."""
    import national_center.server as server

    inflated: list[int] = []
    real = server._decode
    monkeypatch.setattr(server, "_decode", lambda wire, enc: inflated.append(len(wire))
                        or real(wire, enc))
    bomb = gzip.compress(b"\n" * (60 * 1024 * 1024), 9)
    h = signing.sign(TEST_KEY_ID, b"forged-secret-forged-secret-0000", "POST", "/v1/reports",
                     b"x", batch_id="bomb")
    h = {**h, "Content-Encoding": "gzip"}
    async with http.post(center.url + "/v1/reports", data=bomb, headers=h) as r:
        assert (r.status, (await r.json())["error"]) == (401, "bad_signature")
    assert inflated == []
    status, _, _ = await post(http, center, alerts(1))  # a genuine one is inflated and stored
    assert status == 200 and len(inflated) == 1


async def test_every_gzip_member_is_read(center, http):
    docs = alerts(2)
    body = b"".join(orjson.dumps(d) + b"\n" for d in docs)
    h = signing.sign(TEST_KEY_ID, SECRET, "POST", "/v1/reports", body, batch_id="members")
    wire = b"".join(gzip.compress(orjson.dumps(d) + b"\n") for d in docs)
    async with http.post(center.url + "/v1/reports", data=wire,
                         headers={**h, "Content-Encoding": "gzip"}) as r:
        assert r.status == 200 and (await r.json())["accepted"] == 2


async def test_replays_are_refused_across_a_restart(tmp_path, test_ca, http):
    """Before: the replay cache lived in memory only; a restart reopened the window."""
    c = await start_center(tmp_path / "center", test_ca, keys={TEST_KEY_ID: SECRET})
    status, _, h = await post(http, c, alerts(1), batch_id="r1")
    assert status == 200
    await c.close()
    c = await start_center(tmp_path / "center", test_ca, keys={TEST_KEY_ID: SECRET})
    try:
        status, ack, _ = await post(http, c, alerts(1), headers=h)
        assert (status, ack["error"]) == (401, "replay")
    finally:
        await c.close()


async def test_a_key_reports_only_for_its_own_systems(tmp_path, test_ca, http):
    """Before: the payload's system id was stored whatever key sent it."""
    from national_center.server import CenterSettings, MockCenter

    c = await start_center(tmp_path / "center", test_ca, keys={TEST_KEY_ID: SECRET})
    settings: CenterSettings = c.settings
    await c.close()
    c = MockCenter(CenterSettings(**{**settings.__dict__, "systems": {TEST_KEY_ID: ["tth-*"]}}))
    await c.start()
    try:
        mine, theirs = alerts(2)
        mine["canhgac"]["system"]["id"] = "tth-portal"
        theirs["canhgac"]["system"]["id"] = "hd-egov"
        status, ack, _ = await post(http, c, [mine, theirs], batch_id="s1")
        assert status == 200 and ack["accepted"] == 1 and ack["rejected"] == 1
        assert "not registered for this key" in ack["errors"][0]["reason"]
        assert [r["system_id"] for r in c.storage.reports()] == ["tth-portal"]
    finally:
        await c.close()
