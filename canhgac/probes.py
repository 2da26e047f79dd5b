"""The names of the agent's probes: part of the agent ↔ collector contract.

Heartbeats report probe health by these names and the collector's coverage model
requires them per level, so both sides read them from here; the agent maps each to
its implementation (``agent.probes.PROBES``, which a test keeps equal to this list).
"""

from __future__ import annotations

PROBE_NAMES: tuple[str, ...] = (
    "host_metrics",
    "host_inventory",
    "process",
    "socket",
    "session",
    "auth_log",
    "file_integrity",
    "network_sensor",
    "synthetic",
)
