"""Alert lifecycle: store transitions, the pipeline stage, the operator API and its access rules."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from canhgac.schema import new_event
from collector.alerts.access import Access, Principal, ensure_token, is_loopback, read_token
from collector.alerts.api import AlertsAPI
from collector.alerts.store import AlertStage, AlertStore, TransitionError
from collector.inventory import InventoryHolder, parse_inventory

T0 = 1_750_000_000.0


def alert(system: str = "s3", unit: str = "Sở Y tế", ts: str = "2025-06-15T15:06:40.000Z",
          title: str = "SSH brute force") -> dict[str, Any]:
    doc = new_event("alert", kind="alert", timestamp=ts, rule={"id": "r1", "name": title},
                    message=title)
    doc["event"]["severity"] = 73
    doc["canhgac"] = {"system": {"id": system, "level": 3}, "unit": {"name": unit}}
    return doc


@pytest.fixture
def store(tmp_path: Path) -> AlertStore:
    s = AlertStore(tmp_path / "alerts.db")
    yield s
    s.close()


def test_register_is_idempotent_by_event_id(store: AlertStore) -> None:
    a = alert()
    assert store.register([a, new_event("auth")]) == 1
    assert store.register([a]) == 0
    rec = store.get(a["event"]["id"])
    assert rec.status == "open" and rec.system_id == "s3" and rec.unit == "Sở Y tế"
    assert rec.created == T0 and rec.severity == 73 and rec.title == "SSH brute force"
    assert rec.event["rule"]["name"] == "SSH brute force"


def test_lifecycle_with_who_when_note(store: AlertStore) -> None:
    a = alert()
    aid = a["event"]["id"]
    store.register([a])
    rec = store.acknowledge(aid, "Nguyễn Văn An", "đang xử lý", now=T0 + 60)
    assert (rec.status, rec.acked_by, rec.acked_at, rec.ack_note) == (
        "acknowledged", "Nguyễn Văn An", T0 + 60, "đang xử lý")
    with pytest.raises(TransitionError, match="already acknowledged"):
        store.acknowledge(aid, "other")
    with pytest.raises(ValueError, match="outcome must be one of"):
        store.resolve(aid, "Trần Thị Bình", "blocked", "maybe")
    with pytest.raises(ValueError, match="a note saying what was done"):
        store.resolve(aid, "Trần Thị Bình", "  ", "true_positive")
    rec = store.resolve(aid, "Trần Thị Bình", "blocked 203.0.113.7", "true_positive", now=T0 + 600)
    assert (rec.status, rec.resolved_by, rec.resolved_at, rec.acked_by, rec.outcome) == (
        "resolved", "Trần Thị Bình", T0 + 600, "Nguyễn Văn An", "true_positive")
    # Issue 10 finding: a second step said "already resolved (by admin)" naming the one who
    # acknowledged, not the one who resolved.
    with pytest.raises(TransitionError, match="already resolved by Trần Thị Bình"):
        store.resolve(aid, "x", "again", "benign")
    with pytest.raises(TransitionError, match="already resolved by Trần Thị Bình"):
        store.acknowledge(aid, "x")
    with pytest.raises(KeyError):
        store.acknowledge("nope", "x")


def test_resolve_without_ack_counts_as_ack_time(store: AlertStore) -> None:
    a, b = alert(), alert(system="s4")
    store.register([a, b])
    store.resolve(a["event"]["id"], "x", "false alarm", "false_positive", now=T0 + 100)
    times = store.ack_times(T0 - 1)
    assert times == {"s3": [(T0, T0 + 100)], "s4": [(T0, None)]}
    assert store.ack_times(T0 + 1) == {}
    assert store.counts() == {("s4", "open"): 1}


def test_list_filters(store: AlertStore) -> None:
    a, b = alert(), alert(system="s4", ts="2025-06-15T16:00:00Z")
    store.register([a, b])
    store.acknowledge(a["event"]["id"], "x")
    assert [r.system_id for r in store.list()] == ["s4", "s3"]
    assert [r.system_id for r in store.list(status="acknowledged")] == ["s3"]
    assert [r.system_id for r in store.list(system_ids=["s4"])] == ["s4"]
    assert store.list(system_ids=[]) == []


def test_stage_registers_only_alerts(store: AlertStore) -> None:
    stage = AlertStage(store)
    assert stage.process([new_event("auth"), alert(), alert()]) == []
    assert stage.registered == 2 and len(store.list()) == 2


# -- access ------------------------------------------------------------------------
def test_token_file_is_private_and_stable(tmp_path: Path) -> None:
    p = ensure_token(tmp_path)
    first = read_token(p)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600 and len(first) >= 40
    ensure_token(tmp_path)
    assert read_token(p) == first


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.5.0.1")
    assert not is_loopback("10.0.0.1") and not is_loopback(None) and not is_loopback("bogus")


async def test_fallback_refuses_non_loopback_even_with_token(tmp_path: Path) -> None:
    from unittest import mock

    token = read_token(ensure_token(tmp_path))
    transport = mock.Mock()
    transport.get_extra_info.return_value = ("192.0.2.10", 5555)
    req = make_mocked_request("GET", "/v1/alerts", headers={"Authorization": f"Bearer {token}"},
                              transport=transport)
    with pytest.raises(web.HTTPForbidden):
        await Access(None, tmp_path / "admin.token").principal(req)


@pytest.mark.parametrize(
    ("scope", "system", "unit", "ok"),
    [(None, "a", "", True), ("*", "a", "", True), (["a", "b"], "a", "", True),
     (["b"], "a", "", False), (["Sở Y tế"], "a", "Sở Y tế", True),
     ({"units": ["Sở Y tế"]}, "x", "Sở Y tế", True), ({"systems": ["y"]}, "x", "Sở Y tế", False)],
)
def test_scope(scope, system, unit, ok) -> None:  # type: ignore[no-untyped-def]
    assert Principal("n", "operator", scope).allows(system, unit) is ok


def test_scope_of_the_search_areas_operators() -> None:
    from collector.search.model import Scope

    assert Principal("n", "analyst", Scope.everything()).allows("x", "y")
    yte = Principal("n", "analyst", Scope.parse("unit:Sở Y tế,system:cong-ttdt"))
    assert yte.allows("his", "Sở Y tế") and yte.allows("cong-ttdt", "other")
    assert not yte.allows("mot-cua", "Sở Thông tin và Truyền thông")


async def test_real_operator_store_roles_and_scope(tmp_path: Path, store: AlertStore) -> None:
    """The search area's OperatorStore as the operator service: analyst writes, viewer reads."""
    from collector.search.model import Scope
    from collector.search.operators import OperatorStore

    ops = OperatorStore(tmp_path / "operators.db")
    analyst = ops.create("yte.an", "analyst", Scope.parse("unit:Sở Y tế"))
    viewer = ops.create("auditor", "viewer", Scope.everything())
    a, b = alert(system="s3"), alert(system="s4", unit="Sở Thông tin và Truyền thông")
    store.register([a, b])
    client = await _client(store, tmp_path, ops)
    try:
        r = await client.get("/v1/alerts", headers={"Authorization": f"Bearer {analyst}"})
        assert [x["system_id"] for x in (await r.json())["alerts"]] == ["s3"]
        r = await client.post(f"/v1/alerts/{a['event']['id']}/ack",
                              headers={"Authorization": f"Bearer {analyst}"})
        assert r.status == 200 and (await r.json())["acked_by"] == "yte.an"
        r = await client.post(f"/v1/alerts/{b['event']['id']}/ack",
                              headers={"Authorization": f"Bearer {viewer}"})
        assert r.status == 403
        r = await client.get("/v1/alerts", headers={"Authorization": "Bearer cg_op_bogus.x"})
        assert r.status == 401
        # The local admin token still works from loopback next to the operator service.
        token = read_token(tmp_path / "admin.token")
        r = await client.post(f"/v1/alerts/{b['event']['id']}/resolve",
                              headers={"Authorization": f"Bearer {token}"},
                              json={"operator": "Trần Thị Bình", "note": "đã xử lý",
                                    "outcome": "benign"})
        assert r.status == 200 and (await r.json())["resolved_by"] == "Trần Thị Bình"
    finally:
        await client.close()
        ops.close()


async def test_admin_token_from_network_goes_to_operator_service(tmp_path: Path) -> None:
    from unittest import mock

    token = read_token(ensure_token(tmp_path))
    transport = mock.Mock()
    transport.get_extra_info.return_value = ("192.0.2.10", 5555)
    req = make_mocked_request("GET", "/v1/alerts", headers={"Authorization": f"Bearer {token}"},
                              transport=transport)
    with pytest.raises(web.HTTPUnauthorized):
        await Access(_NoOperators(), tmp_path / "admin.token").principal(req)


class _NoOperators:
    def authenticate(self, request: web.Request) -> None:
        raise web.HTTPUnauthorized(text="invalid or revoked operator token")


# -- API ---------------------------------------------------------------------------
@dataclass
class Operator:
    name: str
    role: str
    scope: Any


class Operators:
    """Stands in for the search area's authenticator: token -> operator."""

    def __init__(self) -> None:
        self.by_token = {
            "t-soc": Operator("soc.hue", "operator", None),
            "t-yte": Operator("yte.an", "operator", {"units": ["Sở Y tế"]}),
            "t-view": Operator("auditor", "viewer", None),
        }

    async def authenticate(self, request: web.Request) -> Operator | None:
        return self.by_token.get(request.headers.get("Authorization", "")[7:])


def _inventory() -> InventoryHolder:
    return InventoryHolder(parse_inventory({"systems": [
        {"id": "s3", "name": "HIS", "unit": "Sở Y tế", "level": 3},
        {"id": "s4", "name": "Cổng", "unit": "Sở Thông tin và Truyền thông", "level": 2}]}, "t"))


async def _client(store: AlertStore, tmp_path: Path, operators: Any = None) -> TestClient:
    app = web.Application()
    app.add_routes(AlertsAPI(store, Access(operators, ensure_token(tmp_path)), _inventory()).routes())
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    return client


async def test_api_admin_token_fallback(store: AlertStore, tmp_path: Path) -> None:
    a = alert()
    aid = a["event"]["id"]
    store.register([a])
    client = await _client(store, tmp_path)
    token = read_token(tmp_path / "admin.token")
    auth = {"Authorization": f"Bearer {token}"}
    try:
        r = await client.get("/v1/alerts")
        assert r.status == 401
        r = await client.get("/v1/alerts", headers={"Authorization": "Bearer wrong"})
        assert r.status == 401
        r = await client.get("/v1/alerts", headers=auth)
        assert r.status == 200 and [x["id"] for x in (await r.json())["alerts"]] == [aid]
        r = await client.get(f"/v1/alerts/{aid}", headers=auth)
        assert (await r.json())["event"]["event"]["kind"] == "alert"
        r = await client.post(f"/v1/alerts/{aid}/ack", headers=auth,
                              json={"note": "đã nhận", "operator": "Nguyễn Văn An"})
        body = await r.json()
        assert r.status == 200 and body["acked_by"] == "Nguyễn Văn An" and body["ack_note"] == "đã nhận"
        r = await client.post(f"/v1/alerts/{aid}/ack", headers=auth)
        assert r.status == 409 and "already acknowledged" in (await r.json())["error"]
        r = await client.post(f"/v1/alerts/{aid}/resolve", headers=auth, data=b"not json")
        assert r.status == 400
        r = await client.post(f"/v1/alerts/{aid}/resolve", headers=auth, json={"note": "x" * 2001})
        assert r.status == 400
        r = await client.post(f"/v1/alerts/{aid}/resolve", headers=auth, json={"note": "done"})
        assert r.status == 400 and "outcome must be one of" in (await r.json())["error"]
        r = await client.post(f"/v1/alerts/{aid}/resolve", headers=auth,
                              json={"note": "done", "outcome": "true_positive"})
        assert r.status == 200 and (await r.json())["status"] == "resolved"
        r = await client.get("/v1/alerts", params={"status": "bogus"}, headers=auth)
        assert r.status == 400
        r = await client.post("/v1/alerts/nope/ack", headers=auth)
        assert r.status == 404
    finally:
        await client.close()


async def test_api_operator_scope_and_roles(store: AlertStore, tmp_path: Path) -> None:
    mine, other = alert(system="s3"), alert(system="s4", unit="Sở Thông tin và Truyền thông")
    store.register([mine, other])
    client = await _client(store, tmp_path, Operators())
    yte = {"Authorization": "Bearer t-yte"}
    try:
        r = await client.get("/v1/alerts", headers=yte)
        assert [x["system_id"] for x in (await r.json())["alerts"]] == ["s3"]
        r = await client.get(f"/v1/alerts/{other['event']['id']}", headers=yte)
        assert r.status == 404  # out of scope looks like absent
        r = await client.post(f"/v1/alerts/{other['event']['id']}/ack", headers=yte)
        assert r.status == 404
        r = await client.post(f"/v1/alerts/{mine['event']['id']}/ack", headers=yte,
                              json={"operator": "someone else"})
        assert (await r.json())["acked_by"] == "yte.an"  # who = the operator, not the body
        r = await client.post(f"/v1/alerts/{other['event']['id']}/ack",
                              headers={"Authorization": "Bearer t-view"})
        assert r.status == 403
        r = await client.get("/v1/alerts", headers={"Authorization": "Bearer nobody"})
        assert r.status == 401
        r = await client.get("/v1/alerts", headers={"Authorization": "Bearer t-soc"})
        assert len((await r.json())["alerts"]) == 2
    finally:
        await client.close()


def test_throttle_updates_fold_into_the_first_alert(store: AlertStore) -> None:
    """Issue 10 finding: throttled "update" alerts opened rows of their own."""
    first = alert()
    assert store.register([first]) == 1
    update = alert()
    update["canhgac"]["alert"] = {"update_of": first["event"]["id"], "suppressed": 12}
    assert store.register([update], now=T0 + 30) == 0
    (row,) = store.list()
    assert (row.id, row.updates, row.last_update) == (first["event"]["id"], 1, T0 + 30)
    orphan = alert()
    orphan["canhgac"]["alert"] = {"update_of": "not-here"}
    assert store.register([orphan]) == 1  # its original is unknown here: a row of its own


def test_list_filters_by_severity_and_old_databases_gain_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE alerts (id TEXT PRIMARY KEY, system_id TEXT NOT NULL DEFAULT '',"
                     " unit TEXT NOT NULL DEFAULT '', rule TEXT NOT NULL DEFAULT '', severity INTEGER,"
                     " title TEXT NOT NULL DEFAULT '', created REAL NOT NULL, status TEXT NOT NULL"
                     " DEFAULT 'open', acked_by TEXT, acked_at REAL, ack_note TEXT, resolved_by TEXT,"
                     " resolved_at REAL, resolve_note TEXT, event TEXT NOT NULL);")
    db.close()
    store = AlertStore(path)  # an alerts.db from the previous release opens and works
    low, high = alert(), alert()
    low["event"]["severity"] = 21
    store.register([low, high])
    assert [r.severity for r in store.list(min_severity=48)] == [73]
    assert len(store.list()) == 2
    store.close()


def test_mtta_mttr_per_unit_and_level(store: AlertStore) -> None:
    """Issue 10: MTTA and MTTR per unit and level, as metrics (they feed layer 1)."""
    import time as _time

    from prometheus_client import CollectorRegistry

    from collector.alerts.metrics import ResponseTimeCollector

    inv = InventoryHolder(parse_inventory({"systems": [
        {"id": "s3", "name": "Cổng", "unit": "Sở Y tế", "level": 3},
        {"id": "s4", "name": "HIS", "unit": "Sở Y tế", "level": 2}]}, "inventory.yaml"))
    now = _time.time()
    ts = __import__("canhgac.timeutil", fromlist=["from_epoch"]).from_epoch(now - 1000)
    a, b, c = alert(ts=ts), alert(ts=ts), alert(system="s4", ts=ts)
    store.register([a, b, c])
    store.acknowledge(a["event"]["id"], "x", now=now - 900)  # 100 s
    store.acknowledge(b["event"]["id"], "x", now=now - 700)  # 300 s
    store.resolve(b["event"]["id"], "x", "done", "benign", now=now - 400)  # 600 s
    registry = CollectorRegistry()
    registry.register(ResponseTimeCollector(store, inv))
    get = registry.get_sample_value
    l3 = {"unit": "Sở Y tế", "level": "3"}
    assert get("canhgac_alerts_mtta_seconds", l3) == pytest.approx(200.0, abs=1)
    assert get("canhgac_alerts_mtta_alerts", l3) == 2
    assert get("canhgac_alerts_mttr_seconds", l3) == pytest.approx(600.0, abs=1)
    assert get("canhgac_alerts_mttr_alerts", l3) == 1
    l2 = {"unit": "Sở Y tế", "level": "2"}
    assert get("canhgac_alerts_mtta_alerts", l2) == 0
    assert get("canhgac_alerts_mtta_seconds", l2) is None  # no mean of nothing
