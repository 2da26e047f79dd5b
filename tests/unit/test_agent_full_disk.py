"""The agent's queue on a full disk: probes' appends fail with StorageFull and the
supervisor restarts them, the delivery loop survives, and once space is back every event
whose emit returned is delivered exactly once (counted by event id)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import orjson
import pytest

from agent.config import AgentConfig, ProbeSpec
from agent.probes.base import Emit, Probe, ProbeConfig
from agent.runtime import AgentRuntime, RuntimeOptions
from canhgac.schema import new_event
from shipper.output import Batch, SendResult
from tests.fixtures.collector import wait_for
from tests.fixtures.smallfs import fill, small_tmpfs


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path) as mnt:
        yield mnt


class RecordingOutput:
    name = "collector"

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    async def start(self) -> None: ...

    async def send(self, batch: Batch) -> SendResult:
        self.lines.extend(batch.lines)
        return SendResult.ok()

    async def close(self) -> None: ...


class CountingProbe(Probe):
    """Emits security events; remembers the ids of every batch whose emit returned."""

    name = "counting"
    datasets = ("process",)
    accepted: ClassVar[set[str]] = set()
    n: ClassVar[int] = 0

    async def run(self, emit: Emit) -> None:
        while True:
            batch = [new_event("process", message="x" * 300) for _ in range(5)]
            await emit(batch)
            CountingProbe.accepted.update(e["event"]["id"] for e in batch)
            await asyncio.sleep(0.02)


async def test_agent_survives_a_full_queue_disk(small_fs: Path) -> None:
    CountingProbe.accepted.clear()
    out = RecordingOutput()
    cfg = AgentConfig(state_dir=small_fs / "agent")
    opts = RuntimeOptions(backoff_initial=0.05, backoff_max=0.4, signals=False,
                          output_factory=lambda c, creds: out,
                          probes=[ProbeSpec(CountingProbe.name, "enabled", CountingProbe,
                                            ProbeConfig())])
    rt = AgentRuntime(cfg, "(test)", opts)
    await rt.start()
    try:
        assert await wait_for(lambda: len(CountingProbe.accepted) >= 50, 10)
        filler = fill(small_fs)
        st = rt.probes["counting"]
        assert await wait_for(lambda: st.restarts >= 1 and "disk is full" in st.last_error, 20)
        assert rt.queue is not None and not rt.queue.writable()
        assert rt.delivery is not None
        assert all(not t.done() for t in rt.delivery._tasks), "the agent's delivery ended"
        filler.unlink()
        before = len(CountingProbe.accepted)
        # the probe is restarted and emits again; the queue drains to the output
        assert await wait_for(lambda: len(CountingProbe.accepted) >= before + 50, 20)
        assert await rt.delivery.flush(timeout=20)
        accepted = set(CountingProbe.accepted)
        assert rt.delivery.stats.up
    finally:
        await rt.stop()
    events = [orjson.loads(line) for line in out.lines]
    got = [e["event"]["id"] for e in events if e["event"]["dataset"] == "process"]
    assert len(got) == len(set(got)), "an event was delivered twice"
    assert accepted <= set(got)
