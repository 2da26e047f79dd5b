"""The supervisor: restarts with backoff, isolation between probes, emit, heartbeat, stop."""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import orjson

from agent.config import AgentConfig, ProbeSpec
from agent.health import read_status
from agent.probes.base import Emit, Probe, ProbeConfig
from agent.runtime import AgentRuntime, RuntimeOptions
from canhgac.config import Duration
from canhgac.schema import HOST_METRICS, PRIORITY_SECURITY, PRIORITY_TELEMETRY, new_event
from shipper.output import Batch, SendResult


class RecordingOutput:
    """Accepts everything and remembers it (the collector is tested elsewhere)."""

    name = "collector"

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    async def start(self) -> None:
        pass

    async def send(self, batch: Batch) -> SendResult:
        self.lines.extend(batch.lines)
        return SendResult.ok()

    async def close(self) -> None:
        pass

    def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.lines]


class CrashingProbe(Probe):
    name = "crashy"
    datasets = ("process",)
    starts: ClassVar[list[float]] = []

    async def run(self, emit: Emit) -> None:
        CrashingProbe.starts.append(time.monotonic())
        await asyncio.sleep(0.01)
        raise RuntimeError("disk on fire")


class SteadyProbe(Probe):
    name = "steady"
    datasets = (HOST_METRICS,)

    async def run(self, emit: Emit) -> None:
        n = 0
        while True:
            await emit([new_event(HOST_METRICS, kind="metric", seq=n)])
            n += 1
            await asyncio.sleep(0.02)

    def status(self) -> dict[str, Any]:
        return {"ok": True}


def spec(cls: type[Probe]) -> ProbeSpec:
    return ProbeSpec(cls.name, "enabled", cls, ProbeConfig())


def runtime(tmp_path, probes: list[ProbeSpec], out: RecordingOutput, **kw) -> AgentRuntime:
    cfg = AgentConfig(state_dir=tmp_path / "agent", heartbeat_interval=Duration(kw.pop("hb", 30)))
    opts = RuntimeOptions(backoff_initial=0.05, backoff_max=0.4, signals=False,
                          output_factory=lambda c, creds: out, probes=probes, **kw)
    return AgentRuntime(cfg, "(test)", opts)


async def test_crashing_probe_is_restarted_with_backoff_and_others_keep_running(tmp_path):
    CrashingProbe.starts.clear()
    out = RecordingOutput()
    rt = runtime(tmp_path, [spec(CrashingProbe), spec(SteadyProbe)], out)
    task = asyncio.create_task(rt.run())
    await asyncio.sleep(1.5)
    crashy, steady = rt.probes["crashy"], rt.probes["steady"]
    assert crashy.restarts >= 3
    assert "disk on fire" in crashy.last_error
    assert steady.state == "running" and steady.restarts == 0
    assert steady.events > 20
    gaps = [b - a for a, b in zip(CrashingProbe.starts, CrashingProbe.starts[1:], strict=False)]
    # exponential: later gaps are longer than the first, and capped near backoff_max
    assert gaps[-1] > gaps[0]
    assert max(gaps) < 0.5
    snap = await rt.snapshot()
    assert snap["probes"]["crashy"]["restarts"] == crashy.restarts
    assert snap["probes"]["steady"]["status"] == {"ok": True}
    rt.request_stop()
    assert await asyncio.wait_for(task, 5) == 0


async def test_emit_groups_by_priority_and_stamps_agent_and_host(tmp_path):
    out = RecordingOutput()
    rt = runtime(tmp_path, [], out)
    await rt.start()
    await rt.delivery.stop(0.1)  # keep chunks in the queue so we can look at them
    rt.delivery = None
    await rt.emit([new_event(HOST_METRICS, kind="metric"), new_event("process", kind="event"),
                   new_event(HOST_METRICS, kind="metric")])
    rows = await rt.queue._run(lambda: rt.queue._db.execute(
        "SELECT priority, n, data FROM chunks ORDER BY seq").fetchall())
    await rt.stop()
    mine = [(prio, n, data) for prio, n, data in rows if b"agent.health" not in data]
    # one chunk per priority: the process event alone, both metrics together
    assert sorted((prio, n) for prio, n, _ in mine) == [(PRIORITY_TELEMETRY, 2),
                                                         (PRIORITY_SECURITY, 1)]
    for _prio, _n, data in mine:
        for line in data.split(b"\n"):
            e = orjson.loads(line)
            assert e["host"]["name"] == rt.hostname
            assert e["agent"]["type"] == "canhgac" and e["agent"]["ephemeral_id"]


async def test_heartbeat_reports_probes_queue_and_drops(tmp_path):
    out = RecordingOutput()
    rt = runtime(tmp_path, [spec(SteadyProbe), ProbeSpec("ghost", "unavailable", error="no module")],
                 out, hb=0.2)
    await rt.start()
    rt.queue.counters["dropped_telemetry"] = 7  # as if the disk had filled earlier
    await asyncio.sleep(0.6)
    status = read_status(rt.state_dir)
    await rt.stop()
    assert status is not None and status["state"] == "running"
    assert status["probes"]["ghost"]["state"] == "unavailable"
    assert status["probes"]["ghost"]["error"] == "no module"
    assert status["queue"]["dropped_telemetry"] == 7
    assert status["datasets"] == [HOST_METRICS]
    beats = [e for e in out.events() if e["event"]["dataset"] == "agent.health"]
    assert beats, "heartbeats reach the output"
    hb = beats[-1]
    assert hb["event"]["kind"] == "state"
    assert hb["canhgac_agent"]["queue"]["dropped_telemetry"] == 7
    assert hb["canhgac_agent"]["probes"]["steady"]["state"] in ("running", "stopped")
    final = read_status(rt.state_dir)
    assert final is not None and final["state"] == "stopped"


async def test_full_queue_drops_telemetry_and_counts_it(tmp_path):
    from agent.config import QueueConfig

    out = RecordingOutput()
    rt = runtime(tmp_path, [], out)
    rt.config.queue = QueueConfig(max_bytes=1024 * 1024)
    await rt.start()
    await rt.delivery.stop(0.1)  # nothing drains: the queue must fill
    big = "x" * 4000
    dropped = 0
    for _ in range(400):
        dropped += await rt.emit([new_event(HOST_METRICS, kind="metric", pad=big)])
    assert dropped > 0
    assert rt.queue.counters["dropped_telemetry"] == dropped
    # a security event still gets in, by evicting telemetry
    await rt.emit([new_event("process", kind="event", pad=big)])
    snap = await rt.snapshot()
    assert snap["queue"]["dropped_telemetry"] >= dropped
    rt.delivery = None
    await rt.stop()


async def test_stop_is_fast_even_with_collector_unreachable(tmp_path):
    from shipper.outputs.http import HttpOutput, HttpOutputConfig

    def factory(cfg, creds):
        return HttpOutput(HttpOutputConfig(url="https://127.0.0.1:9", token="a.b", timeout=5))

    cfg = AgentConfig(state_dir=tmp_path / "agent")
    rt = AgentRuntime(cfg, "(test)", RuntimeOptions(signals=False, output_factory=factory,
                                                    probes=[spec(SteadyProbe)]))
    task = asyncio.create_task(rt.run())
    await asyncio.sleep(0.5)
    t0 = time.monotonic()
    rt.request_stop()
    assert await asyncio.wait_for(task, 5) == 0
    assert time.monotonic() - t0 < 3.5


async def test_a_commit_wakes_delivery_whatever_flush_interval_says(tmp_path):
    """flush_interval is only the idle safety poll: events go out as they are committed."""
    out = RecordingOutput()
    rt = runtime(tmp_path, [], out)
    rt.config.collector.flush_interval = Duration(3600)
    await rt.start()
    try:
        deadline = time.monotonic() + 10
        while not any(e["event"]["dataset"] == "agent.health" for e in out.events()):
            assert time.monotonic() < deadline, "the first heartbeat was not delivered"
            await asyncio.sleep(0.02)
        # The worker is idle now, waiting: a later commit must wake it.
        await rt.emit([new_event("process", kind="event", action="late")])
        while not any(e["event"].get("action") == "late" for e in out.events()):
            assert time.monotonic() < deadline, "an event waited for the idle poll"
            await asyncio.sleep(0.02)
    finally:
        await rt.stop()
