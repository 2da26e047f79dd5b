"""The network sensor's default configuration (all interfaces) opens and captures.

Regression: binding an AF_PACKET socket to interface name "" fails with ENODEV,
which made the default sensor crash-loop on every real host.
"""

from __future__ import annotations

import asyncio
import threading

from agent.probes.base import ProbeContext
from agent.probes.network_sensor import NetworkSensorConfig, NetworkSensorProbe


async def test_default_config_captures_on_all_interfaces(tmp_path):
    probe = NetworkSensorProbe(NetworkSensorConfig(), ProbeContext("a", "h", tmp_path))
    events: list = []

    async def emit(evs):
        events.extend(evs)

    task = asyncio.create_task(probe.run(emit))
    await asyncio.wait_for(probe.ready.wait(), 20)
    await asyncio.sleep(0.5)
    try:
        assert not task.done(), task.exception() if task.done() else ""
        assert probe.status()["enabled"] is True, probe.reason
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # The reader sleeps in select() without a timeout when idle: stopping must wake it.
    assert not [t for t in threading.enumerate() if t.name == "canhgac-net-sensor"]
