"""kill -9 of the collector loses no notification (real collector process, real webhook).

Alerts are accepted over HTTP (each batch acknowledged, so each alert is durable);
the webhook receiver takes some and then refuses everything; the collector is
killed with notifications still pending; after a restart every alert reaches the
receiver — at least once, each under one idempotency key.
"""

from __future__ import annotations

import sqlite3

import pytest
import yaml

from tests.fixtures.common import free_port
from tests.fixtures.notify import INVENTORY, Sink, ThreadedSink, alert, enroll, post_events
from tests.fixtures.procs import CollectorProc, diagnose, wait_until

pytestmark = pytest.mark.integration

BATCHES, PER_BATCH = 10, 30


def _pending(state) -> int:  # type: ignore[no-untyped-def]
    db = sqlite3.connect(state / "notify.db")
    try:
        return int(db.execute("SELECT COUNT(*) FROM outbox WHERE status='pending'").fetchone()[0])
    finally:
        db.close()


def test_kill9_loses_no_notification(tmp_path) -> None:  # type: ignore[no-untyped-def]
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump(INVENTORY, allow_unicode=True), encoding="utf-8")
    sink = Sink(fail_every=2)
    with ThreadedSink(sink) as served:
        extra = {"inventory": str(inv), "notifications": {
            "channels": {"hook": {"type": "webhook", "url": served.url}},
            "storm_limit": 100_000, "retry": {"initial": "50ms", "maximum": "500ms"}}}
        collector = CollectorProc(tmp_path, free_port(), extra).start()
        try:
            token = enroll(collector.url, collector.ca, collector.token("cong-ttdt"))
            ids: set[str] = set()
            for b in range(BATCHES):
                batch = [alert(title=f"Rule {b}-{i}") for i in range(PER_BATCH)]
                ack = post_events(collector.url, collector.ca, token, batch, f"b{b}")
                assert ack["accepted"] == PER_BATCH, ack
                ids.update(e["event"]["id"] for e in batch)
            assert wait_until(lambda: len(sink.received) >= 20, 60), diagnose(tmp_path)
            sink.fail = 10**9  # refuse everything from now on: the rest stays pending
            collector.kill9()
            before = {r["alert"]["id"] for r in sink.received}
            assert len(before) < len(ids) and _pending(collector.state) > 0
            sink.fail = 0
            collector.start()
            assert wait_until(lambda: {r["alert"]["id"] for r in sink.received} >= ids, 120), (
                f"{len(ids - {r['alert']['id'] for r in sink.received})} alerts never notified\n"
                + diagnose(tmp_path))
            assert wait_until(lambda: _pending(collector.state) == 0, 60)
            got = {r["alert"]["id"] for r in sink.received}
            assert got == ids  # nothing that was not raised
            assert set(sink.keys) == {f"alert:{i}:default:hook" for i in ids}
        finally:
            collector.stop()
