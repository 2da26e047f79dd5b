"""Notifications wired in a real collector (in-process, TLS, loopback): an alert posted by
an agent reaches the webhook with the inventory's names; /metrics counts it; a bad
``notifications:`` section stops the collector with one line."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer

from canhgac.config import load_section
from canhgac.errors import ConfigError
from canhgac.tls import client_context
from collector.app import build_context
from collector.config import CollectorConfig
from tests.fixtures.collector import gz_ndjson, start_collector, wait_for
from tests.fixtures.notify import INVENTORY, Sink, alert

pytestmark = pytest.mark.integration


async def test_alert_to_webhook_through_the_collector(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump(INVENTORY, allow_unicode=True), encoding="utf-8")
    sink = Sink(secret="k")
    server = TestServer(sink.app(), host="127.0.0.1")
    await server.start_server()
    raw = {"inventory": str(inv), "notifications": {"channels": {"hook": {
        "type": "webhook", "url": str(server.make_url("/hook")), "secret": "k"}}}}
    running, runner = await start_collector(tmp_path, raw,
                                            components=("collector.alerts", "collector.notify"))
    try:
        conn = aiohttp.TCPConnector(ssl=client_context(running.ca))
        async with aiohttp.ClientSession(connector=conn) as s:
            token = await running.enroll(s, "cong-ttdt", "web-01")
            a = alert(system="other", unit="other")  # the collector sets who it is about
            async with s.post(f"{running.url}/v1/events", data=gz_ndjson([a]), headers={
                    "Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                    "Content-Type": "application/x-ndjson"}) as r:
                assert r.status == 200, await r.text()
            assert await wait_for(lambda: sink.received, timeout=30)
            [body] = sink.received
            assert body["alert"]["system_name"] == "Cổng thông tin điện tử tỉnh"
            assert body["alert"]["unit"] == "Sở Thông tin và Truyền thông"
            assert body["recipients"][0]["email"] == "an@stttt.example.vn"
            assert sink.bad_signatures == 0

            async def delivered() -> bool:
                async with s.get(f"{running.url}/metrics", headers=running.metrics_headers) as r:
                    text = await r.text()
                return 'canhgac_notify_delivered_total{channel="hook"} 1.0' in text
            assert await wait_for(delivered, timeout=30)
    finally:
        await runner.cleanup()
        await server.close()


def test_bad_notifications_stop_the_collector_with_one_line(tmp_path: Path) -> None:
    f = tmp_path / "collector.yaml"
    f.write_text(f"state_dir: {tmp_path / 's'}\nnotifications:\n  channels:\n    hook:\n"
                 "      type: webhok\n      url: http://127.0.0.1:1/\n", encoding="utf-8")
    config = load_section(yaml.safe_load(f.read_text()), CollectorConfig, str(f))
    with pytest.raises(ConfigError) as e:
        build_context(config, str(f), ("collector.alerts", "collector.notify"))
    assert str(e.value) == (f"{f}: line 5: notifications.channels.hook.type: unknown type "
                            "'webhok' (did you mean 'webhook'?) (known types: webhook, email, "
                            "alertmanager, chat)")


async def test_escalation_until_acknowledged_through_the_api(tmp_path: Path) -> None:
    """The alerts port tells the notifier what is acknowledged: an alert acked through
    /v1/alerts is not escalated; the other goes to the next contact, then the unit's head.
    The deadline (8 s) only has to be longer than posting and acknowledging takes."""
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump(INVENTORY, allow_unicode=True), encoding="utf-8")
    sink = Sink()
    server = TestServer(sink.app(), host="127.0.0.1")
    await server.start_server()
    raw = {"inventory": str(inv), "notifications": {
        "channels": {"hook": {"type": "webhook", "url": str(server.make_url("/hook"))}},
        "escalation": {"deadlines": {3: "8s"}, "unit_heads": {
            "Sở Thông tin và Truyền thông": {"name": "Lê Văn Cường"}}}}}
    running, runner = await start_collector(tmp_path, raw,
                                            components=("collector.alerts", "collector.notify"))
    admin = (running.state_dir / "admin.token").read_text().strip()
    try:
        conn = aiohttp.TCPConnector(ssl=client_context(running.ca))
        async with aiohttp.ClientSession(connector=conn) as s:
            token = await running.enroll(s, "cong-ttdt", "web-01")
            a, b = alert(title="Kept open"), alert(title="Acknowledged")
            async with s.post(f"{running.url}/v1/events", data=gz_ndjson([a, b]), headers={
                    "Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                    "Content-Type": "application/x-ndjson"}) as r:
                assert r.status == 200, await r.text()
            async with s.post(f"{running.url}/v1/alerts/{b['event']['id']}/ack",
                              json={"operator": "Nguyễn Văn An"},
                              headers={"Authorization": f"Bearer {admin}"}) as r:
                assert r.status == 200, await r.text()

            def kinds() -> list[tuple[str, str, str]]:
                return [(m["kind"], m["alert"]["id"], m["recipients"][0]["name"])
                        for m in sink.received]
            assert await wait_for(lambda: len(sink.received) >= 4, timeout=60), kinds()
            assert sorted(kinds()) == sorted([
                ("alert", a["event"]["id"], "Nguyễn Văn An"),
                ("alert", b["event"]["id"], "Nguyễn Văn An"),
                ("escalation", a["event"]["id"], "Trần Thị Bình"),
                ("escalation", a["event"]["id"], "Lê Văn Cường")])
            notifier = running.ctx.pipeline.stages[-1]
            assert notifier.outbox.counts()["escalations"] == 0  # the head was the last step
    finally:
        await runner.cleanup()
        await server.close()
