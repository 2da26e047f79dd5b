"""Notifications: config, outbox (idempotent, storm digest, durable), routing, escalation,
message text, and the delivery loop against a real webhook receiver on loopback."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from canhgac.errors import ConfigError
from collector.alerts.store import AlertStore
from collector.notify.channels.build import build_channel
from collector.notify.config import parse_notify_config
from collector.notify.metrics import NotifyMetrics
from collector.notify.outbox import Outbox, Outcome
from collector.notify.router import Router
from collector.notify.service import Notifier
from tests.fixtures.collector import wait_for
from tests.fixtures.notify import Sink, alert, inventory


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _config(url: str = "http://127.0.0.1:9/hook", **extra: Any) -> dict[str, Any]:
    return {"channels": {"hook": {"type": "webhook", "url": url, "secret": "s3cret"}},
            "retry": {"initial": "10ms", "maximum": "50ms"}, **extra}


# -- config ------------------------------------------------------------------------------------

def test_unknown_key_names_line_and_suggests(tmp_path: Path) -> None:
    f = tmp_path / "collector.yaml"
    f.write_text("notifications:\n  channels:\n    hook:\n      type: webhook\n"
                 "      url: http://x/\n  storm_limt: 5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        parse_notify_config({"channels": {"hook": {"type": "webhook", "url": "http://x/"}},
                             "storm_limt": 5}, str(f))
    assert str(e.value).startswith(f"{f}: line 6: notifications.storm_limt: unknown key "
                                   "(did you mean 'storm_limit'?)")


@pytest.mark.parametrize(("raw", "where", "what"), [
    ({"channels": {"c": {"type": "webhok", "url": "http://x"}}}, "notifications.channels.c.type",
     "unknown type 'webhok' (did you mean 'webhook'?)"),
    ({"channels": {"c": {"url": "http://x"}}}, "notifications.channels.c.type", "missing"),
    ({"channels": {"c": {"type": "webhook", "url": "ftp://x"}}}, "notifications.channels.c.url",
     "must start with http://"),
    ({"channels": {"c": {"type": "email", "host": "smtp", "sender": "soc@x.vn", "usernme": "a"}}},
     "notifications.channels.c.usernme", "unknown key (did you mean 'username'?)"),
    ({"channels": {"c": {"type": "chat", "chat_id": "1"}}}, "notifications.channels.c.token",
     "is required"),
    ({"channels": {"hook": {"type": "webhook", "url": "http://x"}},
      "routes": [{"name": "r", "channels": ["hok"]}]}, "notifications.routes[0].channels[0]",
     "unknown channel 'hok' (did you mean 'hook'?)"),
    ({"routes": [{"name": "r", "channels": ["x"], "match": {"levels": [7]}}]},
     "notifications.routes[0].match.levels[0]", "unknown level 7"),
    ({"escalation": {"deadlines": {6: "1h"}}}, "notifications.escalation.deadlines.6",
     "unknown level"),
])
def test_config_errors_are_one_line(raw: dict[str, Any], where: str, what: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_notify_config(raw, "collector.yaml")
    text = str(e.value)
    assert "\n" not in text and f"collector.yaml: {where}: " in text and what in text, text


def test_no_routes_means_every_channel() -> None:
    notif = parse_notify_config(_config(), "t")
    assert [(r.name, r.channels) for r in notif.routes] == [("default", ["hook"])]


# -- outbox and routing -------------------------------------------------------------------------

def _router(raw: dict[str, Any], clock: Clock) -> Router:
    notif = parse_notify_config(raw, "t")
    return Router(notif, inventory(), {1: 60.0, 2: 60.0, 3: 30.0, 4: 30.0, 5: 30.0}, clock)


def test_admit_is_idempotent_and_durable(tmp_path: Path) -> None:
    clock = Clock()
    router = _router(_config(), clock)
    box = Outbox(tmp_path / "notify.db", clock)
    a = alert()
    assert box.admit(router.candidates([a]), router.render)[("default", "sent")] == 1
    assert not box.admit(router.candidates([a]), router.render)  # re-delivered batch
    box.close()
    again = Outbox(tmp_path / "notify.db", clock)  # a restart keeps what was not delivered
    [p] = again.due("hook", 10)
    assert p.key == f"alert:{a['event']['id']}:default:hook"
    assert p.payload["alert"]["system_name"] == "Cổng thông tin điện tử tỉnh"
    assert [r["name"] for r in p.payload["recipients"]] == ["Nguyễn Văn An"]


def test_routing_by_unit_level_severity_rule(tmp_path: Path) -> None:
    raw = _config(routes=[
        {"name": "health", "channels": ["hook"], "match": {"units": ["Sở Y tế"]}},
        {"name": "l3-high", "channels": ["hook"], "match": {"levels": [3], "severity": "high"}},
        {"name": "ssh", "channels": ["hook"], "match": {"rules": ["ssh-*"]}},
        {"name": "crit", "channels": ["hook"], "match": {"severity": "critical"}},
    ])
    router = _router(raw, Clock())
    routes = [c.route for c in router.candidates([alert()])]
    assert routes == ["l3-high", "ssh"]
    his = alert(system="his", unit="Sở Y tế", rule="fim-change", severity="critical")
    assert [c.route for c in router.candidates([his])] == ["health", "crit"]
    update = alert()
    update["canhgac"]["alert"]["update_of"] = "x"
    assert router.candidates([update]) == []  # throttle updates fold into their alert


def test_storm_control_holds_then_one_digest(tmp_path: Path) -> None:
    clock = Clock()
    router = _router(_config(storm_limit=3), clock)
    box = Outbox(tmp_path / "notify.db", clock)
    alerts = [alert(title=f"Rule {i}") for i in range(10)]
    counts = box.admit(router.candidates(alerts[:4]), router.render)
    counts += box.admit(router.candidates(alerts[4:]), router.render)
    assert counts == {("default", "sent"): 3, ("default", "held"): 7}
    assert box.close_windows(int(clock.t // 60), router.render_digest) == 0  # minute not over
    clock.t += 60
    assert box.close_windows(int(clock.t // 60), router.render_digest) == 1
    assert box.close_windows(int(clock.t // 60), router.render_digest) == 0  # once only
    pending = box.due("hook", 100)
    assert [p.kind for p in pending].count("digest") == 1
    [digest] = [p for p in pending if p.kind == "digest"]
    assert digest.payload["count"] == 7
    assert "Tổng hợp 7 cảnh báo" in digest.payload["subject"]
    assert sorted(digest.payload["alerts"]) == sorted(a["event"]["id"] for a in alerts[3:])
    # A new minute starts a new count.
    counts = box.admit(router.candidates([alert()]), router.render)
    assert counts == {("default", "sent"): 1}


def test_escalation_chain_is_next_contact_then_unit_head() -> None:
    raw = _config(escalation={"unit_heads": {"Sở Thông tin và Truyền thông": {
        "name": "Lê Văn Cường", "email": "giamdoc@stttt.example.vn"}}})
    clock = Clock()
    router = _router(raw, clock)
    [c] = router.candidates([alert()])
    assert c.escalate_at == clock.t + 30.0  # the level-3 deadline
    route = router.routes["default"]
    assert [r["name"] for r in router.escalation_chain(route, c.summary)] == [
        "Trần Thị Bình", "Lê Văn Cường"]
    msgs, next_due = router.render_escalation("default", c.summary, 1)
    assert next_due == clock.t + 30.0
    assert msgs[0].payload["recipients"][0]["name"] == "Trần Thị Bình"
    assert "CHUYỂN CẤP (bước 1)" in msgs[0].payload["text"]
    assert "ESCALATION (step 1): not acknowledged within 30s" in msgs[0].payload["text"]
    msgs, next_due = router.render_escalation("default", c.summary, 2)
    assert msgs[0].payload["recipients"][0]["name"] == "Lê Văn Cường" and next_due is None
    # No contact after the first and no head: nobody to escalate to.
    [c] = router.candidates([alert(system="his", unit="Sở Y tế")])
    assert c.escalate_at is None


def test_message_text_vi_and_en() -> None:
    router = _router(_config(routes=[
        {"name": "vi", "channels": ["hook"], "language": "vi"},
        {"name": "en", "channels": ["hook"], "language": "en"}]), Clock())
    a = alert()
    vi, en = (router.render(c)[0].payload for c in router.candidates([a]))
    aid = a["event"]["id"]
    assert vi["subject"] == "[canhgac] Cảnh báo CAO — Cổng thông tin điện tử tỉnh: SSH brute force"
    assert "Hệ thống: Cổng thông tin điện tử tỉnh (cong-ttdt), cấp độ 3" in vi["text"]
    assert "source.ip: 203.0.113.7" in vi["text"] and f"canhgac alerts ack {aid}" in vi["text"]
    assert "English" not in vi["text"]
    assert en["subject"] == "[canhgac] HIGH alert — Cổng thông tin điện tử tỉnh: SSH brute force"
    assert "What happened: SSH brute force (user.name=backup2)" in en["text"]
    assert f"  canhgac alerts ack {aid}" in en["text"]


# -- the delivery loop against a real receiver -----------------------------------------------

async def _notifier(tmp_path: Path, sink: Sink, extra: dict[str, Any] | None = None,
                    alerts: AlertStore | None = None, clock: Any = None
                    ) -> tuple[Notifier, TestServer, CollectorRegistry]:
    server = TestServer(sink.app(), host="127.0.0.1")
    await server.start_server()
    notif = parse_notify_config(_config(str(server.make_url("/hook")), **(extra or {})), "t")
    clk = clock or time.time
    router = Router(notif, inventory(), {lv: 30.0 for lv in range(1, 6)}, clk)
    registry = CollectorRegistry()
    channels = {n: build_channel(n, c) for n, c in notif.channels.items()}
    metrics = NotifyMetrics(registry, channels, router.routes)
    n = Notifier(notif.config, Outbox(tmp_path / "notify.db", clk), router, channels, metrics,
                 alerts, clk)
    await n.start()
    return n, server, registry


async def test_delivers_signed_with_idempotency_key_and_retries(tmp_path: Path) -> None:
    sink = Sink(secret="s3cret", fail=2)
    n, server, registry = await _notifier(tmp_path, sink)
    try:
        a = alert()
        n.process([a])
        assert await wait_for(lambda: sink.received, timeout=30)
        assert sink.bad_signatures == 0 and sink.attempts == 3
        assert sink.keys == [f"alert:{a['event']['id']}:default:hook"]
        body = sink.received[0]
        assert body["alert"]["id"] == a["event"]["id"] and body["kind"] == "alert"
        assert await wait_for(lambda: n.outbox.counts().get("delivered") == 1)
        assert registry.get_sample_value("canhgac_notify_send_failures_total",
                                         {"channel": "hook", "kind": "transient"}) == 2
        assert registry.get_sample_value("canhgac_notify_delivered_total", {"channel": "hook"}) == 1
        [st] = n.outbox.status()
        assert (st.delivered, st.failures, st.pending) == (1, 2, 0)
        assert "HTTP 503" in (st.last_error or "")
    finally:
        await n.stop()
        await server.close()


async def test_permanent_refusal_is_dead_and_counted(tmp_path: Path) -> None:
    sink = Sink(status_after_fail=400)
    n, server, registry = await _notifier(tmp_path, sink)
    try:
        n.process([alert()])
        assert await wait_for(lambda: n.outbox.counts().get("dead") == 1)
        assert registry.get_sample_value("canhgac_notify_send_failures_total",
                                         {"channel": "hook", "kind": "permanent"}) == 1
    finally:
        await n.stop()
        await server.close()


async def test_worker_survives_any_exception(tmp_path: Path) -> None:
    sink = Sink()
    n, server, registry = await _notifier(tmp_path, sink)
    real_due = n.outbox.due
    calls = {"n": 0}

    def flaky(channel: str, limit: int):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OSError("disk I/O error")
        return real_due(channel, limit)

    n.outbox.due = flaky  # type: ignore[method-assign]
    try:
        n.process([alert()])
        n.wake()
        assert await wait_for(lambda: sink.received, timeout=30)
        assert registry.get_sample_value("canhgac_notify_worker_errors_total",
                                         {"loop": "hook"}) >= 1
    finally:
        await n.stop()
        await server.close()


async def test_escalates_until_acknowledged(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.db")
    clock = Clock(time.time())
    sink = Sink()
    extra = {"escalation": {"unit_heads": {"Sở Thông tin và Truyền thông": {"name": "Lê Văn Cường"}}}}
    n, server, _ = await _notifier(tmp_path, sink, extra, alerts=store, clock=clock)
    try:
        a, b = alert(), alert(title="Other")
        store.register([a, b])
        n.process([a, b])
        assert await wait_for(lambda: len(sink.received) == 2)
        store.acknowledge(b["event"]["id"], "Nguyễn Văn An")
        clock.t += 31
        n.housekeep()
        assert await wait_for(lambda: len(sink.received) == 3)
        esc = sink.received[2]
        assert esc["kind"] == "escalation" and esc["alert"]["id"] == a["event"]["id"]
        assert esc["recipients"][0]["name"] == "Trần Thị Bình"
        clock.t += 31
        n.housekeep()
        assert await wait_for(lambda: len(sink.received) == 4)
        assert sink.received[3]["recipients"][0]["name"] == "Lê Văn Cường"
        clock.t += 31
        n.housekeep()
        assert n.outbox.counts()["escalations"] == 0  # the head was the last step
    finally:
        await n.stop()
        await server.close()
        store.close()


def test_prune_keeps_what_is_pending_or_still_escalating(tmp_path: Path) -> None:
    clock = Clock()
    router = _router(_config(), clock)
    box = Outbox(tmp_path / "notify.db", clock)
    a, b = alert(), alert(system="his", unit="Sở Y tế")
    box.admit(router.candidates([a, b]), router.render)
    [pa, pb] = sorted(box.due("hook", 10), key=lambda p: p.payload["alert"]["system_id"] != "his")
    box.settle("hook", [Outcome(pa.key, "delivered")])
    clock.t += 10
    assert box.prune(clock.t) == 1  # only the delivered message
    assert [p.key for p in box.due("hook", 10)] == [pb.key]
    # a (cong-ttdt, two contacts) still has an escalation: its summary is kept for it
    assert box.summary_of(a["event"]["id"], "default") is not None
    assert box.summary_of(b["event"]["id"], "default") is None
