"""Probe registry: name -> "module:Class", imported only when enabled.

Heavy probes (scapy) must not cost anything on hosts where they are disabled,
hence import strings rather than imports.
"""

from __future__ import annotations

import importlib
from typing import Any

from agent.probes.base import Probe

PROBES: dict[str, str] = {
    "host_metrics": "agent.probes.host_metrics:HostMetricsProbe",
    "host_inventory": "agent.probes.host_inventory:HostInventoryProbe",
    "process": "agent.probes.process:ProcessProbe",
    "socket": "agent.probes.socket:SocketProbe",
    "session": "agent.probes.session:SessionProbe",
    # security probes (issue: security telemetry and detection)
    "auth_log": "agent.probes.auth_log:AuthLogProbe",
    "file_integrity": "agent.probes.file_integrity:FileIntegrityProbe",
    "network_sensor": "agent.probes.network_sensor:NetworkSensorProbe",
    # load and crash-recovery testing; off unless configured
    "synthetic": "agent.probes.synthetic:SyntheticProbe",
}


def load_probe_class(name: str) -> type[Probe[Any]]:
    module, _, cls = PROBES[name].partition(":")
    probe: type[Probe[Any]] = getattr(importlib.import_module(module), cls)
    return probe
