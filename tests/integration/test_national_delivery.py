"""The national output through a real DurableQueue + DeliveryLoop, against the mock over TLS.

The property that matters for layer 4: whatever the center does (503s, dropped
connections, lost acknowledgements, going away, refusing signatures, the
collector restarting), the set of alert ids at the center ends up equal to the
set raised, with no duplicate stored.
"""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest

from canhgac.config import Duration, Secret
from canhgac.schema import ALERT, AUTH, PRIORITY_SECURITY, new_event
from national_center.testing import TEST_KEY_ID, start_center
from shipper.delivery import DeliveryConfig, DeliveryLoop
from shipper.outputs.national import make_output
from shipper.outputs.national.config import LinkConfig, NationalOutputConfig
from shipper.queue import DurableQueue

pytestmark = pytest.mark.integration
SECRET = b"national-delivery-secret-0123456"
FAST = DeliveryConfig(batch_events=200, idle_wait=0.05, backoff_initial=0.02, backoff_max=0.3)


@pytest.fixture
async def center(tmp_path, test_ca):
    c = await start_center(tmp_path / "center", test_ca, keys={TEST_KEY_ID: SECRET})
    yield c
    await c.close()


def link_for(center, test_ca) -> LinkConfig:
    return LinkConfig(url=center.url, key_id=TEST_KEY_ID, secret=Secret("hex:" + SECRET.hex()),
                      ca=test_ca.cert, timeout=Duration(5), connect_timeout=Duration(2))


def output_for(center, test_ca, tmp_path, config: NationalOutputConfig | None = None):
    return make_output(link_for(center, test_ca), SECRET, config or NationalOutputConfig(),
                       state_dir=tmp_path / "state")


class Stream:
    """Generates a mix of shareable alerts, low alerts and telemetry; remembers what it made."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.shared: set[str] = set()
        self.low = 0
        self.telemetry = 0

    def chunk(self, n: int) -> list[bytes]:
        out = []
        for _ in range(n):
            r = self.rng.random()
            if r < 0.6:
                ev = new_event(ALERT, kind="alert", message="tấn công dò mật khẩu")
                ev["event"]["severity"] = self.rng.choice([47, 73, 99])
                self.shared.add(ev["event"]["id"])
            elif r < 0.75:
                ev = new_event(ALERT, kind="alert")
                ev["event"]["severity"] = 21
                self.low += 1
            else:
                ev = new_event(AUTH, user={"name": "nguyen.van.a"}, source={"ip": "203.0.113.7"})
                self.telemetry += 1
            ev["canhgac"] = {"system": {"id": "dvc", "level": 3}}
            out.append(orjson.dumps(ev))
        return out


async def open_queue(tmp_path) -> DurableQueue:
    q = DurableQueue(tmp_path / "spool.db", outputs=("national",), synchronous="NORMAL")
    await q.open()
    return q


def assert_exactly(center, expected: set[str]) -> None:
    ids = center.storage.event_ids(kind="alert")
    assert len(ids) == len(set(ids)), "duplicate stored at the center"
    assert set(ids) == expected


async def test_clean_stream_policy_and_counts(center, test_ca, tmp_path):
    q = await open_queue(tmp_path)
    out = output_for(center, test_ca, tmp_path)
    loop = DeliveryLoop(q, out, FAST)
    await loop.start()
    s = Stream()
    for _ in range(10):
        await q.append(s.chunk(50), PRIORITY_SECURITY)
    assert await loop.flush(timeout=30)
    await loop.stop()
    await q.close()
    assert_exactly(center, s.shared)
    c = out.counters
    assert c.filtered == {"below_severity": s.low, "telemetry": s.telemetry}
    assert c.delivered == len(s.shared) and c.shared["alert"] == len(s.shared)
    assert c.duplicates == 0 and c.rejected_lines == 0 and c.last_delivery.keys() == {"dvc"}
    assert loop.stats.delivered_events == 500  # filtered lines count as delivered
    # Nothing personal left the province in clear text.
    for r in center.storage.reports():
        text = orjson.dumps(r["doc"]).decode()
        assert "nguyen.van.a" not in text and "203.0.113.7" not in text


async def test_503s_drops_lost_acks_and_an_outage_lose_nothing_and_duplicate_nothing(
        center, test_ca, tmp_path):
    center.faults.update({"error_rate": 0.2, "drop_rate": 0.1, "drop_after_store_rate": 0.25,
                          "seed": 42})
    q = await open_queue(tmp_path)
    out = output_for(center, test_ca, tmp_path)
    loop = DeliveryLoop(q, out, FAST)
    await loop.start()
    s = Stream(seed=2)
    for i in range(30):
        await q.append(s.chunk(40), PRIORITY_SECURITY)
        if i == 10:
            await center.stop_listening()  # the center goes away mid-stream ...
        if i == 16:
            await asyncio.sleep(0.5)
            pending = (await q.stats())["national"].pending_events
            assert pending > 0  # ... a backlog builds in the spool ...
            await center.start()  # ... and it comes back on the same address
        if i == 20:
            center.faults.update({"unavailable_for": "1s"})  # a 503 window with Retry-After
        await asyncio.sleep(0.01)
    assert await loop.flush(timeout=60)
    await loop.stop()
    await q.close()
    assert_exactly(center, s.shared)
    # The faults really happened, and were absorbed by retries + idempotency.
    assert out.counters.failed_requests > 0
    assert out.counters.duplicate_batches + out.counters.duplicates > 0
    assert center.storage.counters()["accepted"] == len(s.shared)


async def test_collector_restart_with_unacked_batches(center, test_ca, tmp_path):
    """Acks lost and the collector restarts: batches are re-cut, the center dedups by event id."""
    center.faults.update({"drop_after_store_rate": 1.0})
    q = await open_queue(tmp_path)
    out = output_for(center, test_ca, tmp_path)
    loop = DeliveryLoop(q, out, FAST)
    s = Stream(seed=3)
    for _ in range(6):
        await q.append(s.chunk(50), PRIORITY_SECURITY)
    # Started after the appends, so the batches are cut the same way every run (a loop
    # that leased the first chunk alone could have it acked as a duplicate batch before
    # the stop, leaving nothing stored-but-unacknowledged for the restart to test).
    await loop.start()
    for _ in range(200):
        if center.storage.count() > 0:
            break
        await asyncio.sleep(0.02)
    assert center.storage.count() > 0  # stored at the center, but never acknowledged
    await loop.stop(timeout=0.2)
    await q.close()
    center.faults.reset()
    q = await open_queue(tmp_path)
    out2 = output_for(center, test_ca, tmp_path)
    loop = DeliveryLoop(q, out2, DeliveryConfig(batch_events=500, idle_wait=0.05,
                                                backoff_initial=0.02, backoff_max=0.3))
    await loop.start()
    assert await loop.flush(timeout=30)
    await loop.stop()
    await q.close()
    assert_exactly(center, s.shared)
    assert out2.counters.duplicates > 0


async def test_refused_signatures_keep_a_backlog_until_fixed(center, test_ca, tmp_path):
    center.faults.update({"reject_signatures": True})
    q = await open_queue(tmp_path)
    out = output_for(center, test_ca, tmp_path)
    loop = DeliveryLoop(q, out, FAST)
    await loop.start()
    s = Stream(seed=4)
    await q.append(s.chunk(100), PRIORITY_SECURITY)
    for _ in range(200):
        if out.counters.rejected_requests["injected"] >= 2:  # refused, and refused on retry
            break
        await asyncio.sleep(0.05)
    assert out.counters.rejected_requests["injected"] >= 2
    assert (await q.stats())["national"].pending_events == 100
    assert await q.dead_letters("national") == []
    center.faults.update({"reject_signatures": False})
    assert await loop.flush(timeout=30)
    await loop.stop()
    await q.close()
    assert_exactly(center, s.shared)


async def test_lines_the_center_refuses_are_dead_lettered_with_its_reason(
        center, test_ca, tmp_path):
    q = await open_queue(tmp_path)
    out = output_for(center, test_ca, tmp_path)
    loop = DeliveryLoop(q, out, FAST)
    await loop.start()
    good = new_event(ALERT, kind="alert")
    good["event"]["severity"] = 99
    bad = {"event": {"kind": "alert", "severity": 99}}  # no event.id: the center refuses it
    await q.append([orjson.dumps(good), orjson.dumps(bad)], PRIORITY_SECURITY)
    assert await loop.flush(timeout=30)
    await loop.stop()
    dead = await q.dead_letters("national")
    await q.close()
    assert len(dead) == 1 and "event.id missing" in dead[0]["reason"]
    assert orjson.loads(dead[0]["lines"][0]) == bad
    assert center.storage.event_ids() == [good["event"]["id"]]
    assert out.counters.rejected_lines == 1
